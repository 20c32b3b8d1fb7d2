//! The fused CPU convolution: per sample and group, gather the patches into a reused buffer
//! (im2col) and multiply with the `gemm` kernels; samples run in parallel on rayon's pool.
//! The same four routines serve the transposed convolution, whose forward is this one's
//! input-gradient and vice versa.

use dfdx::shapes::Dtype;
use rayon::prelude::*;

use super::gemm::{matmul, transpose_into, View};
use super::geometry::Conv2dGeometry;
use super::scratch::Scratch;

/// One patch row of the im2col matrix: where it starts, which output rows and columns see the
/// image (the others see padding), and where its taps read.
struct TapRow {
    row: usize,
    rows: std::ops::Range<usize>,
    columns: std::ops::Range<usize>,
    plane: usize,
    y_offset: isize,
    x_offset: isize,
}

/// The sizes of one convolution `(B, C, H, W) -> (B, O, OH, OW)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct ConvPlan {
    pub batch: usize,
    pub channels: usize,
    pub height: usize,
    pub width: usize,
    pub out_channels: usize,
    pub out_h: usize,
    pub out_w: usize,
    pub geometry: Conv2dGeometry,
}

/// The output positions `lo..hi` along one axis whose tap `k` lands inside the input, and the
/// input coordinate of position 0 (may be negative).
fn valid_range(out: usize, input: usize, stride: usize, dilation: usize, padding: usize, k: usize) -> (usize, usize, isize) {
    let offset = (k * dilation) as isize - padding as isize;
    let (stride_i, input_i) = (stride as isize, input as isize);
    let lo = if offset >= 0 {
        0
    } else {
        ((-offset + stride_i - 1) / stride_i) as usize
    };
    let hi = if input_i - offset <= 0 {
        0
    } else {
        (((input_i - offset) + stride_i - 1) / stride_i) as usize
    };
    let hi = hi.min(out);
    (lo.min(hi), hi, offset)
}

/// The sizes every pass of the kernel chunks its buffers by.
struct Sizes {
    /// Rows of the patch matrix: `(C/G)·KH·KW`.
    patch: usize,
    /// Output positions per sample: `OH·OW`.
    positions: usize,
    /// Output channels per group.
    group_out: usize,
    /// Values per input sample (at least 1, for chunking).
    image_len: usize,
    /// Values per output sample (at least 1, for chunking).
    output_len: usize,
    /// Samples per rayon task.
    per_task: usize,
    /// Samples per matrix product.
    per_product: usize,
}

impl ConvPlan {
    fn sizes(&self) -> Sizes {
        Sizes {
            patch: self.patch(),
            positions: self.positions(),
            group_out: self.group_out(),
            image_len: self.image_len().max(1),
            output_len: self.output_len().max(1),
            per_task: self.samples_per_task(),
            per_product: self.samples_per_product(),
        }
    }

    fn group_in(&self) -> usize {
        self.channels / self.geometry.groups
    }
    fn group_out(&self) -> usize {
        self.out_channels / self.geometry.groups
    }
    fn patch(&self) -> usize {
        self.group_in() * self.geometry.kernel.0 * self.geometry.kernel.1
    }
    fn positions(&self) -> usize {
        self.out_h * self.out_w
    }
    fn image_len(&self) -> usize {
        self.channels * self.height * self.width
    }
    fn output_len(&self) -> usize {
        self.out_channels * self.positions()
    }

    /// Visits every patch row `(channel, ky, kx)` of `group` with the output positions whose
    /// tap lands inside the image; the rest of the row reads padding.
    fn for_each_tap_row(&self, group: usize, mut visit: impl FnMut(&TapRow)) {
        let g = self.geometry;
        let (kh, kw) = g.kernel;
        // The ranges depend on the tap only, not on the channel.
        let ys: Vec<_> = (0..kh)
            .map(|ky| valid_range(self.out_h, self.height, g.stride.0, g.dilation.0, g.padding.0, ky))
            .collect();
        let xs: Vec<_> = (0..kw)
            .map(|kx| valid_range(self.out_w, self.width, g.stride.1, g.dilation.1, g.padding.1, kx))
            .collect();
        for cg in 0..self.group_in() {
            let plane = (group * self.group_in() + cg) * self.height * self.width;
            for (ky, &(oy_lo, oy_hi, y_offset)) in ys.iter().enumerate() {
                for (kx, &(ox_lo, ox_hi, x_offset)) in xs.iter().enumerate() {
                    let row = (cg * kh + ky) * kw + kx;
                    visit(&TapRow {
                        row,
                        rows: oy_lo..oy_hi,
                        columns: ox_lo..ox_hi,
                        plane,
                        y_offset,
                        x_offset,
                    });
                }
            }
        }
    }

    /// The input index of output position `(oy, ox)` of a tap row (inside its valid ranges).
    fn input_index(&self, tap: &TapRow, oy: usize, ox: usize) -> usize {
        let y = (oy * self.geometry.stride.0) as isize + tap.y_offset;
        let x = (ox * self.geometry.stride.1) as isize + tap.x_offset;
        tap.plane + y as usize * self.width + x as usize
    }

    /// Writes `im2col(image, group)` into columns `offset .. offset + OH·OW` of `cols`, a
    /// `patch × stride` row-major matrix; padding taps become zeros.
    fn gather<E: Dtype>(&self, image: &[E], group: usize, cols: &mut [E], stride: usize, offset: usize) {
        if self.keeps_rows() {
            return self.gather_shifted(image, group, cols, stride, offset);
        }
        let (out_w, x_step) = (self.out_w, self.geometry.stride.1);
        self.for_each_tap_row(group, |tap| {
            let start = tap.row * stride + offset;
            let row = &mut cols[start..start + self.positions()];
            row[..tap.rows.start * out_w].iter_mut().for_each(|v| *v = E::default());
            row[tap.rows.end * out_w..].iter_mut().for_each(|v| *v = E::default());
            for oy in tap.rows.clone() {
                let segment = &mut row[oy * out_w..(oy + 1) * out_w];
                segment[..tap.columns.start].iter_mut().for_each(|v| *v = E::default());
                segment[tap.columns.end..].iter_mut().for_each(|v| *v = E::default());
                let (at, len) = (self.input_index(tap, oy, tap.columns.start), tap.columns.len());
                let valid = &mut segment[tap.columns.clone()];
                if x_step == 1 {
                    valid.copy_from_slice(&image[at..at + len]);
                } else {
                    valid.iter_mut().zip(image[at..].iter().step_by(x_step)).for_each(|(d, s)| *d = *s);
                }
            }
        });
    }

    /// `image += col2im(cols, group)` from columns `offset ..` of a `patch × stride` matrix, the
    /// adjoint of [`Self::gather`].
    fn scatter<E: Dtype>(&self, cols: &mut [E], group: usize, image: &mut [E], stride: usize, offset: usize) {
        if self.keeps_rows() {
            return self.scatter_shifted(cols, group, image, stride, offset);
        }
        let (out_w, x_step) = (self.out_w, self.geometry.stride.1);
        self.for_each_tap_row(group, |tap| {
            for oy in tap.rows.clone() {
                let at = self.input_index(tap, oy, tap.columns.start);
                let start = tap.row * stride + offset + oy * out_w;
                let src = &cols[start + tap.columns.start..start + tap.columns.end];
                if x_step == 1 {
                    image[at..at + src.len()].iter_mut().zip(src).for_each(|(d, s)| *d += *s);
                } else {
                    src.iter().zip(image[at..].iter_mut().step_by(x_step)).for_each(|(s, d)| *d += *s);
                }
            }
        });
    }

    /// Stride 1 with the output as wide as the input (a "same" convolution): output position
    /// `q = oy·W + ox` of a tap row reads input `q + shift`, one shift per tap row. Its patch
    /// row is then one contiguous copy of the image, with the taps that fall in the padding
    /// (or wrap into a neighbouring row) zeroed after, instead of a short copy per output row.
    fn keeps_rows(&self) -> bool {
        self.geometry.stride == (1, 1) && self.out_w == self.width
    }

    /// The positions of a tap row that read the image in one contiguous run, and the shift
    /// from output position to in-plane input index ([`Self::keeps_rows`] only).
    fn shifted_run(&self, tap: &TapRow) -> (std::ops::Range<usize>, isize) {
        let w = self.width;
        let shift = tap.y_offset * w as isize + tap.x_offset;
        let plane = (self.height * w) as isize;
        let lo = ((tap.rows.start * w) as isize).max(-shift);
        let hi = ((tap.rows.end * w) as isize).min(plane - shift);
        let lo = lo.max(0) as usize;
        (lo..(hi.max(0) as usize).max(lo), shift)
    }

    /// Zeroes the positions of a tap row's run whose column lies in the padding: a shifted
    /// run reads them from a neighbouring image row.
    fn zero_wrapped<E: Dtype>(&self, tap: &TapRow, row: &mut [E]) {
        let w = self.width;
        for oy in tap.rows.clone() {
            let line = &mut row[oy * w..(oy + 1) * w];
            line[..tap.columns.start].iter_mut().for_each(|v| *v = E::default());
            line[tap.columns.end..].iter_mut().for_each(|v| *v = E::default());
        }
    }

    /// [`Self::gather`] for a same convolution: one copy per tap row.
    fn gather_shifted<E: Dtype>(&self, image: &[E], group: usize, cols: &mut [E], stride: usize, offset: usize) {
        self.for_each_tap_row(group, |tap| {
            let start = tap.row * stride + offset;
            let row = &mut cols[start..start + self.positions()];
            let (run, shift) = self.shifted_run(tap);
            let from = (tap.plane as isize + run.start as isize + shift) as usize;
            row[..run.start].fill(E::default());
            row[run.end..].fill(E::default());
            row[run.clone()].copy_from_slice(&image[from..from + run.len()]);
            self.zero_wrapped(tap, row);
        });
    }

    /// [`Self::scatter`] for a same convolution: the wrapped positions of each tap row are
    /// zeroed in `cols` (they are padding taps), then the row is added in one run.
    fn scatter_shifted<E: Dtype>(&self, cols: &mut [E], group: usize, image: &mut [E], stride: usize, offset: usize) {
        self.for_each_tap_row(group, |tap| {
            let start = tap.row * stride + offset;
            let row = &mut cols[start..start + self.positions()];
            self.zero_wrapped(tap, row);
            let (run, shift) = self.shifted_run(tap);
            let to = (tap.plane as isize + run.start as isize + shift) as usize;
            image[to..to + run.len()].iter_mut().zip(&row[run]).for_each(|(d, s)| *d += *s);
        });
    }

    /// The weight block of `group`: `(O/G) × patch`, row-major.
    fn weight_block<'w, E>(&self, weight: &'w [E], group: usize) -> &'w [E] {
        let size = self.group_out() * self.patch();
        &weight[group * size..(group + 1) * size]
    }

    /// How many samples each rayon task takes: one contiguous run per thread, so every task
    /// allocates its buffers once.
    fn samples_per_task(&self) -> usize {
        self.batch.div_ceil(rayon::current_num_threads().max(1)).max(1)
    }

    /// How many samples share one matrix multiply: small maps are batched until a product has
    /// about a thousand columns, where gemm runs at speed.
    fn samples_per_product(&self) -> usize {
        if self.pointwise() {
            return 1; // its patch matrix is the sample itself: no copy to batch
        }
        (1024 / self.positions().max(1)).clamp(1, self.samples_per_task())
    }

    /// A 1×1 convolution with stride 1 and no padding: one sample's patch matrix for a group
    /// is that group's channels, as they lie.
    fn pointwise(&self) -> bool {
        let g = self.geometry;
        g.kernel == (1, 1) && g.stride == (1, 1) && g.padding == (0, 0)
    }

    /// The patch matrix of `group` for the samples of `x_chunk`, side by side
    /// (`patch × samples·positions`): for one sample of a pointwise convolution, the sample's
    /// own channels as they lie; else gathered into `cols`.
    fn patches<'a, E: Dtype>(&self, x_chunk: &'a [E], group: usize, cols: &'a mut [E]) -> &'a [E] {
        let image_len = self.image_len().max(1);
        let width = x_chunk.len() / image_len * self.positions();
        let size = self.patch() * width;
        if self.pointwise() && x_chunk.len() == image_len {
            return &x_chunk[group * size..(group + 1) * size];
        }
        for (j, x_b) in x_chunk.chunks(image_len).enumerate() {
            self.gather(x_b, group, cols, width, j * self.positions());
        }
        &cols[..size]
    }

    /// The rows of `dy_b` that belong to `group`: `(O/G) × positions`.
    fn group_rows<'a, E>(&self, per_sample: &'a [E], group: usize) -> &'a [E] {
        let size = self.group_out() * self.positions();
        &per_sample[group * size..(group + 1) * size]
    }

    /// `y = conv(x, weight) + bias`, `x (B, C, H, W)`, `weight (O, C/G, KH, KW)`.
    pub fn forward<E: Dtype>(&self, x: &[E], weight: &[E], bias: Option<&[E]>) -> Vec<E> {
        let Sizes {
            patch,
            positions,
            group_out,
            image_len,
            output_len,
            per_task,
            per_product,
        } = self.sizes();
        let mut y = vec![E::default(); self.batch * self.output_len()];
        y.par_chunks_mut(output_len * per_task)
            .zip(x.par_chunks(image_len * per_task))
            .for_each(|(y_task, x_task)| {
                let mut cols = Scratch::new(patch * positions * per_product);
                let mut product = Scratch::new(group_out * positions * per_product);
                for (y_chunk, x_chunk) in y_task
                    .chunks_mut(output_len * per_product)
                    .zip(x_task.chunks(image_len * per_product))
                {
                    let samples = x_chunk.len() / image_len;
                    let width = samples * positions;
                    for group in 0..self.geometry.groups {
                        let cols = self.patches(x_chunk, group, &mut cols);
                        // One sample's product is its own output rows; several are interleaved.
                        let out = if samples == 1 {
                            &mut y_chunk[group * group_out * positions..(group + 1) * group_out * positions]
                        } else {
                            &mut product[..group_out * width]
                        };
                        matmul(
                            out,
                            View::row_major(group_out, width),
                            self.weight_block(weight, group),
                            View::row_major(group_out, patch),
                            cols,
                            View::row_major(patch, width),
                            false,
                        );
                        if samples == 1 {
                            continue;
                        }
                        for (j, y_b) in y_chunk.chunks_mut(output_len).enumerate() {
                            let rows = &mut y_b[group * group_out * positions..(group + 1) * group_out * positions];
                            for (o, row) in rows.chunks_mut(positions).enumerate() {
                                row.copy_from_slice(&product[o * width + j * positions..o * width + (j + 1) * positions]);
                            }
                        }
                    }
                    if let Some(bias) = bias {
                        add_channel_bias(y_chunk, positions, bias);
                    }
                }
            });
        y
    }

    /// `dx += convᵀ(dy, weight)`: the input gradient (and the transposed convolution).
    pub fn backward_input<E: Dtype>(&self, weight: &[E], dy: &[E], dx: &mut [E]) {
        let Sizes {
            patch,
            positions,
            group_out,
            image_len,
            output_len,
            per_task,
            per_product,
        } = self.sizes();
        dx.par_chunks_mut(image_len * per_task)
            .zip(dy.par_chunks(output_len * per_task))
            .for_each(|(dx_task, dy_task)| {
                let mut dcols = Scratch::new(patch * positions * per_product);
                let mut interleaved = Scratch::new(group_out * positions * per_product);
                for (dx_chunk, dy_chunk) in dx_task
                    .chunks_mut(image_len * per_product)
                    .zip(dy_task.chunks(output_len * per_product))
                {
                    let samples = dy_chunk.len() / output_len;
                    let width = samples * positions;
                    for group in 0..self.geometry.groups {
                        // One sample's gradient rows are the product's operand as they lie.
                        let grads: &[E] = if samples == 1 {
                            self.group_rows(dy_chunk, group)
                        } else {
                            for (j, dy_b) in dy_chunk.chunks(output_len).enumerate() {
                                for (o, row) in self.group_rows(dy_b, group).chunks(positions).enumerate() {
                                    interleaved[o * width + j * positions..o * width + (j + 1) * positions].copy_from_slice(row);
                                }
                            }
                            &interleaved[..group_out * width]
                        };
                        let block = self.weight_block(weight, group);
                        let product = |dst: &mut [E], accumulate| {
                            matmul(
                                dst,
                                View::row_major(patch, width),
                                block,
                                View::row_major(group_out, patch).t(),
                                grads,
                                View::row_major(group_out, width),
                                accumulate,
                            )
                        };
                        if samples == 1 && self.pointwise() {
                            // The column gradients are the sample's channel gradients.
                            product(&mut dx_chunk[group * patch * positions..(group + 1) * patch * positions], true);
                            continue;
                        }
                        let dcols = &mut dcols[..patch * width];
                        product(dcols, false);
                        for (j, dx_b) in dx_chunk.chunks_mut(image_len).enumerate() {
                            self.scatter(dcols, group, dx_b, width, j * positions);
                        }
                    }
                }
            });
    }

    /// `dw += Σ_b dy_b · im2col(x_b)ᵀ`, computed as `dwᵀ += cols · dyᵀ` with `dy` transposed
    /// into a small buffer: gemm is ten times slower with a column-major right operand. One
    /// partial sum per task, added at the end.
    pub fn backward_weight<E: Dtype>(&self, x: &[E], dy: &[E], dw: &mut [E]) {
        let Sizes {
            patch,
            positions,
            group_out,
            image_len,
            output_len,
            per_task,
            per_product,
        } = self.sizes();
        let block = group_out * patch;
        let partials: Vec<Vec<E>> = x
            .par_chunks(image_len * per_task)
            .zip(dy.par_chunks(output_len * per_task))
            .map(|(x_task, dy_task)| {
                let mut transposed_sum = vec![E::default(); dw.len()]; // per group: patch × (O/G)
                let mut cols = Scratch::new(patch * positions * per_product);
                let mut dy_t = Scratch::new(positions * per_product * group_out);
                for (x_chunk, dy_chunk) in x_task.chunks(image_len * per_product).zip(dy_task.chunks(output_len * per_product)) {
                    let samples = x_chunk.len() / image_len;
                    let width = samples * positions;
                    for group in 0..self.geometry.groups {
                        for (j, dy_b) in dy_chunk.chunks(output_len).enumerate() {
                            transpose_into(
                                self.group_rows(dy_b, group),
                                group_out,
                                positions,
                                &mut dy_t[j * positions * group_out..],
                            );
                        }
                        let cols = self.patches(x_chunk, group, &mut cols);
                        let out = &mut transposed_sum[group * block..(group + 1) * block];
                        matmul(
                            out,
                            View::row_major(patch, group_out),
                            cols,
                            View::row_major(patch, width),
                            &dy_t[..width * group_out],
                            View::row_major(width, group_out),
                            true,
                        );
                    }
                }
                transposed_sum
            })
            .collect();
        for partial in partials {
            for (group_dw, group_partial) in dw.chunks_mut(block).zip(partial.chunks(block)) {
                for (o, row) in group_dw.chunks_mut(patch).enumerate() {
                    row.iter_mut().enumerate().for_each(|(p, d)| *d += group_partial[p * group_out + o]);
                }
            }
        }
    }
}

/// `y[b, c, p] += bias[c]` for `y` laid out `(B, C, positions)` from a sample boundary.
pub(crate) fn add_channel_bias<E: Dtype>(y: &mut [E], positions: usize, bias: &[E]) {
    for (k, row) in y.chunks_mut(positions.max(1)).enumerate() {
        let b = bias[k % bias.len()];
        row.iter_mut().for_each(|v| *v += b);
    }
}

/// `db[c] += Σ_{b, p} dy[b, c, p]`: the adjoint of [`add_channel_bias`].
pub(crate) fn channel_sums<E: Dtype>(dy: &[E], positions: usize, db: &mut [E]) {
    let channels = db.len();
    for (k, row) in dy.chunks(positions.max(1)).enumerate() {
        db[k % channels] += row.iter().fold(E::default(), |acc, &v| acc + v);
    }
}
