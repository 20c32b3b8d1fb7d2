//! `kd demo` end to end on a small real subset: 3,000 MNIST training images, two epochs per
//! model (the distilled student, at a lower rate on a weak teacher's soft targets, needs both). The three models must beat chance by far, and the results and metrics must exist and
//! parse.

use std::process::Command;

use crate::common::kd_succeeds;

#[test]
fn demo_on_a_subset_writes_results_that_parse() {
    let out = tempfile::tempdir().expect("tempdir");
    let (stdout, _) = kd_succeeds(&["demo", "--train-images", "3000", "--epochs", "2"], out.path());

    let results: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.path().join("results.json")).expect("results.json")).expect("valid JSON");
    let models = results["models"].as_array().expect("models");
    assert_eq!(models.len(), 3);
    assert_eq!(results["test_images"], 10_000);
    for model in models {
        let accuracy = model["accuracy"].as_f64().expect("accuracy");
        assert!(
            accuracy > 0.6,
            "{}: accuracy {accuracy} should be far above chance (0.1)",
            model["model"]
        );
        let confusion: Vec<Vec<u64>> = serde_json::from_value(model["confusion"].clone()).expect("a confusion matrix");
        let errors = model["test_errors"].as_u64().expect("test errors");
        let off_diagonal: u64 = confusion.iter().enumerate().map(|(i, row)| row.iter().sum::<u64>() - row[i]).sum();
        assert_eq!(off_diagonal, errors, "{}: the confusion matrix holds the errors", model["model"]);
        assert_eq!(confusion.iter().flatten().sum::<u64>(), 10_000);
        assert_eq!(model["epochs"], 2);
        assert!(
            stdout.contains(&format!("| {} | 2 | {errors} |", model["model"].as_str().expect("name"))),
            "the table shows the results file's {errors} errors:\n{stdout}"
        );
    }
    // Beside its own run, the committed full run's mean ± std over seeds.
    let reference = kd_experiments::reproduce::committed_hinton().expect("the committed reproduction parses");
    if let Some(reference) = reference {
        assert!(
            stdout.contains(&format!("kd full run, {} seeds", reference.seeds.len())),
            "{stdout}"
        );
        let (mean, std) = reference.errors[0];
        assert!(stdout.contains(&format!("{mean:.1} ± {std:.1}")), "{stdout}");
    }
    for (name, model) in ["teacher", "student_alone", "student_distilled"].into_iter().zip(models) {
        let metrics = std::fs::read_to_string(out.path().join(format!("{name}.metrics.jsonl"))).expect("metrics");
        let records: Vec<serde_json::Value> = metrics.lines().map(|l| serde_json::from_str(l).expect("a JSON line")).collect();
        assert_eq!(records.len(), 2, "{name}: one record per epoch");
        assert_eq!(
            records[1]["test_errors"], model["test_errors"],
            "{name}: the last epoch's record is the result"
        );
        assert!(out.path().join(format!("{name}.safetensors")).is_file(), "{name}: checkpoint");
    }
    for chart in ["test_errors", "teacher_loss", "student_alone_loss", "student_distilled_loss"] {
        let svg = std::fs::read_to_string(out.path().join(format!("{chart}.svg"))).expect("svg chart");
        assert!(svg.starts_with("<svg") && svg.contains("epoch"), "{chart}.svg is a chart");
        let png = std::fs::read(out.path().join(format!("{chart}.png"))).expect("png chart");
        assert_eq!(&png[1..4], b"PNG", "{chart}.png is a PNG");
    }
    let distilled = std::fs::read_to_string(out.path().join("student_distilled.metrics.jsonl")).expect("metrics");
    assert!(
        distilled.contains("\"kd\"") && distilled.contains("\"ce\""),
        "the distilled student's terms are logged: {distilled}"
    );
}

#[test]
fn help_explains_the_main_job() {
    let output = Command::new(env!("CARGO_BIN_EXE_kd"))
        .args(["demo", "--help"])
        .output()
        .expect("kd runs");
    let help = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success());
    assert!(
        help.contains("67 / 146 / 74") && help.contains("--full") && help.contains("40 minutes"),
        "{help}"
    );
    assert!(!help.contains("hours"), "--full takes about 40 minutes: {help}");
}

/// A small `kd demo` for the resume tests: scoring all 10,000 test images after each epoch
/// had cost more than the training.
fn demo(out: &std::path::Path, extra: &[&str]) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_kd"));
    command
        .args(["demo", "--train-images", "1000", "--test-images", "1000", "--epochs", "2", "--out"])
        .arg(out)
        .args(extra)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null());
    command
}

/// Kills `kd demo` (SIGKILL) once the teacher's first checkpoint is complete, resumes it, and
/// compares every final model byte for byte with an uninterrupted run's.
#[test]
fn a_killed_run_resumes_to_the_same_weights() {
    let straight = tempfile::tempdir().expect("tempdir");
    assert!(demo(straight.path(), &[]).status().expect("kd runs").success());

    let killed = tempfile::tempdir().expect("tempdir");
    let mut child = demo(killed.path(), &[]).spawn().expect("kd starts");
    let first_checkpoint = killed.path().join("checkpoints/teacher/epoch-0001");
    let started = std::time::Instant::now();
    while !first_checkpoint.exists() {
        assert!(started.elapsed().as_secs() < 300, "no checkpoint after 5 minutes");
        assert!(child.try_wait().expect("wait").is_none(), "kd finished before it could be killed");
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
    child.kill().expect("kill");
    child.wait().expect("reap");
    assert!(
        !killed.path().join("student_distilled.safetensors").exists(),
        "the run was killed before it finished"
    );

    assert!(demo(killed.path(), &["--resume"]).status().expect("kd runs").success());
    for name in ["teacher", "student_alone", "student_distilled"] {
        let file = format!("{name}.safetensors");
        let a = std::fs::read(straight.path().join(&file)).expect("uninterrupted model");
        let b = std::fs::read(killed.path().join(&file)).expect("resumed model");
        assert!(a == b, "{name}: the resumed run's weights differ from the uninterrupted run's");
    }
    let metrics = std::fs::read_to_string(killed.path().join("teacher.metrics.jsonl")).expect("metrics");
    assert_eq!(metrics.lines().count(), 2, "one record per epoch after the resume:\n{metrics}");
}

/// Crashes `kd demo` exactly at the stage boundaries (`KD_CRASH_AT` aborts the process there,
/// as `kill -9` would): after a stage's last checkpoint is in place but before its model is
/// exported, after the export but before the next stage, and after the last export but before
/// results.json. Each resumes to the uninterrupted run's weights and results.
#[test]
fn a_run_crashed_at_a_stage_boundary_resumes_to_the_same_result() {
    let straight = tempfile::tempdir().expect("tempdir");
    let output = demo(straight.path(), &[])
        .stdout(std::process::Stdio::piped())
        .output()
        .expect("kd runs");
    assert!(output.status.success());
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        stdout.contains("MNIST test errors (of 1000; the full run's and the paper's are of 10000)"),
        "a subset of the test set is named beside the full run's and the paper's counts:\n{stdout}"
    );
    let errors = |dir: &std::path::Path| {
        let results: serde_json::Value =
            serde_json::from_slice(&std::fs::read(dir.join("results.json")).expect("results.json")).expect("JSON");
        results["models"]
            .as_array()
            .expect("models")
            .iter()
            .map(|m| m["test_errors"].clone())
            .collect::<Vec<_>>()
    };
    for point in ["teacher:checkpointed:2", "student_alone:exported:2", "student_distilled:exported:2"] {
        let crashed = tempfile::tempdir().expect("tempdir");
        let status = demo(crashed.path(), &[]).env("KD_CRASH_AT", point).status().expect("kd runs");
        assert!(!status.success(), "{point}: the run crashed");
        assert!(!crashed.path().join("results.json").exists(), "{point}: crashed before the results");
        assert!(
            demo(crashed.path(), &["--resume"]).status().expect("kd runs").success(),
            "{point}: resumes"
        );
        for name in ["teacher", "student_alone", "student_distilled"] {
            let file = format!("{name}.safetensors");
            let a = std::fs::read(straight.path().join(&file)).expect("uninterrupted model");
            let b = std::fs::read(crashed.path().join(&file)).expect("resumed model");
            assert!(a == b, "{point}: {name}'s exported weights differ from the uninterrupted run's");
        }
        assert_eq!(errors(crashed.path()), errors(straight.path()), "{point}: the same results");
    }
}

/// A disk that takes no more bytes (a file-size limit of 0, which fails writes as a full disk
/// does) is reported before any training, with the file and the operation named.
#[test]
fn a_full_disk_is_named_before_training() {
    let out = tempfile::tempdir().expect("tempdir");
    let script = format!(
        "trap '' XFSZ; ulimit -f 0; exec '{}' demo --train-images 100 --epochs 1 --out '{}'",
        env!("CARGO_BIN_EXE_kd"),
        out.path().display()
    );
    let output = Command::new("bash").args(["-c", &script]).output().expect("bash runs");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success(), "{stderr}");
    assert!(
        stderr.contains(&format!("{}/", out.path().display())) && stderr.contains(": cannot write") && stderr.contains("File too large"),
        "{stderr}"
    );
    assert!(!stderr.contains("teacher"), "nothing was trained: {stderr}");
}

/// A folder holding an earlier run is refused without --resume or --overwrite (nothing is
/// deleted), a resume with other settings is refused with the difference named, and an output
/// path that is a file is named in the error. None of them trains anything first.
#[test]
fn an_earlier_run_is_never_lost_or_misread() {
    let out = tempfile::tempdir().expect("tempdir");
    let earlier = out.path().join("checkpoints/teacher/epoch-0007");
    std::fs::create_dir_all(&earlier).expect("an earlier run's checkpoint");
    let run = |extra: &[&str]| {
        let output = Command::new(env!("CARGO_BIN_EXE_kd"))
            .args(["demo", "--train-images", "100", "--epochs", "1", "--out"])
            .arg(out.path())
            .args(extra)
            .output()
            .expect("kd runs");
        (output.status.success(), String::from_utf8_lossy(&output.stderr).into_owned())
    };
    let fresh = tempfile::tempdir().expect("tempdir");
    let output = Command::new(env!("CARGO_BIN_EXE_kd"))
        .args(["demo", "--train-images", "100", "--epochs", "1", "--resume", "--out"])
        .arg(fresh.path())
        .output()
        .expect("kd runs");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success() && stderr.contains("nothing to resume; starting a new run"),
        "{stderr}"
    );

    let (ok, stderr) = run(&[]);
    assert!(
        !ok && stderr.contains("holds an earlier run") && stderr.contains("--overwrite"),
        "{stderr}"
    );
    assert!(earlier.is_dir(), "nothing was deleted");
    let (ok, stderr) = run(&["--resume"]);
    assert!(!ok && stderr.contains("no manifest.json"), "{stderr}");

    let (ok, stderr) = run(&["--overwrite"]);
    assert!(ok, "{stderr}");
    assert!(!earlier.is_dir(), "--overwrite replaced the earlier run");
    let (ok, stderr) = run(&["--resume", "--seed", "5"]);
    assert!(!ok && stderr.contains("seed: 0 → 5"), "{stderr}");
    let (ok, stderr) = run(&["--resume"]);
    assert!(ok, "the same settings resume: {stderr}");

    // A results file that cannot be replaced is named, with the operation.
    std::fs::remove_file(out.path().join("results.json")).expect("remove the results");
    std::fs::create_dir(out.path().join("results.json")).expect("a folder in their place");
    let (ok, stderr) = run(&["--resume"]);
    assert!(!ok && stderr.contains("results.json: cannot replace: "), "{stderr}");
    std::fs::remove_dir(out.path().join("results.json")).expect("remove the folder");
    std::fs::write(out.path().join("results.json"), "{}").expect("a file again");

    let file = out.path().join("results.json");
    let output = Command::new(env!("CARGO_BIN_EXE_kd"))
        .args(["demo", "--out"])
        .arg(&file)
        .output()
        .expect("kd runs");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        !output.status.success() && stderr.contains("results.json: cannot create the output folder"),
        "{stderr}"
    );
}

/// A learning rate far too large makes the teacher's loss run away: the run stops with the
/// stage, the term and the step named instead of checkpointing a diverged model as good.
#[test]
fn a_diverging_run_stops_with_the_term_named() {
    let out = tempfile::tempdir().expect("tempdir");
    let output = Command::new(env!("CARGO_BIN_EXE_kd"))
        .args([
            "demo",
            "--train-images",
            "2000",
            "--epochs",
            "1",
            "--learning-rate-scale",
            "10000",
            "--out",
        ])
        .arg(out.path())
        .output()
        .expect("kd runs");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success(), "{stderr}");
    assert!(stderr.contains("teacher: loss term `ce`") && stderr.contains("at step"), "{stderr}");
    assert!(
        !out.path().join("checkpoints/teacher/epoch-0001").exists(),
        "no checkpoint of a diverged model"
    );
}
