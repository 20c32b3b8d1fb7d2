//! NetAug: a tiny network trained inside wider networks that share its weights.
//!
//! **Paper:** H. Cai, C. Gan, J. Lin, S. Han, *Network Augmentation for Tiny Deep Learning*,
//! ICLR 2022, <https://arxiv.org/abs/2110.08890>.
//!
//! ```text
//! L = CE(f_tiny(x), y) + α · CE(f_aug(x), y),     f_aug = f_tiny widened by a extra units per layer
//! ```
//!
//! **Convention:** the tiny model is an MLP `I → H → H → C`; the augmented model adds `a ≤ A`
//! hidden units to both hidden layers (`a` is drawn per step from the caller's widths, as the
//! paper samples augmented widths). Its weight matrices are block matrices whose top-left blocks
//! *are* the tiny model's tensors, so the augmented loss trains the tiny weights directly; the
//! extra blocks are only used during training. At inference only the tiny model runs.

use dfdx::nn::{BuildModule, BuildOnDevice, Module, ModuleVisitor, TensorCollection, TensorOptions};
use dfdx::prelude::*;

use crate::loss::{cross_entropy_loss, LossTerms};
use crate::nn::builders::Linear;

/// The tiny MLP, as a dfdx builder.
pub type TinyMlp<const I: usize, const H: usize, const C: usize> = (Linear<I, H>, ReLU, Linear<H, H>, ReLU, Linear<H, C>);

/// The extra blocks of the augmented model, for up to `A` extra units per hidden layer.
#[derive(Debug, Clone)]
pub struct Extras<const I: usize, const H: usize, const A: usize, const C: usize, E: Dtype, D: Storage<E>> {
    /// Extra first-layer units: `(A, I)`, and their bias `(A)`.
    pub input_weight: Tensor<Rank2<A, I>, E, D>,
    /// Bias of the extra first-layer units.
    pub input_bias: Tensor<Rank1<A>, E, D>,
    /// Extra units of layer 1 into the tiny units of layer 2: `(H, A)`.
    pub into_tiny: Tensor<Rank2<H, A>, E, D>,
    /// Tiny units of layer 1 into the extra units of layer 2: `(A, H)`.
    pub from_tiny: Tensor<Rank2<A, H>, E, D>,
    /// Extra units of layer 1 into the extra units of layer 2: `(A, A)`.
    pub between_extras: Tensor<Rank2<A, A>, E, D>,
    /// Extra units of layer 2 into the classes: `(C, A)`.
    pub into_head: Tensor<Rank2<C, A>, E, D>,
}

/// Builds [`Extras`].
#[derive(Debug, Clone, Copy, Default)]
pub struct ExtrasBuilder<const I: usize, const H: usize, const A: usize, const C: usize>;

impl<const I: usize, const H: usize, const A: usize, const C: usize, E, D> BuildOnDevice<D, E> for ExtrasBuilder<I, H, A, C>
where
    E: Dtype,
    D: Device<E>,
    Extras<I, H, A, C, E, D>: BuildModule<D, E>,
{
    type Built = Extras<I, H, A, C, E, D>;
    fn try_build_on_device(device: &D) -> Result<Self::Built, D::Err> {
        Self::Built::try_build(device)
    }
}

impl<const I: usize, const H: usize, const A: usize, const C: usize, E, D> TensorCollection<E, D> for Extras<I, H, A, C, E, D>
where
    E: Dtype + num_traits::Float + rand_distr::uniform::SampleUniform,
    D: Device<E>,
{
    type To<E2: Dtype, D2: Device<E2>> = Extras<I, H, A, C, E2, D2>;

    fn iter_tensors<V: ModuleVisitor<Self, E, D>>(visitor: &mut V) -> Result<Option<Self::To<V::E2, V::D2>>, V::Err> {
        // Each block is initialised as the layer it extends: U(±1/√fan_in).
        use crate::nn::fan_in_uniform as init;
        visitor.visit_fields(
            (
                Self::tensor(
                    "input_weight",
                    |s| &s.input_weight,
                    |s| &mut s.input_weight,
                    TensorOptions::reset_with(|t| init(t, I)),
                ),
                Self::tensor(
                    "input_bias",
                    |s| &s.input_bias,
                    |s| &mut s.input_bias,
                    TensorOptions::reset_with(|t| init(t, I)),
                ),
                Self::tensor(
                    "into_tiny",
                    |s| &s.into_tiny,
                    |s| &mut s.into_tiny,
                    TensorOptions::reset_with(|t| init(t, H + A)),
                ),
                Self::tensor(
                    "from_tiny",
                    |s| &s.from_tiny,
                    |s| &mut s.from_tiny,
                    TensorOptions::reset_with(|t| init(t, H + A)),
                ),
                Self::tensor(
                    "between_extras",
                    |s| &s.between_extras,
                    |s| &mut s.between_extras,
                    TensorOptions::reset_with(|t| init(t, H + A)),
                ),
                Self::tensor(
                    "into_head",
                    |s| &s.into_head,
                    |s| &mut s.into_head,
                    TensorOptions::reset_with(|t| init(t, H + A)),
                ),
            ),
            |(input_weight, input_bias, into_tiny, from_tiny, between_extras, into_head)| Extras {
                input_weight,
                input_bias,
                into_tiny,
                from_tiny,
                between_extras,
                into_head,
            },
        )
    }
}

/// The tiny model and its augmentation: what the optimiser updates.
#[derive(Debug, Clone)]
pub struct NetAug<T, X> {
    /// The tiny model, the only one used at inference.
    pub tiny: T,
    /// The augmentation's extra blocks.
    pub extras: X,
}

impl<T: TensorCollection<E, D>, X: TensorCollection<E, D>, E: Dtype, D: Device<E>> TensorCollection<E, D> for NetAug<T, X> {
    type To<E2: Dtype, D2: Device<E2>> = NetAug<T::To<E2, D2>, X::To<E2, D2>>;

    fn iter_tensors<V: ModuleVisitor<Self, E, D>>(visitor: &mut V) -> Result<Option<Self::To<V::E2, V::D2>>, V::Err> {
        visitor.visit_fields(
            (
                Self::module("tiny", |s| &s.tiny, |s| &mut s.tiny),
                Self::module("extras", |s| &s.extras, |s| &mut s.extras),
            ),
            |(tiny, extras)| NetAug { tiny, extras },
        )
    }
}

/// A tiny MLP `I → H → H → C` with up to `A` extra units per hidden layer, in f32 on the CPU.
pub type NetAugMlp<const I: usize, const H: usize, const A: usize, const C: usize> =
    NetAug<<TinyMlp<I, H, C> as BuildOnDevice<Cpu, f32>>::Built, Extras<I, H, A, C, f32, Cpu>>;

type Taped = OwnedTape<f32, Cpu>;

impl<const I: usize, const H: usize, const A: usize, const C: usize> NetAugMlp<I, H, A, C> {
    /// Fresh tiny weights and extras.
    pub fn build(device: &Cpu) -> Self {
        NetAug {
            tiny: device.build_module::<TinyMlp<I, H, C>, f32>(),
            extras: device.build_module::<ExtrasBuilder<I, H, A, C>, f32>(),
        }
    }

    /// The augmented model's logits with `extra` extra units per hidden layer (≤ A): the tiny
    /// layers' own tensors plus the first `extra` rows and columns of each extra block.
    ///
    /// # Panics
    /// If `extra` is 0 or larger than `A`.
    pub fn forward_augmented(
        &self,
        input: Tensor<(usize, Const<I>), f32, Cpu, Taped>,
        extra: usize,
    ) -> Tensor<(usize, Const<C>), f32, Cpu, Taped> {
        assert!((1..=A).contains(&extra), "NetAug: {extra} extra units; the extras hold 1..={A}");
        let x = &self.extras;
        let (input, tape) = input.split_tape();
        let batch = input.shape().0;
        let tiny1 = self.tiny.0.forward(input.clone().put_tape(tape)).relu();
        let extra1 = input
            .retaped::<Taped>()
            .matmul(x.input_weight.retaped::<Taped>().slice((..extra, ..)).permute())
            + x.input_bias
                .retaped::<Taped>()
                .slice((..extra,))
                .broadcast_like::<_, Axis<0>>(&(batch, extra));
        let extra1 = extra1.relu();
        let (tiny1, tiny1_tape) = tiny1.split_tape();
        let (extra1, extra1_tape) = extra1.split_tape();
        let tiny2 = self.tiny.2.forward(tiny1.clone().put_tape(tiny1_tape))
            + extra1
                .retaped::<Taped>()
                .matmul(x.into_tiny.retaped::<Taped>().slice((.., ..extra)).permute());
        let extra2 = tiny1
            .retaped::<Taped>()
            .matmul(x.from_tiny.retaped::<Taped>().slice((..extra, ..)).permute())
            + extra1
                .put_tape(extra1_tape)
                .matmul(x.between_extras.retaped::<Taped>().slice((..extra, ..extra)).permute());
        self.tiny.4.forward(tiny2.relu()) + extra2.relu().matmul(x.into_head.retaped::<Taped>().slice((.., ..extra)).permute())
    }

    /// One step's objective: `"tiny.ce"` (weight 1) and `"augmented.ce"` (weight `alpha`) with
    /// `extra` extra units.
    ///
    /// # Errors
    /// If the batch is empty or a target is out of range.
    pub fn loss(
        &self,
        input: Tensor<(usize, Const<I>), f32, Cpu, Taped>,
        targets: &[usize],
        extra: usize,
        alpha: f64,
    ) -> Result<LossTerms<f32, Cpu, Taped>, crate::error::LossError> {
        let (input, tape) = input.split_tape();
        let tiny = cross_entropy_loss(self.tiny.forward(input.clone().put_tape(tape)), targets)?;
        let augmented = cross_entropy_loss(self.forward_augmented(input.retaped::<Taped>(), extra), targets)?;
        Ok(LossTerms::new().add("tiny.ce", 1.0, tiny).add("augmented.ce", alpha, augmented))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use dfdx::nn::ZeroGrads;

    /// The augmented model with its extra blocks at zero computes the tiny model exactly; and
    /// the augmented loss alone trains the tiny weights (they are the same tensors).
    #[test]
    fn the_augmented_model_shares_the_tiny_weights() {
        let dev = Cpu::seed_from_u64(1);
        let mut model = NetAugMlp::<6, 4, 3, 2>::build(&dev);
        let x: Tensor<(usize, Const<6>), f32, _> = dev.sample_normal_like(&(5, Const));
        model.extras.into_tiny = dev.zeros();
        model.extras.into_head = dev.zeros();
        let tiny = model.tiny.forward(x.clone());
        let augmented = model.forward_augmented(x.clone().leaky_trace(), 2).retaped::<NoneTape>();
        crate::assert_close!(augmented.as_vec(), tiny.as_vec(), crate::testing::Tolerance::F32);

        // With the extras live, the augmented loss alone reaches tiny and extra weights.
        let model = NetAugMlp::<6, 4, 3, 2>::build(&dev);
        let grads = model.alloc_grads();
        let loss = LossTerms::new().add(
            "augmented.ce",
            1.0,
            cross_entropy_loss(model.forward_augmented(x.traced(grads), 3), &[0, 1, 0, 1, 1]).unwrap(),
        );
        let mut grads = loss.into_total().backward();
        assert!(
            grads.get(&model.tiny.0.weight).as_vec().iter().any(|g| *g != 0.0),
            "layer 1 of the tiny model learns"
        );
        assert!(
            grads.get(&model.tiny.2.weight).as_vec().iter().any(|g| *g != 0.0),
            "layer 2 of the tiny model learns"
        );
        assert!(
            grads.get(&model.extras.input_weight).as_vec().iter().any(|g| *g != 0.0),
            "the extras learn"
        );
        model.zero_grads(&mut grads);
    }
}
