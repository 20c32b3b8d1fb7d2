//! `#[distill]` on an MLP pair: the generated code compiles, trains, and names its terms.

use dfdx::optim::{Momentum, Sgd, SgdConfig};
use dfdx::prelude::*;
use kd_core::distill::{distill_step, Distill};

mod common;

use common::{Student, Teacher};

#[test]
fn generated_step_trains_and_names_terms() {
    let dev = Cpu::seed_from_u64(0);
    let teacher = dev.build_module::<Teacher, f32>();
    let mut distiller = Student::build_distiller(&dev);
    let mut opt = Sgd::new(
        &distiller,
        SgdConfig {
            lr: 0.01,
            momentum: Some(Momentum::Classic(0.9)),
            weight_decay: None,
        },
    );
    let mut grads = distiller.alloc_grads();
    let x: Tensor<(usize, Const<8>), f32, _> = dev.sample_normal_like(&(16, Const));
    let targets: Vec<usize> = (0..16).map(|i| i % 3).collect();
    let mut first = None;
    let mut last = 0.0;
    for step in 0..50 {
        let (terms, next) =
            distill_step::<Student, _>(&mut distiller, &teacher, &mut opt, x.clone(), &targets, grads, step).expect("finite");
        grads = next;
        let names: Vec<&str> = terms.iter().map(|t| t.name).collect();
        assert_eq!(names, ["ce", "kd", "hint.fc2"]);
        let total: f64 = terms.iter().map(|t| t.weight * t.value).sum();
        first.get_or_insert(total);
        last = total;
    }
    assert!(last < first.unwrap_or(0.0), "{first:?} -> {last}");
}

/// A label count that does not match the batch is the step's error, not a panic in dfdx.
#[test]
fn a_wrong_label_count_is_an_error_not_a_panic() {
    let dev = Cpu::seed_from_u64(2);
    let teacher = dev.build_module::<Teacher, f32>();
    let mut distiller = Student::build_distiller(&dev);
    let mut opt = Sgd::new(&distiller, SgdConfig::default());
    let grads = distiller.alloc_grads();
    let x: Tensor<(usize, Const<8>), f32, _> = dev.sample_normal_like(&(16, Const));
    let error =
        distill_step::<Student, _>(&mut distiller, &teacher, &mut opt, x, &[0, 1, 2], grads, 7).expect_err("3 labels for 16 samples");
    assert_eq!(
        error.to_string(),
        "step 7: 3 labels for a batch of 16 samples; give one label per sample"
    );
}

#[test]
fn generated_models_save_load_and_move_like_dfdx_modules() {
    let dev = Cpu::seed_from_u64(1);
    let distiller = Student::build_distiller(&dev);
    let path = std::env::temp_dir().join(format!("kd-macro-{}.safetensors", std::process::id()));
    distiller.save_safetensors(&path).expect("save");
    let mut loaded = Student::build_distiller(&Cpu::seed_from_u64(2));
    assert_ne!(loaded.student.fc1.weight.as_vec(), distiller.student.fc1.weight.as_vec());
    loaded.load_safetensors(&path).expect("load");
    std::fs::remove_file(&path).expect("clean up");
    assert_eq!(loaded.student.fc1.weight.as_vec(), distiller.student.fc1.weight.as_vec());
    assert_eq!(loaded.adapters.0.bias.as_vec(), distiller.adapters.0.bias.as_vec());
    let x: Tensor<(usize, Const<8>), f32, _> = dev.sample_normal_like(&(3, Const));
    assert_eq!(loaded.student.forward(x.clone()).as_vec(), distiller.student.forward(x).as_vec());
    // Parameter count: student 8·6+6 + 6·6+6 + 6·3+3, adapter 6·32+32.
    assert_eq!(distiller.num_trainable_params(), 54 + 42 + 21 + 224);
}

mod logits_only {
    use super::*;
    use kd_core::distill::{distill_step_from_logits, DistillFromLogits};
    use kd_core::{distill, model};

    #[model]
    pub struct Teacher {
        fc1: Linear<8, 16>,
        act: ReLU,
        head: Linear<16, 3>,
    }

    #[distill(teacher = Teacher, input = [8], temp = 4.0)]
    pub struct Student {
        fc1: Linear<8, 4>,
        act: ReLU,
        head: Linear<4, 3>,
    }

    /// The cached-logits step of a logits-only student equals its live step, term for term and
    /// weight for weight, over several updates.
    #[test]
    fn cached_teacher_logits_give_the_same_steps() {
        let dev = Cpu::seed_from_u64(5);
        let teacher = dev.build_module::<Teacher, f32>();
        let config = SgdConfig {
            lr: 0.05,
            momentum: Some(Momentum::Classic(0.9)),
            weight_decay: None,
        };
        let mut live = Student::build_distiller(&dev);
        let mut cached = live.clone();
        let (mut live_opt, mut cached_opt) = (Sgd::new(&live, config), Sgd::new(&cached, config));
        let (mut live_grads, mut cached_grads) = (live.alloc_grads(), cached.alloc_grads());
        let x: Tensor<(usize, Const<8>), f32, _> = dev.sample_normal_like(&(12, Const));
        let targets: Vec<usize> = (0..12).map(|i| i % 3).collect();
        let logits = Student::teacher_logits(&teacher, x.clone());
        for step in 0..5 {
            let (live_terms, next) =
                distill_step::<Student, _>(&mut live, &teacher, &mut live_opt, x.clone(), &targets, live_grads, step).expect("finite");
            live_grads = next;
            let (cached_terms, next) = distill_step_from_logits::<Student, _>(
                &mut cached,
                logits.clone(),
                &mut cached_opt,
                x.clone(),
                &targets,
                cached_grads,
                step,
            )
            .expect("finite");
            cached_grads = next;
            assert_eq!(live_terms, cached_terms, "step {step}");
        }
        assert_eq!(live.student.fc1.weight.as_vec(), cached.student.fc1.weight.as_vec());
        assert_ne!(
            live.student.fc1.weight.as_vec(),
            Student::build_distiller(&dev).student.fc1.weight.as_vec()
        );
    }
}
