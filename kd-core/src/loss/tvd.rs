//! Total variation distance between the teacher's and the student's softened distributions.
//!
//! **Papers:** the distance as a distillation objective appears in DistiLLM (J. Ko et al., ICML
//! 2024, <https://arxiv.org/abs/2402.03898>) and among the logit losses of DistillKit and NVIDIA
//! ModelOpt; its definition is the usual `½ ‖p − q‖₁`.
//!
//! ```text
//! p_s = softmax(z_s / T),  p_t = softmax(z_t / T)
//! L = T² · (1/B) Σ_b ½ Σ_c |p_s[b,c] − p_t[b,c]|
//! ```
//!
//! **Convention:** the temperature is applied as in [`kd_loss`](super::kd_loss) (softened by
//! `T`, `batchmean`, times `T²`), so a logit term can switch divergence without changing its
//! weight's meaning at `T = 1`. Unlike the KL's, the distance's gradient shrinks only as `1/T`
//! at large `T`, so at `T > 1` the `T²` factor grows it by about `T`: choose the weight with that
//! in mind. `|x|` has gradient 0 at `x = 0`, as in PyTorch. The value lies in `[0, T²]`.

use dfdx::prelude::*;

use super::kd::{check_logit_pair, sum_classes_mean_rest_times_t2, tempered_log_probs};
use crate::error::{in_loss, LossError};
use crate::ops::scalar;

/// `T² · ½ ‖softmax(student_logits/T) − softmax(teacher_logits/T)‖₁`, summed over the last
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
pub fn tvd_loss<S: Shape, E: Dtype, D: Device<E>, T: Tape<E, D>>(
    student_logits: Tensor<S, E, D, T>,
    teacher_logits: Tensor<S, E, D>,
    temperature: f64,
) -> Result<Tensor<Rank0, E, D, T>, LossError> {
    let temperature = check_logit_pair(&student_logits, &teacher_logits, temperature).map_err(in_loss("tvd_loss"))?;
    let p_student = tempered_log_probs(student_logits, temperature).exp();
    let p_teacher = tempered_log_probs(teacher_logits, temperature).exp();
    Ok(sum_classes_mean_rest_times_t2(
        (p_student - p_teacher).abs() * scalar::<E>(0.5),
        temperature,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::assert_close;
    use crate::loss::test_vectors::*;
    use crate::ops::value_of;
    use crate::testing::Tolerance;

    /// Two distributions on disjoint classes are at distance 1.
    #[test]
    fn disjoint_distributions_are_at_distance_one() {
        let dev = Dev::default();
        let student: Tensor<Rank2<1, 3>, f64, _> = dev.tensor([[400.0, -400.0, -400.0]]);
        let teacher: Tensor<Rank2<1, 3>, f64, _> = dev.tensor([[-400.0, 400.0, -400.0]]);
        assert_close!(value_of(&tvd_loss(student, teacher, 1.0).unwrap()), 1.0, Tolerance::F64);
    }

    /// Hand-computed: p_s = (½, ½), p_t = (e/(1+e), 1/(1+e)) at T = 1.
    #[test]
    fn a_two_class_case_by_hand() {
        let dev = Dev::default();
        let student: Tensor<Rank2<1, 2>, f64, _> = dev.tensor([[0.0, 0.0]]);
        let teacher: Tensor<Rank2<1, 2>, f64, _> = dev.tensor([[1.0, 0.0]]);
        let e = std::f64::consts::E;
        let loss = tvd_loss(student.leaky_trace(), teacher, 1.0).unwrap();
        assert_close!(value_of(&loss), e / (1.0 + e) - 0.5, Tolerance::F64);
        // d/ds₀ ½(|σ(s₀−s₁) − p| + |p − σ(s₀−s₁)|) = −σ'(0) = −¼ (p_s[0] < p_t[0]), and +¼ for s₁.
        assert_close!(loss.backward().get(&student), [[-0.25, 0.25]], Tolerance::F64);
    }

    #[test]
    fn negative_temperature_is_rejected_by_name() {
        let error = tvd_loss(student_logits(), teacher_logits(), -1.0).unwrap_err().to_string();
        assert!(error.contains("tvd_loss: `temperature` must be finite and > 0, got -1"), "{error}");
    }
}
