//! Generative distillation in the style of GAN Compression: a student generator with fewer
//! channels learns the teacher generator's outputs and intermediate features, with a
//! discriminator trained alongside.
//!
//! **Paper:** M. Li, J. Lin, Y. Ding, Z. Liu, J.-Y. Zhu, S. Han, *GAN Compression: Efficient
//! Architectures for Interactive Conditional GANs*, CVPR 2020, <https://arxiv.org/abs/2003.08936>.
//!
//! ```text
//! L_G = λ_recon · ‖G_S(x) − G_T(x)‖₁ + λ_distill · Σ_t MSE(1×1-adapter_t(f_S,t), f_T,t) + λ_gan · L_adv(D(G_S(x)))
//! L_D = BCE(D(real), 1) + BCE(D(G_S(x)), 0)
//! ```
//!
//! **Convention:** the reconstruction term is the mean absolute error against the teacher's
//! output (paired, as the paper's distillation of a pix2pix teacher); the adversarial term is
//! the non-saturating `BCE(D(G_S(x)), 1)`; the distillation term is [`crate::loss::hint_loss`]
//! (MSE, mean over elements) through each 1×1 adapter, summed over the tapped layers. Teacher
//! outputs and features are untaped. Default weights follow the paper's pix2pix setting
//! (λ_recon = 10, λ_distill = 1, λ_gan = 1).

use dfdx::prelude::*;

use crate::error::{self, in_loss, LossError};
use crate::loss::{hint_loss, LossTerms};

/// The weights of the generator objective.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct GanCompressionConfig {
    /// λ_recon: L1 to the teacher's output.
    pub recon: f64,
    /// λ_distill: each adapted feature's MSE to the teacher's.
    pub distill: f64,
    /// λ_gan: the adversarial term.
    pub gan: f64,
}

impl Default for GanCompressionConfig {
    fn default() -> Self {
        GanCompressionConfig {
            recon: 10.0,
            distill: 1.0,
            gan: 1.0,
        }
    }
}

type Taped = OwnedTape<f32, Cpu>;

/// One distilled feature pair: the term's name, the adapted student feature (taped) and the
/// teacher's feature.
pub type FeaturePair<F> = (&'static str, Tensor<F, f32, Cpu, Taped>, Tensor<F, f32, Cpu>);

/// Mean absolute error, `mean |a − b|`.
///
/// # Errors
/// If `output` is empty or the shapes differ.
pub fn l1_loss<S: Shape, T: Tape<f32, Cpu>>(
    output: Tensor<S, f32, Cpu, T>,
    target: Tensor<S, f32, Cpu>,
) -> Result<Tensor<Rank0, f32, Cpu, T>, LossError> {
    error::non_empty("output", output.shape())
        .and_then(|_| error::same_shape(("output", output.shape()), ("target", target.shape())))
        .map_err(in_loss("l1_loss"))?;
    Ok((output - target).abs().mean())
}

/// The non-saturating generator term: `BCE(D(fake), 1)`.
///
/// # Errors
/// If `fake_logits` is empty.
pub fn adversarial_loss<S: Shape, T: Tape<f32, Cpu>>(fake_logits: Tensor<S, f32, Cpu, T>) -> Result<Tensor<Rank0, f32, Cpu, T>, LossError> {
    error::non_empty("fake_logits", fake_logits.shape()).map_err(in_loss("adversarial_loss"))?;
    let ones = fake_logits.device().ones_like(fake_logits.shape());
    Ok(binary_cross_entropy_with_logits_loss(fake_logits, ones))
}

/// The discriminator objective: `"d_real"` = `BCE(D(real), 1)` and `"d_fake"` = `BCE(D(fake), 0)`.
///
/// # Errors
/// If either batch is empty.
pub fn discriminator_loss<S: Shape>(
    real_logits: Tensor<S, f32, Cpu, Taped>,
    fake_logits: Tensor<S, f32, Cpu, Taped>,
) -> Result<LossTerms<f32, Cpu, Taped>, LossError> {
    error::non_empty("real_logits", real_logits.shape())
        .and_then(|_| error::non_empty("fake_logits", fake_logits.shape()))
        .map_err(in_loss("discriminator_loss"))?;
    let ones = real_logits.device().ones_like(real_logits.shape());
    let zeros = fake_logits.device().zeros_like(fake_logits.shape());
    Ok(LossTerms::new()
        .add("d_real", 1.0, binary_cross_entropy_with_logits_loss(real_logits, ones))
        .add("d_fake", 1.0, binary_cross_entropy_with_logits_loss(fake_logits, zeros)))
}

/// The student generator's objective: `"recon"`, one `"distill.<name>"` per adapted feature
/// pair, and `"gan"`.
///
/// # Arguments
/// - `student_output`, `teacher_output`: the generators' images, the student's taped.
/// - `features`: `(name, adapted student feature, teacher feature)`, already through the 1×1
///   adapters (taped) and of equal shapes.
/// - `fake_logits`: the discriminator's logits on `student_output`, taped through the student.
///
/// # Errors
/// If an output or feature is empty or a pair's shapes differ.
pub fn generator_distill_loss<S: Shape, F: Shape, L: Shape>(
    student_output: Tensor<S, f32, Cpu, Taped>,
    teacher_output: Tensor<S, f32, Cpu>,
    features: Vec<FeaturePair<F>>,
    fake_logits: Tensor<L, f32, Cpu, Taped>,
    config: &GanCompressionConfig,
) -> Result<LossTerms<f32, Cpu, Taped>, LossError> {
    let mut loss = LossTerms::new().add("recon", config.recon, l1_loss(student_output, teacher_output)?);
    for (name, student, teacher) in features {
        loss = loss.add(name, config.distill, hint_loss(student, teacher)?);
    }
    Ok(loss.add("gan", config.gan, adversarial_loss(fake_logits)?))
}

/// Peak signal-to-noise ratio in dB of images in `[0, 1]`: `10 · log10(1 / MSE)`.
pub fn psnr(output: &[f32], target: &[f32]) -> f64 {
    let mse = output.iter().zip(target).map(|(&a, &b)| f64::from(a - b).powi(2)).sum::<f64>() / output.len().max(1) as f64;
    10.0 * (1.0 / mse.max(1e-12)).log10()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn terms_have_their_closed_forms() {
        let dev = Cpu::default();
        let a: Tensor<Rank1<4>, f32, _> = dev.tensor([0.0, 0.5, 1.0, 0.25]);
        let b: Tensor<Rank1<4>, f32, _> = dev.tensor([0.5, 0.5, 0.0, 0.25]);
        assert!((l1_loss(a.clone(), b.clone()).unwrap().array() - 0.375).abs() < 1e-6);
        // BCE(z, 1) = ln(1 + e^{−z}); at z = 0, ln 2.
        let logits: Tensor<Rank1<2>, f32, _> = dev.zeros();
        assert!((adversarial_loss(logits).unwrap().array() - std::f32::consts::LN_2).abs() < 1e-6);
        let d = discriminator_loss(
            dev.tensor([10.0f32, 10.0]).leaky_trace(),
            dev.tensor([-10.0f32, -10.0]).leaky_trace(),
        )
        .unwrap();
        assert!(d.value() < 1e-3, "a perfect discriminator has a near-zero loss: {}", d.value());
        assert!((psnr(&[0.0, 0.0], &[0.1, 0.1]) - 20.0).abs() < 1e-5);
    }
}
