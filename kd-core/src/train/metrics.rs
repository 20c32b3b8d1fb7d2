//! What a training records: test-set evaluations with a confusion matrix, the mean of each
//! loss term over an epoch, and one JSON line per epoch in `NAME.metrics.jsonl`.

use std::io::Write;
use std::path::{Path, PathBuf};

use crate::loss::Term;

/// Test-set results: error count, accuracy and the confusion matrix (`[true][predicted]`).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Evaluation {
    /// Misclassified samples.
    pub errors: usize,
    /// Samples evaluated.
    pub total: usize,
    /// `confusion[true][predicted]` counts.
    pub confusion: Vec<Vec<usize>>,
}

impl Evaluation {
    /// Counts predictions (arg-max of each row of `logits`) against `labels`.
    pub fn new(classes: usize) -> Self {
        Evaluation {
            errors: 0,
            total: 0,
            confusion: vec![vec![0; classes]; classes],
        }
    }

    /// Adds a batch of `logits` (`labels.len() × classes`, row-major).
    pub fn add(&mut self, logits: &[f32], labels: &[usize]) {
        let classes = self.confusion.len();
        for (&predicted, &label) in crate::metrics::argmax_rows(logits, classes).iter().zip(labels) {
            self.confusion[label][predicted] += 1;
            self.total += 1;
            self.errors += usize::from(predicted != label);
        }
    }

    /// The fraction classified correctly.
    pub fn accuracy(&self) -> f64 {
        if self.total == 0 {
            0.0
        } else {
            1.0 - self.errors as f64 / self.total as f64
        }
    }
}

/// Sums of named terms over an epoch, weighted by batch size, for the epoch's mean. Terms of
/// weight 0 are not part of the loss and are left out.
#[derive(Debug, Clone, Default)]
pub struct TermMeans {
    sums: Vec<(&'static str, f64)>,
    samples: usize,
}

impl TermMeans {
    /// Adds one batch's terms.
    pub fn add(&mut self, terms: &[Term], batch: usize) {
        for term in terms.iter().filter(|t| t.weight != 0.0) {
            let weighted = term.value * batch as f64;
            match self.sums.iter_mut().find(|(name, _)| *name == term.name) {
                Some((_, sum)) => *sum += weighted,
                None => self.sums.push((term.name, weighted)),
            }
        }
        self.samples += batch;
    }

    /// Each term's mean over the samples added, as a JSON object.
    pub fn to_json(&self) -> serde_json::Map<String, serde_json::Value> {
        self.sums
            .iter()
            .map(|(name, sum)| (name.to_string(), serde_json::json!(sum / self.samples.max(1) as f64)))
            .collect()
    }
}

/// Appends one JSON object per line (per epoch) to a file, flushed after each record.
pub struct MetricsLog {
    path: PathBuf,
    file: std::fs::File,
}

impl MetricsLog {
    /// Creates (or truncates) the log at `path`.
    pub fn create(path: &Path) -> std::io::Result<Self> {
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent)?;
        }
        Ok(MetricsLog {
            path: path.to_path_buf(),
            file: std::fs::File::create(path)?,
        })
    }

    /// Writes one record.
    pub fn record(&mut self, record: &serde_json::Value) -> std::io::Result<()> {
        writeln!(self.file, "{record}")?;
        self.file.flush()
    }

    /// Where the log is.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn evaluation_counts_errors_and_confusions() {
        let mut evaluation = Evaluation::new(3);
        evaluation.add(&[0.9, 0.1, 0.0, 0.0, 0.2, 0.8, 0.1, 0.7, 0.2], &[0, 1, 1]);
        assert_eq!((evaluation.errors, evaluation.total), (1, 3));
        assert_eq!(evaluation.confusion[1][2], 1);
        assert!((evaluation.accuracy() - 2.0 / 3.0).abs() < 1e-12);
    }
}
