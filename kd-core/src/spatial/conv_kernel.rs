//! The fused CPU convolution: per sample and group, gather the patches into a reused buffer
//! (im2col) and multiply with the `gemm` kernels; samples run in parallel on rayon's pool.
//! The same four routines serve the transposed convolution, whose forward is this one's
//! input-gradient and vice versa.

use dfdx::shapes::Dtype;
use rayon::prelude::*;

use super::gemm::{matmul, View};
use super::geometry::Conv2dGeometry;

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

    /// Visits every in-image run of one patch row: `(row start in cols, first input index,
    /// length)`, with input steps of the horizontal stride. Runs cover only valid taps; the
    /// gather zero-fills the rest of its buffer first.
    fn for_each_run(&self, group: usize, mut visit: impl FnMut(usize, usize, usize)) {
        let g = self.geometry;
        let (kh, kw) = g.kernel;
        let positions = self.positions();
        for cg in 0..self.group_in() {
            let plane = (group * self.group_in() + cg) * self.height * self.width;
            for ky in 0..kh {
                let (oy_lo, oy_hi, y_offset) = valid_range(self.out_h, self.height, g.stride.0, g.dilation.0, g.padding.0, ky);
                for kx in 0..kw {
                    let (ox_lo, ox_hi, x_offset) = valid_range(self.out_w, self.width, g.stride.1, g.dilation.1, g.padding.1, kx);
                    let row = ((cg * kh + ky) * kw + kx) * positions;
                    for oy in oy_lo..oy_hi {
                        let y = (oy * g.stride.0) as isize + y_offset;
                        let x = (ox_lo * g.stride.1) as isize + x_offset;
                        visit(row + oy * self.out_w + ox_lo, plane + y as usize * self.width + x as usize, ox_hi - ox_lo);
                    }
                }
            }
        }
    }

    /// `cols (patch × positions) = im2col(image, group)`.
    fn gather<E: Dtype>(&self, image: &[E], group: usize, cols: &mut [E]) {
        cols.iter_mut().for_each(|v| *v = E::default());
        let stride = self.geometry.stride.1;
        self.for_each_run(group, |col, at, len| {
            let dst = &mut cols[col..col + len];
            if stride == 1 {
                dst.copy_from_slice(&image[at..at + len]);
            } else {
                dst.iter_mut().zip(image[at..].iter().step_by(stride)).for_each(|(d, s)| *d = *s);
            }
        });
    }

    /// `image += col2im(cols, group)`, the adjoint of [`Self::gather`].
    fn scatter<E: Dtype>(&self, cols: &[E], group: usize, image: &mut [E]) {
        let stride = self.geometry.stride.1;
        self.for_each_run(group, |col, at, len| {
            let src = &cols[col..col + len];
            src.iter().zip(image[at..].iter_mut().step_by(stride)).for_each(|(s, d)| *d += *s);
        });
    }

    /// The weight block of `group`: `(O/G) × patch`, row-major.
    fn weight_block<'w, E>(&self, weight: &'w [E], group: usize) -> &'w [E] {
        let size = self.group_out() * self.patch();
        &weight[group * size..(group + 1) * size]
    }

    /// `y = conv(x, weight) + bias`, `x (B, C, H, W)`, `weight (O, C/G, KH, KW)`.
    pub fn forward<E: Dtype>(&self, x: &[E], weight: &[E], bias: Option<&[E]>) -> Vec<E> {
        let (patch, positions, group_out) = (self.patch(), self.positions(), self.group_out());
        let mut y = vec![E::default(); self.batch * self.output_len()];
        y.par_chunks_mut(self.output_len().max(1)).zip(x.par_chunks(self.image_len().max(1))).for_each_init(
            || vec![E::default(); patch * positions],
            |cols, (y_b, x_b)| {
                for group in 0..self.geometry.groups {
                    self.gather(x_b, group, cols);
                    let out = &mut y_b[group * group_out * positions..(group + 1) * group_out * positions];
                    let block = self.weight_block(weight, group);
                    matmul(out, View::row_major(group_out, positions), block, View::row_major(group_out, patch), cols, View::row_major(patch, positions), false);
                }
                if let Some(bias) = bias {
                    for (row, &b) in y_b.chunks_mut(positions.max(1)).zip(bias) {
                        row.iter_mut().for_each(|v| *v += b);
                    }
                }
            },
        );
        y
    }

    /// `dx += convᵀ(dy, weight)`: the input gradient (and the transposed convolution).
    pub fn backward_input<E: Dtype>(&self, weight: &[E], dy: &[E], dx: &mut [E]) {
        let (patch, positions, group_out) = (self.patch(), self.positions(), self.group_out());
        dx.par_chunks_mut(self.image_len().max(1)).zip(dy.par_chunks(self.output_len().max(1))).for_each_init(
            || vec![E::default(); patch * positions],
            |dcols, (dx_b, dy_b)| {
                for group in 0..self.geometry.groups {
                    let block = self.weight_block(weight, group);
                    let grad = &dy_b[group * group_out * positions..(group + 1) * group_out * positions];
                    matmul(dcols, View::row_major(patch, positions), block, View::row_major(group_out, patch).t(), grad, View::row_major(group_out, positions), false);
                    self.scatter(dcols, group, dx_b);
                }
            },
        );
    }

    /// `dw += Σ_b dy_b · im2col(x_b)ᵀ`.
    pub fn backward_weight<E: Dtype>(&self, x: &[E], dy: &[E], dw: &mut [E]) {
        let (patch, positions, group_out) = (self.patch(), self.positions(), self.group_out());
        let len = dw.len();
        let total = x
            .par_chunks(self.image_len().max(1))
            .zip(dy.par_chunks(self.output_len().max(1)))
            .fold(
                || (vec![E::default(); len], vec![E::default(); patch * positions]),
                |(mut acc, mut cols), (x_b, dy_b)| {
                    for group in 0..self.geometry.groups {
                        self.gather(x_b, group, &mut cols);
                        let size = group_out * patch;
                        let grad = &dy_b[group * group_out * positions..(group + 1) * group_out * positions];
                        let out = &mut acc[group * size..(group + 1) * size];
                        matmul(out, View::row_major(group_out, patch), grad, View::row_major(group_out, positions), &cols, View::row_major(patch, positions).t(), true);
                    }
                    (acc, cols)
                },
            )
            .map(|(acc, _)| acc)
            .reduce(
                || vec![E::default(); len],
                |mut a, b| {
                    a.iter_mut().zip(b).for_each(|(x, y)| *x += y);
                    a
                },
            );
        dw.iter_mut().zip(total).for_each(|(d, t)| *d += t);
    }

    /// `db[o] += Σ_{b, position} dy[b, o, position]`.
    pub fn backward_bias<E: Dtype>(&self, dy: &[E], db: &mut [E]) {
        for (k, row) in dy.chunks(self.positions().max(1)).enumerate() {
            let sum = row.iter().fold(E::default(), |acc, &v| acc + v);
            db[k % self.out_channels] += sum;
        }
    }
}
