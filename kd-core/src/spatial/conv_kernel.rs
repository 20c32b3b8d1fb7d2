//! The fused CPU convolution: per sample and group, gather the patches into a reused buffer
//! (im2col) and multiply with the `gemm` kernels; samples run in parallel on rayon's pool.
//! The same four routines serve the transposed convolution, whose forward is this one's
//! input-gradient and vice versa.

use dfdx::shapes::Dtype;
use rayon::prelude::*;

use super::gemm::{matmul, View};
use super::geometry::Conv2dGeometry;

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
    let lo = if offset >= 0 { 0 } else { ((-offset + stride_i - 1) / stride_i) as usize };
    let hi = if input_i - offset <= 0 { 0 } else { (((input_i - offset) + stride_i - 1) / stride_i) as usize };
    let hi = hi.min(out);
    (lo.min(hi), hi, offset)
}

impl ConvPlan {
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
        for cg in 0..self.group_in() {
            let plane = (group * self.group_in() + cg) * self.height * self.width;
            for ky in 0..kh {
                let (oy_lo, oy_hi, y_offset) = valid_range(self.out_h, self.height, g.stride.0, g.dilation.0, g.padding.0, ky);
                for kx in 0..kw {
                    let (ox_lo, ox_hi, x_offset) = valid_range(self.out_w, self.width, g.stride.1, g.dilation.1, g.padding.1, kx);
                    let row = ((cg * kh + ky) * kw + kx) * self.positions();
                    visit(&TapRow { row, rows: oy_lo..oy_hi, columns: ox_lo..ox_hi, plane, y_offset, x_offset });
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

    /// `cols (patch × positions) = im2col(image, group)`; padding taps become zeros.
    fn gather<E: Dtype>(&self, image: &[E], group: usize, cols: &mut [E]) {
        let (out_w, stride) = (self.out_w, self.geometry.stride.1);
        self.for_each_tap_row(group, |tap| {
            let row = &mut cols[tap.row..tap.row + self.positions()];
            row[..tap.rows.start * out_w].iter_mut().for_each(|v| *v = E::default());
            row[tap.rows.end * out_w..].iter_mut().for_each(|v| *v = E::default());
            for oy in tap.rows.clone() {
                let segment = &mut row[oy * out_w..(oy + 1) * out_w];
                segment[..tap.columns.start].iter_mut().for_each(|v| *v = E::default());
                segment[tap.columns.end..].iter_mut().for_each(|v| *v = E::default());
                let (at, len) = (self.input_index(tap, oy, tap.columns.start), tap.columns.len());
                let valid = &mut segment[tap.columns.clone()];
                if stride == 1 {
                    valid.copy_from_slice(&image[at..at + len]);
                } else {
                    valid.iter_mut().zip(image[at..].iter().step_by(stride)).for_each(|(d, s)| *d = *s);
                }
            }
        });
    }

    /// `image += col2im(cols, group)`, the adjoint of [`Self::gather`].
    fn scatter<E: Dtype>(&self, cols: &[E], group: usize, image: &mut [E]) {
        let (out_w, stride) = (self.out_w, self.geometry.stride.1);
        self.for_each_tap_row(group, |tap| {
            for oy in tap.rows.clone() {
                let at = self.input_index(tap, oy, tap.columns.start);
                let src = &cols[tap.row + oy * out_w + tap.columns.start..tap.row + oy * out_w + tap.columns.end];
                if stride == 1 {
                    image[at..at + src.len()].iter_mut().zip(src).for_each(|(d, s)| *d += *s);
                } else {
                    src.iter().zip(image[at..].iter_mut().step_by(stride)).for_each(|(s, d)| *d += *s);
                }
            }
        });
    }

    /// The weight block of `group`: `(O/G) × patch`, row-major.
    fn weight_block<'w, E>(&self, weight: &'w [E], group: usize) -> &'w [E] {
        let size = self.group_out() * self.patch();
        &weight[group * size..(group + 1) * size]
    }

    /// How many samples each rayon task takes: one contiguous run per thread, so every task
    /// allocates its patch buffer once.
    fn samples_per_task(&self) -> usize {
        self.batch.div_ceil(rayon::current_num_threads().max(1)).max(1)
    }

    /// `y = conv(x, weight) + bias`, `x (B, C, H, W)`, `weight (O, C/G, KH, KW)`.
    pub fn forward<E: Dtype>(&self, x: &[E], weight: &[E], bias: Option<&[E]>) -> Vec<E> {
        let (patch, positions, group_out) = (self.patch(), self.positions(), self.group_out());
        let (image_len, output_len, per_task) = (self.image_len().max(1), self.output_len().max(1), self.samples_per_task());
        let mut y = vec![E::default(); self.batch * self.output_len()];
        y.par_chunks_mut(output_len * per_task).zip(x.par_chunks(image_len * per_task)).for_each(|(y_task, x_task)| {
            let mut cols = vec![E::default(); patch * positions];
            for (y_b, x_b) in y_task.chunks_mut(output_len).zip(x_task.chunks(image_len)) {
                for group in 0..self.geometry.groups {
                    self.gather(x_b, group, &mut cols);
                    let out = &mut y_b[group * group_out * positions..(group + 1) * group_out * positions];
                    let block = self.weight_block(weight, group);
                    matmul(out, View::row_major(group_out, positions), block, View::row_major(group_out, patch), &cols, View::row_major(patch, positions), false);
                }
                if let Some(bias) = bias {
                    for (row, &b) in y_b.chunks_mut(positions.max(1)).zip(bias) {
                        row.iter_mut().for_each(|v| *v += b);
                    }
                }
            }
        });
        y
    }

    /// `dx += convᵀ(dy, weight)`: the input gradient (and the transposed convolution).
    pub fn backward_input<E: Dtype>(&self, weight: &[E], dy: &[E], dx: &mut [E]) {
        let (patch, positions, group_out) = (self.patch(), self.positions(), self.group_out());
        let (image_len, output_len, per_task) = (self.image_len().max(1), self.output_len().max(1), self.samples_per_task());
        dx.par_chunks_mut(image_len * per_task).zip(dy.par_chunks(output_len * per_task)).for_each(|(dx_task, dy_task)| {
            let mut dcols = vec![E::default(); patch * positions];
            for (dx_b, dy_b) in dx_task.chunks_mut(image_len).zip(dy_task.chunks(output_len)) {
                for group in 0..self.geometry.groups {
                    let block = self.weight_block(weight, group);
                    let grad = &dy_b[group * group_out * positions..(group + 1) * group_out * positions];
                    matmul(&mut dcols, View::row_major(patch, positions), block, View::row_major(group_out, patch).t(), grad, View::row_major(group_out, positions), false);
                    self.scatter(&dcols, group, dx_b);
                }
            }
        });
    }

    /// `dw += Σ_b dy_b · im2col(x_b)ᵀ`, computed as `dwᵀ += cols · dy_bᵀ` with `dy_b`
    /// transposed into a small buffer: gemm is ten times slower with a column-major right
    /// operand. One partial sum per task, added at the end.
    pub fn backward_weight<E: Dtype>(&self, x: &[E], dy: &[E], dw: &mut [E]) {
        let (patch, positions, group_out) = (self.patch(), self.positions(), self.group_out());
        let (image_len, output_len, per_task) = (self.image_len().max(1), self.output_len().max(1), self.samples_per_task());
        let block = group_out * patch;
        let partials: Vec<Vec<E>> = x
            .par_chunks(image_len * per_task)
            .zip(dy.par_chunks(output_len * per_task))
            .map(|(x_task, dy_task)| {
                let mut transposed_sum = vec![E::default(); dw.len()]; // per group: patch × (O/G)
                let mut cols = vec![E::default(); patch * positions];
                let mut dy_t = vec![E::default(); positions * group_out];
                for (x_b, dy_b) in x_task.chunks(image_len).zip(dy_task.chunks(output_len)) {
                    for group in 0..self.geometry.groups {
                        self.gather(x_b, group, &mut cols);
                        let grad = &dy_b[group * group_out * positions..(group + 1) * group_out * positions];
                        for (o, row) in grad.chunks(positions).enumerate() {
                            row.iter().enumerate().for_each(|(l, &v)| dy_t[l * group_out + o] = v);
                        }
                        let out = &mut transposed_sum[group * block..(group + 1) * block];
                        matmul(out, View::row_major(patch, group_out), &cols, View::row_major(patch, positions), &dy_t, View::row_major(positions, group_out), true);
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

    /// `db[o] += Σ_{b, position} dy[b, o, position]`.
    pub fn backward_bias<E: Dtype>(&self, dy: &[E], db: &mut [E]) {
        for (k, row) in dy.chunks(self.positions().max(1)).enumerate() {
            let sum = row.iter().fold(E::default(), |acc, &v| acc + v);
            db[k % self.out_channels] += sum;
        }
    }
}
