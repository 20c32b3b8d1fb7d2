//! What an experiment reports: Markdown tables on stdout, a JSON results file and charts, all
//! written under the run's output folder, atomically.

use std::path::Path;

use kd_core::charts::{line_chart, Series, Table};
use kd_core::data::mnist::Split;
use kd_core::files::write_atomically;
use kd_core::train::Fitted;

use crate::settings::{Error, Options};

/// A line chart to draw as `out/STEM.svg` and `out/STEM.png`.
pub struct LineChart {
    /// The file name without extension.
    pub stem: String,
    /// The title.
    pub title: String,
    /// The x axis.
    pub x_label: String,
    /// The y axis.
    pub y_label: String,
    /// One line per series.
    pub series: Vec<Series>,
}

/// An experiment's results, ready to print and write.
pub struct Report {
    /// The line above the tables.
    pub title: String,
    /// The tables, printed in order, each under its heading (none when empty).
    pub tables: Vec<(String, Table)>,
    /// The results file's contents.
    pub results: serde_json::Value,
    /// The results file's name under the output folder.
    pub file: &'static str,
    /// Charts drawn beside the results file.
    pub charts: Vec<LineChart>,
}

impl Report {
    /// Prints the title and the tables, writes the results file and draws the charts under
    /// `out`; names every file written.
    pub fn publish(&self, out: &Path) -> Result<(), Error> {
        println!("\n{}", self.title);
        for (heading, table) in &self.tables {
            if !heading.is_empty() {
                println!("\n{heading}");
            }
            print!("{table}");
        }
        std::fs::create_dir_all(out).map_err(kd_core::files::FileError::at(out, "create the output folder"))?;
        let path = out.join(self.file);
        write_atomically(&path, serde_json::to_string_pretty(&self.results)?.as_bytes())?;
        let mut written = vec![path.display().to_string()];
        for chart in &self.charts {
            line_chart(&out.join(&chart.stem), &chart.title, &chart.x_label, &chart.y_label, &chart.series)?;
            written.push(format!("{}/{}.{{svg,png}}", out.display(), chart.stem));
        }
        println!("\nwritten: {}", written.join(", "));
        Ok(())
    }
}

/// A chart of test errors per epoch, one line per named stage.
pub fn errors_chart<'a>(stem: &str, title: &str, stages: impl IntoIterator<Item = (&'a str, &'a Fitted)>) -> LineChart {
    LineChart {
        stem: stem.into(),
        title: title.into(),
        x_label: "epoch".into(),
        y_label: "test errors".into(),
        series: stages
            .into_iter()
            .map(|(name, fitted)| Series {
                name: name.to_string(),
                points: fitted.curve("test_errors"),
            })
            .collect(),
    }
}

/// Whether a field of an epoch record is a loss term's mean, not bookkeeping or an evaluation.
pub fn is_loss_term(key: &str) -> bool {
    const BOOKKEEPING: [&str; 7] = ["model", "epoch", "seconds", "lr", "test_errors", "confusion", "bits_per_character"];
    !BOOKKEEPING.contains(&key)
}

/// The names of the loss terms in `fitted`'s records, in the order they first appear (a
/// two-stage training's terms stage by stage).
pub fn term_names(fitted: &Fitted) -> Vec<String> {
    let mut names: Vec<String> = Vec::new();
    for record in fitted.records.iter().filter_map(|r| r.as_object()) {
        for name in record.keys().filter(|k| is_loss_term(k)) {
            if !names.contains(name) {
                names.push(name.clone());
            }
        }
    }
    names
}

/// Says on stderr what a CNN experiment is about to train.
pub fn announce(dataset: &str, train: &Split, test: &Split, options: &Options) {
    eprintln!(
        "{dataset}: training on {} images, evaluating on {} {}; {} teacher epochs, {} per student; results in {}",
        train.len(),
        test.len(),
        if options.validation {
            "held-out training images (the validation split)"
        } else {
            "test images"
        },
        options.teacher_epochs,
        options.epochs,
        options.out.display()
    );
}
