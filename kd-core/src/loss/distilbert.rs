//! DistilBERT's cosine loss between student and teacher hidden states.
//!
//! **Paper:** V. Sanh, L. Debut, J. Chaumond, T. Wolf, *DistilBERT, a distilled version of BERT:
//! smaller, faster, cheaper and lighter*, 2019, <https://arxiv.org/abs/1910.01108>.
//!
//! ```text
//! L_cos = (1/N) Σ_n (1 − cos(h_S[n], h_T[n]))
//! L = α_ce · L_soft + α_mlm · CE + α_cos · L_cos       (α = 5, 2, 1; T = 2 in the reference)
//! ```
//!
//! **Convention:** HuggingFace's `distillation/distiller.py` uses
//! `nn.CosineEmbeddingLoss(reduction="mean")` with target 1 on the last hidden states of the
//! positions it trains on; here every row of `(N, D)` counts, with `cos` guarded by
//! `max(‖a‖·‖b‖, 1e-8)` as PyTorch's `cosine_similarity`. Student and teacher share the width
//! (DistilBERT keeps BERT's width and halves the depth). The soft term is
//! [`crate::loss::soft_cross_entropy_loss`].

use dfdx::prelude::*;

use crate::error::{self, in_loss, LossError};
use crate::ops::scalar;

/// `mean_n (1 − cos(student_hidden[n], teacher_hidden[n]))` over the rows of `(N, D)`.
///
/// # Errors
/// If the rows are empty or the shapes differ.
pub fn cosine_embedding_loss<N: Dim, D: Dim, E: Dtype, Dev: Device<E>, T: Tape<E, Dev>>(
    student_hidden: Tensor<(N, D), E, Dev, T>,
    teacher_hidden: Tensor<(N, D), E, Dev>,
) -> Result<Tensor<Rank0, E, Dev, T>, LossError> {
    error::non_empty("student_hidden", student_hidden.shape())
        .and_then(|_| {
            error::same_shape(
                ("student_hidden", student_hidden.shape()),
                ("teacher_hidden", teacher_hidden.shape()),
            )
        })
        .map_err(in_loss("cosine_embedding_loss"))?;
    let (student, tape) = student_hidden.split_tape();
    let dot = (student.clone().put_tape(tape) * teacher_hidden.clone()).sum::<_, Axis<1>>();
    let student_norm = student.retaped::<T>().square().sum::<_, Axis<1>>().sqrt();
    let teacher_norm = teacher_hidden.square().sum::<_, Axis<1>>().sqrt();
    let denominator = (student_norm * teacher_norm).clamp(1e-8, 1e30);
    let cosine = dot / denominator;
    Ok((cosine.negate() + scalar::<E>(1.0)).mean())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn value_is_one_minus_the_cosine_and_the_gradient_matches_finite_differences() {
        let dev = Cpu::default();
        let s: Tensor<Rank2<2, 3>, f64, _> = dev.tensor([[1.0, 2.0, 2.0], [0.5, -1.0, 3.0]]);
        let t: Tensor<Rank2<2, 3>, f64, _> = dev.tensor([[2.0, 0.0, 1.0], [0.5, -1.0, 3.0]]);
        // Row 0: cos = (2 + 0 + 2) / (3 · √5); row 1: identical, cos = 1.
        let expected = (1.0 - 4.0 / (3.0 * 5f64.sqrt())) / 2.0;
        let loss = cosine_embedding_loss(s.leaky_trace(), t.clone()).unwrap();
        assert!((loss.array() - expected).abs() < 1e-12);
        let grads = loss.backward();
        let analytic = grads.get(&s).as_vec();
        let values = s.as_vec();
        let h = 1e-6;
        for (i, &a) in analytic.iter().enumerate() {
            let f = |delta: f64| {
                let mut v = values.clone();
                v[i] += delta;
                cosine_embedding_loss(dev.tensor_from_vec(v, (Const::<2>, Const::<3>)), t.clone())
                    .unwrap()
                    .array()
            };
            let numeric = (f(h) - f(-h)) / (2.0 * h);
            assert!((a - numeric).abs() < 1e-8, "element {i}: {a} vs {numeric}");
        }
    }
}
