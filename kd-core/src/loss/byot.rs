//! Be Your Own Teacher: the deepest classifier teaches shallow classifiers of the same network.
//!
//! **Paper:** L. Zhang, J. Song, A. Gao, J. Chen, C. Bao, K. Ma, *Be Your Own Teacher: Improve
//! the Performance of Convolutional Neural Networks via Self Distillation*, ICCV 2019,
//! <https://arxiv.org/abs/1905.08094>.
//!
//! For a shallow head `i` (logits `q_i`, bottleneck feature `F_i`) and the deepest head `C`:
//!
//! ```text
//! L_i = (1 − α) · CE(q_i, y) + α · T² · KL(p_C ‖ p_i) + λ · (1/B) Σ_b ‖F_i[b] − F_C[b]‖²₂
//! ```
//!
//! **Convention:** the paper's plain squared L2 of the feature difference, averaged over the
//! batch, and the KL as in [`kd_loss`] (T², batch-mean). The unofficial reference
//! (`luanyunteng/pytorch-be-your-own-teacher`, α = 0.1, T = 3, λ = 1e-6) masks the feature term
//! OFD-style; that variant is not reproduced. The deepest head's outputs are untaped, so the
//! shallow heads do not pull on it. The deepest head itself trains on `CE` alone.

use dfdx::prelude::*;

use crate::error::{self, in_loss, positive, unit_interval, LossError};
use crate::loss::{cross_entropy_loss, kd_loss, LossTerms};
use crate::ops::scalar;

/// Settings of Be Your Own Teacher, with the reference implementation's α and T.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ByotConfig {
    /// Balance `α ∈ [0, 1]` between the labels and the deepest head.
    pub alpha: f64,
    /// Temperature `T` of the KL term.
    pub temperature: f64,
    /// Weight `λ` of the feature term.
    pub feature_weight: f64,
}

impl Default for ByotConfig {
    fn default() -> Self {
        Self {
            alpha: 0.1,
            temperature: 3.0,
            feature_weight: 1e-6,
        }
    }
}

impl ByotConfig {
    /// Checks every setting, naming the first bad one.
    pub fn validate(&self) -> error::Result<()> {
        unit_interval("alpha", self.alpha)?;
        positive("temperature", self.temperature)?;
        error::non_negative("feature_weight", self.feature_weight)?;
        Ok(())
    }
}

/// One shallow head's objective: terms `"ce"`, `"kd"` and `"feature"` with weights `1 − α`, `α`
/// and `λ`.
///
/// # Arguments
/// - `student_logits`: the shallow head's logits `(B, C)`, taped.
/// - `teacher_logits`: the deepest head's logits, untaped.
/// - `targets`: the class of each sample.
/// - `student_feat`: the shallow head's bottleneck feature, taped.
/// - `teacher_feat`: the deepest feature, untaped, of the same shape.
///
/// # Errors
/// If `config` is invalid, an input is empty, the shapes disagree or a target is out of range.
pub fn byot_loss<B, C, S, E, D, T>(
    student_logits: Tensor<(B, C), E, D, T>,
    teacher_logits: Tensor<(B, C), E, D>,
    targets: &[usize],
    student_feat: Tensor<S, E, D, T>,
    teacher_feat: Tensor<S, E, D>,
    config: &ByotConfig,
) -> Result<LossTerms<E, D, T>, LossError>
where
    B: Dim,
    C: Dim,
    S: Shape,
    E: Dtype,
    D: Device<E>,
    T: Tape<E, D>,
{
    let check = || {
        config.validate()?;
        let batch = error::paired_batch(("student_logits", student_logits.shape()), ("student_feat", student_feat.shape()))?;
        error::same_shape(("student_feat", student_feat.shape()), ("teacher_feat", teacher_feat.shape()))?;
        Ok(batch)
    };
    let batch = check().map_err(in_loss("byot_loss"))?;
    let (logits, tape) = student_logits.split_tape();
    let ce = cross_entropy_loss(logits.clone().put_tape(tape), targets)?;
    let kd = kd_loss(logits.retaped::<T>(), teacher_logits, config.temperature)?;
    let per_sample = student_feat.shape().num_elements() as f64 / batch as f64;
    let feature = (student_feat - teacher_feat).square().mean() * scalar::<E>(per_sample);
    Ok(LossTerms::new()
        .add("ce", 1.0 - config.alpha, ce)
        .add("kd", config.alpha, kd)
        .add("feature", config.feature_weight, feature))
}

/// One classifier's output: its logits and its bottleneck feature, both taped.
pub struct Head<const C: usize, S: Shape> {
    /// Logits `(B, C)`.
    pub logits: Tensor<(usize, Const<C>), f32, Cpu, OwnedTape<f32, Cpu>>,
    /// The feature the L2 term compares, of the deepest feature's shape.
    pub feature: Tensor<S, f32, Cpu, OwnedTape<f32, Cpu>>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::assert_close;
    use crate::loss::test_vectors::*;
    use crate::testing::Tolerance;

    #[test]
    fn terms_are_the_shared_ce_and_kd_plus_the_feature_distance() {
        let config = ByotConfig {
            alpha: 0.4,
            temperature: 4.0,
            feature_weight: 0.5,
        };
        // The features of the two samples: rows 0 and 2 of the shared embedding vectors.
        let dev = Cpu::default();
        let student_feat: Tensor<Rank2<2, 2>, f64, _> = dev.tensor([[1.0, 0.0], [3.0, 1.0]]);
        let teacher_feat: Tensor<Rank2<2, 2>, f64, _> = dev.tensor([[0.5, 0.5], [2.0, -1.0]]);
        let loss = byot_loss(student_logits(), teacher_logits(), &LABELS, student_feat, teacher_feat, &config).unwrap();
        assert_close!(loss.get("ce").unwrap_or(f64::NAN), 0.2702599809, TABLE);
        assert_close!(loss.get("kd").unwrap_or(f64::NAN), 0.2389909405, TABLE);
        // rows: (0.5, −0.5), (1, 2) ⇒ squared norms 0.5, 5; batch mean 2.75.
        assert_close!(loss.get("feature").unwrap_or(f64::NAN), 2.75, Tolerance::F64);
        let weights: Vec<f64> = loss.terms().iter().map(|t| t.weight).collect();
        assert_close!(weights, [0.6, 0.4, 0.5], Tolerance::F64);
    }

    #[test]
    fn alpha_outside_the_unit_interval_is_named() {
        let error = ByotConfig {
            alpha: 1.5,
            ..ByotConfig::default()
        }
        .validate()
        .expect_err("invalid setting");
        assert_eq!(error.to_string(), "`alpha` must be in [0, 1], got 1.5");
    }
}
