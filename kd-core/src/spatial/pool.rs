use dfdx::prelude::*;

use super::geometry::{Conv2dGeometry, ShapeError};
use super::im2col::{im2col, Patches};

/// One window per channel: pooling is a depthwise patch traversal.
fn depthwise(geometry: Conv2dGeometry, channels: usize) -> Conv2dGeometry {
    Conv2dGeometry {
        groups: channels,
        ..geometry
    }
}

fn check_pool_padding(geometry: &Conv2dGeometry) -> Result<(), ShapeError> {
    for (dimension, padding, kernel) in [
        ("height", geometry.padding.0, geometry.kernel.0),
        ("width", geometry.padding.1, geometry.kernel.1),
    ] {
        if 2 * padding > kernel {
            return Err(ShapeError::PaddingOverHalfKernel {
                dimension,
                padding,
                kernel,
            });
        }
    }
    Ok(())
}

/// 2-D max pooling (PyTorch's `F.max_pool2d`): `(B, C, H, W)` -> `(B, C, OH, OW)`.
///
/// Padding counts as `−∞`. Ties send the whole gradient to the first maximum in row-major window
/// order, as PyTorch does. `geometry.groups` is not used.
///
/// # Errors
/// A [`ShapeError`] when the window does not fit, or the padding exceeds half the kernel.
pub fn max_pool2d<B: Dim, C: Dim, H: Dim, W: Dim, E: Dtype, T: Tape<E, Cpu>>(
    input: Tensor<(B, C, H, W), E, Cpu, T>,
    geometry: Conv2dGeometry,
) -> super::SpatialResult<(B, C, usize, usize), E, T> {
    check_pool_padding(&geometry)?;
    let (batch, channels, height, width) = *input.shape();
    let (b, c, h, w) = (batch.size(), channels.size(), height.size(), width.size());
    let geometry = depthwise(geometry, c);
    let (out_h, out_w) = geometry.output_size(h, w)?;
    let patches = Patches {
        channels: c,
        height: h,
        width: w,
        out_h,
        out_w,
        geometry,
    };
    let window = geometry.kernel.0 * geometry.kernel.1;
    let positions = out_h * out_w;
    let rows = b * positions;
    // Column index -> output index in (B, C, OH, OW) order.
    let output_index = move |col: usize| {
        let (channel, row) = (col / window / rows, col / window % rows);
        (row / positions * c + channel) * positions + row % positions
    };

    let (input, mut tape) = input.split_tape();
    let source = input.as_vec();
    let mut best: Vec<Option<(E, usize)>> = vec![None; b * c * positions];
    patches.for_each(b, |col, at| {
        let slot = &mut best[output_index(col)];
        // Strictly greater keeps the first maximum; NaN propagates as in PyTorch.
        let value = source[at];
        if slot.map_or(true, |(max, _)| value > max || value.to_f64().is_some_and(f64::is_nan)) {
            *slot = Some((value, at));
        }
    });
    let arg_max: Vec<usize> = best.iter().map(|slot| slot.map_or(usize::MAX, |(_, at)| at)).collect();
    let values = best.iter().map(|slot| slot.map_or(E::default(), |(max, _)| max)).collect();
    let output = input.device().tensor_from_vec(values, (batch, channels, out_h, out_w));

    let output_ghost = output.ghost();
    tape.add_backward_op(move |grads| {
        grads.try_alloc_for(&input)?;
        grads.try_alloc_for(&output_ghost)?;
        let output_grads = grads.get(&output_ghost).as_vec();
        let input_grad = grads.get_or_alloc_mut(&input)?;
        for (grad, &at) in output_grads.iter().zip(&arg_max) {
            if at != usize::MAX {
                input_grad[at] += *grad;
            }
        }
        Ok(())
    });
    Ok(output.put_tape(tape))
}

/// 2-D average pooling (PyTorch's `F.avg_pool2d` with its default `count_include_pad=True`):
/// `(B, C, H, W)` -> `(B, C, OH, OW)`, every window divided by `KH·KW`. `geometry.groups` is not
/// used.
///
/// # Errors
/// A [`ShapeError`] when the window does not fit, or the padding exceeds half the kernel.
pub fn avg_pool2d<B: Dim, C: Dim, H: Dim, W: Dim, E: Dtype, T: Tape<E, Cpu>>(
    input: Tensor<(B, C, H, W), E, Cpu, T>,
    geometry: Conv2dGeometry,
) -> super::SpatialResult<(B, C, usize, usize), E, T>
where
    Cpu: Device<E>,
{
    check_pool_padding(&geometry)?;
    let (batch, channels, height, width) = *input.shape();
    let geometry = depthwise(geometry, channels.size());
    let (out_h, out_w) = geometry.output_size(height.size(), width.size())?;
    Ok(im2col(input, geometry)? // (C, B·L, K²)
        .mean::<_, Axis<2>>()
        .reshape_like(&(channels.size(), batch.size(), out_h * out_w))
        .permute::<_, Axes3<1, 0, 2>>()
        .reshape_like(&(batch, channels, out_h, out_w)))
}

/// The `(out, in)` averaging matrix of PyTorch's adaptive pooling along one axis: output `i`
/// averages inputs `floor(i·in/out) .. ceil((i+1)·in/out)`.
fn adaptive_bins<E: Dtype>(input: usize, output: usize) -> Vec<E> {
    let mut matrix = vec![E::default(); output * input];
    for i in 0..output {
        let (start, end) = (i * input / output, ((i + 1) * input).div_ceil(output));
        let weight = E::from_f64(1.0 / (end - start) as f64).unwrap_or_default();
        for j in start..end {
            matrix[i * input + j] = weight;
        }
    }
    matrix
}

/// Adaptive average pooling to `size` (PyTorch's `F.adaptive_avg_pool2d`): `(B, C, H, W)` ->
/// `(B, C, OH, OW)`, as `P_h · X · P_wᵀ` with PyTorch's bins. Built from dfdx ops only, so it
/// runs on any dfdx device. Used to bring a teacher's and a student's feature maps to a common
/// size ([`pool_to_common_size`]).
///
/// # Panics
/// If an output size is 0.
pub fn adaptive_avg_pool2d<B: Dim, C: Dim, H: Dim, W: Dim, E: Dtype, D: Device<E>, T: Tape<E, D>>(
    input: Tensor<(B, C, H, W), E, D, T>,
    size: (usize, usize),
) -> Tensor<(B, C, usize, usize), E, D, T> {
    let (batch, channels, height, width) = *input.shape();
    let (b, c, h, w) = (batch.size(), channels.size(), height.size(), width.size());
    let (out_h, out_w) = size;
    assert!(out_h > 0 && out_w > 0, "adaptive_avg_pool2d: output size {size:?} must be positive");
    let dev = input.device().clone();
    let columns: Tensor<(usize, usize), E, D> = dev.tensor_from_vec(adaptive_bins(w, out_w), (out_w, w));
    let rows: Tensor<(usize, usize), E, D> = dev.tensor_from_vec(adaptive_bins(h, out_h), (out_h, h));
    input
        .reshape_like(&(b * c * h, w))
        .matmul(columns.permute::<_, Axes2<1, 0>>()) // (B·C·H, OW)
        .reshape_like(&(b * c, h, out_w))
        .permute::<_, Axes3<0, 2, 1>>()
        .reshape_like(&(b * c * out_w, h))
        .matmul(rows.permute::<_, Axes2<1, 0>>()) // (B·C·OW, OH)
        .reshape_like(&(b, c, out_w, out_h))
        .permute::<_, Axes4<0, 1, 3, 2>>()
        .reshape_like(&(batch, channels, out_h, out_w))
}

/// Flattens `(B, C, H, W)` to `(B, C·H·W)` (PyTorch's `torch.flatten(x, 1)`).
pub fn flatten<B: Dim, C: Dim, H: Dim, W: Dim, E: Dtype, T: Tape<E, Cpu>>(
    input: Tensor<(B, C, H, W), E, Cpu, T>,
) -> Tensor<(B, usize), E, Cpu, T>
where
    Cpu: Device<E>,
{
    let (batch, channels, height, width) = *input.shape();
    input.reshape_like(&(batch, channels.size() * height.size() * width.size()))
}

/// Pools the larger of two feature maps to the other's `H × W` with [`adaptive_avg_pool2d`], as
/// RepDistiller and mdistiller do before attention transfer, NST and FSP. Maps of equal size
/// pass through unchanged.
///
/// # Panics
/// If one map is taller and the other wider: there is no "smaller" map to pool to.
#[allow(clippy::type_complexity)]
pub fn pool_to_common_size<B1, C1, H1, W1, B2, C2, H2, W2, E, D, T1, T2>(
    first: Tensor<(B1, C1, H1, W1), E, D, T1>,
    second: Tensor<(B2, C2, H2, W2), E, D, T2>,
) -> (Tensor<(B1, C1, usize, usize), E, D, T1>, Tensor<(B2, C2, usize, usize), E, D, T2>)
where
    B1: Dim,
    C1: Dim,
    H1: Dim,
    W1: Dim,
    B2: Dim,
    C2: Dim,
    H2: Dim,
    W2: Dim,
    E: Dtype,
    D: Device<E>,
    T1: Tape<E, D>,
    T2: Tape<E, D>,
{
    let (b1, c1, h1, w1) = *first.shape();
    let (b2, c2, h2, w2) = *second.shape();
    let (first_size, second_size) = ((h1.size(), w1.size()), (h2.size(), w2.size()));
    let common = (first_size.0.min(second_size.0), first_size.1.min(second_size.1));
    assert!(
        common == first_size || common == second_size,
        "pool_to_common_size: maps of {first_size:?} and {second_size:?}: one is taller and the other wider"
    );
    let resize = |size: (usize, usize)| size != common;
    let first = if resize(first_size) {
        adaptive_avg_pool2d(first, common)
    } else {
        first.reshape_like(&(b1, c1, common.0, common.1))
    };
    let second = if resize(second_size) {
        adaptive_avg_pool2d(second, common)
    } else {
        second.reshape_like(&(b2, c2, common.0, common.1))
    };
    (first, second)
}
