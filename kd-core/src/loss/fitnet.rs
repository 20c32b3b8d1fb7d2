//! FitNet hints: a student layer regresses the teacher's through a learned adapter.
//!
//! **Paper:** A. Romero, N. Ballas, S. E. Kahou, A. Chassang, C. Gatta, Y. Bengio, *FitNets:
//! Hints for Thin Deep Nets*, ICLR 2015, <https://arxiv.org/abs/1412.6550>.
//!
//! ```text
//! L_hint = mean over all elements of (r(f_s) − f_t)²          r: the adapter ("regressor")
//! ```
//!
//! **Convention:** mean squared error over every element (`nn.MSELoss()`), RepDistiller's
//! `HintLoss`, used there with weight 100 in a single stage. The paper writes `½‖·‖²` and trains
//! the hint in a first stage; the factor and the schedule belong to the regime, not the loss.
//!
//! **Adapters:** [`LinearAdapter`] maps `(B, I)` vectors to `(B, O)`; [`Conv1x1Adapter`] maps
//! `(B, I, H, W)` feature maps to `(B, O, H, W)` with one `O×I` matrix applied at every position
//! (a 1×1 convolution, as torchdistill's 1×1 `ConvReg` and GAN Compression's adapters). Both are
//! dfdx modules, so the optimiser updates them together with the student. Their dimensions are
//! const generics: a student/teacher width mismatch the adapter does not bridge is a type error.

use dfdx::nn::{BuildModule, BuildOnDevice, Module, NonMutableModule, TensorCollection};
use dfdx::nn::{ModuleVisitor, TensorOptions};
use dfdx::prelude::*;
use dfdx::tensor_ops::Device;

use crate::ops::expect_same_shape;

/// The FitNet hint: mean squared error between the adapted student feature and the teacher's.
///
/// # Arguments
/// - `student_feat`: the student's feature **after** its adapter, taped.
/// - `teacher_feat`: the teacher's feature, untaped.
///
/// # Panics
/// If the runtime shapes differ.
pub fn hint_loss<S: Shape, E: Dtype, D: Device<E>, T: Tape<E, D>>(
    student_feat: Tensor<S, E, D, T>,
    teacher_feat: Tensor<S, E, D>,
) -> Tensor<Rank0, E, D, T> {
    expect_same_shape(
        "hint_loss",
        ("student_feat", student_feat.shape()),
        ("teacher_feat", teacher_feat.shape()),
    );
    (student_feat - teacher_feat).square().mean()
}

/// A linear adapter from `I` student features to `O` teacher features (dfdx's `Linear`).
pub type LinearAdapter<const I: usize, const O: usize> = dfdx::nn::builders::Linear<I, O>;

/// Builder types, as dfdx's `nn::builders`.
pub mod builder {
    /// Builds a [`super::Conv1x1Adapter`] mapping `I` channels to `O`.
    #[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
    pub struct Conv1x1Adapter<const I: usize, const O: usize>;
}

/// A 1×1 convolution: `y[b, o, h, w] = Σ_i weight[o, i] · x[b, i, h, w] + bias[o]`.
///
/// Initialised as PyTorch's `Conv2d` (`kaiming_uniform_(a=√5)` ⇒ `U(−1/√I, 1/√I)` for weight and
/// bias, fan-in `I·1·1`; `torch/nn/modules/conv.py`, `reset_parameters`).
#[derive(Debug, Clone)]
pub struct Conv1x1Adapter<const I: usize, const O: usize, E: Dtype, D: Storage<E>> {
    /// `O × I` channel mixing matrix.
    pub weight: Tensor<Rank2<O, I>, E, D>,
    /// Per-output-channel bias.
    pub bias: Tensor<Rank1<O>, E, D>,
}

impl<const I: usize, const O: usize, E: Dtype, D: Device<E>> BuildOnDevice<D, E>
    for builder::Conv1x1Adapter<I, O>
where
    Conv1x1Adapter<I, O, E, D>: BuildModule<D, E>,
{
    type Built = Conv1x1Adapter<I, O, E, D>;
    fn try_build_on_device(device: &D) -> Result<Self::Built, D::Err> {
        Self::Built::try_build(device)
    }
}

impl<const I: usize, const O: usize, E: Dtype, D: Storage<E>> NonMutableModule
    for Conv1x1Adapter<I, O, E, D>
{
}

impl<const I: usize, const O: usize, E, D> TensorCollection<E, D> for Conv1x1Adapter<I, O, E, D>
where
    E: Dtype + num_traits::Float + rand_distr::uniform::SampleUniform,
    D: Device<E>,
{
    type To<E2: Dtype, D2: Device<E2>> = Conv1x1Adapter<I, O, E2, D2>;

    fn iter_tensors<V: ModuleVisitor<Self, E, D>>(
        visitor: &mut V,
    ) -> Result<Option<Self::To<V::E2, V::D2>>, V::Err> {
        visitor.visit_fields(
            (
                Self::tensor("weight", |s| &s.weight, |s| &mut s.weight, fan_in_uniform::<I, _, _, _>()),
                Self::tensor("bias", |s| &s.bias, |s| &mut s.bias, fan_in_uniform::<I, _, _, _>()),
            ),
            |(weight, bias)| Conv1x1Adapter { weight, bias },
        )
    }
}

/// PyTorch's default initialisation of convolutions and linear layers: `U(−1/√fan_in, 1/√fan_in)`.
pub(crate) fn fan_in_uniform<const FAN_IN: usize, S: ConstShape, E, D>() -> TensorOptions<S, E, D>
where
    E: Dtype + num_traits::Float + rand_distr::uniform::SampleUniform,
    D: Device<E>,
{
    TensorOptions::reset_with(|t| {
        let bound = crate::ops::scalar::<E>(1.0 / (FAN_IN as f64).sqrt());
        t.try_fill_with_distr(rand_distr::Uniform::new(-bound, bound))
    })
}

impl<B, H, W, const I: usize, const O: usize, E, D, T> Module<Tensor<(B, Const<I>, H, W), E, D, T>>
    for Conv1x1Adapter<I, O, E, D>
where
    B: Dim,
    H: Dim,
    W: Dim,
    E: Dtype,
    D: Device<E>,
    T: Tape<E, D>,
{
    type Output = Tensor<(B, Const<O>, H, W), E, D, T>;
    type Error = D::Err;

    fn try_forward(&self, x: Tensor<(B, Const<I>, H, W), E, D, T>) -> Result<Self::Output, D::Err> {
        let (batch, _, height, width) = *x.shape();
        let positions = height.size() * width.size();
        // (B, I, HW) -> (B, HW, I) · (I, O) -> (B, HW, O): one matmul over all positions.
        let mixed = x
            .try_reshape_like(&(batch, Const::<I>, positions))?
            .try_permute::<_, Axes3<0, 2, 1>>()?
            .try_matmul(self.weight.retaped::<T>().try_permute::<_, Axes2<1, 0>>()?)?;
        let shape = *mixed.shape();
        mixed
            .try_add(self.bias.retaped::<T>().try_broadcast_like(&shape)?)?
            .try_permute::<_, Axes3<0, 2, 1>>()?
            .try_reshape_like(&(batch, Const::<O>, height, width))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::assert_close;
    use crate::loss::test_vectors::*;
    use crate::ops::value_of;
    use crate::testing::Tolerance;

    // d/ds mean((s − t)²) = 2(s − t)/N.
    #[test]
    fn value_and_gradient_in_closed_form() {
        let (student, teacher) = (student_feat(), teacher_feat());
        let loss = hint_loss(student.leaky_trace(), teacher.clone());
        let diff = (student.clone() - teacher).as_vec();
        assert_close!(value_of(&loss), diff.iter().map(|d| d * d).sum::<f64>() / 16.0, Tolerance::F64);
        let expected: Vec<f64> = diff.iter().map(|d| 2.0 * d / 16.0).collect();
        assert_close!(loss.backward().get(&student).as_vec(), expected, Tolerance::F64);
    }

    #[test]
    fn adapters_align_widths_in_the_types() {
        let dev = Cpu::default();
        let adapter = dev.build_module::<LinearAdapter<3, 5>, f64>();
        let vectors: Tensor<(usize, Const<3>), f64, _> = dev.ones_like(&(4, Const));
        let aligned: Tensor<(usize, Const<5>), f64, _> = adapter.forward(vectors);
        assert_eq!(aligned.shape().0, 4);

        let conv = dev.build_module::<builder::Conv1x1Adapter<2, 6>, f64>();
        let bound = 1.0 / 2f64.sqrt();
        assert!(conv.weight.as_vec().iter().chain(conv.bias.as_vec().iter()).all(|w| w.abs() <= bound));
        let maps: Tensor<(usize, Const<2>, usize, usize), f64, _> = dev.ones_like(&(3, Const, 4, 5));
        let out: Tensor<(usize, Const<6>, usize, usize), f64, _> = conv.forward(maps);
        assert_eq!(out.shape().concrete(), [3, 6, 4, 5]);
    }
}
