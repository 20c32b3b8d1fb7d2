//! kd-core's losses driving real dfdx training: a teacher learns a task, a student learns from
//! it, and the assertions are about what training did.

use dfdx::optim::{Adam, AdamConfig, Momentum, Sgd, SgdConfig};
use dfdx::prelude::*;
use kd_core::loss::{at_loss, hint_loss, kd_with_ce_loss, AtConvention, Conv1x1Adapter, KdConfig};
use kd_core::ops::value_of;

use crate::task::{agreement, batch, predictions, task, CLASSES, FEATURES};

type TeacherNet = (Linear<FEATURES, 64>, ReLU, Linear<64, CLASSES>);
type StudentNet = (Linear<FEATURES, 6>, ReLU, Linear<6, CLASSES>);

#[test]
fn kd_training_moves_the_student_towards_a_trained_teacher() {
    let dev = Cpu::seed_from_u64(7);
    let (train_x, train_y) = task(2048, 1);
    let (test_x, test_y) = task(1024, 2);

    let mut teacher = dev.build_module::<TeacherNet, f32>();
    let mut grads = teacher.alloc_grads();
    let sgd = SgdConfig {
        lr: 0.1,
        momentum: Some(Momentum::Nesterov(0.9)),
        weight_decay: None,
    };
    let mut opt = Sgd::new(&teacher, sgd);
    for step in 0..600 {
        let (x, y) = batch(&dev, &train_x, &train_y, step);
        let loss = kd_core::loss::cross_entropy_loss(teacher.forward_mut(x.traced(grads)), &y).unwrap();
        grads = loss.backward();
        opt.update(&mut teacher, &grads).expect("teacher update");
        teacher.zero_grads(&mut grads);
    }
    let teacher_accuracy = agreement(&predictions(&teacher, &dev, &test_x), &test_y);
    assert!(teacher_accuracy > 0.85, "the teacher must learn the task first: {teacher_accuracy}");
    let teacher_before = teacher.clone();

    let mut student = dev.build_module::<StudentNet, f32>();
    let agreement_before = agreement(&predictions(&student, &dev, &test_x), &predictions(&teacher, &dev, &test_x));
    let mut grads = student.alloc_grads();
    let mut opt = Sgd::new(&student, sgd);
    let config = KdConfig::default();
    let mut kd_terms = Vec::new();
    for step in 0..600 {
        let (x, y) = batch(&dev, &train_x, &train_y, step);
        let teacher_logits = teacher.forward(x.clone());
        let loss = kd_with_ce_loss(student.forward_mut(x.traced(grads)), teacher_logits, &y, &config).unwrap();
        kd_terms.push(loss.get("kd").unwrap_or(f64::NAN));
        grads = loss.into_total().backward();
        if step == 0 {
            let first_layer = grads.get(&student.0.weight).as_vec();
            assert!(first_layer.iter().any(|g| *g != 0.0), "the student's first layer receives gradient");
        }
        opt.update(&mut student, &grads).expect("student update");
        student.zero_grads(&mut grads);
    }

    let early: f64 = kd_terms[..20].iter().sum::<f64>() / 20.0;
    let late: f64 = kd_terms[kd_terms.len() - 20..].iter().sum::<f64>() / 20.0;
    assert!(
        late < 0.5 * early,
        "the KD term must fall: first 20 steps {early:.4}, last 20 {late:.4}"
    );

    let teacher_predictions = predictions(&teacher, &dev, &test_x);
    eprintln!(
        "teacher accuracy {teacher_accuracy:.3}; student kd term {early:.4} -> {late:.4}; student accuracy {:.3}",
        agreement(&predictions(&student, &dev, &test_x), &test_y)
    );
    let agreement_after = agreement(&predictions(&student, &dev, &test_x), &teacher_predictions);
    assert!(
        agreement_after > 0.8 && agreement_after > agreement_before + 0.2,
        "the student must come to agree with the teacher: {agreement_before:.3} -> {agreement_after:.3}"
    );
    assert_eq!(
        teacher.0.weight.as_vec(),
        teacher_before.0.weight.as_vec(),
        "the teacher's weights never change"
    );
    assert_eq!(
        teacher.2.bias.as_vec(),
        teacher_before.2.bias.as_vec(),
        "the teacher's weights never change"
    );
}

type MapStudent = (kd_core::loss::Conv1x1Adapter<2, 3>, ReLU);

#[test]
fn hint_and_attention_training_align_student_features_with_the_teachers() {
    let dev = Cpu::seed_from_u64(11);
    // The teacher's feature is a fixed random 1x1 map of the input with 6 channels.
    let teacher = dev.build_module::<(Conv1x1Adapter<2, 6>, ReLU), f32>();
    // The student has 3 channels; the adapter widens them to the teacher's 6.
    let mut model = dev.build_module::<(MapStudent, Conv1x1Adapter<3, 6>), f32>();
    let mut grads = model.alloc_grads();
    let mut opt = Adam::new(
        &model,
        AdamConfig {
            lr: 1e-2,
            ..Default::default()
        },
    );

    let mut hints = Vec::new();
    let mut attention = Vec::new();
    for _ in 0..300 {
        let x: Tensor<(usize, Const<2>, usize, usize), f32, _> = dev.sample_normal_like(&(8, Const, 5, 4));
        let teacher_feat = teacher.forward(x.clone());
        let (student_feat, tape) = model.0.forward_mut(x.traced(grads)).split_tape();
        let at = at_loss(
            student_feat.clone().put_tape(tape),
            teacher_feat.clone(),
            2.0,
            AtConvention::AuthorsCode,
        )
        .unwrap();
        let hint = hint_loss(model.1.forward_mut(student_feat.retaped::<OwnedTape<f32, Cpu>>()), teacher_feat).unwrap();
        hints.push(value_of(&hint));
        attention.push(value_of(&at));
        let total = hint + at * 1000.0;
        grads = total.backward();
        opt.update(&mut model, &grads).expect("update");
        model.zero_grads(&mut grads);
    }
    let mean = |v: &[f64]| v.iter().sum::<f64>() / v.len() as f64;
    let (hint_start, hint_end) = (mean(&hints[..10]), mean(&hints[hints.len() - 10..]));
    let (at_start, at_end) = (mean(&attention[..10]), mean(&attention[attention.len() - 10..]));
    eprintln!("hint {hint_start:.4} -> {hint_end:.4}, attention {at_start:.5} -> {at_end:.5}");
    assert!(
        hint_end < 0.25 * hint_start,
        "hint loss must fall by 4x: {hint_start:.4} -> {hint_end:.4}"
    );
    assert!(at_end < 0.5 * at_start, "attention loss must halve: {at_start:.5} -> {at_end:.5}");
}
