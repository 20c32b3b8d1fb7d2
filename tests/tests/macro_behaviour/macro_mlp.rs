//! `#[distill]` on an MLP pair: the generated code compiles, trains, and names its terms.

use dfdx::optim::{Momentum, Sgd, SgdConfig};
use dfdx::prelude::*;
use kd_core::distill::{distill_step, Distill};

use crate::common::{Student, Teacher};

/// The temperature, read from a `const`.
const COOL: f64 = 2.5;

mod weights {
    /// A hint weight in another module, of another float type.
    pub const HINT: f32 = 40.0;
}

/// A student whose settings name `const`s.
#[kd_core::distill(teacher = Teacher, temp = COOL, kd_weight = 0.5, input = [8], match(features(weight = weights::HINT)))]
pub struct ConstStudent {
    fc1: Linear<8, 6>,
    act1: ReLU,
    #[distill(pair)]
    fc2: Linear<6, 6>,
    act2: ReLU,
    head: Linear<6, 3>,
}

#[test]
fn settings_may_name_consts() {
    let settings = ConstStudent::settings();
    assert_eq!((settings.kd.temperature, settings.kd.kd_weight), (2.5, 0.5));
    assert_eq!(settings.terms, [("hint.fc2", 40.0)]);
    let dev = Cpu::seed_from_u64(4);
    let teacher = dev.build_module::<Teacher, f32>();
    let mut distiller = ConstStudent::build_distiller(&dev);
    let mut opt = Sgd::new(&distiller, SgdConfig::default());
    let x: Tensor<(usize, Const<8>), f32, _> = dev.sample_normal_like(&(4, Const));
    let grads = distiller.alloc_grads();
    let (terms, _) =
        distill_step::<ConstStudent, _>(&mut distiller, &teacher, &mut opt, x, &[0, 1, 2, 0], grads, 0).expect("a finite step");
    let weights: Vec<(&str, f64)> = terms.iter().map(|t| (t.name, t.weight)).collect();
    assert_eq!(weights, [("ce", 0.1), ("kd", 0.5), ("hint.fc2", 40.0)]);
}

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

/// An empty batch or a label out of range is the loss's error, named with the step; the
/// student is not updated.
#[test]
fn an_empty_batch_or_a_bad_label_is_a_named_step_error() {
    let dev = Cpu::seed_from_u64(3);
    let teacher = dev.build_module::<Teacher, f32>();
    let mut distiller = Student::build_distiller(&dev);
    let probe: Tensor<(usize, Const<8>), f32, _> = dev.sample_normal_like(&(4, Const));
    let before = distiller.student.forward(probe.clone()).as_vec();
    let mut opt = Sgd::new(&distiller, SgdConfig::default());
    let empty: Tensor<(usize, Const<8>), f32, _> = dev.zeros_like(&(0, Const));
    let grads = distiller.alloc_grads();
    let error = distill_step::<Student, _>(&mut distiller, &teacher, &mut opt, empty, &[], grads, 4).expect_err("an empty batch");
    assert_eq!(
        error.to_string(),
        "step 4: kd_with_ce_loss: `student_logits` is empty (shape [0, 3]); a loss needs at least one sample; no update was applied"
    );
    let x: Tensor<(usize, Const<8>), f32, _> = dev.sample_normal_like(&(2, Const));
    let grads = distiller.alloc_grads();
    let error = distill_step::<Student, _>(&mut distiller, &teacher, &mut opt, x, &[0, 3], grads, 5).expect_err("a label out of range");
    assert_eq!(
        error.to_string(),
        "step 5: kd_with_ce_loss: `targets[1]` is 3 but there are only 3 classes; no update was applied"
    );
    assert_eq!(distiller.student.forward(probe).as_vec(), before, "the student was not updated");
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

/// The numbers of the attribute are run-time settings: a schedule changes the temperature and
/// a term's weight between steps, and settings of another student are refused by the step.
#[test]
fn settings_change_at_run_time_and_are_checked() {
    use kd_core::distill::{distill_step_with, StepError};
    use kd_core::train::{KdSchedule, Schedule};

    let dev = Cpu::seed_from_u64(5);
    let teacher = dev.build_module::<Teacher, f32>();
    let mut distiller = Student::build_distiller(&dev);
    let mut opt = Sgd::new(&distiller, SgdConfig::default());
    let x: Tensor<(usize, Const<8>), f32, _> = dev.sample_normal_like(&(8, Const));
    let targets: Vec<usize> = (0..8).map(|i| i % 3).collect();

    let written = Student::settings();
    assert_eq!(
        (written.kd.temperature, written.weight("hint.fc2")),
        (4.0, Some(kd_core::distill::weights::HINT))
    );
    let schedule = KdSchedule {
        temperature: Schedule::Linear { from: 8.0, to: 1.0 },
        ..KdSchedule::constant(&written.kd)
    };
    let mut grads = distiller.alloc_grads();
    let mut soft_terms = Vec::new();
    for epoch in 0..2 {
        let mut settings = Student::settings();
        settings.kd = schedule.config(&settings.kd, epoch, 2);
        settings.set_weight("hint.fc2", 7.0).expect("the student has this term");
        let (terms, next) =
            distill_step_with::<Student, _>(&mut distiller, &teacher, &mut opt, x.clone(), &targets, grads, epoch, &settings)
                .expect("finite");
        grads = next;
        assert_eq!(terms[2].weight, 7.0, "the weight set at run time");
        soft_terms.push(terms[1].value);
    }
    assert!(
        soft_terms[0] != soft_terms[1],
        "T = 8 then T = 1 give different soft terms: {soft_terms:?}"
    );

    let mut unknown = Student::settings();
    let error = unknown.set_weight("hint.fc9", 1.0).expect_err("no such term").to_string();
    assert!(error.contains("no term `hint.fc9`; its terms are [\"hint.fc2\"]"), "{error}");
    unknown.terms.clear();
    let refused = distill_step_with::<Student, _>(&mut distiller, &teacher, &mut opt, x, &targets, grads, 9, &unknown);
    assert!(
        matches!(&refused, Err(StepError::Settings { step: 9, message }) if message.contains("this student's are [\"hint.fc2\"]")),
        "{:?}",
        refused.err()
    );
}

/// A layer of the user's own that kd knows no shapes of: the layer-chain check passes over it.
#[derive(Debug, Clone, Default)]
pub struct Halve;

impl dfdx::nn::ZeroSizedModule for Halve {}
impl dfdx::nn::NonMutableModule for Halve {}

impl<S: Shape, T: Tape<f32, Cpu>> Module<Tensor<S, f32, Cpu, T>> for Halve {
    type Output = Tensor<S, f32, Cpu, T>;
    type Error = <Cpu as HasErr>::Err;

    fn try_forward(&self, input: Tensor<S, f32, Cpu, T>) -> Result<Self::Output, Self::Error> {
        input.try_mul(0.5)
    }
}

/// A `#[model]` block used as one layer of another model.
#[kd_core::model]
pub struct Block {
    fc: Linear<6, 6>,
    act: ReLU,
}

/// A student with an unknown layer and a model block among its fields.
#[kd_core::distill(teacher = Teacher, input = [8], match(features))]
pub struct ComposedStudent {
    fc1: Linear<8, 6>,
    halve: Halve,
    block: Block,
    #[distill(pair)]
    fc2: Linear<6, 6>,
    act2: ReLU,
    head: Linear<6, 3>,
}

#[test]
fn unknown_layers_and_model_blocks_pass_the_layer_chain_check_and_train() {
    use kd_core::distill::{Gives, Spatial, Takes};
    assert_eq!(
        (<Block as Spatial>::TAKES, <Block as Spatial>::GIVES),
        (Takes::Features(6), Gives::Count(6))
    );
    let dev = Cpu::seed_from_u64(5);
    let teacher = dev.build_module::<Teacher, f32>();
    let mut distiller = ComposedStudent::build_distiller(&dev);
    let mut opt = Sgd::new(&distiller, SgdConfig::default());
    let x: Tensor<(usize, Const<8>), f32, _> = dev.sample_normal_like(&(6, Const));
    let targets = [0, 1, 2, 0, 1, 2];
    let mut grads = distiller.alloc_grads();
    let mut totals = Vec::new();
    for step in 0..20 {
        let (terms, next) =
            distill_step::<ComposedStudent, _>(&mut distiller, &teacher, &mut opt, x.clone(), &targets, grads, step).expect("finite");
        grads = next;
        totals.push(terms.iter().map(|t| t.weight * t.value).sum::<f64>());
    }
    assert!(totals[19] < totals[0], "{totals:?}");
}
