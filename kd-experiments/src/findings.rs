//! The reproduction's comparisons as the notebooks read them: typed, as a table, as a chart of
//! the paired Δ with ± std error bars, and as sentences computed from the data, so that no
//! notebook types a result by hand.

use std::path::Path;

use kd_core::charts::{forest_figure, ChartError, Figure, Interval, Table};
use serde::Deserialize;

use crate::reproduce::{self, Group, Metric, Size, COMMITTED};
use crate::settings::Error;

/// One comparison of `reproduction.json`: its arms over the seeds and their paired Δ.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct Finding {
    /// What is compared, e.g. "Born-Again: generation 1 vs generation 0".
    pub experiment: String,
    /// The `kd reproduce` group that trained it.
    pub group: String,
    /// What the arms are measured in.
    pub metric: Metric,
    /// The seeds, in the order of every `values` list.
    pub seeds: Vec<u64>,
    /// The baseline and the method (and the teacher where there is one).
    pub arms: Arms,
    /// The method's value minus the baseline's, per seed.
    pub delta: Spread,
    /// "reproduced", "direction only" or "not reproduced".
    pub verdict: String,
}

/// A comparison's arms.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct Arms {
    /// The teacher, where the comparison has one.
    pub teacher: Option<Arm>,
    /// What the method is compared with.
    pub baseline: Arm,
    /// The method.
    pub method: Arm,
}

/// One arm: the model it names and its value per seed.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct Arm {
    /// The model's name in the group's results.
    pub model: String,
    /// Its value per seed, with their mean and standard deviation.
    #[serde(flatten)]
    pub spread: Spread,
}

/// Values over the seeds, with their mean and standard deviation (n − 1).
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct Spread {
    /// One value per seed.
    pub values: Vec<f64>,
    /// Their mean.
    pub mean: f64,
    /// Their standard deviation (0 for one seed).
    pub std: f64,
}

impl Finding {
    /// The seeds in which the method beats the baseline.
    pub fn better_in(&self) -> usize {
        let lower_is_better = self.metric.lower_is_better();
        self.delta
            .values
            .iter()
            .filter(|&&d| if lower_is_better { d < 0.0 } else { d > 0.0 })
            .count()
    }

    /// One sentence on the comparison, every number from the data: who beats whom in how many
    /// seeds, the mean paired Δ and the verdict.
    pub fn sentence(&self) -> String {
        let wins = self.better_in();
        let seeds = self.delta.values.len();
        let (better, worse) = if self.metric.lower_is_better() {
            ("fewer", "more")
        } else {
            ("higher", "lower")
        };
        let on_average = if (self.delta.mean < 0.0) == self.metric.lower_is_better() {
            better
        } else {
            worse
        };
        let (quantity, unit) = self.metric.quantity();
        format!(
            "{}: {} beats {} in {wins} of {seeds} seeds; on average it has {on_average} {quantity} (Δ = {:+.*} ± {:.*}{unit}); verdict: {}.",
            self.experiment,
            self.arms.method.model,
            self.arms.baseline.model,
            self.decimals(),
            self.delta.mean,
            self.decimals(),
            self.delta.std,
            self.verdict
        )
    }

    /// The decimals its values are shown with: errors are counts, dB and bits are fractions.
    fn decimals(&self) -> usize {
        if self.metric == Metric::TestErrors {
            1
        } else {
            2
        }
    }
}

/// The committed findings of `group` (`kd-experiments/results/reproduction.json`, compiled in).
///
/// # Errors
/// When the committed file is not a reproduction.
pub fn committed(group: Group) -> Result<Vec<Finding>, Error> {
    let reproduction: serde_json::Value = serde_json::from_str(COMMITTED)?;
    let rows = reproduction["rows"]
        .as_array()
        .ok_or("results/reproduction.json has no `rows` list")?;
    of_group(rows, group)
}

/// The findings of `group` among `rows` (what [`crate::reproduce::run`] returns).
///
/// # Errors
/// When a row of the group does not have a finding's fields.
pub fn of_group(rows: &[serde_json::Value], group: Group) -> Result<Vec<Finding>, Error> {
    rows.iter()
        .filter(|row| row["group"] == group.name())
        .map(|row| Finding::deserialize(row).map_err(|e| format!("reproduction row {}: {e}", row["experiment"]).into()))
        .collect()
}

/// Trains `group` at the quick size for each of `seeds` under `scratch` and returns its
/// findings: the harness of `kd reproduce --quick`, quietly, for a notebook's smoke run.
///
/// # Errors
/// The first training or data error.
pub fn quick(group: Group, seeds: &[u64], scratch: &Path) -> Result<Vec<Finding>, Error> {
    let results = seeds
        .iter()
        .map(|&seed| {
            reproduce::train_seed(
                group,
                Size::Quick,
                seed,
                &scratch.join(group.name()).join(format!("seed-{seed}")),
                false,
            )
        })
        .collect::<Result<Vec<_>, _>>()?;
    of_group(&reproduce::rows_of(group, &results)?, group)
}

/// The findings as a table: each arm's mean ± std, the Δ, the seeds it wins and the verdict.
pub fn table(findings: &[Finding]) -> Table {
    let mut table = Table::new(["comparison", "baseline", "method", "Δ (method − baseline)", "better in", "verdict"]);
    for finding in findings {
        let decimals = finding.decimals();
        let cell = |spread: &Spread| format!("{:.*} ± {:.*}", decimals, spread.mean, decimals, spread.std);
        table.row([
            finding.experiment.clone(),
            format!("{}: {}", finding.arms.baseline.model, cell(&finding.arms.baseline.spread)),
            format!("{}: {}", finding.arms.method.model, cell(&finding.arms.method.spread)),
            format!("{:+.*} ± {:.*}", decimals, finding.delta.mean, decimals, finding.delta.std),
            format!("{} of {}", finding.better_in(), finding.delta.values.len()),
            finding.verdict.clone(),
        ]);
    }
    table
}

/// The findings' paired Δ (method − baseline) as a forest chart: each row's mean with ± std
/// error bars, and a line at 0 (no effect).
///
/// # Errors
/// When the chart cannot be drawn.
pub fn delta_figure(title: &str, findings: &[Finding]) -> Result<Figure, ChartError> {
    let rows: Vec<Interval> = findings
        .iter()
        .map(|f| Interval {
            label: f.experiment.clone(),
            mean: f.delta.mean,
            spread: f.delta.std,
            reference: None,
        })
        .collect();
    let metric = findings.first().map_or(Metric::TestErrors, |f| f.metric);
    let seeds = findings.first().map_or(0, |f| f.seeds.len());
    let direction = if metric.lower_is_better() {
        "left of 0: the method is better"
    } else {
        "right of 0: the method is better"
    };
    forest_figure(
        title,
        &format!(
            "Δ {} (method − baseline), mean ± std over {seeds} seeds; {direction}",
            metric.label()
        ),
        &rows,
    )
}

/// A committed validation file: the runs on held-out training images that chose a recipe.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Validation {
    /// `results/born_again_validation.json`: the temperature, and whether to jitter.
    BornAgain,
    /// `results/netaug_validation.json`: the dataset and α.
    Netaug,
    /// `results/methods_validation.json`: the CNN methods' dataset and epochs.
    Methods,
}

impl Validation {
    fn file(self) -> (&'static str, &'static str) {
        match self {
            Validation::BornAgain => (
                "results/born_again_validation.json",
                include_str!("../results/born_again_validation.json"),
            ),
            Validation::Netaug => ("results/netaug_validation.json", include_str!("../results/netaug_validation.json")),
            Validation::Methods => (
                "results/methods_validation.json",
                include_str!("../results/methods_validation.json"),
            ),
        }
    }
}

/// One sentence per finished validation run of `which` (seed 0, errors on held-out training
/// images): each model's held-out errors averaged over its last epochs (`averaged_epochs`,
/// ten unless the run says otherwise).
///
/// # Errors
/// When the committed file lacks a run's averages.
pub fn validation(which: Validation) -> Result<Vec<String>, Error> {
    let (name, text) = which.file();
    let validation: serde_json::Value = serde_json::from_str(text)?;
    let runs = validation["runs"].as_object().ok_or_else(|| format!("{name} has no `runs`"))?;
    runs.iter()
        .filter(|(_, run)| run["final"].is_object())
        .map(|(run_name, run)| {
            let epochs = run["averaged_epochs"].as_u64().unwrap_or(10);
            let averages = run[format!("mean_of_last_{epochs}_epochs").as_str()]
                .as_object()
                .ok_or_else(|| format!("{name}: run `{run_name}` has no averages over its last {epochs} epochs"))?;
            let models: Vec<String> = averages.iter().map(|(model, errors)| format!("{model} {errors}")).collect();
            Ok(format!(
                "{run_name}: held-out errors averaged over the last {epochs} epochs: {}",
                models.join(", ")
            ))
        })
        .collect()
}
