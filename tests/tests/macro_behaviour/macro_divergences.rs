//! `#[distill(logits = ...)]`: each divergence reaches the generated loss as written, and a
//! student distilled with it moves its predictions towards the teacher's.

use dfdx::optim::{Momentum, Sgd, SgdConfig};
use dfdx::prelude::*;
use kd_core::assert_close;
use kd_core::distill;
use kd_core::distill::{distill_step, Distill};
use kd_core::loss::{kd_with_ce_loss, Divergence, KdConfig};
use kd_core::testing::Tolerance;

use crate::common::Teacher;

macro_rules! students {
    ($($name:ident: ($($logits:tt)*);)*) => {$(
        /// A logits-only student of `Teacher`.
        #[distill(teacher = Teacher, input = [8], temp = 2.0, $($logits)*)]
        pub struct $name {
            fc1: Linear<8, 16>,
            act1: ReLU,
            head: Linear<16, 3>,
        }
    )*};
}

students! {
    Kl: (logits = kl);
    ReverseKl: (logits = reverse_kl);
    Jsd: (logits = jsd(beta = 0.3));
    JsdDefault: (logits = jsd);
    Tvd: (logits = tvd);
    Dist: (logits = dist(beta = 2.0, gamma = 0.5));
}

/// The generated loss terms of `$student` on one batch, against `kd_with_ce_loss` with
/// `$divergence` written by hand; returns the generated soft term.
macro_rules! generated_equals_by_hand {
    ($student:ident, $divergence:expr) => {{
        let dev = Cpu::seed_from_u64(7);
        let teacher = dev.build_module::<Teacher, f32>();
        let mut distiller = $student::build_distiller(&dev);
        let x: Tensor<(usize, Const<8>), f32, _> = dev.sample_normal_like(&(12, Const));
        let targets: Vec<usize> = (0..12).map(|i| (i * 5) % 3).collect();
        let config = KdConfig::default().with_temperature(2.0).with_divergence($divergence);
        let by_hand = kd_with_ce_loss(distiller.student.forward(x.clone()), teacher.forward(x.clone()), &targets, &config).unwrap();
        let grads = distiller.alloc_grads();
        let generated = $student::distill_loss(&mut distiller, &teacher, x, &targets, grads).unwrap();
        let names = |terms: &[kd_core::loss::Term]| terms.iter().map(|t| t.name).collect::<Vec<_>>();
        assert_eq!(names(generated.terms()), names(by_hand.terms()));
        for (generated, by_hand) in generated.terms().iter().zip(by_hand.terms()) {
            assert_close!(generated.value, by_hand.value, Tolerance::F32);
        }
        generated.terms()[1].value
    }};
}

#[test]
fn each_divergence_is_the_one_written() {
    let forward = generated_equals_by_hand!(Kl, Divergence::ForwardKl);
    let others = [
        ("reverse_kl", generated_equals_by_hand!(ReverseKl, Divergence::ReverseKl)),
        ("jsd(beta = 0.3)", generated_equals_by_hand!(Jsd, Divergence::Jsd { beta: 0.3 })),
        ("jsd", generated_equals_by_hand!(JsdDefault, Divergence::JSD)),
        ("tvd", generated_equals_by_hand!(Tvd, Divergence::Tvd)),
        (
            "dist(beta = 2.0, gamma = 0.5)",
            generated_equals_by_hand!(Dist, Divergence::Dist { beta: 2.0, gamma: 0.5 }),
        ),
    ];
    // Each differs from the forward KL, so a macro that ignored `logits` fails above or here.
    for (written, soft) in others {
        assert!((soft - forward).abs() > 1e-4, "{written}: {soft} is the forward KL's {forward}");
    }
}

/// Distilled by the generalised JSD alone (no labels), a student's soft term falls.
#[test]
fn a_student_distilled_by_jsd_approaches_its_teacher() {
    /// Taught by the JSD alone.
    #[distill(teacher = Teacher, input = [8], temp = 2.0, ce_weight = 0.0, kd_weight = 1.0, logits = jsd)]
    pub struct OnlyJsd {
        fc1: Linear<8, 16>,
        act1: ReLU,
        head: Linear<16, 3>,
    }

    let dev = Cpu::seed_from_u64(3);
    let teacher = dev.build_module::<Teacher, f32>();
    let mut distiller = OnlyJsd::build_distiller(&dev);
    let mut opt = Sgd::new(
        &distiller,
        SgdConfig {
            lr: 0.5,
            momentum: Some(Momentum::Classic(0.9)),
            weight_decay: None,
        },
    );
    let x: Tensor<(usize, Const<8>), f32, _> = dev.sample_normal_like(&(32, Const));
    let targets = vec![0; 32];
    let mut grads = distiller.alloc_grads();
    let mut soft = Vec::new();
    for step in 0..100 {
        let (terms, next) =
            distill_step::<OnlyJsd, _>(&mut distiller, &teacher, &mut opt, x.clone(), &targets, grads, step).expect("finite");
        grads = next;
        soft.push(terms[1].value);
    }
    assert!(soft[99] < 0.2 * soft[0], "the JSD went {} -> {}", soft[0], soft[99]);
}
