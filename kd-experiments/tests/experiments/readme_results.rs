//! The README's results table is the committed reproduction, not prose: the block between its
//! `reproduction` markers must be exactly what `reproduce::markdown` makes of
//! `kd-experiments/results/reproduction.json`, and that file's rows must follow from the seed
//! files beside it.

use std::path::Path;

use kd_experiments::reproduce::{self, Group, Size};

const BEGIN: &str = "<!-- reproduction:begin -->";
const END: &str = "<!-- reproduction:end -->";

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

#[test]
fn the_readme_table_is_the_committed_reproduction() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let readme = read(&root.join("../README.md"));
    let block = readme
        .split_once(BEGIN)
        .and_then(|(_, rest)| rest.split_once(END))
        .map(|(block, _)| block.trim())
        .expect("README.md has a reproduction block");
    let committed: serde_json::Value =
        serde_json::from_str(&read(&root.join("results/reproduction.json"))).expect("reproduction.json is JSON");
    assert_eq!(
        block,
        reproduce::markdown(&committed).trim(),
        "README.md's results differ from results/reproduction.json: paste reproduction.md between the markers"
    );
}

#[test]
fn the_committed_reproduction_follows_from_its_seed_files() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("results");
    let committed: serde_json::Value = serde_json::from_str(&read(&root.join("reproduction.json"))).expect("JSON");
    let seeds: Vec<u64> = serde_json::from_value(committed["seeds"].clone()).expect("seeds");
    let groups: Vec<Group> = committed["wall_seconds"]
        .as_object()
        .expect("wall seconds per group")
        .keys()
        .map(|name| Group::from_name(name).unwrap_or_else(|| panic!("unknown group {name}")))
        .collect();
    let scratch = tempfile::tempdir().expect("tempdir");
    for group in &groups {
        for &seed in &seeds {
            let from = reproduce::seed_file(&root, *group, seed);
            let to = reproduce::seed_file(scratch.path(), *group, seed);
            std::fs::create_dir_all(to.parent().expect("a folder")).expect("folder");
            std::fs::copy(&from, &to).unwrap_or_else(|e| panic!("{}: {e}", from.display()));
        }
    }
    let rows = reproduce::summarise(scratch.path(), &groups, &seeds, Size::Full).expect("the seed files summarise");
    let committed_rows = committed["rows"].as_array().expect("rows");
    assert_eq!(rows.len(), committed_rows.len());
    for (row, committed_row) in rows.iter().zip(committed_rows) {
        for key in ["experiment", "arms", "delta", "verdict", "paper"] {
            assert!(
                same(&row[key], &committed_row[key]),
                "{}: `{key}`: {} vs {}",
                row["experiment"],
                row[key],
                committed_row[key]
            );
        }
    }
}

/// Equal JSON, numbers to 1e-12 relative (serde_json's float parsing may move the last bit).
fn same(a: &serde_json::Value, b: &serde_json::Value) -> bool {
    use serde_json::Value;
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => {
            let (x, y) = (x.as_f64().unwrap_or(f64::NAN), y.as_f64().unwrap_or(f64::NAN));
            (x - y).abs() <= 1e-12 * x.abs().max(y.abs()).max(1.0)
        }
        (Value::Array(x), Value::Array(y)) => x.len() == y.len() && x.iter().zip(y).all(|(x, y)| same(x, y)),
        (Value::Object(x), Value::Object(y)) => x.len() == y.len() && x.iter().all(|(k, v)| y.get(k).is_some_and(|w| same(v, w))),
        _ => a == b,
    }
}
