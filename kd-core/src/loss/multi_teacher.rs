//! Several teachers, one student: the soft term against the teachers' weighted average, or one
//! soft term per teacher.
//!
//! **Papers:** S. You, C. Xu, C. Xu, D. Tao, *Learning from Multiple Teacher Networks*, KDD 2017
//! (averaged soft targets); Hinton et al. 2015 §3 (an ensemble's averaged predictions as the
//! soft targets); F. Yuan et al., *Reinforced Multi-Teacher Selection for Knowledge
//! Distillation*, AAAI 2021 (a weighted term per teacher).
//!
//! ```text
//! ŵ_k  = w_k / Σ_j w_j                                   (relative teacher weights)
//! p̄    = Σ_k ŵ_k · softmax(z_k / T)                      (Ensemble::Average)
//! L    = ce_weight · CE + kd_weight · D(p̄ ‖ p_s)
//! L    = ce_weight · CE + Σ_k kd_weight · ŵ_k · D(p_k ‖ p_s)   (Ensemble::Each)
//! ```
//!
//! **Convention:** the teacher weights are shares, normalised to sum 1, so `kd_weight` keeps its
//! single-teacher meaning (the whole soft weight) in both modes. The average is taken over
//! probabilities at the temperature `T`, as torchdistill's and KD_Lib's multi-teacher
//! distillers do, and is handed to the divergence as the pseudo-logits `T · log p̄` (whose
//! softmax at `T` is `p̄` exactly), so every [`Divergence`](super::Divergence) works with an
//! ensemble. `log p̄` is a log-sum-exp of `log ŵ_k + log_softmax(z_k/T)`: it stays finite where
//! a teacher's probabilities underflow, and a teacher of weight 0 is left out.
//!
//! With the forward KL the two modes differ in value but not in the student's gradient:
//! `∂/∂z_s T²·KL(p̄ ‖ p_s) = T(p_s − p̄)/B = Σ_k ŵ_k · T(p_s − p_k)/B`, the gradient of the
//! weighted per-teacher terms. They train differently only with another divergence (reverse
//! KL, JSD, TVD, DIST), whose gradient is not linear in the teacher's probabilities.

use dfdx::prelude::*;

use super::kd::{check_logit_pair, check_targets, cross_entropy_loss, tempered_log_probs, KdConfig};
use super::{divergence_loss, LossTerms};
use crate::error::{self, in_loss, Error, LossError};
use crate::ops::scalar;

/// How the soft term uses several teachers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Ensemble {
    /// One `"kd"` term against the weighted average of the teachers' probabilities.
    #[default]
    Average,
    /// One term per teacher, weighted by its share of `kd_weight`.
    Each,
}

/// The teachers' weights as shares summing to 1, checked.
fn shares(weights: &[f64], teachers: usize) -> error::Result<Vec<f64>> {
    if teachers == 0 {
        return Err(Error::NoItems {
            argument: "teacher_logits",
        });
    }
    error::same_size("count", ("teacher_logits", teachers), ("teacher weights", weights.len()))?;
    for &weight in weights {
        error::non_negative("teacher weight", weight)?;
    }
    let total: f64 = weights.iter().sum();
    if total <= 0.0 {
        return Err(Error::InvalidSetting {
            argument: "teacher weights",
            requirement: "not all 0",
            value: total,
        });
    }
    Ok(weights.iter().map(|w| w / total).collect())
}

/// The pseudo-logits `T · log Σ_k ŵ_k softmax(teacher_logits[k] / T)`: their softmax at `T`
/// is the teachers' weighted average probability.
///
/// # Errors
/// If there is no teacher, the weights do not match the teachers or are negative, non-finite or
/// all 0, the temperature is not finite and positive, or the teachers' shapes differ.
pub fn ensemble_teacher_logits<S: Shape, E: Dtype, D: Device<E>>(
    teacher_logits: &[Tensor<S, E, D>],
    weights: &[f64],
    temperature: f64,
) -> Result<Tensor<S, E, D>, LossError> {
    let check = || {
        let shares = shares(weights, teacher_logits.len())?;
        let first = &teacher_logits[0];
        for teacher in teacher_logits {
            check_logit_pair(first, teacher, temperature)?;
        }
        Ok(shares)
    };
    let shares = check().map_err(in_loss("ensemble_teacher_logits"))?;
    let weighted: Vec<Tensor<S, E, D>> = teacher_logits
        .iter()
        .zip(&shares)
        .filter(|(_, &share)| share > 0.0)
        .map(|(logits, &share)| tempered_log_probs(logits.clone(), temperature) + scalar::<E>(share.ln()))
        .collect();
    let top = weighted[1..].iter().fold(weighted[0].clone(), |top, w| top.maximum(w.clone()));
    let sum = weighted[1..].iter().fold((weighted[0].clone() - top.clone()).exp(), |sum, w| {
        sum + (w.clone() - top.clone()).exp()
    });
    Ok((top + sum.ln()) * scalar::<E>(temperature))
}

/// Hinton's objective with several teachers: `"ce"`, then `"kd"` against the teachers' average
/// ([`Ensemble::Average`]) or one term per teacher named by `teachers` ([`Ensemble::Each`]).
///
/// # Arguments
/// - `student_logits`: `(B, C)`, taped.
/// - `teacher_logits`: each teacher's `(B, C)` logits, untaped.
/// - `teachers`: per teacher, the name of its term under [`Ensemble::Each`] (`"kd.wide"`) and
///   its weight (relative; normalised to sum 1).
/// - `config`: temperature, `ce_weight`, `kd_weight` (the whole soft weight) and divergence.
///
/// # Errors
/// If `config` or the teacher weights are invalid, the logits are empty or of different shapes,
/// or a target is out of range.
pub fn multi_teacher_kd_with_ce_loss<B: Dim, C: Dim, E: Dtype, D: Device<E>, T: Tape<E, D>>(
    student_logits: Tensor<(B, C), E, D, T>,
    teacher_logits: &[Tensor<(B, C), E, D>],
    teachers: &[(&'static str, f64)],
    targets: &[usize],
    config: &KdConfig,
    ensemble: Ensemble,
) -> Result<LossTerms<E, D, T>, LossError> {
    let weights: Vec<f64> = teachers.iter().map(|(_, weight)| *weight).collect();
    let check = || {
        config.validate()?;
        let shares = shares(&weights, teacher_logits.len())?;
        for teacher in teacher_logits {
            check_logit_pair(&student_logits, teacher, config.temperature)?;
        }
        check_targets(&student_logits, targets)?;
        Ok(shares)
    };
    let shares = check().map_err(in_loss("multi_teacher_kd_with_ce_loss"))?;
    let (student_logits, tape) = student_logits.split_tape();
    let ce = cross_entropy_loss(student_logits.clone().put_tape(tape), targets)?;
    let loss = LossTerms::new().add("ce", config.ce_weight, ce);
    let soft =
        |teacher: Tensor<(B, C), E, D>| divergence_loss(student_logits.retaped::<T>(), teacher, config.temperature, &config.divergence);
    match ensemble {
        Ensemble::Average => {
            let average = ensemble_teacher_logits(teacher_logits, &weights, config.temperature)?;
            Ok(loss.add("kd", config.kd_weight, soft(average)?))
        }
        Ensemble::Each => teacher_logits
            .iter()
            .zip(teachers)
            .zip(&shares)
            .try_fold(loss, |loss, ((logits, (name, _)), share)| {
                Ok(loss.add(name, config.kd_weight * share, soft(logits.clone())?))
            }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::assert_close;
    use crate::loss::test_vectors::*;
    use crate::loss::{kd_loss, Divergence};
    use crate::ops::value_of;
    use crate::testing::Tolerance;

    /// The weighted average of the teachers' probabilities, computed row by row in f64.
    fn averaged_probabilities(teachers: &[[[f64; 3]; 2]], weights: &[f64], temperature: f64) -> Vec<f64> {
        let total: f64 = weights.iter().sum();
        let mut average = vec![0.0; 6];
        for (teacher, weight) in teachers.iter().zip(weights) {
            for (row, logits) in teacher.iter().enumerate() {
                let exps: Vec<f64> = logits.iter().map(|z| (z / temperature).exp()).collect();
                let norm: f64 = exps.iter().sum();
                for (class, e) in exps.iter().enumerate() {
                    average[row * 3 + class] += weight / total * e / norm;
                }
            }
        }
        average
    }

    #[test]
    fn the_pseudo_logits_soften_to_the_weighted_average_probability() {
        let dev = Cpu::default();
        let teachers = [[[2.0, 0.5, -1.0], [0.0, 1.0, 3.0]], [[-1.0, 4.0, 0.0], [2.5, -0.5, 0.5]]];
        let tensors: Vec<Tensor<Rank2<2, 3>, f64, _>> = teachers.iter().map(|t| dev.tensor(*t)).collect();
        for (weights, temperature) in [([1.0, 1.0], 1.0), ([3.0, 1.0], 4.0), ([0.0, 2.0], 2.0)] {
            let pseudo = ensemble_teacher_logits(&tensors, &weights, temperature).unwrap();
            let softened = (pseudo / temperature).softmax::<Axis<1>>().as_vec();
            assert_close!(softened, averaged_probabilities(&teachers, &weights, temperature), Tolerance::F64);
        }
    }

    #[test]
    fn identical_teachers_or_one_weighted_teacher_give_single_teacher_kd() {
        let config = KdConfig::default();
        let single = kd_loss(student_logits(), teacher_logits(), config.temperature).unwrap();
        let dev = Cpu::default();
        let other: Tensor<Rank2<2, 3>, f64, _> = dev.tensor([[9.0, -3.0, 1.0], [0.0, 0.0, 5.0]]);
        for (teachers, weights) in [
            (vec![teacher_logits(), teacher_logits()], [("kd.a", 1.0), ("kd.b", 3.0)]),
            (vec![teacher_logits(), other], [("kd.a", 2.0), ("kd.b", 0.0)]),
        ] {
            let loss = multi_teacher_kd_with_ce_loss(student_logits(), &teachers, &weights, &LABELS, &config, Ensemble::Average).unwrap();
            assert_close!(loss.get("kd").unwrap_or(f64::NAN), value_of(&single), Tolerance::F64);
            assert_close!(loss.get("ce").unwrap_or(f64::NAN), 0.2702599809, TABLE);
        }
    }

    #[test]
    fn each_mode_gives_a_term_per_teacher_with_its_share_of_kd_weight() {
        let dev = Cpu::default();
        let second: Tensor<Rank2<2, 3>, f64, _> = dev.tensor([[1.0, 2.0, -2.0], [0.5, 0.5, 0.0]]);
        let config = KdConfig::default().with_divergence(Divergence::Tvd);
        let teachers = [("kd.first", 1.0), ("kd.second", 3.0)];
        let loss = multi_teacher_kd_with_ce_loss(
            student_logits(),
            &[teacher_logits(), second.clone()],
            &teachers,
            &LABELS,
            &config,
            Ensemble::Each,
        )
        .unwrap();
        let names: Vec<_> = loss.terms().iter().map(|t| (t.name, t.weight)).collect();
        assert_eq!(names, [("ce", 0.1), ("kd.first", 0.9 * 0.25), ("kd.second", 0.9 * 0.75)]);
        let expected = crate::loss::tvd_loss(student_logits(), second, config.temperature).unwrap();
        assert_close!(loss.get("kd.second").unwrap_or(f64::NAN), value_of(&expected), Tolerance::F64);
    }

    #[test]
    fn the_student_gradient_is_the_divergence_gradient_towards_the_average() {
        let dev = Cpu::default();
        let student = wavy::<Rank2<3, 4>>(1.0, 2.0);
        let teachers = [wavy::<Rank2<3, 4>>(2.0, 3.0), wavy::<Rank2<3, 4>>(3.0, 1.0)];
        let temperature = 3.0;
        let config = KdConfig::default()
            .with_temperature(temperature)
            .with_ce_weight(0.0)
            .with_kd_weight(1.0);
        let loss = multi_teacher_kd_with_ce_loss(
            student.leaky_trace(),
            &teachers,
            &[("a", 2.0), ("b", 1.0)],
            &[0, 1, 2],
            &config,
            Ensemble::Average,
        )
        .unwrap();
        let grads = loss.into_total().backward();
        // d/ds T²·KL(p̄ ‖ p_s)/B = T (p_s − p̄)/B.
        let p_s = (student.clone() / temperature).softmax::<Axis<1>>().as_vec();
        let p_t = |k: usize| (teachers[k].clone() / temperature).softmax::<Axis<1>>().as_vec();
        let (p_a, p_b) = (p_t(0), p_t(1));
        let expected: Vec<f64> = (0..12)
            .map(|i| temperature * (p_s[i] - (2.0 * p_a[i] + p_b[i]) / 3.0) / 3.0)
            .collect();
        assert_close!(grads.get(&student).as_vec(), expected, Tolerance::F64);
        let _ = dev;
    }

    #[test]
    fn with_forward_kl_both_modes_give_the_same_gradient_and_with_reverse_kl_they_do_not() {
        let student = wavy::<Rank2<3, 4>>(5.0, 2.0);
        let teachers = [wavy::<Rank2<3, 4>>(6.0, 3.0), wavy::<Rank2<3, 4>>(7.0, 2.0)];
        let weights = [("kd.a", 1.0), ("kd.b", 3.0)];
        let gradient = |divergence: Divergence, ensemble: Ensemble| {
            let config = KdConfig::default().with_divergence(divergence);
            let loss = multi_teacher_kd_with_ce_loss(student.leaky_trace(), &teachers, &weights, &[0, 1, 2], &config, ensemble).unwrap();
            loss.into_total().backward().get(&student).as_vec()
        };
        let (average, each) = (
            gradient(Divergence::ForwardKl, Ensemble::Average),
            gradient(Divergence::ForwardKl, Ensemble::Each),
        );
        assert_close!(average, each, Tolerance::F64);
        let (average, each) = (
            gradient(Divergence::ReverseKl, Ensemble::Average),
            gradient(Divergence::ReverseKl, Ensemble::Each),
        );
        let largest = average.iter().zip(&each).map(|(a, b)| (a - b).abs()).fold(0.0, f64::max);
        assert!(largest > 1e-3, "reverse KL: {largest}");
    }

    #[test]
    fn bad_teacher_weights_are_named() {
        let config = KdConfig::default();
        let refuse = |weights: &[(&'static str, f64)], teachers: usize| {
            let logits = vec![teacher_logits(); teachers];
            multi_teacher_kd_with_ce_loss(student_logits(), &logits, weights, &LABELS, &config, Ensemble::Average)
                .err()
                .map(|e| e.to_string())
                .unwrap_or_default()
        };
        assert_eq!(
            refuse(&[("a", 0.0), ("b", 0.0)], 2),
            "multi_teacher_kd_with_ce_loss: `teacher weights` must be not all 0, got 0"
        );
        assert_eq!(
            refuse(&[("a", 1.0), ("b", f64::NAN)], 2),
            "multi_teacher_kd_with_ce_loss: `teacher weight` must be finite and >= 0, got NaN"
        );
        assert_eq!(
            refuse(&[("a", 1.0)], 2),
            "multi_teacher_kd_with_ce_loss: `teacher_logits` has count 2 but `teacher weights` has count 1; they must be equal"
        );
        assert_eq!(refuse(&[], 0), "multi_teacher_kd_with_ce_loss: `teacher_logits` is empty");
    }
}
