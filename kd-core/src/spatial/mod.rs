//! Spatial ops that dfdx 0.13 compiles only behind its (no longer building) `nightly` feature,
//! rebuilt on its public tape API for the `Cpu` device.
//!
//! [`conv2d`] and [`conv_transpose2d`] are one fused op each: per sample and group, patches are
//! gathered into a reused buffer and multiplied by the `gemm` kernels dfdx itself uses, with the
//! samples in parallel; the transposed convolution reuses the same kernel as the adjoint.
//! Pooling gathers patches with the differentiable [`im2col`]. A `Cuda` version would add a
//! kernel per op behind the same functions.

mod conv2d;
mod conv_kernel;
mod gemm;
mod geometry;
mod im2col;
mod input;
mod linear;
mod pool;
pub(crate) mod scratch;

pub use conv2d::{conv2d, conv_transpose2d};
pub use gemm::unpacked_lhs_columns;
pub use geometry::{Conv2dGeometry, ShapeError};
pub use im2col::{col2im, im2col};
pub use input::trace_input;
pub use linear::linear;
pub(crate) use linear::{linear_frozen, FrozenWeight};
pub use pool::{adaptive_avg_pool2d, avg_pool2d, flatten, max_pool2d, pool_to_common_size};

/// A spatial op's output on the `Cpu` device, or why the shapes cannot work.
pub type SpatialResult<S, E, T> = Result<dfdx::tensor::Tensor<S, E, dfdx::tensor::Cpu, T>, ShapeError>;
