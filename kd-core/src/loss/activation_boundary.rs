//! Activation boundaries: transfer which neurons fire, not how strongly.
//!
//! **Paper:** B. Heo, M. Lee, S. Yun, J. Y. Choi, *Knowledge Transfer via Distillation of
//! Activation Boundaries Formed by Hidden Neurons*, AAAI 2019, <https://arxiv.org/abs/1811.03233>.
//!
//! Applied to **pre-ReLU** features, the student's through a connector (a 1×1 convolution and
//! batch-norm, e.g. [`Conv1x1Adapter`](crate::loss::Conv1x1Adapter)). A squared hinge with
//! margin `m` pushes a student neuron above `+m` where the teacher's fires and below `−m` where
//! it does not:
//!
//! ```text
//! ℓ(s, t) = (s + m)² · 1[s > −m ∧ t ≤ 0]  +  (s − m)² · 1[s ≤ m ∧ t > 0]
//! L_ab    = (1/B) Σ_elements ℓ(s, t)                                   (m = 1)
//! ```
//!
//! **Convention:** the official `criterion_alternative_L2` (`bhheo/AB_distillation`), also
//! RepDistiller's `ABLoss` and torchdistill's `AltActTransferLoss`: summed over elements,
//! divided by the batch size. Written here as `relu(s + m)²` where the teacher is off and
//! `relu(m − s)²` where it is on, which is the same function. The official recipe weights
//! layers `1, 1/2, 1/4, …` from deep to shallow and the total by `3/1000`
//! ([`AbConfig`]), in an initialisation stage before the classification stage.

use dfdx::prelude::*;

use crate::error::{self, in_loss, LossError};
use crate::ops::scalar;

/// Settings of activation-boundary transfer, with the official defaults.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct AbConfig {
    /// The margin `m` (> 0).
    pub margin: f64,
    /// The weight of the summed layer terms (`3/1000` officially).
    pub weight: f64,
}

impl Default for AbConfig {
    fn default() -> Self {
        Self {
            margin: crate::defaults::SPARSITY_MARGIN,
            weight: crate::defaults::SPARSITY,
        }
    }
}

impl AbConfig {
    /// The official per-layer factor: `2^(i − n + 1)` for layer `i` of `n`, shallow to deep
    /// (1 for the deepest, 1/2 for the next, ...).
    pub fn layer_weight(layer: usize, layers: usize) -> f64 {
        2f64.powi(layer as i32 - layers as i32 + 1)
    }
}

/// The activation-boundary loss of one layer.
///
/// # Arguments
/// - `student_feat`: the student's **pre-ReLU** feature after its connector, taped.
/// - `teacher_feat`: the teacher's **pre-ReLU** feature, untaped. Only its sign is used.
/// - `margin`: `m` (> 0).
///
/// # Errors
/// If `margin` is not finite and positive, the features are empty, their shapes differ, or the
/// teacher's feature holds a NaN or an infinity (its sign would be misread as "off").
pub fn ab_loss<S: Shape, E: Dtype, D: Device<E>, T: Tape<E, D>>(
    student_feat: Tensor<S, E, D, T>,
    teacher_feat: Tensor<S, E, D>,
    margin: f64,
) -> Result<Tensor<Rank0, E, D, T>, LossError> {
    let check = || {
        let margin = error::positive("margin", margin)?;
        let batch = error::non_empty("student_feat", student_feat.shape())?;
        error::same_shape(("student_feat", student_feat.shape()), ("teacher_feat", teacher_feat.shape()))?;
        error::finite_values("teacher_feat", &teacher_feat.as_vec())?;
        Ok((margin, batch))
    };
    let (margin, batch) = check().map_err(in_loss("ab_loss"))?;
    let teacher_on = teacher_feat.gt(scalar::<E>(0.0));
    let m = scalar::<E>(margin);
    let (student, tape) = student_feat.split_tape();
    let below_margin = (student.retaped::<T>().negate() + m).relu().square();
    let above_minus_margin = (student.put_tape(tape) + m).relu().square();
    Ok(teacher_on.choose(below_margin, above_minus_margin).sum() * scalar::<E>(1.0 / batch as f64))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::assert_close;
    use crate::loss::test_vectors::*;
    use crate::ops::value_of;
    use crate::testing::Tolerance;

    #[test]
    fn zero_once_every_student_neuron_clears_the_margin_on_the_teachers_side() {
        let teacher = teacher_feat();
        let student = teacher.gt(0.0).choose(teacher.clone() * 0.0 + 1.5, teacher.clone() * 0.0 - 1.5);
        let loss = ab_loss(student.leaky_trace(), teacher, 1.0).unwrap();
        assert_close!(value_of(&loss), 0.0, Tolerance::F64);
    }

    // One neuron: teacher on (t > 0), student at s = 0.25 < m = 1 ⇒ (s − m)² = 0.5625, ∂/∂s = 2(s − m).
    #[test]
    fn one_neuron_in_closed_form() {
        let dev = Cpu::default();
        let student: Tensor<Rank2<1, 2>, f64, _> = dev.tensor([[0.25, -3.0]]);
        let teacher: Tensor<Rank2<1, 2>, f64, _> = dev.tensor([[2.0, -1.0]]);
        let loss = ab_loss(student.leaky_trace(), teacher, 1.0).unwrap();
        assert_close!(value_of(&loss), 0.5625, Tolerance::F64);
        assert_close!(loss.backward().get(&student), [[-1.5, 0.0]], Tolerance::F64);
    }

    #[test]
    fn official_layer_weights_halve_towards_the_input() {
        let weights: Vec<f64> = (0..3).map(|i| AbConfig::layer_weight(i, 3)).collect();
        assert_eq!(weights, vec![0.25, 0.5, 1.0]);
    }
}
