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
    /// The input channel within its group.
    channel: usize,
    y_offset: isize,
    x_offset: isize,
}

/// A product narrower than this many columns takes more samples if they fit in L2.
const NARROW_PRODUCT: usize = 256;
/// The most columns one product takes.
const WIDEST_PRODUCT: usize = 1024;
/// The L2 size assumed where the machine does not report it.
const DEFAULT_L2_BYTES: usize = 512 << 10;

/// A task's im2col buffer. Its padding taps are zeroed by the first gather of each width
/// (samples × positions) and stay zero, so later gathers write only the taps that read the
/// image: on small maps the zero fills had cost more calls than the copies.
struct PatchBuffer<E: Dtype> {
    cols: Scratch<E>,
    zeroed_width: Option<usize>,
}

impl<E: Dtype> PatchBuffer<E> {
    fn new(len: usize) -> Self {
        PatchBuffer {
            cols: Scratch::new(len),
            zeroed_width: None,
        }
    }
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
    fn sizes<E>(&self) -> Sizes {
        Sizes {
            patch: self.patch(),
            positions: self.positions(),
            group_out: self.group_out(),
            image_len: self.image_len().max(1),
            output_len: self.output_len().max(1),
            per_task: self.samples_per_task(),
            per_product: self.samples_per_product::<E>(),
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
                        channel: cg,
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
    /// `patch × stride` row-major matrix. Padding taps become zeros when `zero_padding`; else
    /// they are left as they are (zero already: they sit at the same places in every gather
    /// of the same width), and only the taps that read the image are written.
    fn gather<E: Dtype>(&self, image: &[E], group: usize, cols: &mut [E], stride: usize, offset: usize, zero_padding: bool) {
        if self.keeps_rows() {
            return self.gather_shifted(image, group, cols, stride, offset, zero_padding);
        }
        let (out_w, x_step) = (self.out_w, self.geometry.stride.1);
        let phases = (x_step > 1).then(|| self.split_phases(image, group));
        self.for_each_tap_row(group, |tap| {
            let start = tap.row * stride + offset;
            let row = &mut cols[start..start + self.positions()];
            let len = tap.columns.len();
            if zero_padding {
                row[..tap.rows.start * out_w].fill(E::default());
                row[tap.rows.end * out_w..].fill(E::default());
                for segment in row[tap.rows.start * out_w..tap.rows.end * out_w].chunks_mut(out_w) {
                    segment[..tap.columns.start].fill(E::default());
                    segment[tap.columns.end..].fill(E::default());
                }
            }
            if len == 0 || tap.rows.is_empty() {
                return;
            }
            // Where the first output row reads, and how far the next one reads on.
            let (source, mut from, step) = match &phases {
                Some(split) => (
                    &split[..],
                    self.phase_row(tap, tap.rows.start) + self.phase_column(tap),
                    self.geometry.stride.0 * x_step * self.phase_width(),
                ),
                None => (
                    image,
                    self.input_index(tap, tap.rows.start, tap.columns.start),
                    self.geometry.stride.0 * self.width,
                ),
            };
            let first = tap.rows.start * out_w + tap.columns.start;
            for target in row[first..].chunks_mut(out_w).take(tap.rows.len()) {
                copy_run(&mut target[..len], &source[from..from + len]);
                from += step;
            }
        });
    }

    /// The columns of width stride `s` split by phase: each image row of `group`'s channels
    /// becomes its columns `0, s, 2s, …`, then `1, 1 + s, …`, each phase [`Self::phase_width`]
    /// long, so the taps of a strided row are one contiguous run ([`Self::phase_row`], [`Self::phase_column`]).
    fn split_phases<E: Dtype>(&self, image: &[E], group: usize) -> Scratch<E> {
        let (s, w, plane) = (self.geometry.stride.1, self.width, self.height * self.width);
        let phase_width = self.phase_width();
        let rows = self.group_in() * self.height;
        let mut split = Scratch::new(rows * s * phase_width);
        let first = group * self.group_in() * plane;
        for (row, target) in image[first..first + rows * w].chunks(w).zip(split.chunks_mut(s * phase_width)) {
            if s == 2 {
                // Every downsampling layer: one pass over pairs, which vectorises.
                let (even, odd) = target.split_at_mut(phase_width);
                for ((pair, e), o) in row.chunks_exact(2).zip(even.iter_mut()).zip(odd.iter_mut()) {
                    *e = pair[0];
                    *o = pair[1];
                }
                if w % 2 == 1 {
                    even[phase_width - 1] = row[w - 1];
                }
                continue;
            }
            for (phase, part) in target.chunks_mut(phase_width).enumerate() {
                for (t, v) in part.iter_mut().zip(row.iter().skip(phase).step_by(s)) {
                    *t = *v;
                }
            }
        }
        split
    }

    /// The length of one phase of a split row: `⌈W / s⌉`.
    fn phase_width(&self) -> usize {
        self.width.div_ceil(self.geometry.stride.1)
    }

    /// Where output row `oy` of a tap row reads in [`Self::split_phases`]'s buffer: the start of
    /// its input row there.
    fn phase_row(&self, tap: &TapRow, oy: usize) -> usize {
        let y = ((oy * self.geometry.stride.0) as isize + tap.y_offset) as usize;
        (tap.channel * self.height + y) * self.geometry.stride.1 * self.phase_width()
    }

    /// Where a tap row's first valid column sits within a row of [`Self::split_phases`]'s
    /// buffer: its phase, then its place in that phase.
    fn phase_column(&self, tap: &TapRow) -> usize {
        let s = self.geometry.stride.1;
        let x = ((tap.columns.start * s) as isize + tap.x_offset) as usize;
        (x % s) * self.phase_width() + x / s
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
    /// run reads them from a neighbouring image row. A tap is at most a few columns into the
    /// padding, so this stores single values down those columns rather than calling `memset`
    /// for a run of one or two per row.
    fn zero_wrapped<E: Dtype>(&self, tap: &TapRow, row: &mut [E]) {
        let w = self.width;
        let rows = tap.rows.start * w..tap.rows.end * w;
        for column in (0..tap.columns.start).chain(tap.columns.end..w) {
            for at in (rows.start + column..rows.end).step_by(w) {
                row[at] = E::default();
            }
        }
    }

    /// [`Self::gather`] for a same convolution: one copy per tap row.
    fn gather_shifted<E: Dtype>(&self, image: &[E], group: usize, cols: &mut [E], stride: usize, offset: usize, zero_padding: bool) {
        self.for_each_tap_row(group, |tap| {
            let start = tap.row * stride + offset;
            let row = &mut cols[start..start + self.positions()];
            let (run, shift) = self.shifted_run(tap);
            let from = (tap.plane as isize + run.start as isize + shift) as usize;
            if zero_padding {
                row[..run.start].fill(E::default());
                row[run.end..].fill(E::default());
            }
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

    /// How many samples share one matrix multiply. The patch matrix stays in the core's L2
    /// cache, where gemm reads it back: as many samples as fill half of L2, and while that
    /// makes a product under [`NARROW_PRODUCT`] columns, as many as fill all of it (a wider
    /// product runs gemm faster, until its operand spills). Never over [`WIDEST_PRODUCT`].
    fn samples_per_product<E>(&self) -> usize {
        if self.pointwise() {
            return 1; // its patch matrix is the sample itself: no copy to batch
        }
        let l2 = crate::machine::Machine::get().l2_bytes.unwrap_or(DEFAULT_L2_BYTES);
        let positions = self.positions().max(1);
        let sample_bytes = (self.patch() * positions * std::mem::size_of::<E>()).max(1);
        let mut samples = (l2 / 2 / sample_bytes).max(1);
        if samples * positions < NARROW_PRODUCT {
            samples = samples.max(l2 / sample_bytes);
        }
        samples.min(WIDEST_PRODUCT / positions).clamp(1, self.samples_per_task())
    }

    /// A 1×1 convolution with stride 1 and no padding: one sample's patch matrix for a group
    /// is that group's channels, as they lie.
    fn pointwise(&self) -> bool {
        let g = self.geometry;
        g.kernel == (1, 1) && g.stride == (1, 1) && g.padding == (0, 0)
    }

    /// The patch matrix of `group` for the samples of `x_chunk`, side by side
    /// (`patch × samples·positions`): for one sample of a pointwise convolution, the sample's
    /// own channels as they lie; else gathered into `buffer`.
    fn patches<'a, E: Dtype>(&self, x_chunk: &'a [E], group: usize, buffer: &'a mut PatchBuffer<E>) -> &'a [E] {
        let image_len = self.image_len().max(1);
        let width = x_chunk.len() / image_len * self.positions();
        let size = self.patch() * width;
        if self.pointwise() && x_chunk.len() == image_len {
            return &x_chunk[group * size..(group + 1) * size];
        }
        let zero_padding = buffer.zeroed_width != Some(width);
        for (j, x_b) in x_chunk.chunks(image_len).enumerate() {
            self.gather(x_b, group, &mut buffer.cols, width, j * self.positions(), zero_padding);
        }
        buffer.zeroed_width = Some(width);
        &buffer.cols[..size]
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
        } = self.sizes::<E>();
        let mut y = zeroed(self.batch * self.output_len());
        y.par_chunks_mut(output_len * per_task)
            .zip(x.par_chunks(image_len * per_task))
            .for_each(|(y_task, x_task)| {
                let mut cols = PatchBuffer::new(patch * positions * per_product);
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
                        let group_bias = bias.map(|bias| &bias[group * group_out..(group + 1) * group_out]);
                        if samples == 1 {
                            if let Some(bias) = group_bias {
                                add_channel_bias(out, positions, bias);
                            }
                            continue;
                        }
                        // The copy out of the interleaved product adds the bias on the way.
                        for (j, y_b) in y_chunk.chunks_mut(output_len).enumerate() {
                            let rows = &mut y_b[group * group_out * positions..(group + 1) * group_out * positions];
                            for (o, row) in rows.chunks_mut(positions).enumerate() {
                                let source = &product[o * width + j * positions..o * width + (j + 1) * positions];
                                match group_bias {
                                    Some(bias) => row.iter_mut().zip(source).for_each(|(y, &p)| *y = p + bias[o]),
                                    None => row.copy_from_slice(source),
                                }
                            }
                        }
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
        } = self.sizes::<E>();
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
        } = self.sizes::<E>();
        let block = group_out * patch;
        let partials: Vec<Vec<E>> = x
            .par_chunks(image_len * per_task)
            .zip(dy.par_chunks(output_len * per_task))
            .map(|(x_task, dy_task)| {
                let mut transposed_sum = vec![E::default(); dw.len()]; // per group: patch × (O/G)
                let mut cols = PatchBuffer::new(patch * positions * per_product);
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

/// `target.copy_from_slice(source)` for the short runs of an im2col (a map's row, a few dozen
/// values at most): eight (or, under eight, four) values at a time plus an overlapping last
/// chunk, inlined, where `copy_from_slice` calls `memcpy` once per run.
fn copy_run<E: Copy>(target: &mut [E], source: &[E]) {
    fn chunks<E: Copy, const N: usize>(target: &mut [E], source: &[E]) {
        let len = target.len();
        let copy_at = |target: &mut [E], at: usize| {
            let chunk: [E; N] = source[at..at + N].try_into().expect("a whole chunk");
            target[at..at + N].copy_from_slice(&chunk);
        };
        for at in (0..len - N).step_by(N) {
            copy_at(target, at);
        }
        copy_at(target, len - N);
    }
    assert_eq!(target.len(), source.len(), "copy_run: lengths differ");
    match target.len() {
        8.. => chunks::<E, 8>(target, source),
        4.. => chunks::<E, 4>(target, source),
        _ => target.iter_mut().zip(source).for_each(|(t, s)| *t = *s),
    }
}

/// A zeroed output buffer, written by all of rayon's threads: the first touch of a fresh
/// multi-megabyte buffer costs its page faults and zero fill, which on one thread were a fifth
/// of a small convolution's time on two.
pub(crate) fn zeroed<E: Dtype>(len: usize) -> Vec<E> {
    let mut values = Vec::with_capacity(len);
    (0..len).into_par_iter().map(|_| E::default()).collect_into_vec(&mut values);
    values
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

#[cfg(test)]
mod tests {
    use super::*;

    /// `y[b, o, oy, ox] = Σ_{c, ky, kx} w[o, c, ky, kx] · x[b, c, oy·s + ky − p, ox·s + kx − p]`,
    /// straight from the definition (one group, no dilation).
    fn direct_forward(plan: &ConvPlan, x: &[f64], w: &[f64]) -> Vec<f64> {
        let (g, k) = (plan.geometry, plan.geometry.kernel.0);
        let mut y = vec![0.0; plan.batch * plan.output_len()];
        for b in 0..plan.batch {
            for o in 0..plan.out_channels {
                for oy in 0..plan.out_h {
                    for ox in 0..plan.out_w {
                        let mut sum = 0.0;
                        for c in 0..plan.channels {
                            for ky in 0..k {
                                for kx in 0..k {
                                    let y_in = (oy * g.stride.0 + ky) as isize - g.padding.0 as isize;
                                    let x_in = (ox * g.stride.1 + kx) as isize - g.padding.1 as isize;
                                    if (0..plan.height as isize).contains(&y_in) && (0..plan.width as isize).contains(&x_in) {
                                        let at = ((b * plan.channels + c) * plan.height + y_in as usize) * plan.width + x_in as usize;
                                        sum += w[((o * plan.channels + c) * k + ky) * k + kx] * x[at];
                                    }
                                }
                            }
                        }
                        y[((b * plan.out_channels + o) * plan.out_h + oy) * plan.out_w + ox] = sum;
                    }
                }
            }
        }
        y
    }

    /// One thread takes all five samples in products of two, two and one: the last product is
    /// narrower, so its patch matrix is laid out anew and its padding zeroed again. Forward and
    /// weight gradient match the definition, for a same, a valid and a strided convolution.
    #[test]
    fn products_of_unequal_width_keep_their_padding_zero() {
        for (stride, padding, size) in [(1, 1, 20), (1, 0, 22), (2, 2, 40)] {
            let geometry = Conv2dGeometry::square(3).with_stride(stride).with_padding(padding);
            let (out_h, out_w) = geometry.output_size(size, size).expect("fits");
            let plan = ConvPlan {
                batch: 5,
                channels: 2,
                height: size,
                width: size,
                out_channels: 3,
                out_h,
                out_w,
                geometry,
            };
            let pool = rayon::ThreadPoolBuilder::new().num_threads(1).build().expect("a pool");
            assert_eq!(pool.install(|| plan.sizes::<f64>().per_product), 2, "two samples per product");
            let x: Vec<f64> = (0..plan.batch * plan.image_len())
                .map(|i| ((i * 37 % 101) as f64 - 50.0) / 25.0)
                .collect();
            let w: Vec<f64> = (0..plan.out_channels * plan.patch())
                .map(|i| ((i * 13 % 17) as f64 - 8.0) / 8.0)
                .collect();
            let y = pool.install(|| plan.forward(&x, &w, None));
            let expected = direct_forward(&plan, &x, &w);
            for (i, (got, want)) in y.iter().zip(&expected).enumerate() {
                assert!(
                    (got - want).abs() < 1e-9,
                    "stride {stride}: y[{i}] = {got}, the definition gives {want}"
                );
            }
            // The bias, added as products of two are copied out and to a product of one in place.
            let bias = [0.5, -1.25, 2.0];
            let biased = pool.install(|| plan.forward(&x, &w, Some(&bias)));
            for (i, (got, want)) in biased.iter().zip(&expected).enumerate() {
                let want = want + bias[i / plan.positions() % plan.out_channels];
                assert!(
                    (got - want).abs() < 1e-9,
                    "stride {stride}: biased y[{i}] = {got}, the definition gives {want}"
                );
            }
            // The weight gradient of Σ y·probe is Σ_b probe_b · im2col(x_b)ᵀ: with a probe that
            // is one at a single output, it is the patch that output saw.
            let mut probe = vec![0.0; y.len()];
            let last = y.len() - 1 - plan.out_w / 2; // the last sample, its narrow product
            probe[last] = 1.0;
            let mut dw = vec![0.0; w.len()];
            pool.install(|| plan.backward_weight(&x, &probe, &mut dw));
            for (j, got) in dw.iter().enumerate() {
                let mut unit = vec![0.0; w.len()];
                unit[j] = 1.0;
                let want = direct_forward(&plan, &x, &unit)[last];
                assert!(
                    (got - want).abs() < 1e-9,
                    "stride {stride}: dw[{j}] = {got}, the definition gives {want}"
                );
            }
        }
    }
}
