//! Tensor helpers that several losses share, built from dfdx 0.13 ops.
//!
//! dfdx's `normalize` standardises to zero mean and unit variance; the losses need PyTorch's
//! `F.normalize` (L2), which lives here.
//!
//! A Gram matrix `x · xᵀ` is written `x.retaped().matmul(x.permute().contiguous())` across the
//! crate: dfdx's matmul backward requires its operands to be different tensors, and a
//! permutation alone keeps the tensor's id, so the transposed operand is copied.

use dfdx::prelude::*;

/// PyTorch's `F.normalize` default epsilon: norms are clamped to at least this.
pub const NORMALIZE_EPS: f64 = 1e-12;

/// `x` as the tensor dtype `E`. Every dfdx float dtype represents an `f64` up to rounding.
pub fn scalar<E: Dtype>(x: f64) -> E {
    match E::from_f64(x) {
        Some(value) => value,
        None => unreachable!("dfdx float dtypes convert from every f64"),
    }
}

/// The value of a rank-0 tensor as `f64`, for logging and checks.
pub fn value_of<E: Dtype, D: Device<E>, T: Tape<E, D>>(t: &Tensor<Rank0, E, D, T>) -> f64 {
    t.as_vec().first().and_then(|v| v.to_f64()).unwrap_or(f64::NAN)
}

/// `x / max(‖x‖₂, 1e-12)` along the last axis, as PyTorch's `F.normalize(x, dim=-1)`.
///
/// The norm is computed as `sqrt(max(Σx², eps²))`, which equals `max(‖x‖, eps)` and keeps the
/// gradient finite (zero through the clamp) for an all-zero row.
pub fn l2_normalize_last<S, E, D, T>(x: Tensor<S, E, D, T>) -> Tensor<S, E, D, T>
where
    S: Shape + ReduceShape<S::LastAxis>,
    E: Dtype,
    D: Device<E>,
    T: Tape<E, D>,
{
    let shape = *x.shape();
    let norm = x
        .retaped::<T>()
        .square()
        .sum::<S::Reduced, S::LastAxis>()
        .clamp(NORMALIZE_EPS * NORMALIZE_EPS, f64::INFINITY)
        .sqrt()
        .broadcast_like(&shape);
    x / norm
}

/// The size of the leading (batch) axis.
pub fn batch_size<S: Shape>(shape: &S) -> usize {
    shape.concrete().into_iter().next().unwrap_or(1)
}

/// Reshapes `(B, ...)` to `(B, N)`, the per-sample flattening PyTorch writes `x.view(B, -1)`.
pub fn flatten_batch<S, E, D, T>(x: Tensor<S, E, D, T>) -> Tensor<(usize, usize), E, D, T>
where
    S: Shape,
    E: Dtype,
    D: Device<E>,
    T: Tape<E, D>,
{
    let numel = x.shape().num_elements();
    let batch = batch_size(x.shape()).max(1);
    x.reshape_like(&(batch, numel / batch))
}
