//! Decoupled knowledge distillation: the KD term split into target and non-target parts.
//!
//! **Paper:** B. Zhao, Q. Cui, R. Song, Y. Qiu, J. Liang, *Decoupled Knowledge Distillation*,
//! CVPR 2022, <https://arxiv.org/abs/2203.08679>.
//!
//! ```text
//! b = [p_y, 1 − p_y]                      binary target/non-target probabilities at T
//! TCKD = T² · (1/B) Σ_b KL(b_T ‖ b_S)
//! p̂ = softmax(z/T − 1000·onehot(y))     distribution over the non-target classes
//! NCKD = T² · (1/B) Σ_b KL(p̂_T ‖ p̂_S)
//! L_dkd = α · TCKD + β · NCKD             (α = 1, β = 8, T = 4)
//! ```
//!
//! **Convention:** mdistiller `distillers/DKD.py`, including its `−1000` mask. The warm-up
//! factor `min(epoch/20, 1)` belongs to the training loop. Unlike mdistiller, `log b` is taken
//! in log space (`log(1 − p_y) = logsumexp(z/T − 1000·onehot) − logsumexp(z/T)`), so a
//! saturated target probability does not produce `log 0`.

use dfdx::prelude::*;

use crate::error::{self, in_loss, positive, LossError};
use crate::ops::scalar;

/// Settings of DKD, mdistiller's CIFAR-100 defaults.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct DkdConfig {
    /// Weight α of TCKD.
    pub alpha: f64,
    /// Weight β of NCKD.
    pub beta: f64,
    /// Temperature T.
    pub temperature: f64,
}

impl Default for DkdConfig {
    fn default() -> Self {
        Self {
            alpha: 1.0,
            beta: 8.0,
            temperature: 4.0,
        }
    }
}

impl DkdConfig {
    /// Checks every setting, naming the first bad one.
    pub fn validate(&self) -> error::Result<()> {
        error::non_negative("alpha", self.alpha)?;
        error::non_negative("beta", self.beta)?;
        positive("temperature", self.temperature)?;
        Ok(())
    }
}

/// Per-row log-probabilities: `(log b_target, log b_other, log p̂)`.
#[allow(clippy::type_complexity)]
fn decoupled_log_probs<B: Dim, C: Dim, E: Dtype, D: Device<E>, T: Tape<E, D>>(
    logits: Tensor<(B, C), E, D, T>,
    target_mask: &Tensor<(B, C), E, D>,
    temperature: f64,
) -> (Tensor<(B,), E, D, T>, Tensor<(B,), E, D, T>, Tensor<(B, C), E, D, T>) {
    let scaled = logits * scalar::<E>(1.0 / temperature);
    let masked = scaled.retaped::<T>() + target_mask.clone() * scalar::<E>(-1000.0);
    let log_z = scaled.retaped::<T>().logsumexp::<_, Axis<1>>();
    let log_target = (scaled.log_softmax::<Axis<1>>() * target_mask.clone()).sum::<_, Axis<1>>();
    let log_other = masked.retaped::<T>().logsumexp::<_, Axis<1>>() - log_z;
    (log_target, log_other, masked.log_softmax::<Axis<1>>())
}

/// DKD: `α · TCKD + β · NCKD`.
///
/// # Arguments
/// - `student_logits`: `(B, C)`, taped, raw scores.
/// - `teacher_logits`: `(B, C)`, untaped.
/// - `targets`: the class of each sample.
///
/// # Errors
/// If `config` is invalid, the logits are empty, their shapes differ, or a target is out of
/// range.
pub fn dkd_loss<B: Dim, C: Dim, E: Dtype, D: Device<E>, T: Tape<E, D>>(
    student_logits: Tensor<(B, C), E, D, T>,
    teacher_logits: Tensor<(B, C), E, D>,
    targets: &[usize],
    config: &DkdConfig,
) -> Result<Tensor<Rank0, E, D, T>, LossError> {
    config
        .validate()
        .and_then(|()| super::kd::check_logit_pair(&student_logits, &teacher_logits, config.temperature))
        .and_then(|_| super::kd::check_targets(&student_logits, targets))
        .map_err(in_loss("dkd_loss"))?;
    let shape = *student_logits.shape();
    let (batch, classes) = (shape.0.size(), shape.1.size());
    let one_hot: Vec<E> = (0..batch * classes)
        .map(|k| {
            if targets[k / classes] == k % classes {
                scalar(1.0)
            } else {
                scalar(0.0)
            }
        })
        .collect();
    let target_mask = student_logits.device().tensor_from_vec(one_hot, shape);

    let t = config.temperature;
    let (s_target, s_other, s_rest) = decoupled_log_probs(student_logits, &target_mask, t);
    let (t_target, t_other, t_rest) = decoupled_log_probs(teacher_logits, &target_mask, t);
    let kl_term = |log_p_student: Tensor<(B,), E, D, T>, log_p_teacher: Tensor<(B,), E, D>| {
        (log_p_student.negate() + log_p_teacher.clone()) * log_p_teacher.exp()
    };
    let tckd = (kl_term(s_target, t_target) + kl_term(s_other, t_other)).sum();
    let nckd = ((s_rest.negate() + t_rest.clone()) * t_rest.exp()).sum();
    let scale = t * t / batch as f64;
    Ok(tckd * scalar::<E>(config.alpha * scale) + nckd * scalar::<E>(config.beta * scale))
}
