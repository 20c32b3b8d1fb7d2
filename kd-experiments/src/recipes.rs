//! The training recipe the CNN experiments share: Adam at 1e-3, halved for the last third of
//! the epochs, batches of 64; a model on the labels alone, or a `#[distill]` student from a
//! trained teacher. Each trains through kd-core's epoch runner, so it checkpoints, resumes and
//! stops on a non-finite loss term.

use dfdx::nn::{LoadFromSafetensors, SaveToSafetensors, TensorCollection};
use dfdx::optim::{AdamConfig, Optimizer};
use dfdx::prelude::*;
use kd_core::data::mnist::Split;
use kd_core::distill::{distill_step_with, Distill, Distiller, Settings};
use kd_core::train::{run_epochs, supervised_step, Adam, Fitted, Guard, Record, Stage, TrainError};

use crate::inputs::{evaluate_images, image_batch, jitter_if, Images, Logits};
use crate::settings::Options;

/// Samples per step.
pub const BATCH: usize = 64;

/// Adam at 1e-3, halved for the last third of the epochs.
pub fn learning_rate(epoch: usize, epochs: usize) -> f64 {
    if 3 * epoch >= 2 * epochs && epochs > 1 {
        5e-4
    } else {
        1e-3
    }
}

/// The recipe's optimiser.
pub fn adam() -> Adam {
    Adam::new(AdamConfig {
        lr: 1e-3,
        ..Default::default()
    })
}

/// The stage `name` of a CNN experiment: `epochs` epochs over `train` in batches of [`BATCH`]
/// in the order `seed` fixes, on `schedule`.
pub fn stage<'a>(
    name: &'a str,
    epochs: usize,
    seed: u64,
    train: &Split,
    options: &'a Options,
    schedule: &'a dyn Fn(usize) -> f64,
) -> Stage<'a> {
    Stage {
        name,
        out: &options.out,
        epochs,
        resume: options.resume,
        samples: train.len(),
        batch_size: BATCH,
        seed,
        learning_rate: Some(schedule),
        guard: Guard::default(),
    }
}

/// The record of a CNN after an epoch: its test errors.
pub fn test_record<M: Module<Images, Output = Logits>>(model: &M, dev: &Cpu, test: &Split) -> Record {
    let mut record = Record::new();
    record.insert("test_errors".into(), serde_json::json!(evaluate_images(model, dev, test).errors));
    record
}

/// Trains a CNN on the labels alone (a teacher, a student baseline).
pub fn train_on_labels<M>(
    name: &str,
    epochs: usize,
    model: &mut M,
    options: &Options,
    train: &Split,
    test: &Split,
) -> Result<Fitted, TrainError>
where
    M: ModuleMut<
            Tensor<(usize, Const<1>, usize, usize), f32, Cpu, OwnedTape<f32, Cpu>>,
            Output = Tensor<(usize, Const<10>), f32, Cpu, OwnedTape<f32, Cpu>>,
        > + Module<Images, Output = Logits>
        + TensorCollection<f32, Cpu>
        + SaveToSafetensors<f32, Cpu>
        + LoadFromSafetensors<f32, Cpu>,
    Adam: Optimizer<M, Cpu, f32>,
{
    let schedule = |epoch| learning_rate(epoch, epochs);
    run_epochs(
        &stage(name, epochs, options.seed, train, options, &schedule),
        model,
        &mut adam(),
        |epoch, batch, model, optimizer, grads| {
            let (x, y) = image_batch(&epoch.dev, train, batch.indices, jitter_if(options.jitter, &mut epoch.rng));
            supervised_step(model, optimizer, x, &y, grads, batch.step)
        },
        |model, epoch| Ok(test_record(model, &epoch.dev, test)),
    )
}

/// Distils student `S` from `teacher` with its `#[distill]`-generated loss; `seed` fixes the
/// initial weights and the data order. With `options.kd_schedule` the logit term's temperature
/// and weights follow it, epoch by epoch, and each epoch's record holds them. Returns the record
/// and the trained student and adapters.
pub fn distil<S, Student, Adapters, TeacherModel>(
    name: &str,
    teacher: &TeacherModel,
    seed: u64,
    options: &Options,
    train: &Split,
    test: &Split,
) -> Result<(Fitted, Distiller<Student, Adapters>), TrainError>
where
    S: Distill<Dtype = f32, TeacherModel = TeacherModel, Input = Images, Model = Distiller<Student, Adapters>>,
    Distiller<Student, Adapters>: TensorCollection<f32, Cpu> + SaveToSafetensors<f32, Cpu> + LoadFromSafetensors<f32, Cpu>,
    Student: Module<Images, Output = Logits>,
    Adam: Optimizer<Distiller<Student, Adapters>, Cpu, f32>,
{
    distil_after_init::<S, _, _, _>(name, teacher, seed, options, train, test, 0)
}

/// The epochs of the feature-only initialisation stage that FSP (Yim et al. 2017) and AB (Heo
/// et al. 2019) train before the task, for students trained `epochs` on the task: RepDistiller's
/// 30 init epochs before its 240, one eighth, at least one.
pub fn init_epochs(epochs: usize) -> usize {
    epochs.div_ceil(8).max(1)
}

/// [`distil`] in two stages, as FSP and AB train (RepDistiller's `init` stage): for
/// `init_epochs` epochs the student and its adapters learn the feature terms alone at a
/// constant rate (no CE, no soft term), then `options.epochs` epochs on the attribute's logit
/// terms alone (its CE), on the task's schedule. With `init_epochs = 0` this is [`distil`].
pub fn distil_after_init<S, Student, Adapters, TeacherModel>(
    name: &str,
    teacher: &TeacherModel,
    seed: u64,
    options: &Options,
    train: &Split,
    test: &Split,
    init_epochs: usize,
) -> Result<(Fitted, Distiller<Student, Adapters>), TrainError>
where
    S: Distill<Dtype = f32, TeacherModel = TeacherModel, Input = Images, Model = Distiller<Student, Adapters>>,
    Distiller<Student, Adapters>: TensorCollection<f32, Cpu> + SaveToSafetensors<f32, Cpu> + LoadFromSafetensors<f32, Cpu>,
    Student: Module<Images, Output = Logits>,
    Adam: Optimizer<Distiller<Student, Adapters>, Cpu, f32>,
{
    let mut distiller = S::build_distiller(&Cpu::seed_from_u64(seed ^ 0x5EED));
    // The initialisation runs at the task's first rate; the task's schedule starts after it.
    let schedule = |epoch: usize| learning_rate(epoch.saturating_sub(init_epochs), options.epochs);
    let settings_of = |epoch: usize| {
        let mut settings: Settings = S::settings();
        match epoch.checked_sub(init_epochs) {
            None => {
                settings.kd.ce_weight = 0.0;
                settings.kd.kd_weight = 0.0;
            }
            Some(task_epoch) => {
                if init_epochs > 0 {
                    settings.terms.iter_mut().for_each(|(_, weight)| *weight = 0.0);
                }
                if let Some(kd_schedule) = &options.kd_schedule {
                    settings.kd = kd_schedule.config(&settings.kd, task_epoch, options.epochs);
                }
            }
        }
        settings
    };
    let fitted = run_epochs(
        &stage(name, init_epochs + options.epochs, seed, train, options, &schedule),
        &mut distiller,
        &mut adam(),
        |epoch, batch, distiller, optimizer, grads| {
            let (x, y) = image_batch(&epoch.dev, train, batch.indices, jitter_if(options.jitter, &mut epoch.rng));
            distill_step_with::<S, _>(distiller, teacher, optimizer, x, &y, grads, batch.step, &settings_of(epoch.index))
        },
        |distiller, epoch| {
            let mut record = test_record(&distiller.student, &epoch.dev, test);
            if let (Some(kd_schedule), Some(task_epoch)) = (&options.kd_schedule, epoch.index.checked_sub(init_epochs)) {
                kd_schedule.record(&mut record, task_epoch, options.epochs);
            }
            Ok(record)
        },
    )?;
    Ok((fitted, distiller))
}
