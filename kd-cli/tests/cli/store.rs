//! `kd store`: a teacher's logit store written in two shards, resumed, merged and packed from
//! the command line, and a bad shard refused with a message that says how to write one.

use std::path::Path;
use std::process::Command;

use crate::common::kd_succeeds;

fn kd(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_kd")).args(args).output().expect("kd runs")
}

fn path(p: &Path) -> &str {
    p.to_str().expect("a UTF-8 temporary path")
}

#[test]
fn a_store_is_written_in_shards_resumed_merged_and_packed() {
    let dir = tempfile::tempdir().expect("tempdir");
    let demo = dir.path().join("demo");
    kd_succeeds(&["demo", "--train-images", "600", "--epochs", "1"], &demo);
    let teacher = demo.join("teacher.safetensors");
    let write = |shard: &str, out: &Path| {
        let args = [
            "store",
            "write",
            "--teacher",
            path(&teacher),
            "--top-k",
            "3",
            "--train-images",
            "600",
            "--shard",
            shard,
        ];
        kd_succeeds(&args, out).0
    };
    let (first, second) = (dir.path().join("shard-0"), dir.path().join("shard-1"));
    assert!(write("0/2", &first).contains("1 chunks written, 0 already there"));
    assert!(
        write("0/2", &first).contains("0 chunks written, 1 already there"),
        "a second write resumes"
    );
    assert!(
        write("1/2", &second).contains("0 chunks written"),
        "600 images make one chunk, shard 0's"
    );

    let store = dir.path().join("store");
    let merged = kd(&["store", "merge", "--into", path(&store), path(&first), path(&second)]);
    assert!(merged.status.success(), "{}", String::from_utf8_lossy(&merged.stderr));
    let packed = kd(&["store", "pack", path(&store)]);
    assert!(packed.status.success(), "{}", String::from_utf8_lossy(&packed.stderr));
    let bytes = std::fs::metadata(store.join("logits.bin")).expect("logits.bin").len();
    assert_eq!(
        bytes,
        600 * (2 * 3 * 4 + 8),
        "600 records of 3 logits, 3 classes, log Z and the tail"
    );

    let bad = kd(&[
        "store",
        "write",
        "--teacher",
        path(&teacher),
        "--shard",
        "2/2",
        "--out",
        path(&first),
    ]);
    let stderr = String::from_utf8_lossy(&bad.stderr);
    assert!(
        !bad.status.success() && stderr.contains("`2/2` is not a shard; write i/n with i < n"),
        "{stderr}"
    );
    let other_k = kd(&[
        "store",
        "write",
        "--teacher",
        path(&teacher),
        "--train-images",
        "600",
        "--out",
        path(&first),
    ]);
    let stderr = String::from_utf8_lossy(&other_k.stderr);
    assert!(stderr.contains("the store's top_k is Some(3) but None was expected"), "{stderr}");
}
