//! KD from the offline logit store against KD from the live teacher, for top-k 1, 5 and all
//! ten classes: the store's size, the time to write it, the student's epoch time and its
//! held-out errors. Uses the Hinton teacher trained by `hinton_validation` (Adam, 100 epochs,
//! on the first 50,000 training images) and evaluates on the last 10,000, never the test set.
//!
//! `cargo run --release -p kd-experiments --example logit_store -- STUDENT_EPOCHS`
//! writes `kd-experiments/results/logit_store.json`.

use std::path::{Path, PathBuf};
use std::time::Instant;

use kd_core::train::{Fitted, Shard};
use kd_experiments::hinton::{self, Options};

fn folder_bytes(dir: &Path, suffix: &str) -> std::io::Result<u64> {
    let mut total = 0;
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        if entry.file_name().to_string_lossy().ends_with(suffix) {
            total += entry.metadata()?.len();
        }
    }
    Ok(total)
}

fn summary(fitted: &Fitted) -> serde_json::Value {
    let epochs = fitted.records.len().max(1);
    serde_json::json!({
        "held_out_errors": fitted.last("test_errors"),
        "held_out_errors_per_epoch": fitted.curve("test_errors").iter().map(|(_, e)| *e).collect::<Vec<_>>(),
        "seconds_per_epoch": fitted.seconds / epochs as f64,
    })
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let epochs: usize = std::env::args().nth(1).ok_or("usage: logit_store STUDENT_EPOCHS")?.parse()?;
    let root = PathBuf::from("target/logit-store");
    let teacher = PathBuf::from("target/hinton-validation/adam/teacher.safetensors");
    let options = |name: &str| Options {
        epochs: Some(epochs),
        validation: true,
        resume: true,
        ..Options::new(root.join(name))
    };

    let live = {
        let options = options("live");
        // The live run's teacher is the trained one: copied in, `train` resumes past it.
        hinton::copy_teacher(Path::new("target/hinton-validation/adam"), &options.out)?;
        hinton::train(&Options {
            teacher_epochs: Some(100),
            ..options
        })?
    };
    let mut rows = vec![
        serde_json::json!({"teacher_logits": "live (cached in memory)", "distilled": summary(&live.distilled),
        "alone": summary(&live.alone)}),
    ];
    println!(
        "live teacher: {} held-out errors",
        live.distilled.last("test_errors").unwrap_or_default()
    );

    for top_k in [10, 5, 1] {
        let dir = root.join(format!("store-top{top_k}"));
        let started = Instant::now();
        hinton::write_store(&options("write"), &teacher, &dir, Some(top_k), Shard::ALL)?;
        kd_core::train::store::pack(&dir)?;
        let write_seconds = started.elapsed().as_secs_f64();
        let fitted = hinton::distil_from_store(&options(&format!("from-top{top_k}")), &teacher, &dir, Some(top_k))?;
        println!("top-{top_k}: {} held-out errors", fitted.last("test_errors").unwrap_or_default());
        rows.push(serde_json::json!({
            "teacher_logits": format!("store, top-{top_k}"),
            "top_k": top_k,
            "packed_bytes": folder_bytes(&dir, ".bin")?,
            "gzip_chunk_bytes": folder_bytes(&dir, ".gz")?,
            "write_and_pack_seconds": write_seconds,
            "distilled": summary(&fitted),
        }));
    }
    let results = serde_json::json!({
        "what": "Hinton MNIST 800-800 student distilled at T = 20 from the live teacher and from the offline logit store (top-k 10 = all classes, 5, 1); trained on the first 50,000 training images, errors on the held-out last 10,000 (not the test set); one seed (0)",
        "command": format!("cargo run --release -p kd-experiments --example logit_store -- {epochs}"),
        "teacher": "target/hinton-validation/adam (Adam, 100 epochs; kd-experiments/results/hinton_teacher_validation.json)",
        "student_epochs": epochs,
        "rows": rows,
    });
    let path = Path::new("kd-experiments/results/logit_store.json");
    kd_core::files::write_atomically(path, (serde_json::to_string_pretty(&results)? + "\n").as_bytes())?;
    println!("wrote {}", path.display());
    Ok(())
}
