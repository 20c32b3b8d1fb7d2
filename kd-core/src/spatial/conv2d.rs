use dfdx::prelude::*;

use super::conv_kernel::{add_channel_bias, channel_sums, zeroed, ConvPlan};
use super::geometry::{Conv2dGeometry, ShapeError};
use super::input::is_unwanted;
use super::scratch::{copy_of, Scratch};

/// A tensor's values in row-major order, in a pooled buffer: a memcpy when it is contiguous.
fn values<S: Shape, E: Dtype>(t: Tensor<S, E, Cpu>) -> (Tensor<S, E, Cpu>, Scratch<E>) {
    let t = t.contiguous();
    let data = copy_of(&t);
    (t, data)
}

/// Splits the tapes of an input, a weight and an optional bias, merging them into one.
#[allow(clippy::type_complexity)]
fn split_tapes<S1: Shape, S2: Shape, S3: Shape, E: Dtype, T: Tape<E, Cpu>>(
    input: Tensor<S1, E, Cpu, T>,
    weight: Tensor<S2, E, Cpu, T>,
    bias: Option<Tensor<S3, E, Cpu, T>>,
) -> (Tensor<S1, E, Cpu>, Tensor<S2, E, Cpu>, Option<Tensor<S3, E, Cpu>>, T) {
    let (input, tape) = input.split_tape();
    let (weight, weight_tape) = weight.split_tape();
    let mut tape = tape.merge(weight_tape);
    let bias = bias.map(|bias| {
        let (bias, bias_tape) = bias.split_tape();
        tape = std::mem::take(&mut tape).merge(bias_tape);
        bias
    });
    (input, weight, bias, tape)
}

/// 2-D convolution (PyTorch's `F.conv2d`): `input (B, C, H, W)`, `weight (O, C/G, KH, KW)` and
/// optional `bias (O)` -> `(B, O, OH, OW)`.
///
/// One differentiable op on dfdx's tape: per sample and group, the patches are gathered into a
/// reused buffer (im2col) and multiplied by the `gemm` kernels dfdx uses; samples run in
/// parallel. The backward gives the input, weight and bias gradients.
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
{
    let (batch, channels, height, width) = *input.shape();
    let (out_channels, group_channels, kh, kw) = *weight.shape();
    geometry.check_groups(channels.size(), out_channels.size())?;
    let expected = (channels.size() / geometry.groups, geometry.kernel);
    assert!(
        (group_channels.size(), (kh.size(), kw.size())) == expected,
        "conv2d: `weight` has shape {:?} but needs [out, {}, {}, {}] (input channels / groups, kernel)",
        weight.shape().concrete(),
        expected.0,
        expected.1 .0,
        expected.1 .1
    );
    let (out_h, out_w) = geometry.output_size(height.size(), width.size())?;
    let plan = ConvPlan {
        batch: batch.size(),
        channels: channels.size(),
        height: height.size(),
        width: width.size(),
        out_channels: out_channels.size(),
        out_h,
        out_w,
        geometry,
    };

    let (input, weight, bias, mut tape) = split_tapes(input.contiguous(), weight, bias);
    let (input, x) = values(input);
    let (weight, w) = values(weight);
    let bias_values = bias.clone().map(|b| values(b).1);
    let y = plan.forward(&x, &w, bias_values.as_deref());
    let output = input.device().tensor_from_vec(y, (batch, out_channels, out_h, out_w));

    let output_ghost = output.ghost();
    tape.add_backward_op(move |grads| {
        grads.try_alloc_for(&output_ghost)?;
        let dy = std::mem::take(&mut **grads.get_or_alloc_mut(&output_ghost)?);
        let dx = grads.get_or_alloc_mut(&input)?;
        if !is_unwanted(dx) {
            plan.backward_input(&w, &dy, dx);
        }
        plan.backward_weight(&x, &dy, grads.get_or_alloc_mut(&weight)?);
        if let Some(bias) = &bias {
            channel_sums(&dy, out_h * out_w, grads.get_or_alloc_mut(bias)?);
        }
        **grads.get_or_alloc_mut(&output_ghost)? = dy;
        Ok(())
    });
    Ok(output.put_tape(tape))
}

/// Transposed 2-D convolution (PyTorch's `F.conv_transpose2d`): `input (B, C, H, W)`,
/// `weight (C, O/G, KH, KW)`, optional `bias (O)` -> `(B, O, OH, OW)` with
/// `OH = (H − 1)·s − 2p + d(KH − 1) + output_padding + 1`.
///
/// The adjoint of [`conv2d`] in its input, computed by the same kernel: this op's forward is
/// the convolution's input gradient, its input gradient is the convolution's forward.
///
/// # Errors
/// A [`ShapeError`] when the padding removes the whole output, or the channels do not split
/// into the groups.
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
    for (axis, padding, stride) in [
        ("height", output_padding.0, geometry.stride.0),
        ("width", output_padding.1, geometry.stride.1),
    ] {
        assert!(
            padding < stride,
            "conv_transpose2d: output padding {padding} along the {axis} must be smaller than the stride {stride}"
        );
    }
    let out_channels = per_group.size() * groups;
    geometry.check_groups(channels.size(), out_channels)?;
    let g = geometry;
    let grow = |dimension, input: usize, k: usize, s: usize, p: usize, d: usize, extra: usize| {
        let full = input.saturating_sub(1) * s + d * (k.max(1) - 1) + extra + 1;
        full.checked_sub(2 * p).filter(|&size| size > 0).ok_or(ShapeError::EmptyOutput {
            dimension,
            size: full,
            padding: p,
        })
    };
    let out_h = grow(
        "height",
        height.size(),
        g.kernel.0,
        g.stride.0,
        g.padding.0,
        g.dilation.0,
        output_padding.0,
    )?;
    let out_w = grow(
        "width",
        width.size(),
        g.kernel.1,
        g.stride.1,
        g.padding.1,
        g.dilation.1,
        output_padding.1,
    )?;
    // The convolution this one is the adjoint of: from the (larger) output back to the input.
    let plan = ConvPlan {
        batch: batch.size(),
        channels: out_channels,
        height: out_h,
        width: out_w,
        out_channels: channels.size(),
        out_h: height.size(),
        out_w: width.size(),
        geometry,
    };
    debug_assert_eq!(geometry.output_size(out_h, out_w), Ok((height.size(), width.size())));

    let (input, weight, bias, mut tape) = split_tapes(input.contiguous(), weight, bias);
    let (input, x) = values(input);
    let (weight, w) = values(weight);
    let mut y = zeroed(batch.size() * out_channels * out_h * out_w);
    plan.backward_input(&w, &x, &mut y);
    if let Some(bias) = &bias {
        add_channel_bias(&mut y, out_h * out_w, &values(bias.clone()).1);
    }
    let output = input.device().tensor_from_vec(y, (batch, out_channels, out_h, out_w));

    let output_ghost = output.ghost();
    tape.add_backward_op(move |grads| {
        grads.try_alloc_for(&output_ghost)?;
        let dy = std::mem::take(&mut **grads.get_or_alloc_mut(&output_ghost)?);
        let dx = plan.forward(&dy, &w, None);
        grads.get_or_alloc_mut(&input)?.iter_mut().zip(dx).for_each(|(g, d)| *g += d);
        plan.backward_weight(&dy, &x, grads.get_or_alloc_mut(&weight)?);
        if let Some(bias) = &bias {
            channel_sums(&dy, out_h * out_w, grads.get_or_alloc_mut(bias)?);
        }
        **grads.get_or_alloc_mut(&output_ghost)? = dy;
        Ok(())
    });
    Ok(output.put_tape(tape))
}
