//! `kd reproduce --quick`: the harness's machinery at a tiny size (its numbers say nothing about
//! the methods). Every comparison finds its arms, the files hold what the issue asks for, a
//! seed's numbers are the same on a second run and differ between seeds, and a seed already
//! done is not trained again.

use kd_experiments::reproduce::{self, comparisons, seed_file, Group, Options, SeedResult, Size};

fn options(out: &std::path::Path, seeds: &[u64], only: &[Group]) -> Options {
    Options {
        seeds: seeds.to_vec(),
        only: only.to_vec(),
        size: Size::Quick,
        out: out.to_path_buf(),
        overwrite: false,
        summarise_only: false,
    }
}

fn seed_result(out: &std::path::Path, group: Group, seed: u64) -> SeedResult {
    let text = std::fs::read_to_string(seed_file(out, group, seed)).expect("a seed file");
    serde_json::from_str(&text).expect("a seed result")
}

#[test]
fn quick_reproduction_pairs_seeds_and_writes_every_row() {
    // The seeds train side by side in two folders (one run alone keeps 1.3 of 2 cores busy),
    // and so does seed 1 again, in a third folder, after seed 0. Seed 1's files then join
    // seed 0's, and the run over both seeds trains nothing and writes the summary.
    let (all, other, again) = (
        tempfile::tempdir().expect("tempdir"),
        tempfile::tempdir().expect("tempdir"),
        tempfile::tempdir().expect("tempdir"),
    );
    std::thread::scope(|scope| {
        scope.spawn(|| {
            reproduce::run(&options(all.path(), &[0], &[])).expect("every group runs");
            reproduce::run(&options(again.path(), &[1], &[Group::Hinton, Group::Netaug])).expect("runs");
        });
        reproduce::run(&options(other.path(), &[1], &[])).expect("every group runs");
    });
    for group in Group::ALL {
        std::fs::copy(seed_file(other.path(), group, 1), seed_file(all.path(), group, 1)).expect("seed 1's file");
    }
    let rows = reproduce::run(&options(all.path(), &[0, 1], &[])).expect("every group runs");
    assert_eq!(rows.len(), comparisons().len(), "a row per comparison");

    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(all.path().join("reproduction.json")).expect("reproduction.json")).expect("JSON");
    assert_eq!(json["seeds"], serde_json::json!([0, 1]));
    assert!(json["commit"].as_str().is_some_and(|c| !c.is_empty()));
    for group in Group::ALL {
        assert!(
            json["wall_seconds"][group.name()].as_f64().is_some_and(|s| s > 0.0),
            "{}: wall time",
            group.name()
        );
    }
    let table = std::fs::read_to_string(all.path().join("reproduction.md")).expect("reproduction.md");
    for row in json["rows"].as_array().expect("rows") {
        let name = row["experiment"].as_str().expect("experiment");
        for key in [
            "metric",
            "lower_is_better",
            "paper",
            "seeds",
            "arms",
            "delta",
            "verdict",
            "wall_seconds",
        ] {
            assert!(!row[key].is_null(), "{name}: {key}");
        }
        assert!(
            row["paper"]["citation"].is_string() && row["paper"]["direction"].is_string(),
            "{name}: the paper"
        );
        let (baseline, method) = (&row["arms"]["baseline"]["values"], &row["arms"]["method"]["values"]);
        let delta: Vec<f64> = row["delta"]["values"]
            .as_array()
            .expect("Δ")
            .iter()
            .map(|d| d.as_f64().expect("a number"))
            .collect();
        assert_eq!(delta.len(), 2, "{name}: a Δ per seed");
        for (seed, d) in delta.iter().enumerate() {
            let expected = method[seed].as_f64().expect("method") - baseline[seed].as_f64().expect("baseline");
            assert!(
                (d - expected).abs() < 1e-9,
                "{name}: seed {seed}'s Δ is method − baseline of that seed"
            );
        }
        assert!(row["delta"]["better_in"].as_str().is_some_and(|b| b.ends_with("of 2")), "{name}");
        assert!(["reproduced", "direction only", "not reproduced"].contains(&row["verdict"].as_str().expect("verdict")));
        assert!(table.contains(&format!("| {name} |")), "the table has the row {name}");
    }
    assert!(table.contains("146.0 → 74.0 (Hinton"), "the paper's numbers as published:\n{table}");
    let svg = std::fs::read_to_string(all.path().join("reproduction_delta.svg")).expect("the Δ chart");
    assert!(
        svg.contains("Hinton MNIST") && svg.contains("paper"),
        "the chart names the rows and the paper"
    );

    // Seed 1 again, in another folder: the same numbers. Seed 0's differ.
    for group in [Group::Hinton, Group::Netaug] {
        let (first, second) = (seed_result(all.path(), group, 1), seed_result(again.path(), group, 1));
        assert_eq!(first.arms, second.arms, "{}: seed 1 gives the same numbers twice", group.name());
        assert_ne!(
            seed_result(all.path(), group, 0).arms,
            first.arms,
            "{}: seeds 0 and 1 differ",
            group.name()
        );
    }

    // A seed already done is read, not trained again; a new seed is trained.
    let done = std::fs::metadata(seed_file(again.path(), Group::Netaug, 1))
        .expect("seed 1")
        .modified()
        .expect("mtime");
    let rows = reproduce::run(&options(again.path(), &[1, 7], &[Group::Netaug])).expect("runs");
    assert_eq!(
        std::fs::metadata(seed_file(again.path(), Group::Netaug, 1))
            .expect("seed 1")
            .modified()
            .expect("mtime"),
        done,
        "seed 1 was not trained again"
    );
    assert_eq!(rows[0]["seeds"], serde_json::json!([1, 7]));
}

#[test]
fn another_size_in_the_same_folder_is_refused() {
    let out = tempfile::tempdir().expect("tempdir");
    reproduce::run(&options(out.path(), &[3], &[Group::Netaug])).expect("runs");
    let error = reproduce::run(&Options {
        size: Size::Full,
        ..options(out.path(), &[3], &[Group::Netaug])
    })
    .expect_err("another size")
    .to_string();
    assert!(
        error.contains("size") && error.contains("quick") && error.contains("full"),
        "{error}"
    );
    let error = reproduce::run(&options(out.path(), &[], &[])).expect_err("no seeds").to_string();
    assert!(error.contains("no seeds"), "{error}");

    // Summarising trains nothing: the same rows from the same seed files, and a missing seed
    // file is named.
    let summarise = |seeds: &[u64]| {
        reproduce::run(&Options {
            summarise_only: true,
            ..options(out.path(), seeds, &[Group::Netaug])
        })
    };
    let trained = std::fs::read_to_string(out.path().join("reproduction.json")).expect("reproduction.json");
    let rows = summarise(&[3]).expect("summarises");
    let written: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.path().join("reproduction.json")).expect("rewritten")).expect("json");
    let before: serde_json::Value = serde_json::from_str(&trained).expect("json");
    assert_eq!(written["rows"], before["rows"]);
    assert_eq!(serde_json::Value::Array(rows), written["rows"]);
    let error = summarise(&[3, 4]).expect_err("seed 4 never ran").to_string();
    assert!(error.contains("seed-4.json"), "{error}");
}
