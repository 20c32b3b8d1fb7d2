use dfdx::nn::{BuildModule, BuildOnDevice, Module, ModuleVisitor, NonMutableModule, TensorCollection, TensorOptions};
use dfdx::prelude::*;

use super::fan_in_uniform;
use crate::spatial::linear;
use crate::spatial::{linear_frozen, FrozenWeight};

/// Builder types.
pub mod builder {
    /// Builds a [`super::Linear`].
    #[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
    pub struct Linear<const IN: usize, const OUT: usize>;
}

/// A fully connected layer, a drop-in for dfdx's `Linear<IN, OUT>` whose products run on
/// gemm's AVX-512 kernels ([`crate::spatial::linear`]): the same weight layout `(OUT, IN)`,
/// tensor names, and initialisation (`U(±1/√IN)`, as PyTorch's `nn.Linear`), so checkpoints
/// interchange with dfdx's and PyTorch's.
#[derive(Debug, Clone)]
pub struct Linear<const IN: usize, const OUT: usize, E: Dtype, D: Storage<E>> {
    /// `(OUT, IN)`.
    pub weight: Tensor<Rank2<OUT, IN>, E, D>,
    /// `(OUT)`.
    pub bias: Tensor<Rank1<OUT>, E, D>,
    /// The weight's values for untaped forwards (a teacher's), kept while the weight is unchanged.
    frozen: FrozenWeight<OUT, IN, E>,
}

impl<const I: usize, const O: usize, E, D> BuildOnDevice<D, E> for builder::Linear<I, O>
where
    E: Dtype,
    D: Device<E>,
    Linear<I, O, E, D>: BuildModule<D, E>,
{
    type Built = Linear<I, O, E, D>;
    fn try_build_on_device(device: &D) -> Result<Self::Built, D::Err> {
        Self::Built::try_build(device)
    }
}

impl<const I: usize, const O: usize, E: Dtype, D: Storage<E>> NonMutableModule for Linear<I, O, E, D> {}

impl<const I: usize, const O: usize, E, D> TensorCollection<E, D> for Linear<I, O, E, D>
where
    E: Dtype + num_traits::Float + rand_distr::uniform::SampleUniform,
    D: Device<E>,
{
    type To<E2: Dtype, D2: Device<E2>> = Linear<I, O, E2, D2>;

    fn iter_tensors<V: ModuleVisitor<Self, E, D>>(visitor: &mut V) -> Result<Option<Self::To<V::E2, V::D2>>, V::Err> {
        visitor.visit_fields(
            (
                Self::tensor(
                    "weight",
                    |s| &s.weight,
                    |s| &mut s.weight,
                    TensorOptions::reset_with(|t| fan_in_uniform(t, I)),
                ),
                Self::tensor(
                    "bias",
                    |s| &s.bias,
                    |s| &mut s.bias,
                    TensorOptions::reset_with(|t| fan_in_uniform(t, I)),
                ),
            ),
            |(weight, bias)| Linear {
                weight,
                bias,
                frozen: FrozenWeight::default(),
            },
        )
    }
}

impl<B: Dim, const I: usize, const O: usize, E: Dtype, T: Tape<E, Cpu>> Module<Tensor<(B, Const<I>), E, Cpu, T>> for Linear<I, O, E, Cpu>
where
    Cpu: Device<E>,
{
    type Output = Tensor<(B, Const<O>), E, Cpu, T>;
    type Error = <Cpu as HasErr>::Err;

    fn try_forward(&self, x: Tensor<(B, Const<I>), E, Cpu, T>) -> Result<Self::Output, Self::Error> {
        // Without a tape the weight cannot be trained by this pass, so its values can be kept.
        Ok(if T::OWNS_TAPE {
            linear(x, self.weight.retaped::<T>(), self.bias.retaped::<T>())
        } else {
            linear_frozen(x, &self.weight, self.bias.retaped::<T>(), &self.frozen)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::Tolerance;

    /// The untaped forward keeps the weight's values; every way of changing the weight shows.
    /// (It multiplies the weight kept transposed, so it agrees with the taped forward to
    /// rounding; a stale weight would be off by the change, 1e-3 or more here.)
    #[test]
    fn a_kept_weight_follows_every_change() {
        use dfdx::optim::{Optimizer, Sgd, SgdConfig};
        let dev = Cpu::seed_from_u64(9);
        let mut layer = dev.build_module::<builder::Linear<4, 3>, f64>();
        let x: Tensor<(usize, Const<4>), f64, _> = dev.sample_normal_like(&(2, Const));
        // Taped, the layer copies the weight afresh: no cache.
        let check =
            |layer: &Linear<4, 3, f64, Cpu>| crate::assert_close!(layer.forward(x.clone()), layer.forward(x.leaky_trace()), Tolerance::F64);
        check(&layer);
        check(&layer); // a second call reads the kept values

        let grads = layer.forward(x.leaky_trace()).square().sum().backward();
        Sgd::new(&layer, SgdConfig::default()).update(&mut layer, &grads).expect("update");
        check(&layer); // after an optimiser step

        layer.weight.fill_with_zeros();
        check(&layer); // after an in-place fill

        layer.weight = dev.sample_normal();
        check(&layer); // after assigning a new tensor
    }

    /// At a size where gemm takes its blocked path and splits the product into per-thread slabs,
    /// the untaped forward (the weight kept transposed, multiplied unpacked) equals the taped
    /// one (the weight as stored, packed) and a plain triple loop.
    #[test]
    fn the_kept_transposed_weight_gives_the_same_product_at_scale() {
        let dev = Cpu::seed_from_u64(10);
        let layer = dev.build_module::<builder::Linear<256, 192>, f64>();
        let x: Tensor<(usize, Const<256>), f64, _> = dev.sample_normal_like(&(130, Const));
        let untaped = layer.forward(x.clone()).as_vec();
        crate::assert_close!(untaped, layer.forward(x.leaky_trace()), Tolerance::F64);
        let (w, b, xs) = (layer.weight.as_vec(), layer.bias.as_vec(), x.as_vec());
        let looped: Vec<f64> = (0..130 * 192)
            .map(|at| {
                let (row, out) = (at / 192, at % 192);
                b[out] + (0..256).map(|i| xs[row * 256 + i] * w[out * 256 + i]).sum::<f64>()
            })
            .collect();
        crate::assert_close!(untaped, looped, Tolerance::F64);
    }

    /// Same weights, same batch: the output and every gradient equal dfdx's `Linear`.
    #[test]
    fn equals_dfdx_linear_in_value_and_gradient() {
        let dev = Cpu::seed_from_u64(7);
        let ours = dev.build_module::<builder::Linear<5, 3>, f64>();
        let mut theirs = dev.build_module::<dfdx::nn::builders::Linear<5, 3>, f64>();
        theirs.weight = ours.weight.clone();
        theirs.bias = ours.bias.clone();
        let x: Tensor<(usize, Const<5>), f64, _> = dev.sample_normal_like(&(4, Const));
        let target: Tensor<(usize, Const<3>), f64, _> = dev.sample_normal_like(&(4, Const));

        let run = |y: Tensor<(usize, Const<3>), f64, Cpu, OwnedTape<f64, Cpu>>| {
            (y.retaped::<NoneTape>().as_vec(), mse_loss(y.tanh(), target.clone()).backward())
        };
        let (y_ours, g_ours) = run(ours.forward(x.clone().leaky_trace()));
        let (y_theirs, g_theirs) = run(theirs.forward(x.clone().leaky_trace()));
        let tolerance = Tolerance::F64;
        crate::assert_close!(y_ours, y_theirs, tolerance);
        crate::assert_close!(g_ours.get(&x).as_vec(), g_theirs.get(&x).as_vec(), tolerance);
        crate::assert_close!(g_ours.get(&ours.weight).as_vec(), g_theirs.get(&theirs.weight).as_vec(), tolerance);
        crate::assert_close!(g_ours.get(&ours.bias).as_vec(), g_theirs.get(&theirs.bias).as_vec(), tolerance);
    }

    /// A permuted (non-contiguous) input still gets its gradient, through dfdx's reshape.
    #[test]
    fn a_transposed_input_gets_its_gradient() {
        let dev = Cpu::seed_from_u64(8);
        let layer = dev.build_module::<builder::Linear<4, 2>, f64>();
        let columns: Tensor<Rank2<4, 3>, f64, _> = dev.sample_normal();
        let y = layer.forward(columns.leaky_trace().permute::<Rank2<3, 4>, _>());
        let grads = y.sum().backward();
        // d/dx Σ (x·Wᵀ + b) = Σ_o W[o, :] for every sample.
        let expected: Vec<f64> = (0..4).map(|i| layer.weight.as_vec()[i] + layer.weight.as_vec()[4 + i]).collect();
        let got = grads.get(&columns).as_vec();
        for (row, want) in expected.iter().enumerate() {
            for sample in 0..3 {
                assert!((got[row * 3 + sample] - want).abs() < 1e-12, "{got:?} vs {expected:?}");
            }
        }
    }
}
