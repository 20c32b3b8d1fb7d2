use dfdx::nn::{Module, NonMutableModule, ZeroSizedModule};
use dfdx::prelude::*;

use super::expect_shape;
use crate::spatial::{adaptive_avg_pool2d, avg_pool2d, flatten, max_pool2d, Conv2dGeometry};

macro_rules! pool_module {
    ($(#[$doc:meta])* $name:ident, $op:ident) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
        pub struct $name<const KERNEL: usize, const STRIDE: usize = 1, const PADDING: usize = 0>;

        impl<const K: usize, const S: usize, const P: usize> ZeroSizedModule for $name<K, S, P> {}
        impl<const K: usize, const S: usize, const P: usize> NonMutableModule for $name<K, S, P> {}

        impl<B: Dim, C: Dim, H: Dim, W: Dim, E: Dtype, T: Tape<E, Cpu>, const K: usize, const S: usize, const P: usize>
            Module<Tensor<(B, C, H, W), E, Cpu, T>> for $name<K, S, P>
        where
            Cpu: Device<E>,
        {
            type Output = Tensor<(B, C, usize, usize), E, Cpu, T>;
            type Error = <Cpu as HasErr>::Err;

            fn try_forward(&self, x: Tensor<(B, C, H, W), E, Cpu, T>) -> Result<Self::Output, Self::Error> {
                let geometry = Conv2dGeometry::square(K).with_stride(S).with_padding(P);
                Ok(expect_shape(&format!("{}<{K}, {S}, {P}>", stringify!($name)), $op(x, geometry)))
            }
        }
    };
}

pool_module!(
    /// 2-D max pooling, as dfdx's nightly `MaxPool2D<KERNEL, STRIDE = 1, PADDING = 0>`
    /// (PyTorch's `nn.MaxPool2d` defaults its stride to the kernel; dfdx's to 1). Ties send the
    /// gradient to the first maximum, as PyTorch.
    MaxPool2D,
    max_pool2d
);
pool_module!(
    /// 2-D average pooling, `count_include_pad=True` as PyTorch's default, with dfdx's nightly
    /// `AvgPool2D<KERNEL, STRIDE = 1, PADDING = 0>` signature.
    AvgPool2D,
    avg_pool2d
);

/// Adaptive average pooling to `OH × OW`, as PyTorch's `nn.AdaptiveAvgPool2d((OH, OW))`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct AdaptiveAvgPool2D<const OH: usize, const OW: usize>;

impl<const OH: usize, const OW: usize> ZeroSizedModule for AdaptiveAvgPool2D<OH, OW> {}
impl<const OH: usize, const OW: usize> NonMutableModule for AdaptiveAvgPool2D<OH, OW> {}

impl<B: Dim, C: Dim, H: Dim, W: Dim, E: Dtype, T: Tape<E, Cpu>, const OH: usize, const OW: usize> Module<Tensor<(B, C, H, W), E, Cpu, T>>
    for AdaptiveAvgPool2D<OH, OW>
where
    Cpu: Device<E>,
{
    type Output = Tensor<(B, C, Const<OH>, Const<OW>), E, Cpu, T>;
    type Error = <Cpu as HasErr>::Err;

    fn try_forward(&self, x: Tensor<(B, C, H, W), E, Cpu, T>) -> Result<Self::Output, Self::Error> {
        let (batch, channels, _, _) = *x.shape();
        Ok(adaptive_avg_pool2d(x, (OH, OW)).reshape_like(&(batch, channels, Const, Const)))
    }
}

/// Flattens `(B, C, H, W)` to `(B, FEATURES)` with `FEATURES = C·H·W`, as dfdx's nightly
/// `Flatten2D` and PyTorch's `nn.Flatten()`.
///
/// The feature count is a const generic so the next `Linear<FEATURES, _>` type-checks: stable
/// Rust cannot compute `C·H·W` from runtime spatial sizes.
///
/// # Panics
/// If `C·H·W` differs from `FEATURES`; the message gives both.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Flatten2D<const FEATURES: usize>;

impl<const N: usize> ZeroSizedModule for Flatten2D<N> {}
impl<const N: usize> NonMutableModule for Flatten2D<N> {}

impl<B: Dim, C: Dim, H: Dim, W: Dim, E: Dtype, T: Tape<E, Cpu>, const N: usize> Module<Tensor<(B, C, H, W), E, Cpu, T>> for Flatten2D<N>
where
    Cpu: Device<E>,
{
    type Output = Tensor<(B, Const<N>), E, Cpu, T>;
    type Error = <Cpu as HasErr>::Err;

    fn try_forward(&self, x: Tensor<(B, C, H, W), E, Cpu, T>) -> Result<Self::Output, Self::Error> {
        let (batch, channels, height, width) = *x.shape();
        let features = channels.size() * height.size() * width.size();
        assert!(
            features == N,
            "Flatten2D<{N}>: the input has C·H·W = {} · {} · {} = {features} features, not {N}",
            channels.size(),
            height.size(),
            width.size()
        );
        Ok(flatten(x).reshape_like(&(batch, Const)))
    }
}
