use dfdx::nn::{BuildModule, BuildOnDevice, Module, ModuleVisitor, NonMutableModule, TensorCollection, TensorOptions};
use dfdx::prelude::*;
use dfdx::tensor_ops::Device;

use super::{expect_shape, fan_in_uniform};
use crate::spatial::{conv2d, conv_transpose2d, Conv2dGeometry};

/// Builder types.
pub mod builder {
    /// Builds a [`super::Conv2D`].
    #[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
    pub struct Conv2D<const IN: usize, const OUT: usize, const KERNEL: usize, const STRIDE: usize = 1, const PADDING: usize = 0>;

    /// Builds a [`super::ConvTrans2D`].
    #[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
    pub struct ConvTrans2D<const IN: usize, const OUT: usize, const KERNEL: usize, const STRIDE: usize = 1, const PADDING: usize = 0>;
}

/// The dfdx boilerplate both convolutions share: building, the marker that their training
/// forward is their inference forward, and parameter visiting with PyTorch's initialisation.
macro_rules! conv_module_impls {
    ($name:ident, fan_in = $fan_in:expr) => {
        impl<const I: usize, const O: usize, const K: usize, const S: usize, const P: usize, E, D> BuildOnDevice<D, E>
            for builder::$name<I, O, K, S, P>
        where
            E: Dtype,
            D: Device<E>,
            $name<I, O, K, S, P, E, D>: BuildModule<D, E>,
        {
            type Built = $name<I, O, K, S, P, E, D>;
            fn try_build_on_device(device: &D) -> Result<Self::Built, D::Err> {
                Self::Built::try_build(device)
            }
        }

        impl<const I: usize, const O: usize, const K: usize, const S: usize, const P: usize, E: Dtype, D: Storage<E>> NonMutableModule
            for $name<I, O, K, S, P, E, D>
        {
        }

        impl<const I: usize, const O: usize, const K: usize, const S: usize, const P: usize, E, D> TensorCollection<E, D>
            for $name<I, O, K, S, P, E, D>
        where
            E: Dtype + num_traits::Float + rand_distr::uniform::SampleUniform,
            D: Device<E>,
        {
            type To<E2: Dtype, D2: Device<E2>> = $name<I, O, K, S, P, E2, D2>;

            fn iter_tensors<V: ModuleVisitor<Self, E, D>>(visitor: &mut V) -> Result<Option<Self::To<V::E2, V::D2>>, V::Err> {
                visitor.visit_fields(
                    (
                        Self::tensor(
                            "weight",
                            |s| &s.weight,
                            |s| &mut s.weight,
                            TensorOptions::reset_with(|t| fan_in_uniform(t, $fan_in)),
                        ),
                        Self::tensor(
                            "bias",
                            |s| &s.bias,
                            |s| &mut s.bias,
                            TensorOptions::reset_with(|t| fan_in_uniform(t, $fan_in)),
                        ),
                    ),
                    |(weight, bias)| $name { weight, bias },
                )
            }
        }
    };
}

/// 2-D convolution with a bias, as PyTorch's `nn.Conv2d`: `(B, IN, H, W)` ->
/// `(B, OUT, OH, OW)`. The weight is `(OUT, IN, KERNEL, KERNEL)`, PyTorch's layout, so
/// PyTorch checkpoints load as safetensors. Dilation and groups are available in the function
/// [`conv2d`](crate::spatial::conv2d).
///
/// # Panics
/// In `forward`, if the kernel does not fit the padded input (the message names the dimension).
#[derive(Debug, Clone)]
pub struct Conv2D<
    const IN: usize,
    const OUT: usize,
    const KERNEL: usize,
    const STRIDE: usize,
    const PADDING: usize,
    E: Dtype,
    D: Storage<E>,
> {
    /// `(OUT, IN, KERNEL, KERNEL)`.
    pub weight: Tensor<Rank4<OUT, IN, KERNEL, KERNEL>, E, D>,
    /// `(OUT)`.
    pub bias: Tensor<Rank1<OUT>, E, D>,
}

impl<const I: usize, const O: usize, const K: usize, const S: usize, const P: usize> builder::Conv2D<I, O, K, S, P> {
    /// The geometry the module's const generics describe.
    pub const GEOMETRY: Conv2dGeometry = Conv2dGeometry {
        kernel: (K, K),
        stride: (S, S),
        padding: (P, P),
        dilation: (1, 1),
        groups: 1,
    };
}

conv_module_impls!(Conv2D, fan_in = I * K * K);

impl<B, H, W, const I: usize, const O: usize, const K: usize, const S: usize, const P: usize, E, T>
    Module<Tensor<(B, Const<I>, H, W), E, Cpu, T>> for Conv2D<I, O, K, S, P, E, Cpu>
where
    B: Dim,
    H: Dim,
    W: Dim,
    E: Dtype,
    T: Tape<E, Cpu>,
    Cpu: Device<E>,
{
    type Output = Tensor<(B, Const<O>, usize, usize), E, Cpu, T>;
    type Error = <Cpu as HasErr>::Err;

    fn try_forward(&self, x: Tensor<(B, Const<I>, H, W), E, Cpu, T>) -> Result<Self::Output, Self::Error> {
        let geometry = builder::Conv2D::<I, O, K, S, P>::GEOMETRY;
        let output = conv2d(x, self.weight.retaped::<T>(), Some(self.bias.retaped::<T>()), geometry);
        Ok(expect_shape(&format!("Conv2D<{I}, {O}, {K}, {S}, {P}>"), output))
    }
}

/// Transposed 2-D convolution with a bias, as PyTorch's `nn.ConvTranspose2d`:
/// `(B, IN, H, W)` -> `(B, OUT, (H−1)·STRIDE − 2·PADDING + KERNEL, ...)`. The weight is
/// `(IN, OUT, KERNEL, KERNEL)`, PyTorch's layout.
///
/// # Panics
/// In `forward`, if the padding removes the whole output (the message names the dimension).
#[derive(Debug, Clone)]
pub struct ConvTrans2D<
    const IN: usize,
    const OUT: usize,
    const KERNEL: usize,
    const STRIDE: usize,
    const PADDING: usize,
    E: Dtype,
    D: Storage<E>,
> {
    /// `(IN, OUT, KERNEL, KERNEL)`.
    pub weight: Tensor<Rank4<IN, OUT, KERNEL, KERNEL>, E, D>,
    /// `(OUT)`.
    pub bias: Tensor<Rank1<OUT>, E, D>,
}

// PyTorch's fan-in of a transposed convolution weight (IN, OUT, K, K) is OUT·K·K.
conv_module_impls!(ConvTrans2D, fan_in = O * K * K);

impl<B, H, W, const I: usize, const O: usize, const K: usize, const S: usize, const P: usize, E, T>
    Module<Tensor<(B, Const<I>, H, W), E, Cpu, T>> for ConvTrans2D<I, O, K, S, P, E, Cpu>
where
    B: Dim,
    H: Dim,
    W: Dim,
    E: Dtype,
    T: Tape<E, Cpu>,
    Cpu: Device<E>,
{
    type Output = Tensor<(B, Const<O>, usize, usize), E, Cpu, T>;
    type Error = <Cpu as HasErr>::Err;

    fn try_forward(&self, x: Tensor<(B, Const<I>, H, W), E, Cpu, T>) -> Result<Self::Output, Self::Error> {
        let geometry = Conv2dGeometry::square(K).with_stride(S).with_padding(P);
        let output = conv_transpose2d(x, self.weight.retaped::<T>(), None, geometry, (0, 0));
        let output = expect_shape(&format!("ConvTrans2D<{I}, {O}, {K}, {S}, {P}>"), output);
        let (batch, _, height, width) = *output.shape();
        let output = output.reshape_like(&(batch, Const::<O>, height, width));
        let shape = *output.shape();
        Ok(output + self.bias.retaped::<T>().broadcast_like::<_, Axes3<0, 2, 3>>(&shape))
    }
}
