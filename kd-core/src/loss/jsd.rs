//! Generalised Jensen-Shannon divergence JSD(β) between the teacher's and the student's
//! softened distributions.
//!
//! **Paper:** R. Agarwal, N. Vieillard, Y. Zhou, P. Stanczyk, S. Ramos, M. Geist, O. Bachem,
//! *On-Policy Distillation of Language Models: Learning from Self-Generated Mistakes* (GKD),
//! ICLR 2024, <https://arxiv.org/abs/2306.13649>, eq. (1); TRL's `GKDTrainer.generalized_jsd_loss`.
//!
//! ```text
//! p_s = softmax(z_s / T),  p_t = softmax(z_t / T),  m = β · p_t + (1 − β) · p_s
//! JSD(β) = β · KL(p_t ‖ m) + (1 − β) · KL(p_s ‖ m)                       for 0 < β < 1
//! JSD(0) = KL(p_t ‖ p_s)    (forward KL, as kd_loss)
//! JSD(1) = KL(p_s ‖ p_t)    (reverse KL, as reverse_kl_loss)
//! L = T² · (1/B) Σ_b JSD(β)[b]
//! ```
//!
//! **Convention:** TRL's, including its ends: β weighs the teacher in the mixture, β = 0 is the
//! forward KL and β = 1 the reverse KL. Between them the value is the generalised JSD, which
//! itself tends to 0 at both ends (`JSD(β)/β → KL(p_t ‖ p_s)` as β → 0), so the value jumps at
//! β = 0 and β = 1 exactly as TRL's does. β = 0.5 is the symmetric JSD, bounded by `ln 2 · T²`.
//! The temperature is applied as in [`kd_loss`]: softened by `T`, `batchmean`,
//! times `T²`; TRL omits the `T²`.
//!
//! **Numerics:** `log m` is `logaddexp(log p_t + ln β, log p_s + ln(1 − β))` from the
//! log-probabilities, so classes whose probabilities underflow stay finite.

use dfdx::prelude::*;

use super::kd::{check_logit_pair, sum_classes_mean_rest_times_t2, tempered_log_probs};
use super::{kd_loss, reverse_kl_loss};
use crate::error::{in_loss, unit_interval, LossError};
use crate::ops::scalar;

/// `T² · JSD(β)(p_t, p_s)` with TRL's convention (β = 0: forward KL, β = 1: reverse KL),
/// summed over the last (class) axis and averaged over the others.
///
/// # Arguments
/// - `student_logits`: raw scores, **not** the output of softmax.
/// - `teacher_logits`: raw scores of the teacher, untaped.
/// - `temperature`: `T`, finite and > 0.
/// - `beta`: the teacher's weight in the mixture, in `[0, 1]`.
///
/// # Errors
/// If `temperature` is not finite and positive, `beta` is outside `[0, 1]`, the logits are
/// empty or their runtime shapes differ.
pub fn jsd_loss<S: Shape, E: Dtype, D: Device<E>, T: Tape<E, D>>(
    student_logits: Tensor<S, E, D, T>,
    teacher_logits: Tensor<S, E, D>,
    temperature: f64,
    beta: f64,
) -> Result<Tensor<Rank0, E, D, T>, LossError> {
    let (beta, temperature) = unit_interval("beta", beta)
        .and_then(|beta| Ok((beta, check_logit_pair(&student_logits, &teacher_logits, temperature)?)))
        .map_err(in_loss("jsd_loss"))?;
    if beta == 0.0 {
        return kd_loss(student_logits, teacher_logits, temperature);
    }
    if beta == 1.0 {
        return reverse_kl_loss(student_logits, teacher_logits, temperature);
    }
    let log_p_student = tempered_log_probs(student_logits, temperature);
    let log_p_teacher = tempered_log_probs(teacher_logits, temperature);
    let p_student = log_p_student.retaped::<T>().exp();
    let p_teacher = log_p_teacher.clone().exp();
    // log m = logaddexp(a, b); the maximum's share of the gradient cancels exactly.
    let a = log_p_student.retaped::<T>() + scalar::<E>((1.0 - beta).ln());
    let b = log_p_teacher.clone() + scalar::<E>(beta.ln());
    let top = a.retaped::<T>().maximum(b.clone());
    let log_m = top.retaped::<T>() + ((a - top.retaped::<T>()).exp() + (top - b).negate().exp()).ln();
    let teacher_part = (log_m.retaped::<T>().negate() + log_p_teacher) * p_teacher * scalar::<E>(beta);
    let student_part = (log_p_student - log_m) * p_student * scalar::<E>(1.0 - beta);
    Ok(sum_classes_mean_rest_times_t2(teacher_part + student_part, temperature))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::assert_close;
    use crate::loss::test_vectors::*;
    use crate::ops::value_of;
    use crate::testing::Tolerance;

    /// JSD(β) straight from the definition, with m formed from the probabilities.
    fn by_definition(student: &[f64], teacher: &[f64], temperature: f64, beta: f64) -> f64 {
        let softmax = |z: &[f64]| {
            let exps: Vec<f64> = z.iter().map(|v| (v / temperature).exp()).collect();
            let sum: f64 = exps.iter().sum();
            exps.into_iter().map(|e| e / sum).collect::<Vec<_>>()
        };
        let (p_s, p_t) = (softmax(student), softmax(teacher));
        let m: Vec<f64> = p_s.iter().zip(&p_t).map(|(s, t)| beta * t + (1.0 - beta) * s).collect();
        let kl = |p: &[f64]| p.iter().zip(&m).map(|(p, m)| p * (p / m).ln()).sum::<f64>();
        temperature * temperature * (beta * kl(&p_t) + (1.0 - beta) * kl(&p_s))
    }

    #[test]
    fn matches_the_definition_between_the_ends() {
        let (student, teacher) = (wavy::<Rank2<1, 6>>(1.0, 3.0), wavy::<Rank2<1, 6>>(2.0, 3.0));
        for (temperature, beta) in [(1.0, 0.5), (2.0, 0.1), (4.0, 0.9)] {
            let ours = value_of(&jsd_loss(student.clone(), teacher.clone(), temperature, beta).unwrap());
            let expected = by_definition(&student.as_vec(), &teacher.as_vec(), temperature, beta);
            assert_close!(ours, expected, Tolerance::F64);
        }
    }

    #[test]
    fn the_ends_are_the_two_kls() {
        let (student, teacher) = (wavy::<Rank2<3, 5>>(1.0, 3.0), wavy::<Rank2<3, 5>>(2.0, 3.0));
        let forward = value_of(&kd_loss(student.clone(), teacher.clone(), 2.0).unwrap());
        let reverse = value_of(&reverse_kl_loss(student.clone(), teacher.clone(), 2.0).unwrap());
        assert_close!(
            value_of(&jsd_loss(student.clone(), teacher.clone(), 2.0, 0.0).unwrap()),
            forward,
            Tolerance::F64
        );
        assert_close!(value_of(&jsd_loss(student, teacher, 2.0, 1.0).unwrap()), reverse, Tolerance::F64);
    }

    /// The symmetric JSD is at most ln 2 (times T²), reached by disjoint distributions.
    #[test]
    fn the_symmetric_jsd_is_bounded_by_ln_2() {
        let dev = Dev::default();
        let student: Tensor<Rank2<1, 2>, f64, _> = dev.tensor([[300.0, -300.0]]);
        let teacher: Tensor<Rank2<1, 2>, f64, _> = dev.tensor([[-300.0, 300.0]]);
        let loss = jsd_loss(student.leaky_trace(), teacher, 1.0, 0.5).unwrap();
        assert_close!(value_of(&loss), std::f64::consts::LN_2, Tolerance::F64);
        assert!(loss.backward().get(&student).as_vec().iter().all(|g| g.is_finite()));
    }

    #[test]
    fn a_student_equal_to_its_teacher_has_zero_loss_and_gradient() {
        let logits = wavy::<Rank2<3, 5>>(1.0, 4.0);
        let loss = jsd_loss(logits.leaky_trace(), logits.clone(), 2.0, 0.5).unwrap();
        assert_close!(value_of(&loss), 0.0, Tolerance::F64);
        assert_close!(loss.backward().get(&logits), [[0.0; 5]; 3], Tolerance::F64);
    }

    #[test]
    fn beta_outside_the_unit_interval_is_rejected_by_name() {
        let error = jsd_loss(student_logits(), teacher_logits(), 1.0, 1.5).unwrap_err().to_string();
        assert!(error.contains("jsd_loss: `beta` must be in [0, 1], got 1.5"), "{error}");
    }
}
