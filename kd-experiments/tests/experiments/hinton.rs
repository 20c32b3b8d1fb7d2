//! The Hinton recipe's pieces: paired initialisation and the dropout papers' schedule.

use dfdx::prelude::*;
use kd_core::distill::Distill;
use kd_experiments::hinton::{dropout_momentum, dropout_rate, student_device, HintonStudent, HintonStudentAlone};

/// The student alone and the distilled student of a seed start from the same weights.
#[test]
fn both_students_of_a_seed_start_alike() {
    let alone = student_device(3).build_module::<HintonStudentAlone, f32>();
    let distiller = HintonStudent::build_distiller(&student_device(3));
    assert_eq!(alone.fc1.weight.as_vec(), distiller.student.fc1.weight.as_vec());
    assert_eq!(alone.head.bias.as_vec(), distiller.student.head.bias.as_vec());
    let other = student_device(4).build_module::<HintonStudentAlone, f32>();
    assert_ne!(alone.fc1.weight.as_vec(), other.fc1.weight.as_vec());
}

/// The dropout recipe's schedule: momentum 0.5 → 0.99 over the first sixth, and the
/// rate falls to the final fraction of ε₀ over the run, scaled by 1 − momentum.
#[test]
fn the_dropout_schedule_follows_the_papers() {
    assert_eq!(dropout_momentum(0, 60), 0.5);
    assert_eq!(dropout_momentum(10, 60), 0.99);
    assert!((dropout_rate(0, 60, 10.0, 0.0025) - 5.0).abs() < 1e-12);
    let last = dropout_rate(60, 60, 10.0, 0.0025);
    assert!((last - 0.01 * 10.0 * 0.0025).abs() < 1e-12, "{last}");
}
