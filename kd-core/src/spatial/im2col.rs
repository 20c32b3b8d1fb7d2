use dfdx::prelude::*;

use super::geometry::Conv2dGeometry;

/// Where patch element `(c, ky, kx)` of output position `(oy, ox)` reads the input: the flat
/// input offset, or `None` in the padding. Shared by the forward gather and the backward scatter.
pub(crate) struct Patches {
    pub(crate) channels: usize,
    pub(crate) height: usize,
    pub(crate) width: usize,
    pub(crate) out_h: usize,
    pub(crate) out_w: usize,
    pub(crate) geometry: Conv2dGeometry,
}

impl Patches {
    /// Calls `visit(col_index, input_index)` for every in-bounds tap, in the column layout
    /// `(G, B·OH·OW, Cg·KH·KW)`.
    pub(crate) fn for_each(&self, batch: usize, mut visit: impl FnMut(usize, usize)) {
        let g = self.geometry;
        let (kh, kw) = g.kernel;
        let group_channels = self.channels / g.groups;
        let row_len = group_channels * kh * kw;
        let rows = batch * self.out_h * self.out_w;
        for group in 0..g.groups {
            for b in 0..batch {
                for oy in 0..self.out_h {
                    for ox in 0..self.out_w {
                        let row = (b * self.out_h + oy) * self.out_w + ox;
                        let row_start = (group * rows + row) * row_len;
                        for cg in 0..group_channels {
                            let c = group * group_channels + cg;
                            let plane = (b * self.channels + c) * self.height * self.width;
                            for ky in 0..kh {
                                let y = (oy * g.stride.0 + ky * g.dilation.0) as isize - g.padding.0 as isize;
                                if y < 0 || y as usize >= self.height {
                                    continue;
                                }
                                for kx in 0..kw {
                                    let x = (ox * g.stride.1 + kx * g.dilation.1) as isize - g.padding.1 as isize;
                                    if x < 0 || x as usize >= self.width {
                                        continue;
                                    }
                                    let col = row_start + (cg * kh + ky) * kw + kx;
                                    visit(col, plane + y as usize * self.width + x as usize);
                                }
                            }
                        }
                    }
                }
            }
        }
    }
}

/// Gathers every convolution patch of `input` `(B, C, H, W)` into columns
/// `(G, B·OH·OW, (C/G)·KH·KW)`, zeros where a patch reaches into the padding.
///
/// Differentiable: the backward scatters (adds) the column gradients back onto the input.
pub fn im2col<B: Dim, C: Dim, H: Dim, W: Dim, E: Dtype, T: Tape<E, Cpu>>(
    input: Tensor<(B, C, H, W), E, Cpu, T>,
    geometry: Conv2dGeometry,
) -> super::SpatialResult<(usize, usize, usize), E, T> {
    let (batch, channels, height, width) = *input.shape();
    let (batch, channels, height, width) = (batch.size(), channels.size(), height.size(), width.size());
    let (out_h, out_w) = geometry.output_size(height, width)?;
    geometry.check_groups(channels, geometry.groups)?;
    let patches = Patches {
        channels,
        height,
        width,
        out_h,
        out_w,
        geometry,
    };
    let shape = (
        geometry.groups,
        batch * out_h * out_w,
        channels / geometry.groups * geometry.kernel.0 * geometry.kernel.1,
    );

    let (input, mut tape) = input.split_tape();
    let source = input.as_vec();
    let mut columns = vec![E::default(); shape.0 * shape.1 * shape.2];
    patches.for_each(batch, |col, at| columns[col] = source[at]);
    let output = input.device().tensor_from_vec(columns, shape);

    let output_ghost = output.ghost();
    tape.add_backward_op(move |grads| {
        grads.try_alloc_for(&input)?;
        grads.try_alloc_for(&output_ghost)?;
        let column_grads = grads.get(&output_ghost).as_vec();
        let input_grad = grads.get_or_alloc_mut(&input)?;
        patches.for_each(batch, |col, at| input_grad[at] += column_grads[col]);
        Ok(())
    });
    Ok(output.put_tape(tape))
}

/// The adjoint of [`im2col`]: adds every column entry `(G, B·OH·OW, (C/G)·KH·KW)` back onto
/// the image position it was gathered from, giving `(B, C, H, W)`. This is the output step of a
/// transposed convolution.
///
/// Differentiable: the backward gathers the image gradient into columns.
///
/// # Errors
/// A [`ShapeError`](super::ShapeError) when `geometry` does not map `height × width` to the columns' positions.
pub fn col2im<E: Dtype, T: Tape<E, Cpu>>(
    columns: Tensor<(usize, usize, usize), E, Cpu, T>,
    geometry: Conv2dGeometry,
    image: (usize, usize, usize, usize),
) -> super::SpatialResult<(usize, usize, usize, usize), E, T> {
    let (batch, channels, height, width) = image;
    let (out_h, out_w) = geometry.output_size(height, width)?;
    geometry.check_groups(channels, geometry.groups)?;
    let expected = (
        geometry.groups,
        batch * out_h * out_w,
        channels / geometry.groups * geometry.kernel.0 * geometry.kernel.1,
    );
    assert!(
        *columns.shape() == expected,
        "col2im: `columns` has shape {:?} but the geometry needs {expected:?}",
        columns.shape().concrete()
    );
    let patches = Patches {
        channels,
        height,
        width,
        out_h,
        out_w,
        geometry,
    };

    let (columns, mut tape) = columns.split_tape();
    let source = columns.as_vec();
    let mut pixels = vec![E::default(); batch * channels * height * width];
    patches.for_each(batch, |col, at| pixels[at] += source[col]);
    let output = columns.device().tensor_from_vec(pixels, image);

    let output_ghost = output.ghost();
    tape.add_backward_op(move |grads| {
        grads.try_alloc_for(&columns)?;
        grads.try_alloc_for(&output_ghost)?;
        let image_grads = grads.get(&output_ghost).as_vec();
        let column_grad = grads.get_or_alloc_mut(&columns)?;
        patches.for_each(batch, |col, at| column_grad[col] += image_grads[at]);
        Ok(())
    });
    Ok(output.put_tape(tape))
}
