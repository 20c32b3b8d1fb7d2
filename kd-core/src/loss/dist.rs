//! DIST: relations between the teacher's and the student's predictions, by Pearson
//! correlation, across the classes of each sample (inter-class) and across the samples of each
//! class (intra-class).
//!
//! **Paper:** T. Huang, S. You, F. Wang, C. Qian, C. Xu, *Knowledge Distillation from A Stronger
//! Teacher*, NeurIPS 2022, <https://arxiv.org/abs/2205.10536>; official code
//! `hunto/DIST_KD` (`losses/dist_kd.py`), torchdistill `DISTLoss`.
//!
//! ```text
//! Y_s = softmax(Z_s / τ),  Y_t = softmax(Z_t / τ)                         (B × C, over classes)
//! ρ(u, v) = ⟨u − ū, v − v̄⟩ / (‖u − ū‖ · ‖v − v̄‖ + ε)                      (ε = 1e-8)
//! inter = τ² · (1 − (1/B) Σ_b ρ(Y_s[b,:], Y_t[b,:]))
//! intra = τ² · (1 − (1/C) Σ_c ρ(Y_s[:,c], Y_t[:,c]))
//! L = β · inter + γ · intra                                   (β = γ = τ = 1 by default)
//! ```
//!
//! **Convention:** the official code's: ε is added to the product of the norms (not clamped),
//! both terms are multiplied by `τ²`, and the intra-class term needs a batch of at least 2 (a
//! single sample has no spread across the batch, and its correlation is 0).

use dfdx::prelude::*;

use super::kd::tempered_log_probs;
use crate::error::{self, in_loss, positive, LossError};
use crate::ops::scalar;

/// The ε of the official code's Pearson correlation.
pub const DIST_EPS: f64 = 1e-8;

/// Settings of DIST; the defaults are the paper's ImageNet ones.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct DistConfig {
    /// Weight β of the inter-class relation.
    pub beta: f64,
    /// Weight γ of the intra-class relation.
    pub gamma: f64,
    /// Temperature τ.
    pub temperature: f64,
}

impl Default for DistConfig {
    fn default() -> Self {
        DistConfig {
            beta: 1.0,
            gamma: 1.0,
            temperature: 1.0,
        }
    }
}

impl DistConfig {
    /// Checks every setting, naming the first bad one.
    pub fn validate(&self) -> error::Result<()> {
        error::non_negative("beta", self.beta)?;
        error::non_negative("gamma", self.gamma)?;
        positive("temperature", self.temperature)?;
        Ok(())
    }
}

/// `1 − mean over rows of ρ(student[row], teacher[row])`, the correlation taken along axis 1.
fn one_minus_mean_row_correlation<R: Dim, K: Dim, E: Dtype, D: Device<E>, T: Tape<E, D>>(
    student: Tensor<(R, K), E, D, T>,
    teacher: Tensor<(R, K), E, D>,
) -> Tensor<Rank0, E, D, T> {
    let shape = *student.shape();
    let centre = |x: Tensor<(R, K), E, D, T>| {
        let mean = x.retaped::<T>().mean::<_, Axis<1>>().broadcast_like(&shape);
        x - mean
    };
    let student = centre(student);
    let teacher = teacher.clone() - teacher.mean::<_, Axis<1>>().broadcast_like(&shape);
    let norm = |x: Tensor<(R, K), E, D, T>| x.square().sum::<_, Axis<1>>().sqrt();
    let teacher_norm = teacher.clone().square().sum::<_, Axis<1>>().sqrt();
    let dot = (student.retaped::<T>() * teacher).sum::<_, Axis<1>>();
    let correlation = dot / (norm(student) * teacher_norm + scalar::<E>(DIST_EPS));
    correlation.mean().negate() + scalar::<E>(1.0)
}

/// DIST: `β · inter + γ · intra`, each `τ² · (1 − mean Pearson correlation)` of the softened
/// predictions, per sample across classes (inter) and per class across the batch (intra).
///
/// # Arguments
/// - `student_logits`: `(B, C)`, taped, raw scores.
/// - `teacher_logits`: `(B, C)`, untaped.
/// - `config`: β, γ and τ.
///
/// # Errors
/// If `config` is invalid, the logits are empty or their shapes differ.
pub fn dist_loss<B: Dim, C: Dim, E: Dtype, D: Device<E>, T: Tape<E, D>>(
    student_logits: Tensor<(B, C), E, D, T>,
    teacher_logits: Tensor<(B, C), E, D>,
    config: &DistConfig,
) -> Result<Tensor<Rank0, E, D, T>, LossError> {
    config.validate().map_err(in_loss("dist_loss"))?;
    let temperature = super::kd::check_logit_pair(&student_logits, &teacher_logits, config.temperature).map_err(in_loss("dist_loss"))?;
    let p_student = tempered_log_probs(student_logits, temperature).exp();
    let p_teacher = tempered_log_probs(teacher_logits, temperature).exp();
    let inter = one_minus_mean_row_correlation(p_student.retaped::<T>(), p_teacher.clone());
    let intra = one_minus_mean_row_correlation(p_student.permute::<(C, B), _>(), p_teacher.permute::<(C, B), _>());
    let t2 = temperature * temperature;
    Ok(inter * scalar::<E>(config.beta * t2) + intra * scalar::<E>(config.gamma * t2))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::assert_close;
    use crate::loss::test_vectors::*;
    use crate::ops::value_of;
    use crate::testing::Tolerance;

    #[test]
    fn a_student_equal_to_its_teacher_has_zero_loss_and_gradient() {
        let logits = wavy::<Rank2<4, 6>>(1.0, 3.0);
        let loss = dist_loss(logits.leaky_trace(), logits.clone(), &DistConfig::default()).unwrap();
        // Only ε keeps the correlations below 1.
        assert_close!(value_of(&loss), 0.0, Tolerance::rel_abs(0.0, 1e-5));
        assert_close!(loss.backward().get(&logits), [[0.0; 6]; 4], Tolerance::rel_abs(0.0, 1e-5));
    }

    /// Two classes in swapped order: the centred predictions are negatives of each other, so
    /// ρ = −1 and the inter-class term is 1 − (−1) = 2.
    #[test]
    fn inter_class_relation_is_one_minus_the_correlation() {
        let dev = Dev::default();
        let teacher: Tensor<Rank2<1, 2>, f64, _> = dev.tensor([[1.0, 0.0]]);
        let student: Tensor<Rank2<1, 2>, f64, _> = dev.tensor([[0.0, 1.0]]);
        let config = DistConfig {
            gamma: 0.0,
            ..DistConfig::default()
        };
        assert_close!(
            value_of(&dist_loss(student, teacher, &config).unwrap()),
            2.0,
            Tolerance::rel_abs(1e-7, 1e-7)
        );
    }

    #[test]
    fn a_nan_weight_is_rejected_by_name() {
        let config = DistConfig {
            gamma: f64::NAN,
            ..DistConfig::default()
        };
        let error = dist_loss(student_logits(), teacher_logits(), &config).unwrap_err().to_string();
        assert!(error.contains("dist_loss: `gamma` must be finite and >= 0, got NaN"), "{error}");
    }
}
