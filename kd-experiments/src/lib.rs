//! # kd-experiments: the experiments of kd, as a library
//!
//! The `kd` command and the notebooks in `notebooks/` call the same functions. Every training
//! goes through kd-core's epoch runner ([`kd_core::train::run_epochs`]), so each checkpoints,
//! resumes and stops on a non-finite loss term the same way.
//!
//! | module | what it holds |
//! |---|---|
//! | [`hinton`] | `kd demo`: Hinton et al. (2015) §3 on MNIST |
//! | [`methods`] | `kd run --method`: the feature and relation losses on one CNN pair |
//! | [`regimes`] | `kd run --regime`: Born-Again, DML, BYOT, NetAug (and the two below) |
//! | [`generative`] | GAN Compression-style MNIST denoising |
//! | [`language`] | DistilBERT/TinyBERT-style character models |
//! | [`teachers`] | two different teachers, one student (`#[distill(teachers(...))]`) |
//! | [`models`] | every model the experiments train |
//! | [`recipes`] | the CNN experiments' shared recipe: optimiser, schedule, training on labels, distilling |
//! | [`inputs`] | batches as tensors, evaluation |
//! | [`report`] | tables, the results file and charts |
//! | [`reproduce`] | `kd reproduce`: every experiment over seeds, paired Δ beside the paper |
//! | [`findings`] | the reproduction's comparisons as notebooks read them: table, Δ chart, sentences |
//! | [`settings`] | the CNN experiments' settings and data |
//!
//! Imports run one way: `settings`, `inputs` and `models` at the bottom, then `recipes` and
//! `report`, then the experiments, which do not import each other except `regimes`, which runs
//! the generative and language regimes beside its own, and `reproduce`, which runs them all;
//! `findings` reads what `reproduce` wrote.

pub mod findings;
pub mod generative;
pub mod hinton;
pub mod inputs;
pub mod language;
pub mod methods;
pub mod models;
pub mod recipes;
pub mod regimes;
pub mod report;
pub mod reproduce;
pub mod settings;
pub mod teachers;
