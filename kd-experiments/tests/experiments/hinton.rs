//! The Hinton recipe's pieces: paired initialisation and the dropout papers' schedule.

use dfdx::prelude::*;
use kd_core::distill::Distill;
use kd_experiments::hinton::{
    adam_learning_rate, dropout_momentum, dropout_rate, student_device, AdamDecay, HintonStudent, HintonStudentAlone, ADAM_RATE,
};

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

#[test]
fn adam_rates_start_at_the_recipes_rate_and_fall_every_epoch() {
    for decay in [AdamDecay::Exponential, AdamDecay::Cosine] {
        let rates: Vec<f64> = (0..100).map(|epoch| adam_learning_rate(decay, epoch, 100)).collect();
        assert_eq!(rates[0], ADAM_RATE, "{decay:?}");
        assert!(rates.windows(2).all(|pair| pair[1] < pair[0]), "{decay:?} falls every epoch");
    }
    let exponential_end = adam_learning_rate(AdamDecay::Exponential, 99, 100) / ADAM_RATE;
    assert!((exponential_end - 0.9f64.powf(99.0 * 24.0 / 100.0)).abs() < 1e-12);
}

#[test]
fn the_cosine_is_half_way_at_the_middle_and_still_steps_at_the_end() {
    assert!((adam_learning_rate(AdamDecay::Cosine, 50, 100) - ADAM_RATE / 2.0).abs() < 1e-12);
    let last = adam_learning_rate(AdamDecay::Cosine, 99, 100);
    let expected = ADAM_RATE * (1.0 + (std::f64::consts::PI * 99.0 / 100.0).cos()) / 2.0;
    assert!(last > 0.0 && (last - expected).abs() < 1e-15, "{last} against {expected}");
}
