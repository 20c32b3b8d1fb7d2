use dfdx::prelude::*;

use super::geometry::{Conv2dGeometry, ShapeError};
use super::im2col::{col2im, im2col};

/// 2-D convolution (PyTorch's `F.conv2d`): `input (B, C, H, W)`, `weight (O, C/G, KH, KW)` and
/// optional `bias (O)` -> `(B, O, OH, OW)`.
///
/// Lowered to [`im2col`] and one batched matmul over the groups,
/// `(G, B·OH·OW, (C/G)·KH·KW) × (G, (C/G)·KH·KW, O/G)`.
///
/// # Errors
/// A [`ShapeError`] naming the dimension when the kernel does not fit the padded input, or the
/// channels do not split into the groups.
///
/// # Panics
/// If `weight`'s shape disagrees with the input channels, groups and kernel.
pub fn conv2d<B, C, H, W, O, I, KH, KW, E, T>(
    input: Tensor<(B, C, H, W), E, Cpu, T>,
    weight: Tensor<(O, I, KH, KW), E, Cpu, T>,
    bias: Option<Tensor<(O,), E, Cpu, T>>,
    geometry: Conv2dGeometry,
) -> super::SpatialResult<(B, O, usize, usize), E, T>
where
    B: Dim,
    C: Dim,
    H: Dim,
    W: Dim,
    O: Dim,
    I: Dim,
    KH: Dim,
    KW: Dim,
    E: Dtype,
    T: Tape<E, Cpu>,
    Cpu: Device<E>,
{
    let (batch, channels, height, width) = *input.shape();
    let (out_channels, group_channels, kh, kw) = *weight.shape();
    let groups = geometry.groups;
    geometry.check_groups(channels.size(), out_channels.size())?;
    let expected = (channels.size() / groups, geometry.kernel);
    assert!(
        (group_channels.size(), (kh.size(), kw.size())) == expected,
        "conv2d: `weight` has shape {:?} but needs [out, {}, {}, {}] (input channels / groups, kernel)",
        weight.shape().concrete(),
        expected.0,
        expected.1 .0,
        expected.1 .1
    );
    let (out_h, out_w) = geometry.output_size(height.size(), width.size())?;
    let per_group = out_channels.size() / groups;

    let columns = im2col(input, geometry)?; // (G, B·L, Cg·K²)
    let kernel = weight
        .reshape_like(&(groups, per_group, expected.0 * kh.size() * kw.size()))
        .permute::<_, Axes3<0, 2, 1>>(); // (G, Cg·K², Og)
    let output = columns
        .matmul(kernel) // (G, B·L, Og)
        .reshape_like(&(groups, batch.size(), out_h * out_w, per_group))
        .permute::<_, Axes4<1, 0, 3, 2>>() // (B, G, Og, L)
        .reshape_like(&(batch, out_channels, out_h, out_w));
    Ok(add_channel_bias(output, bias))
}

/// Transposed 2-D convolution (PyTorch's `F.conv_transpose2d`): `input (B, C, H, W)`,
/// `weight (C, O/G, KH, KW)`, optional `bias (O)` -> `(B, O, OH, OW)` with
/// `OH = (H − 1)·s − 2p + d(KH − 1) + output_padding + 1`.
///
/// The adjoint of [`conv2d`] in its input: one batched matmul then [`col2im`].
///
/// # Errors
/// A [`ShapeError`] when the geometry cannot produce the output size, or the channels do not
/// split into the groups.
///
/// # Panics
/// If `weight`'s shape disagrees with the input channels, groups and kernel, or
/// `output_padding` is not smaller than the stride.
pub fn conv_transpose2d<B, C, H, W, I, O, KH, KW, E, T>(
    input: Tensor<(B, C, H, W), E, Cpu, T>,
    weight: Tensor<(I, O, KH, KW), E, Cpu, T>,
    bias: Option<Tensor<(usize,), E, Cpu, T>>,
    geometry: Conv2dGeometry,
    output_padding: (usize, usize),
) -> super::SpatialResult<(B, usize, usize, usize), E, T>
where
    B: Dim,
    C: Dim,
    H: Dim,
    W: Dim,
    I: Dim,
    O: Dim,
    KH: Dim,
    KW: Dim,
    E: Dtype,
    T: Tape<E, Cpu>,
    Cpu: Device<E>,
{
    let (batch, channels, height, width) = *input.shape();
    let (in_channels, per_group, kh, kw) = *weight.shape();
    let groups = geometry.groups;
    assert!(
        in_channels.size() == channels.size() && (kh.size(), kw.size()) == geometry.kernel,
        "conv_transpose2d: `weight` has shape {:?} but needs [{}, out / groups, {}, {}]",
        weight.shape().concrete(),
        channels.size(),
        geometry.kernel.0,
        geometry.kernel.1
    );
    for (axis, padding, stride) in [("height", output_padding.0, geometry.stride.0), ("width", output_padding.1, geometry.stride.1)] {
        assert!(padding < stride, "conv_transpose2d: output padding {padding} along the {axis} must be smaller than the stride {stride}");
    }
    let out_channels = per_group.size() * groups;
    geometry.check_groups(channels.size(), out_channels)?;
    let g = geometry;
    let grow = |dimension, input: usize, k: usize, s: usize, p: usize, d: usize, extra: usize| {
        let full = input.saturating_sub(1) * s + d * (k.max(1) - 1) + extra + 1;
        full.checked_sub(2 * p).filter(|&size| size > 0).ok_or(ShapeError::EmptyOutput { dimension, size: full, padding: p })
    };
    let (in_h, in_w) = (height.size(), width.size());
    let out_h = grow("height", in_h, g.kernel.0, g.stride.0, g.padding.0, g.dilation.0, output_padding.0)?;
    let out_w = grow("width", in_w, g.kernel.1, g.stride.1, g.padding.1, g.dilation.1, output_padding.1)?;
    let group_in = channels.size() / groups;

    // (B, C, H, W) -> (G, B·H·W, C/G), then × (G, C/G, (O/G)·K²) -> columns of the output image.
    let rows = input
        .reshape_like(&(batch.size(), groups, group_in, in_h * in_w))
        .permute::<_, Axes4<1, 0, 3, 2>>()
        .reshape_like(&(groups, batch.size() * in_h * in_w, group_in));
    let kernel = weight.reshape_like(&(groups, group_in, per_group.size() * kh.size() * kw.size()));
    let image = col2im(rows.matmul(kernel), geometry, (batch.size(), out_channels, out_h, out_w))?;
    let output = image.reshape_like(&(batch, out_channels, out_h, out_w));
    Ok(add_channel_bias(output, bias))
}

fn add_channel_bias<B: Dim, O: Dim, E: Dtype, T: Tape<E, Cpu>>(
    output: Tensor<(B, O, usize, usize), E, Cpu, T>,
    bias: Option<Tensor<(O,), E, Cpu, T>>,
) -> Tensor<(B, O, usize, usize), E, Cpu, T>
where
    Cpu: Device<E>,
{
    match bias {
        Some(bias) => {
            let shape = *output.shape();
            output + bias.broadcast_like::<_, Axes3<0, 2, 3>>(&shape)
        }
        None => output,
    }
}
