//! TinyBERT's layer-wise objective: soft cross-entropy on the predictions, and MSE on the
//! embeddings, hidden states and attention scores of uniformly mapped layers.
//!
//! **Paper:** X. Jiao, Y. Yin, L. Shang, X. Jiang, X. Chen, L. Li, F. Wang, Q. Liu, *TinyBERT:
//! Distilling BERT for Natural Language Understanding*, Findings of EMNLP 2020,
//! <https://arxiv.org/abs/1909.10351>.
//!
//! ```text
//! L_pred = −(1/N) Σ_n Σ_c softmax(z_T[n]/t)_c · log_softmax(z_S[n]/t)_c
//! L_attn = MSE(A_S, A_T)    L_hidn = MSE(H_S W_h, H_T)    L_embd = MSE(E_S W_e, E_T)
//! layer m of the student learns from layer g(m) = m · M/N of the teacher (uniform mapping)
//! ```
//!
//! **Convention:** the official `task_distill.py`: `soft_cross_entropy` averaged over rows at
//! temperature 1; attention scores are the unnormalised `QKᵀ/√d` (masked positions zeroed, as the
//! reference replaces −∞ by 0); MSE is the mean over elements; `W_h`, `W_e` are learned linear
//! maps from the student's width to the teacher's ([`crate::loss::LinearAdapter`]). The MSE terms
//! are [`crate::loss::hint_loss`].

use dfdx::prelude::*;

use crate::error::{in_loss, LossError};
use crate::ops::scalar;

/// `−mean_n Σ_c softmax(teacher/T)_c · log_softmax(student/T)_c` (no `T²`: TinyBERT's form; the
/// gradient equals `kd_loss`'s divided by `T²`).
///
/// # Errors
/// If `temperature` is not finite and positive, the logits are empty or their shapes differ.
pub fn soft_cross_entropy_loss<N: Dim, C: Dim, E: Dtype, D: Device<E>, T: Tape<E, D>>(
    student_logits: Tensor<(N, C), E, D, T>,
    teacher_logits: Tensor<(N, C), E, D>,
    temperature: f64,
) -> Result<Tensor<Rank0, E, D, T>, LossError> {
    super::kd::check_logit_pair(&student_logits, &teacher_logits, temperature).map_err(in_loss("soft_cross_entropy_loss"))?;
    let inverse = scalar::<E>(1.0 / temperature);
    let log_student = (student_logits * inverse).log_softmax::<Axis<1>>();
    let teacher = (teacher_logits * inverse).softmax::<Axis<1>>();
    Ok((log_student * teacher).sum::<_, Axis<1>>().mean().negate())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn soft_ce_is_kl_plus_the_teacher_entropy_and_its_gradient_matches_finite_differences() {
        let dev = Cpu::default();
        let s: Tensor<Rank2<2, 3>, f64, _> = dev.tensor([[1.0, -0.5, 2.0], [0.1, 0.2, -1.0]]);
        let t: Tensor<Rank2<2, 3>, f64, _> = dev.tensor([[0.3, 1.5, -2.0], [2.0, 0.0, 0.5]]);
        let temperature = 2.0;
        // Closed form per row.
        let rows = |m: &[[f64; 3]; 2]| -> Vec<Vec<f64>> {
            m.iter()
                .map(|r| {
                    let z: Vec<f64> = r.iter().map(|v| v / temperature).collect();
                    let max = z.iter().copied().fold(f64::MIN, f64::max);
                    let sum: f64 = z.iter().map(|v| (v - max).exp()).sum();
                    z.iter().map(|v| (v - max).exp() / sum).collect()
                })
                .collect()
        };
        let (ps, pt) = (rows(&s.array()), rows(&t.array()));
        let expected: f64 = -(0..2).map(|n| (0..3).map(|c| pt[n][c] * ps[n][c].ln()).sum::<f64>()).sum::<f64>() / 2.0;
        let loss = soft_cross_entropy_loss(s.leaky_trace(), t.clone(), temperature).unwrap();
        assert!((loss.array() - expected).abs() < 1e-12, "{} vs {expected}", loss.array());
        let kl = crate::loss::kd_loss(s.clone(), t.clone(), temperature).unwrap().array() / (temperature * temperature);
        let entropy: f64 = -(0..2).map(|n| (0..3).map(|c| pt[n][c] * pt[n][c].ln()).sum::<f64>()).sum::<f64>() / 2.0;
        assert!((expected - (kl + entropy)).abs() < 1e-12, "soft CE = KL + H(teacher)");

        let grads = loss.backward();
        let analytic = grads.get(&s).as_vec();
        let values = s.as_vec();
        let h = 1e-6;
        for (i, &a) in analytic.iter().enumerate() {
            let f = |delta: f64| {
                let mut v = values.clone();
                v[i] += delta;
                soft_cross_entropy_loss(dev.tensor_from_vec(v, (Const::<2>, Const::<3>)), t.clone(), temperature)
                    .unwrap()
                    .array()
            };
            let numeric = (f(h) - f(-h)) / (2.0 * h);
            assert!((a - numeric).abs() < 1e-8, "element {i}: {a} vs {numeric}");
        }
    }
}
