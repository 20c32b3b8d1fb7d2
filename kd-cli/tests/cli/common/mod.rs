//! What the end-to-end tests share.

use std::path::Path;
use std::process::Command;

/// Runs `kd args... --out <out>`, fails the test with both streams unless it succeeds, and
/// returns its stdout and stderr.
pub fn kd_succeeds(args: &[&str], out: &Path) -> (String, String) {
    let output = Command::new(env!("CARGO_BIN_EXE_kd"))
        .args(args)
        .arg("--out")
        .arg(out)
        .output()
        .expect("kd runs");
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    assert!(output.status.success(), "kd {} failed:\n{stdout}\n{stderr}", args.join(" "));
    (stdout, stderr)
}
