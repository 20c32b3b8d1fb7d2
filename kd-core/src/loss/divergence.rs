//! Which divergence the logit term of KD uses: the forward KL of Hinton et al. or one of the
//! divergences of 2026's tools (reverse KL, generalised JSD, total variation, DIST).
//!
//! Every choice softens both logits by the same temperature and multiplies by `T²`, as
//! [`kd_loss`] does, so [`KdConfig`](super::KdConfig)'s `temperature` and
//! `kd_weight` mean the same for each. Each divergence's formula and convention live in its own
//! module: [`kd`](super::kd), [`reverse_kl`](super::reverse_kl), [`jsd`](super::jsd),
//! [`tvd`](super::tvd), [`dist`](super::dist).

use dfdx::prelude::*;

use super::{dist_loss, jsd_loss, kd_loss, reverse_kl_loss, tvd_loss, DistConfig};
use crate::error::{self, unit_interval, LossError};

/// The divergence between the softened teacher and student distributions.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub enum Divergence {
    /// `KL(p_t ‖ p_s)`, Hinton et al.'s ([`kd_loss`]).
    #[default]
    ForwardKl,
    /// `KL(p_s ‖ p_t)` ([`reverse_kl_loss`]).
    ReverseKl,
    /// Generalised JSD with the teacher's weight `beta` in the mixture ([`jsd_loss`]).
    Jsd {
        /// In `[0, 1]`: 0 is the forward KL, 1 the reverse KL.
        beta: f64,
    },
    /// `½‖p_s − p_t‖₁` ([`tvd_loss`]).
    Tvd,
    /// DIST's inter- and intra-class relations ([`dist_loss`]).
    Dist {
        /// Weight of the inter-class relation.
        beta: f64,
        /// Weight of the intra-class relation.
        gamma: f64,
    },
}

impl Divergence {
    /// The generalised JSD's usual setting (TRL's default): β = 0.5.
    pub const JSD: Divergence = Divergence::Jsd { beta: 0.5 };
    /// DIST with the paper's weights, β = γ = 1.
    pub const DIST: Divergence = Divergence::Dist { beta: 1.0, gamma: 1.0 };

    /// Checks its settings, naming the first bad one.
    pub fn validate(&self) -> error::Result<()> {
        match *self {
            Divergence::Jsd { beta } => unit_interval("beta", beta).map(drop),
            Divergence::Dist { beta, gamma } => DistConfig {
                beta,
                gamma,
                temperature: 1.0,
            }
            .validate(),
            _ => Ok(()),
        }
    }

    /// Its name, as `#[distill(logits = ...)]` spells it.
    pub fn name(&self) -> &'static str {
        match self {
            Divergence::ForwardKl => "kl",
            Divergence::ReverseKl => "reverse_kl",
            Divergence::Jsd { .. } => "jsd",
            Divergence::Tvd => "tvd",
            Divergence::Dist { .. } => "dist",
        }
    }
}

/// The logit term with `divergence` at `temperature` (times `T²`, as [`kd_loss`]).
///
/// # Errors
/// If `temperature` or the divergence's settings are invalid, the logits are empty or their
/// shapes differ (the error names the divergence's own loss function).
pub fn divergence_loss<B: Dim, C: Dim, E: Dtype, D: Device<E>, T: Tape<E, D>>(
    student_logits: Tensor<(B, C), E, D, T>,
    teacher_logits: Tensor<(B, C), E, D>,
    temperature: f64,
    divergence: &Divergence,
) -> Result<Tensor<Rank0, E, D, T>, LossError> {
    match *divergence {
        Divergence::ForwardKl => kd_loss(student_logits, teacher_logits, temperature),
        Divergence::ReverseKl => reverse_kl_loss(student_logits, teacher_logits, temperature),
        Divergence::Jsd { beta } => jsd_loss(student_logits, teacher_logits, temperature, beta),
        Divergence::Tvd => tvd_loss(student_logits, teacher_logits, temperature),
        Divergence::Dist { beta, gamma } => dist_loss(student_logits, teacher_logits, &DistConfig { beta, gamma, temperature }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::assert_close;
    use crate::loss::test_vectors::*;
    use crate::ops::value_of;
    use crate::testing::Tolerance;

    /// Each choice is its own loss, with the temperature passed through.
    #[test]
    fn each_choice_is_its_loss() {
        let (s, t) = (wavy::<Rank2<3, 5>>(1.0, 3.0), wavy::<Rank2<3, 5>>(2.0, 3.0));
        let dist = DistConfig {
            temperature: 2.0,
            ..DistConfig::default()
        };
        let cases = [
            (Divergence::ForwardKl, value_of(&kd_loss(s.clone(), t.clone(), 2.0).unwrap())),
            (
                Divergence::ReverseKl,
                value_of(&reverse_kl_loss(s.clone(), t.clone(), 2.0).unwrap()),
            ),
            (Divergence::JSD, value_of(&jsd_loss(s.clone(), t.clone(), 2.0, 0.5).unwrap())),
            (Divergence::Tvd, value_of(&tvd_loss(s.clone(), t.clone(), 2.0).unwrap())),
            (Divergence::DIST, value_of(&dist_loss(s.clone(), t.clone(), &dist).unwrap())),
        ];
        for (divergence, expected) in cases {
            let value = value_of(&divergence_loss(s.clone(), t.clone(), 2.0, &divergence).unwrap());
            assert_close!(value, expected, Tolerance::F64);
        }
    }

    #[test]
    fn settings_are_checked_by_name() {
        let error = Divergence::Jsd { beta: -0.1 }.validate().expect_err("invalid beta");
        assert_eq!(error.to_string(), "`beta` must be in [0, 1], got -0.1");
        let error = Divergence::Dist { beta: 1.0, gamma: -2.0 }.validate().expect_err("invalid gamma");
        assert_eq!(error.to_string(), "`gamma` must be finite and >= 0, got -2");
        assert!(Divergence::Tvd.validate().is_ok());
    }
}
