//! kd-core's integration tests, in one test binary: each module was its own binary, and each
//! binary linked kd-core and dfdx and compiled dfdx's generic kernels again for itself.
//!
//! - [`pytorch_reference`], [`spatial_reference`]: values and gradients against PyTorch;
//! - [`finite_difference`]: f64 finite differences for the composite losses;
//! - [`loss_contract`]: every loss's errors at the edges;
//! - [`regimes`], [`lenet_mnist`]: behaviour tests that train on real MNIST.

mod finite_difference;
mod lenet_mnist;
mod loss_contract;
mod pytorch_reference;
mod regimes;
mod spatial_reference;
