use dfdx::prelude::*;

use super::geometry::{Conv2dGeometry, ShapeError};
use super::im2col::im2col;

/// 2-D convolution (PyTorch's `F.conv2d`): `(B, C, H, W)` with `weight (O, C/G, KH, KW)` and
/// optional `bias (O)` -> `(B, O, OH, OW)`.
///
/// Lowered to [`im2col`] and one batched matmul per group, `(G, B·L, Cg·K²) × (G, Cg·K², Og)`.
///
/// # Errors
/// A [`ShapeError`] naming the dimension when the kernel does not fit the padded input, or the
/// channels do not split into the groups.
#[allow(clippy::type_complexity)]
pub fn conv2d<B: Dim, C: Dim, H: Dim, W: Dim, E: Dtype, T: Tape<E, Cpu>>(
    input: Tensor<(B, C, H, W), E, Cpu, T>,
    weight: Tensor<(usize, usize, usize, usize), E, Cpu, T>,
    bias: Option<Tensor<(usize,), E, Cpu, T>>,
    geometry: Conv2dGeometry,
) -> Result<Tensor<(B, usize, usize, usize), E, Cpu, T>, ShapeError>
where
    Cpu: Device<E>,
{
    let (batch, channels, height, width) = *input.shape();
    let (out_channels, group_channels, kh, kw) = *weight.shape();
    geometry.check_groups(channels.size(), out_channels)?;
    let expected = (channels.size() / geometry.groups, geometry.kernel);
    assert!(
        (group_channels, (kh, kw)) == expected,
        "conv2d: `weight` has shape {:?} but channels/groups = {} and the kernel is {:?}",
        weight.shape().concrete(),
        expected.0,
        expected.1
    );
    let (out_h, out_w) = geometry.output_size(height.size(), width.size())?;
    let groups = geometry.groups;
    let per_group = out_channels / groups;

    let columns = im2col(input, geometry)?; // (G, B·L, Cg·K²)
    let kernel = weight
        .reshape_like(&(groups, per_group, group_channels * kh * kw))
        .permute::<_, Axes3<0, 2, 1>>(); // (G, Cg·K², Og)
    let products = columns.matmul(kernel); // (G, B·L, Og)
    let output = products
        .reshape_like(&(groups, batch.size(), out_h * out_w, per_group))
        .permute::<_, Axes4<1, 0, 3, 2>>() // (B, G, Og, L)
        .reshape_like(&(batch, out_channels, out_h, out_w));
    Ok(match bias {
        Some(bias) => {
            let shape = *output.shape();
            output + bias.broadcast_like::<_, Axes3<0, 2, 3>>(&shape)
        }
        None => output,
    })
}
