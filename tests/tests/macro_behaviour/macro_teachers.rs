//! `#[distill(teachers(...))]`: two typed teachers, each with its own pairings, teach one
//! student; the soft term uses their weighted average or a term per teacher.

use dfdx::optim::{Momentum, Sgd, SgdConfig};
use dfdx::prelude::*;
use kd_core::distill::{distill_step, distill_step_with, Distill, SettingsError};
use kd_core::loss::{kd_loss, multi_teacher_kd_with_ce_loss, Ensemble, KdConfig};
use kd_core::ops::value_of;
use kd_core::{distill, model};

use crate::task::{agreement, batch, predictions, task, CLASSES, FEATURES};

/// One hidden layer, 48 wide.
#[model]
pub struct Wide {
    fc1: Linear<FEATURES, 48>,
    act1: ReLU,
    head: Linear<48, CLASSES>,
}

/// Three hidden layers, narrower.
#[model]
pub struct Deep {
    fc1: Linear<FEATURES, 24>,
    act1: ReLU,
    fc2: Linear<24, 24>,
    act2: ReLU,
    fc3: Linear<24, 16>,
    act3: ReLU,
    head: Linear<16, CLASSES>,
}

/// Averaged soft targets (3 : 1), and a hint from each teacher into a different layer.
#[distill(
    teachers(wide = Wide, deep = Deep),
    teacher_weights(wide = 3.0, deep = 1.0),
    temp = 4.0,
    input = [8],
    match(features)
)]
pub struct AveragedStudent {
    #[distill(pair = wide.fc1)]
    fc1: Linear<FEATURES, 6>,
    act1: ReLU,
    #[distill(pair = deep.fc3)]
    fc2: Linear<6, 6>,
    act2: ReLU,
    head: Linear<6, CLASSES>,
}

/// A soft term per teacher, equal weights.
#[distill(teachers(wide = Wide, deep = Deep), ensemble = each, temp = 4.0, input = [8])]
pub struct EachStudent {
    fc1: Linear<FEATURES, 6>,
    act1: ReLU,
    head: Linear<6, CLASSES>,
}

type Teachers = <AveragedStudent as Distill>::TeacherModel;

fn sgd() -> SgdConfig {
    SgdConfig {
        lr: 0.1,
        momentum: Some(Momentum::Nesterov(0.9)),
        weight_decay: None,
    }
}

/// Trains each teacher on the task for `steps` steps, with its own initialisation.
fn trained_teachers(dev: &Cpu, steps: usize) -> Teachers {
    let (x, y) = task(2048, 1);
    let mut teachers: Teachers = dev.build_module::<<AveragedStudent as Distill>::Teacher, f32>();
    fn train<M>(model: &mut M, x: &[f32], y: &[usize], steps: usize)
    where
        M: TensorCollection<f32, Cpu>
            + ModuleMut<
                Tensor<(usize, Const<FEATURES>), f32, Cpu, OwnedTape<f32, Cpu>>,
                Output = Tensor<(usize, Const<CLASSES>), f32, Cpu, OwnedTape<f32, Cpu>>,
            >,
    {
        let dev = Cpu::default();
        let mut grads = model.alloc_grads();
        let mut opt = Sgd::new(model, sgd());
        for step in 0..steps {
            let (input, labels) = batch(&dev, x, y, step);
            let loss = kd_core::loss::cross_entropy_loss(model.forward_mut(input.traced(grads)), &labels).expect("valid labels");
            grads = loss.backward();
            opt.update(model, &grads).expect("teacher update");
            model.zero_grads(&mut grads);
        }
    }
    train(&mut teachers.0, &x, &y, steps);
    train(&mut teachers.1, &x, &y, steps);
    teachers
}

#[test]
fn two_teachers_give_their_named_terms_and_weights() {
    let settings = AveragedStudent::settings();
    assert_eq!(settings.teachers, [("wide", 3.0), ("deep", 1.0)]);
    assert_eq!(EachStudent::settings().teachers, [("wide", 1.0), ("deep", 1.0)]);

    let dev = Cpu::seed_from_u64(0);
    let teachers = dev.build_module::<<AveragedStudent as Distill>::Teacher, f32>();
    let (x, y) = batch(&dev, &task(128, 3).0, &task(128, 3).1, 0);
    let mut averaged = AveragedStudent::build_distiller(&dev);
    let mut opt = Sgd::new(&averaged, sgd());
    let grads = averaged.alloc_grads();
    let (terms, _) =
        distill_step::<AveragedStudent, _>(&mut averaged, &teachers, &mut opt, x.clone(), &y, grads, 0).expect("a finite step");
    let names: Vec<&str> = terms.iter().map(|t| t.name).collect();
    assert_eq!(names, ["ce", "kd", "hint.fc1", "hint.fc2"]);

    let mut each = EachStudent::build_distiller(&dev);
    let mut opt = Sgd::new(&each, sgd());
    let grads = each.alloc_grads();
    let (terms, _) = distill_step::<EachStudent, _>(&mut each, &teachers, &mut opt, x, &y, grads, 0).expect("a finite step");
    let named: Vec<(&str, f64)> = terms.iter().map(|t| (t.name, t.weight)).collect();
    assert_eq!(named, [("ce", 0.1), ("kd.wide", 0.45), ("kd.deep", 0.45)]);
}

#[test]
fn the_generated_soft_terms_are_kd_cores_multi_teacher_losses() {
    let dev = Cpu::seed_from_u64(1);
    let teachers = dev.build_module::<<AveragedStudent as Distill>::Teacher, f32>();
    let (inputs, labels) = task(64, 4);
    let (x, y) = batch(&dev, &inputs, &labels, 0);
    let (wide_logits, deep_logits) = (teachers.0.forward(x.clone()), teachers.1.forward(x.clone()));

    let mut averaged = AveragedStudent::build_distiller(&dev);
    let student_logits = averaged.student.forward(x.clone());
    let grads = averaged.alloc_grads();
    let generated = AveragedStudent::distill_loss(&mut averaged, &teachers, x.clone(), &y, grads).expect("valid inputs");
    let config = KdConfig::default().with_temperature(4.0);
    let expected = multi_teacher_kd_with_ce_loss(
        student_logits.leaky_trace(),
        &[wide_logits.clone(), deep_logits.clone()],
        &[("kd.wide", 3.0), ("kd.deep", 1.0)],
        &y,
        &config,
        Ensemble::Average,
    )
    .expect("valid inputs");
    for name in ["ce", "kd"] {
        let (ours, theirs) = (generated.get(name), expected.get(name));
        assert!(ours.is_some() && ours == theirs, "{name}: {ours:?} vs {theirs:?}");
    }

    let mut each = EachStudent::build_distiller(&dev);
    let student_logits = each.student.forward(x.clone());
    let grads = each.alloc_grads();
    let generated = EachStudent::distill_loss(&mut each, &teachers, x, &y, grads).expect("valid inputs");
    for (name, teacher_logits) in [("kd.wide", wide_logits), ("kd.deep", deep_logits)] {
        let alone = value_of(&kd_loss(student_logits.clone(), teacher_logits, 4.0).expect("valid inputs"));
        let ours = generated.get(name).unwrap_or(f64::NAN);
        assert!((ours - alone).abs() <= 1e-6 * alone.abs().max(1.0), "{name}: {ours} vs {alone}");
    }
}

#[test]
fn a_teacher_weighted_zero_at_run_time_is_left_out() {
    let dev = Cpu::seed_from_u64(2);
    let teachers = dev.build_module::<<AveragedStudent as Distill>::Teacher, f32>();
    let (inputs, labels) = task(64, 5);
    let (x, y) = batch(&dev, &inputs, &labels, 0);
    let mut distiller = AveragedStudent::build_distiller(&dev);
    let student_logits = distiller.student.forward(x.clone());
    let mut settings = AveragedStudent::settings();
    settings.set_teacher_weight("deep", 0.0).expect("a known teacher");
    let grads = distiller.alloc_grads();
    let loss = AveragedStudent::distill_loss_with(&mut distiller, &teachers, x.clone(), &y, grads, &settings).expect("valid inputs");
    let wide_alone = value_of(&kd_loss(student_logits, teachers.0.forward(x.clone()), 4.0).expect("valid inputs"));
    let kd = loss.get("kd").unwrap_or(f64::NAN);
    assert!((kd - wide_alone).abs() <= 1e-5 * wide_alone.max(1.0), "{kd} vs {wide_alone}");

    assert!(matches!(
        settings.set_teacher_weight("wdie", 1.0),
        Err(SettingsError::UnknownTeacher { known, .. }) if known == ["wide", "deep"]
    ));
    settings.set_teacher_weight("wide", 0.0).expect("a known teacher");
    let mut opt = Sgd::new(&distiller, sgd());
    let grads = distiller.alloc_grads();
    let refused = distill_step_with::<AveragedStudent, _>(&mut distiller, &teachers, &mut opt, x, &y, grads, 3, &settings);
    let message = refused.err().map(|e| e.to_string()).unwrap_or_default();
    assert!(message.contains("`teacher weights` must be not all 0"), "{message}");
}

/// Two teachers trained on the task teach a six-unit student: the soft terms fall and the
/// student comes to agree with the teachers' ensemble.
#[test]
fn two_trained_teachers_teach_one_student() {
    let dev = Cpu::seed_from_u64(7);
    let teachers = trained_teachers(&dev, 500);
    let (train_x, train_y) = task(2048, 1);
    let (test_x, test_y) = task(1024, 2);
    let wide_accuracy = agreement(&predictions(&teachers.0, &dev, &test_x), &test_y);
    let deep_accuracy = agreement(&predictions(&teachers.1, &dev, &test_x), &test_y);
    assert!(
        wide_accuracy > 0.8 && deep_accuracy > 0.8,
        "the teachers learn first: {wide_accuracy}, {deep_accuracy}"
    );

    let mut distiller = EachStudent::build_distiller(&dev);
    let before = agreement(&predictions(&distiller.student, &dev, &test_x), &test_y);
    let mut opt = Sgd::new(&distiller, sgd());
    let mut grads = distiller.alloc_grads();
    let mut soft = Vec::new();
    for step in 0..500 {
        let (x, y) = batch(&dev, &train_x, &train_y, step);
        let (terms, next) = distill_step::<EachStudent, _>(&mut distiller, &teachers, &mut opt, x, &y, grads, step).expect("a finite step");
        grads = next;
        soft.push(terms.iter().filter(|t| t.name.starts_with("kd.")).map(|t| t.value).sum::<f64>());
    }
    let mean = |values: &[f64]| values.iter().sum::<f64>() / values.len() as f64;
    let (early, late) = (mean(&soft[..20]), mean(&soft[soft.len() - 20..]));
    assert!(late < 0.5 * early, "the soft terms fall: {early:.4} -> {late:.4}");
    let after = agreement(&predictions(&distiller.student, &dev, &test_x), &test_y);
    eprintln!("teachers {wide_accuracy:.3} / {deep_accuracy:.3}; student {before:.3} -> {after:.3}");
    assert!(
        after > 0.75 && after > before + 0.2,
        "the student learns the task: {before:.3} -> {after:.3}"
    );
}
