//! The distillation methods side by side on one small CNN pair (`kd run --method`).
//!
//! The teacher has two 3×3 convolutions per stage, the student one (about a quarter of the
//! teacher's multiply-adds); the paired layers `conv1` (16 maps, 28×28) and `conv2` (32 maps,
//! 14×14) have the same widths on both sides, as in RepDistiller's same-width pairs, so the map
//! methods, FSP included, run on the same pairing. As in RepDistiller, RKD pairs the
//! penultimate embeddings (`fc`, 64 against 128 wide) and SP the last convolution's maps.
//! Feature methods add their term to the hard cross-entropy (RepDistiller's `-r 1 -a 0 -b β`
//! recipes); `kd` is 0.1·CE + 0.9·T²·KL, T = 4. FSP and AB train as their papers and
//! RepDistiller do, in two stages: the feature term alone first ([`init_epochs`]), then the
//! cross-entropy alone for the students' usual epochs ([`distil_after_init`]). The models are
//! in [`crate::models`].

use std::time::Instant;

use dfdx::prelude::*;
use kd_core::charts::Table;
use kd_core::data::mnist::Split;
use kd_core::distill::Built;
use kd_core::train::{Fitted, TrainError};

use crate::inputs::final_errors;
use crate::models::{
    AbStudent, AtStudent, CnnStudentAlone, CnnTeacher, FitnetStudent, FspStudent, KdStudent, NstStudent, RkdStudent, SpStudent,
};
use crate::recipes::{distil, distil_after_init, init_epochs, train_on_labels};
use crate::report::{self, Report};
pub use crate::settings::{load, Error, Method, Options, RunDataset};

/// Distils the student of `method` from the CNN teacher.
fn distil_with(
    method: Method,
    name: &str,
    teacher: &Built<CnnTeacher>,
    options: &Options,
    train: &Split,
    test: &Split,
) -> Result<Fitted, TrainError> {
    let seed = options.seed;
    let init = init_epochs(options.epochs);
    match method {
        Method::Kd => distil::<KdStudent, _, _, _>(name, teacher, seed, options, train, test).map(|r| r.0),
        Method::Fitnet => distil::<FitnetStudent, _, _, _>(name, teacher, seed, options, train, test).map(|r| r.0),
        Method::Nst => distil::<NstStudent, _, _, _>(name, teacher, seed, options, train, test).map(|r| r.0),
        Method::At => distil::<AtStudent, _, _, _>(name, teacher, seed, options, train, test).map(|r| r.0),
        Method::Ab => distil_after_init::<AbStudent, _, _, _>(name, teacher, seed, options, train, test, init).map(|r| r.0),
        Method::Fsp => distil_after_init::<FspStudent, _, _, _>(name, teacher, seed, options, train, test, init).map(|r| r.0),
        Method::Rkd => distil::<RkdStudent, _, _, _>(name, teacher, seed, options, train, test).map(|r| r.0),
        Method::Sp => distil::<SpStudent, _, _, _>(name, teacher, seed, options, train, test).map(|r| r.0),
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
    pub fn test_errors(&self) -> usize {
        final_errors(&self.fitted)
    }
}

/// Trains the teacher, the student alone and one student per method in `options.methods`, on
/// `train`, evaluating on `test` after every epoch; checkpoints go under `options.out`.
pub fn compare(options: &Options, train: &Split, test: &Split) -> Result<Vec<MethodRow>, Error> {
    std::fs::create_dir_all(&options.out)?;
    let mut teacher = Cpu::seed_from_u64(options.seed).build_module::<CnnTeacher, f32>();
    let teacher_fit = train_on_labels("teacher", options.teacher_epochs, &mut teacher, options, train, test)?;
    let mut alone = Cpu::seed_from_u64(options.seed ^ 0x5EED).build_module::<CnnStudentAlone, f32>();
    let alone_fit = train_on_labels("student_alone", options.epochs, &mut alone, options, train, test)?;
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
        let fitted = distil_with(method, &format!("student_{}", method.name()), &teacher, options, train, test)?;
        rows.push(MethodRow {
            model: format!("student + {}", method.name()),
            terms: report::term_names(&fitted),
            fitted,
        });
    }
    Ok(rows)
}

/// The comparison as a report: a table against the student alone, `methods.json` and a chart of
/// test errors per epoch.
pub fn report(rows: &[MethodRow], options: &Options, dataset: &str, train: &Split, test: &Split, seconds: f64) -> Report {
    let baseline = rows.get(1).map_or(0, MethodRow::test_errors) as i64;
    let mut table = Table::new(["model", "loss terms", "test errors", "accuracy", "vs student alone", "wall time"]);
    for row in rows {
        let errors = row.test_errors();
        table.row([
            row.model.clone(),
            row.terms.join(", "),
            errors.to_string(),
            format!("{:.2} %", 100.0 * (1.0 - errors as f64 / test.len() as f64)),
            format!("{:+}", errors as i64 - baseline),
            format!("{:.0} s", row.fitted.seconds),
        ]);
    }
    let results = serde_json::json!({
        "dataset": dataset,
        "seed": options.seed,
        "train_images": train.len(),
        "test_images": test.len(),
        "teacher_epochs": options.teacher_epochs,
        "student_epochs": options.epochs,
        "models": rows.iter().map(|row| serde_json::json!({
            "model": row.model, "terms": row.terms, "test_errors": row.test_errors(),
            "accuracy": 1.0 - row.test_errors() as f64 / test.len() as f64, "seconds": row.fitted.seconds,
            "test_errors_per_epoch": row.fitted.curve("test_errors").into_iter().map(|(_, e)| e).collect::<Vec<_>>(),
        })).collect::<Vec<_>>(),
        "total_seconds": seconds,
    });
    Report {
        title: format!(
            "{dataset} test errors (of {}), {} training images, seed {}; teacher {} epochs, students {}",
            test.len(),
            train.len(),
            options.seed,
            options.teacher_epochs,
            options.epochs
        ),
        tables: vec![(String::new(), table)],
        results,
        file: "methods.json",
        charts: vec![report::errors_chart(
            "methods_test_errors",
            &format!("{dataset}: test errors per epoch (of {})", test.len()),
            rows.iter().map(|row| (row.model.as_str(), &row.fitted)),
        )],
    }
}

/// `kd run --method`: loads the data, compares the methods, prints the table and writes
/// `methods.json` and the chart under `options.out`.
pub fn run(options: &Options) -> Result<(), Error> {
    let started = Instant::now();
    let (train, test, dataset) = load(options)?;
    report::announce(dataset, &train, &test, options);
    let rows = compare(options, &train, &test)?;
    report(&rows, options, dataset, &train, &test, started.elapsed().as_secs_f64()).publish(&options.out)
}
