//! Spatial ops that dfdx 0.13 compiles only behind its (no longer building) `nightly` feature,
//! rebuilt on its public tape API for the `Cpu` device.
//!
//! [`conv2d`] lowers a convolution to [`im2col`] (a differentiable patch gather, this module's
//! only hand-written kernel) followed by dfdx's batched matmul, so the arithmetic runs in the
//! same `gemm` kernels as every dfdx `Linear`, and the backward of the matmul is dfdx's own.
//! A `Cuda` version needs only an `im2col` kernel for that device.

mod conv2d;
mod geometry;
mod im2col;
mod pool;

pub use conv2d::{conv2d, conv_transpose2d};
pub use geometry::{Conv2dGeometry, ShapeError};
pub use im2col::{col2im, im2col};
pub use pool::{adaptive_avg_pool2d, avg_pool2d, flatten, max_pool2d, pool_to_common_size};

/// A spatial op's output on the `Cpu` device, or why the shapes cannot work.
pub type SpatialResult<S, E, T> = Result<dfdx::tensor::Tensor<S, E, dfdx::tensor::Cpu, T>, ShapeError>;
