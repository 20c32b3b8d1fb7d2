//! Reverse KL: the student's distribution measured against the teacher's (mode-seeking).
//!
//! **Papers:** Y. Gu, L. Dong, F. Wei, M. Huang, *MiniLLM: Knowledge Distillation of Large
//! Language Models*, ICLR 2024, <https://arxiv.org/abs/2306.08543>; R. Agarwal et al., *On-Policy
//! Distillation of Language Models: Learning from Self-Generated Mistakes* (GKD), ICLR 2024,
//! <https://arxiv.org/abs/2306.13649>, whose β = 1 end is this loss.
//!
//! ```text
//! p_s = softmax(z_s / T),  p_t = softmax(z_t / T)
//! L = T² · (1/B) Σ_b Σ_c p_s[b,c] · (log p_s[b,c] − log p_t[b,c])          (KL(p_s ‖ p_t))
//! ```
//!
//! **Convention:** the temperature is applied as in [`kd_loss`](super::kd_loss): both
//! distributions are softened by `T`, the KL is summed over classes and averaged over every other
//! axis (`batchmean`), and the result is multiplied by `T²`. TRL's `generalized_jsd_loss` at
//! `beta = 1` is the same value without the `T²`. Forward KL spreads the student over every
//! class the teacher gives mass to; reverse KL lets it concentrate on the teacher's modes.
//!
//! Both log-probabilities come from `log_softmax`, so a probability that underflows to 0 adds
//! `0 · (finite)`.

use dfdx::prelude::*;

use super::kd::{check_logit_pair, sum_classes_mean_rest_times_t2, tempered_log_probs};
use crate::error::{in_loss, LossError};

/// `T² · KL(softmax(student_logits/T) ‖ softmax(teacher_logits/T))`, summed over the last
/// (class) axis and averaged over the others.
///
/// # Arguments
/// - `student_logits`: raw scores, **not** the output of softmax.
/// - `teacher_logits`: raw scores of the teacher, untaped.
/// - `temperature`: `T`, finite and > 0.
///
/// # Errors
/// If `temperature` is not finite and positive, the logits are empty or their runtime shapes
/// differ.
pub fn reverse_kl_loss<S: Shape, E: Dtype, D: Device<E>, T: Tape<E, D>>(
    student_logits: Tensor<S, E, D, T>,
    teacher_logits: Tensor<S, E, D>,
    temperature: f64,
) -> Result<Tensor<Rank0, E, D, T>, LossError> {
    let temperature = check_logit_pair(&student_logits, &teacher_logits, temperature).map_err(in_loss("reverse_kl_loss"))?;
    let log_p_student = tempered_log_probs(student_logits, temperature);
    let log_p_teacher = tempered_log_probs(teacher_logits, temperature);
    let p_student = log_p_student.retaped::<T>().exp();
    Ok(sum_classes_mean_rest_times_t2(
        (log_p_student - log_p_teacher) * p_student,
        temperature,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::assert_close;
    use crate::loss::kd_loss;
    use crate::loss::test_vectors::*;
    use crate::ops::value_of;
    use crate::testing::Tolerance;

    /// KL(p ‖ q) with the arguments swapped is the forward KL of the other pair.
    #[test]
    fn is_forward_kl_with_the_roles_swapped() {
        let (student, teacher) = (wavy::<Rank2<4, 7>>(1.0, 5.0), wavy::<Rank2<4, 7>>(2.0, 5.0));
        for temperature in [1.0, 4.0] {
            let reverse = value_of(&reverse_kl_loss(student.clone(), teacher.clone(), temperature).unwrap());
            let forward_swapped = value_of(&kd_loss(teacher.clone(), student.clone(), temperature).unwrap());
            assert_close!(reverse, forward_swapped, Tolerance::F64);
        }
    }

    #[test]
    fn a_student_equal_to_its_teacher_has_zero_loss_and_gradient() {
        let logits = wavy::<Rank2<3, 5>>(1.0, 4.0);
        let loss = reverse_kl_loss(logits.leaky_trace(), logits.clone(), 2.0).unwrap();
        assert_close!(value_of(&loss), 0.0, Tolerance::F64);
        assert_close!(loss.backward().get(&logits), [[0.0; 5]; 3], Tolerance::F64);
    }

    #[test]
    fn zero_temperature_is_rejected_by_name() {
        let error = reverse_kl_loss(student_logits(), teacher_logits(), 0.0).unwrap_err().to_string();
        assert!(
            error.contains("reverse_kl_loss: `temperature` must be finite and > 0, got 0"),
            "{error}"
        );
    }
}
