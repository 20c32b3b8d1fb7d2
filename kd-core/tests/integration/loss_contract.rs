//! The losses' contract at the edges: every public loss returns a [`LossError`] naming itself and
//! the problem, never a panic inside dfdx, for an empty batch, mismatched batches, a non-finite
//! temperature or weight, an invalid kernel parameter and a teacher input it would misread.

use dfdx::prelude::*;
use kd_core::error::{Error, LossError};
use kd_core::loss::*;
use kd_core::regime::generative::{adversarial_loss, l1_loss};

type Logits = Tensor<(usize, Const<5>), f64, Cpu>;
type Maps = Tensor<(usize, Const<2>, Const<3>, Const<3>), f64, Cpu>;
type Taped<S> = Tensor<S, f64, Cpu, OwnedTape<f64, Cpu>>;

fn logits(batch: usize) -> Logits {
    let values = (0..batch * 5).map(|i| (i as f64 * 0.7).sin()).collect();
    Cpu::default().tensor_from_vec(values, (batch, Const))
}

fn maps(batch: usize) -> Maps {
    let values = (0..batch * 18).map(|i| (i as f64 * 0.3).cos()).collect();
    Cpu::default().tensor_from_vec(values, (batch, Const, Const, Const))
}

fn traced<S: Shape>(tensor: &Tensor<S, f64, Cpu>) -> Taped<S> {
    tensor.leaky_trace()
}

/// The loss's error, which must name `loss`; a value instead of an error fails the test.
fn refused<T>(loss: &str, result: Result<T, LossError>) -> Error {
    match result {
        Ok(_) => panic!("{loss} returned a value"),
        Err(error) => {
            assert_eq!(error.loss, loss, "{error}");
            assert!(error.to_string().starts_with(&format!("{loss}: ")), "{error}");
            error.problem
        }
    }
}

/// Every loss on a batch of 0, student and teacher alike: `(loss, its error)`.
fn empty_batch_errors() -> Vec<(&'static str, Error)> {
    let (s, t) = (logits(0), logits(0));
    let (fs, ft) = (maps(0), maps(0));
    let kd = KdConfig::default();
    let dist = DistConfig::default();
    vec![
        ("kd_loss", refused("kd_loss", kd_loss(traced(&s), t.clone(), 4.0))),
        (
            "reverse_kl_loss",
            refused("reverse_kl_loss", reverse_kl_loss(traced(&s), t.clone(), 4.0)),
        ),
        ("jsd_loss", refused("jsd_loss", jsd_loss(traced(&s), t.clone(), 4.0, 0.5))),
        ("tvd_loss", refused("tvd_loss", tvd_loss(traced(&s), t.clone(), 4.0))),
        ("dist_loss", refused("dist_loss", dist_loss(traced(&s), t.clone(), &dist))),
        (
            "cross_entropy_loss",
            refused("cross_entropy_loss", cross_entropy_loss(traced(&s), &[])),
        ),
        (
            "kd_with_ce_loss",
            refused("kd_with_ce_loss", kd_with_ce_loss(traced(&s), t.clone(), &[], &kd)),
        ),
        (
            "dkd_loss",
            refused("dkd_loss", dkd_loss(traced(&s), t.clone(), &[], &DkdConfig::default())),
        ),
        (
            "soft_cross_entropy_loss",
            refused("soft_cross_entropy_loss", soft_cross_entropy_loss(traced(&s), t.clone(), 1.0)),
        ),
        (
            "cosine_embedding_loss",
            refused("cosine_embedding_loss", cosine_embedding_loss(traced(&s), t.clone())),
        ),
        (
            "cross_entropy_loss",
            refused("cross_entropy_loss", dml_loss(traced(&s), std::slice::from_ref(&t), &[])),
        ),
        ("hint_loss", refused("hint_loss", hint_loss(traced(&fs), ft.clone()))),
        ("ab_loss", refused("ab_loss", ab_loss(traced(&fs), ft.clone(), 1.0))),
        (
            "at_loss",
            refused("at_loss", at_loss(traced(&fs), ft.clone(), 2.0, AtConvention::AuthorsCode)),
        ),
        (
            "nst_loss",
            refused("nst_loss", nst_loss(traced(&fs), ft.clone(), NstKernel::default())),
        ),
        ("fsp_matrix", refused("fsp_matrix", fsp_matrix(traced(&fs), ft.clone()))),
        (
            "rkd_distance_loss",
            refused("rkd_distance_loss", rkd_distance_loss(traced(&fs), ft.clone())),
        ),
        ("rkd_angle_loss", refused("rkd_angle_loss", rkd_angle_loss(traced(&fs), ft.clone()))),
        ("sp_loss", refused("sp_loss", sp_loss(traced(&fs), ft.clone()))),
        (
            "l1_loss",
            refused("l1_loss", l1_loss(fs.to_dtype::<f32>().leaky_trace(), ft.to_dtype::<f32>())),
        ),
        (
            "adversarial_loss",
            refused("adversarial_loss", adversarial_loss(s.to_dtype::<f32>().leaky_trace())),
        ),
    ]
}

#[test]
fn every_loss_refuses_an_empty_batch_by_name() {
    for (loss, problem) in empty_batch_errors() {
        assert!(matches!(problem, Error::Empty { .. }), "{loss}: {problem}");
    }
    let problem = refused("kd_loss", kd_loss(traced(&logits(0)), logits(0), 4.0));
    assert_eq!(
        problem.to_string(),
        "`student_logits` is empty (shape [0, 5]); a loss needs at least one sample"
    );
}

#[test]
fn every_paired_loss_refuses_batches_of_different_sizes() {
    let (s, t) = (logits(3), logits(4));
    let (fs, ft) = (maps(3), maps(4));
    let shape_mismatch = |problem: Error| matches!(problem, Error::ShapeMismatch { .. } | Error::SizeMismatch { .. });
    let kd = KdConfig::default();
    let cases = vec![
        refused("kd_loss", kd_loss(traced(&s), t.clone(), 4.0)),
        refused("reverse_kl_loss", reverse_kl_loss(traced(&s), t.clone(), 4.0)),
        refused("jsd_loss", jsd_loss(traced(&s), t.clone(), 4.0, 0.5)),
        refused("tvd_loss", tvd_loss(traced(&s), t.clone(), 4.0)),
        refused("dist_loss", dist_loss(traced(&s), t.clone(), &DistConfig::default())),
        refused("kd_with_ce_loss", kd_with_ce_loss(traced(&s), t.clone(), &[0, 1, 2], &kd)),
        refused("dkd_loss", dkd_loss(traced(&s), t.clone(), &[0, 1, 2], &DkdConfig::default())),
        refused("soft_cross_entropy_loss", soft_cross_entropy_loss(traced(&s), t.clone(), 1.0)),
        refused("cosine_embedding_loss", cosine_embedding_loss(traced(&s), t.clone())),
        refused("kd_loss", dml_loss(traced(&s), std::slice::from_ref(&t), &[0, 1, 2])),
        refused("hint_loss", hint_loss(traced(&fs), ft.clone())),
        refused("ab_loss", ab_loss(traced(&fs), ft.clone(), 1.0)),
        refused("at_loss", at_loss(traced(&fs), ft.clone(), 2.0, AtConvention::Paper)),
        refused("nst_loss", nst_loss(traced(&fs), ft.clone(), NstKernel::Linear)),
        refused("fsp_matrix", fsp_matrix(traced(&fs), ft.clone())),
        refused("rkd_distance_loss", rkd_distance_loss(traced(&fs), ft.clone())),
        refused("rkd_angle_loss", rkd_angle_loss(traced(&fs), ft.clone())),
        refused("sp_loss", sp_loss(traced(&fs), ft.clone())),
        refused("cross_entropy_loss", cross_entropy_loss(traced(&s), &[0, 1])),
    ];
    for problem in cases {
        assert!(shape_mismatch(problem.clone()), "{problem}");
    }
    assert_eq!(
        refused("sp_loss", sp_loss(traced(&fs), ft)).to_string(),
        "`student_feat` has batch size 3 but `teacher_feat` has batch size 4; they must be equal"
    );
}

#[test]
fn non_finite_temperatures_and_weights_are_named() {
    let (s, t) = (logits(2), logits(2));
    let invalid = |problem: Error, name: &str| match problem {
        Error::InvalidSetting { argument, .. } => assert_eq!(argument, name),
        other => panic!("{name}: {other}"),
    };
    for temperature in [f64::NAN, f64::INFINITY, 0.0, -1.0] {
        invalid(refused("kd_loss", kd_loss(traced(&s), t.clone(), temperature)), "temperature");
        invalid(
            refused("reverse_kl_loss", reverse_kl_loss(traced(&s), t.clone(), temperature)),
            "temperature",
        );
        invalid(
            refused("jsd_loss", jsd_loss(traced(&s), t.clone(), temperature, 0.5)),
            "temperature",
        );
        invalid(refused("tvd_loss", tvd_loss(traced(&s), t.clone(), temperature)), "temperature");
        let soft = soft_cross_entropy_loss(traced(&s), t.clone(), temperature);
        invalid(refused("soft_cross_entropy_loss", soft), "temperature");
    }
    let kd = KdConfig::default();
    let targets = [0, 4];
    for (config, name) in [
        (kd.with_ce_weight(f64::NAN), "ce_weight"),
        (kd.with_kd_weight(f64::INFINITY), "kd_weight"),
        (kd.with_kd_weight(-0.5), "kd_weight"),
        (kd.with_temperature(f64::NAN), "temperature"),
    ] {
        invalid(
            refused("kd_with_ce_loss", kd_with_ce_loss(traced(&s), t.clone(), &targets, &config)),
            name,
        );
    }
    let dist = DistConfig {
        gamma: f64::NAN,
        ..DistConfig::default()
    };
    invalid(refused("dist_loss", dist_loss(traced(&s), t.clone(), &dist)), "gamma");
    let dkd = DkdConfig {
        alpha: f64::INFINITY,
        ..DkdConfig::default()
    };
    invalid(refused("dkd_loss", dkd_loss(traced(&s), t.clone(), &targets, &dkd)), "alpha");
    let byot = ByotConfig {
        feature_weight: f64::NAN,
        ..ByotConfig::default()
    };
    let feature = byot_loss(traced(&s), t.clone(), &targets, traced(&s), t, &byot);
    invalid(refused("byot_loss", feature), "feature_weight");
}

#[test]
fn invalid_kernel_and_loss_parameters_are_named() {
    let (fs, ft) = (maps(2), maps(2));
    let invalid = |problem: Error| match problem {
        Error::InvalidSetting { argument, .. } => argument,
        other => panic!("{other}"),
    };
    for (kernel, argument) in [
        (NstKernel::Polynomial { degree: 0, constant: 0.0 }, "degree"),
        (NstKernel::Polynomial { degree: -2, constant: 0.0 }, "degree"),
        (NstKernel::Polynomial { degree: 2, constant: -1.0 }, "constant"),
        (
            NstKernel::Polynomial {
                degree: 2,
                constant: f64::NAN,
            },
            "constant",
        ),
        (NstKernel::Gaussian { sigma: 0.0 }, "sigma"),
        (NstKernel::Gaussian { sigma: f64::NAN }, "sigma"),
    ] {
        assert_eq!(invalid(refused("nst_loss", nst_loss(traced(&fs), ft.clone(), kernel))), argument);
    }
    assert_eq!(
        refused(
            "nst_loss",
            nst_loss(traced(&fs), ft.clone(), NstKernel::Polynomial { degree: 0, constant: 0.0 })
        )
        .to_string(),
        "`degree` must be >= 1, got 0"
    );
    assert_eq!(invalid(refused("ab_loss", ab_loss(traced(&fs), ft.clone(), 0.0))), "margin");
    let at = at_loss(traced(&fs), ft.clone(), f64::NAN, AtConvention::AuthorsCode);
    assert_eq!(invalid(refused("at_loss", at)), "p");
    let (s, t) = (logits(2), logits(2));
    assert_eq!(invalid(refused("jsd_loss", jsd_loss(traced(&s), t, 1.0, 1.5))), "beta");
}

#[test]
fn ab_refuses_a_teacher_feature_it_would_misread() {
    let (fs, ft) = (maps(2), maps(2));
    for bad in [f64::NAN, f64::INFINITY, f64::NEG_INFINITY] {
        let mut values = ft.as_vec();
        values[7] = bad;
        let teacher: Maps = Cpu::default().tensor_from_vec(values, (2, Const, Const, Const));
        match refused("ab_loss", ab_loss(traced(&fs), teacher, 1.0)) {
            Error::NonFinite { argument, index, value } => {
                assert_eq!((argument, index), ("teacher_feat", 7));
                assert!(value.is_nan() == bad.is_nan() && (value.is_nan() || value == bad));
            }
            other => panic!("{other}"),
        }
    }
    assert!(ab_loss(traced(&fs), ft, 1.0).is_ok());
}

#[test]
fn rkd_distance_counts_the_samples_it_was_given() {
    let too_few = |batch: usize| refused("rkd_distance_loss", rkd_distance_loss(traced(&maps(batch)), maps(batch)));
    assert!(matches!(too_few(0), Error::Empty { .. }), "a batch of 0 is empty, not 1");
    assert_eq!(
        too_few(1),
        Error::TooFewSamples {
            argument: "student_embed",
            needed: 2,
            got: 1
        }
    );
    assert!(rkd_distance_loss(traced(&maps(2)), maps(2)).is_ok());
}

#[test]
fn targets_out_of_range_are_named_by_row() {
    let (s, t) = (logits(2), logits(2));
    let expected = Error::TargetOutOfRange {
        row: 1,
        target: 5,
        classes: 5,
    };
    assert_eq!(refused("cross_entropy_loss", cross_entropy_loss(traced(&s), &[0, 5])), expected);
    let kd = KdConfig::default();
    assert_eq!(
        refused("kd_with_ce_loss", kd_with_ce_loss(traced(&s), t.clone(), &[0, 5], &kd)),
        expected
    );
    assert_eq!(
        refused("dkd_loss", dkd_loss(traced(&s), t, &[0, 5], &DkdConfig::default())),
        expected
    );
}

#[test]
fn feature_maps_that_cannot_be_pooled_to_one_size_are_named() {
    let tall: Tensor<(usize, Const<2>, Const<4>, Const<2>), f64, Cpu> = Cpu::default().ones_like(&(2, Const, Const, Const));
    let wide: Tensor<(usize, Const<2>, Const<2>, Const<4>), f64, Cpu> = Cpu::default().ones_like(&(2, Const, Const, Const));
    let problem = refused("at_loss", at_loss(tall.leaky_trace(), wide.clone(), 2.0, AtConvention::AuthorsCode));
    assert!(matches!(problem, Error::MapSizes { .. }), "{problem}");
    let problem = refused("nst_loss", nst_loss(tall.leaky_trace(), wide.clone(), NstKernel::Linear));
    assert!(matches!(problem, Error::MapSizes { .. }), "{problem}");
    assert!(matches!(
        refused("fsp_matrix", fsp_matrix(tall.leaky_trace(), wide)),
        Error::MapSizes { .. }
    ));
}
