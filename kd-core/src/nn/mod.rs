//! dfdx 0.13 modules for convolutional networks, which dfdx compiles only behind its `nightly`
//! feature: [`Conv2D`](modules::Conv2D), [`ConvTrans2D`](modules::ConvTrans2D),
//! [`MaxPool2D`](modules::MaxPool2D), [`AvgPool2D`](modules::AvgPool2D),
//! [`AdaptiveAvgPool2D`](modules::AdaptiveAvgPool2D) and [`Flatten2D`](modules::Flatten2D).
//!
//! They implement dfdx's `BuildOnDevice`, `TensorCollection`, `Module` and `ModuleMut`, so they
//! compose in tuples with `ReLU`, `BatchNorm2D`, `Linear` and `Residual`, train with dfdx's
//! optimisers, and save and load as safetensors. Channel counts, kernel, stride and padding are
//! const generics; batch and spatial sizes are runtime (`usize`) dimensions, since const output
//! sizes need nightly Rust. The forward runs on the `Cpu` device ([`crate::spatial`]).
//!
//! ```
//! use dfdx::prelude::*;
//! use kd_core::nn::builders::{Conv2D, Flatten2D, MaxPool2D};
//!
//! // LeNet-5's feature extractor.
//! // dfdx implements modules for tuples of up to 6, so longer stacks nest.
//! type Features = ((Conv2D<1, 6, 5, 1, 2>, ReLU, MaxPool2D<2, 2>), (Conv2D<6, 16, 5>, ReLU, MaxPool2D<2, 2>), Flatten2D<400>);
//! let dev = Cpu::default();
//! let net = dev.build_module::<Features, f32>();
//! let images: Tensor<(usize, Const<1>, usize, usize), f32, _> = dev.zeros_like(&(8, Const, 28, 28));
//! let features = net.forward(images);
//! assert_eq!(features.shape().0, 8); // (8, Const<400>): ready for `Linear<400, 120>`
//! ```

mod conv;
mod linear;
mod pool;
pub mod transformer;

/// Built modules, as dfdx's `nn::modules`.
pub mod modules {
    pub use super::conv::{Conv2D, ConvTrans2D};
    pub use super::linear::Linear;
    pub use super::pool::{AdaptiveAvgPool2D, AvgPool2D, Flatten2D, MaxPool2D};
}

/// Builder types, as dfdx's `nn::builders`: `dev.build_module::<builders::Conv2D<1, 6, 5>, f32>()`.
pub mod builders {
    pub use super::conv::builder::{Conv2D, ConvTrans2D};
    pub use super::linear::builder::Linear;
    pub use super::pool::{AdaptiveAvgPool2D, AvgPool2D, Flatten2D, MaxPool2D};
}

/// PyTorch's initialisation of convolutions and linear layers (`torch/nn/modules/conv.py`, `reset_parameters`):
/// `kaiming_uniform_(weight, a=√5)` is `U(−1/√fan_in, 1/√fan_in)`, and the bias uses the same
/// bound; `fan_in` is `weight.size(1) · KH · KW` (a linear layer's: its input width).
pub(crate) fn fan_in_uniform<S: dfdx::prelude::Shape, E, D>(t: &mut dfdx::prelude::Tensor<S, E, D>, fan_in: usize) -> Result<(), D::Err>
where
    E: dfdx::prelude::Dtype + num_traits::Float + rand_distr::uniform::SampleUniform,
    D: dfdx::tensor_ops::Device<E>,
{
    let bound = crate::ops::scalar::<E>(1.0 / (fan_in.max(1) as f64).sqrt());
    t.try_fill_with_distr(rand_distr::Uniform::new(-bound, bound))
}

/// Unwraps a spatial op inside `Module::try_forward`, which can only return the device's error
/// type: a shape that cannot work panics here with the module's name and the dimension.
#[track_caller]
fn expect_shape<S, E, T>(module: &str, result: crate::spatial::SpatialResult<S, E, T>) -> dfdx::tensor::Tensor<S, E, dfdx::tensor::Cpu, T>
where
    S: dfdx::shapes::Shape,
    E: dfdx::shapes::Dtype,
{
    match result {
        Ok(output) => output,
        Err(error) => panic!("{module}: {error}"),
    }
}

#[cfg(test)]
mod tests {
    use super::builders::*;
    use dfdx::nn::builders::{BatchNorm2D, Linear, ReLU, Residual};
    use dfdx::optim::{Momentum, Sgd, SgdConfig};
    use dfdx::prelude::*;

    type Block = (
        Conv2D<1, 4, 3, 1, 1>,
        BatchNorm2D<4>,
        ReLU,
        Residual<(Conv2D<4, 4, 3, 1, 1>, ReLU)>,
        MaxPool2D<2, 2>,
    );
    type Net = (Block, AdaptiveAvgPool2D<2, 2>, Flatten2D<16>, Linear<16, 3>);

    fn images(dev: &Cpu, batch: usize) -> Tensor<(usize, Const<1>, usize, usize), f32, Cpu> {
        dev.sample_normal_like(&(batch, Const, 8, 6))
    }

    #[test]
    fn initialisation_follows_pytorch_bounds() {
        let dev = Cpu::seed_from_u64(0);
        let conv = dev.build_module::<Conv2D<6, 16, 5>, f32>();
        let bound = 1.0 / (6.0f32 * 25.0).sqrt();
        let weights = conv.weight.as_vec();
        assert!(weights.iter().chain(conv.bias.as_vec().iter()).all(|w| w.abs() <= bound));
        // U(−b, b) has standard deviation b/√3.
        let std = (weights.iter().map(|w| w * w).sum::<f32>() / weights.len() as f32).sqrt();
        assert!((std / (bound / 3f32.sqrt()) - 1.0).abs() < 0.1, "std {std} for bound {bound}");
        let transposed = dev.build_module::<ConvTrans2D<6, 3, 4, 2, 1>, f32>();
        let bound = 1.0 / (3.0f32 * 16.0).sqrt();
        assert!(transposed.weight.as_vec().iter().all(|w| w.abs() <= bound));
    }

    #[test]
    fn composes_with_batchnorm_residual_and_linear_and_trains() {
        let dev = Cpu::seed_from_u64(1);
        let mut net = dev.build_module::<Net, f32>();
        let mut grads = net.alloc_grads();
        let mut opt = Sgd::new(
            &net,
            SgdConfig {
                lr: 0.05,
                momentum: Some(Momentum::Classic(0.9)),
                weight_decay: None,
            },
        );
        let x = images(&dev, 12);
        let targets: Vec<usize> = (0..12).map(|i| i % 3).collect();
        let mut losses = Vec::new();
        for _ in 0..40 {
            let logits = net.forward_mut(x.trace(grads));
            let loss = crate::loss::cross_entropy_loss(logits, &targets).unwrap();
            losses.push(crate::ops::value_of(&loss));
            grads = loss.backward();
            opt.update(&mut net, &grads).expect("update");
            net.zero_grads(&mut grads);
        }
        assert!(
            losses[39] < 0.5 * losses[0],
            "a small CNN memorises 12 images: {:?}",
            (losses[0], losses[39])
        );
        let inference: Tensor<(usize, Const<3>), f32, _> = net.forward(images(&dev, 2));
        assert_eq!(inference.shape().0, 2);
    }

    #[test]
    fn saves_and_loads_as_safetensors() {
        let dev = Cpu::seed_from_u64(2);
        let net = dev.build_module::<Net, f32>();
        let path = std::env::temp_dir().join(format!("kd-nn-{}.safetensors", std::process::id()));
        net.save_safetensors(&path).expect("save");
        let mut loaded = dev.build_module::<Net, f32>();
        loaded.load_safetensors(&path).expect("load");
        std::fs::remove_file(&path).expect("clean up");
        let x = images(&dev, 3);
        assert_eq!(net.forward(x.clone()).as_vec(), loaded.forward(x).as_vec());
    }

    #[test]
    #[should_panic(expected = "Conv2D<1, 4, 5, 1, 0>: kernel 5 (dilated extent 5) is larger than the padded height 3")]
    fn a_kernel_larger_than_the_input_names_module_and_dimension() {
        let dev = Cpu::default();
        let conv = dev.build_module::<Conv2D<1, 4, 5>, f32>();
        let x: Tensor<(usize, Const<1>, usize, usize), f32, _> = dev.zeros_like(&(1, Const, 3, 9));
        let _ = conv.forward(x);
    }

    #[test]
    #[should_panic(expected = "Flatten2D<16>: the input has C·H·W = 4 · 3 · 2 = 24 features, not 16")]
    fn flatten_names_both_feature_counts() {
        let dev = Cpu::default();
        let x: Tensor<(usize, Const<4>, usize, usize), f32, _> = dev.zeros_like(&(1, Const, 3, 2));
        let _ = Flatten2D::<16>.forward(x);
    }
}
