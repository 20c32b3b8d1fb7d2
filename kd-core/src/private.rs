//! Paths for the code `#[model]` and `#[distill]` generate. Not public API: the generated code
//! reaches dfdx and kd-core only through here, so users need neither in scope.

pub use core::option::Option;
pub use core::result::Result;
pub use dfdx::nn::{BuildModule, BuildOnDevice, DeviceBuildExt, Module, ModuleMut, ModuleVisitor, TensorCollection};
pub use dfdx::prelude::{Const, Cpu, Dtype, Gradients, NoneTape, OwnedTape, Tensor};
pub use dfdx::shapes::Shape;
pub use dfdx::tensor::{HasErr, SplitTape, Trace};
pub use dfdx::tensor_ops::Device;

pub use crate::defaults as weights;
pub use crate::distill::chain::{
    channels_fit, features_fit, first_misfit, flow_after, map_features_fit, rank_fits, require_equal_channels, require_layer, require_maps,
    require_takes, values_fit, wanted, Flow, LayerShape, ShapeOf, UnknownShape,
};
pub use crate::distill::{
    alignable, map_after_chain, require_aligned, size_after, size_after_chain, KeepsShape, SameLogits, Spatial, SpatialChain, SpatialEffect,
};
pub use crate::distill::{
    Built, Char, Distill, DistillFromLogits, Distiller, Gives, LayerMarker, ModelField, ModelLayers, Settings, Takes, Width,
};
pub use crate::error::LossError;
pub use crate::loss;
pub use crate::spatial::trace_input;
pub use crate::tap::{tap, TappedModule, TappedModuleMut};

/// Unwraps a forward pass inside generated code: dfdx's only forward errors are device errors.
#[track_caller]
pub fn expect_forward<T, E: core::fmt::Debug>(model: &str, result: Result<T, E>) -> T {
    match result {
        Ok(value) => value,
        Err(error) => panic!("the {model}'s forward pass failed on the device: {error:?}"),
    }
}
