//! `kd reproduce` from the command line: the flags reach the harness, the table is printed from
//! the file it wrote, and an unknown group is refused with the groups named.

use std::process::Command;

use crate::common::kd_succeeds;

#[test]
fn quick_reproduce_prints_the_table_it_wrote() {
    let out = tempfile::tempdir().expect("tempdir");
    let (stdout, stderr) = kd_succeeds(&["reproduce", "--quick", "--seeds", "4,5", "--only", "netaug"], out.path());
    let table = std::fs::read_to_string(out.path().join("reproduction.md")).expect("reproduction.md");
    assert!(stdout.contains(&table), "the printed table is the file's:\n{stdout}");
    assert!(
        table.contains("| NetAug (Fashion-MNIST): tiny MLP vs alone |") && table.contains("of 2"),
        "{table}"
    );
    assert!(stderr.contains("[1/2] netaug seed 4: training"), "progress is shown: {stderr}");
    for file in [
        "netaug/seed-4.json",
        "netaug/seed-5.json",
        "reproduction.json",
        "reproduction_delta.svg",
        "reproduction_delta.png",
    ] {
        assert!(out.path().join(file).is_file(), "{file}");
    }
}

#[test]
fn an_unknown_group_is_refused_with_the_groups_named() {
    let output = Command::new(env!("CARGO_BIN_EXE_kd"))
        .args(["reproduce", "--only", "hinton,bogus"])
        .output()
        .expect("kd runs");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success());
    assert!(
        stderr.contains("no experiment group `bogus`") && stderr.contains("hinton, methods, born-again"),
        "{stderr}"
    );
}
