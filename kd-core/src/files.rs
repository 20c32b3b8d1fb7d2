//! Files written whole or not at all: a temporary file in the same folder, synced, then renamed
//! over the target, so a crash never leaves a half-written file. Charts, checkpoints, results
//! and downloaded data all write through here.
//!
//! [`FileError`] is the one I/O error of the crate: it names the path and what was being done,
//! so no error reads `: No space left on device`.

use std::io::Write;
use std::path::{Path, PathBuf};

/// A file operation that failed, with the path and the operation named.
#[derive(Debug, thiserror::Error)]
#[error("{}: cannot {operation}: {source}", path.display())]
pub struct FileError {
    /// The file or folder.
    pub path: PathBuf,
    /// What was being done, as a verb phrase ("write the manifest").
    pub operation: &'static str,
    /// The operating system's error.
    #[source]
    pub source: std::io::Error,
}

impl FileError {
    /// A `map_err` adapter: `std::fs::read(path).map_err(FileError::at(path, "read"))`.
    pub fn at(path: &Path, operation: &'static str) -> impl FnOnce(std::io::Error) -> FileError {
        let path = path.to_path_buf();
        move |source| FileError { path, operation, source }
    }
}

/// Writes `bytes` to `path` atomically (see the module doc).
pub fn write_atomically(path: &Path, bytes: &[u8]) -> Result<(), FileError> {
    let temporary = temporary_path(path);
    let write = || -> std::io::Result<()> {
        let mut file = std::fs::File::create(&temporary)?;
        file.write_all(bytes)?;
        file.sync_all()
    };
    if let Err(source) = write() {
        let _ = std::fs::remove_file(&temporary);
        return Err(FileError::at(&temporary, "write")(source));
    }
    std::fs::rename(&temporary, path).map_err(|source| {
        let _ = std::fs::remove_file(&temporary);
        FileError::at(path, "replace")(source)
    })
}

/// The temporary name `path` is written under before the rename: `NAME.tmp` beside it.
pub fn temporary_path(path: &Path) -> PathBuf {
    let mut name = path.file_name().map(|n| n.to_os_string()).unwrap_or_default();
    name.push(".tmp");
    path.with_file_name(name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn atomic_writes_leave_no_temporary_file() {
        let dir = std::env::temp_dir().join(format!("kd-files-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("dir");
        let path = dir.join("results.json");
        write_atomically(&path, b"{}").expect("write");
        write_atomically(&path, b"{\"a\": 1}").expect("overwrite");
        assert_eq!(std::fs::read_to_string(&path).expect("read"), "{\"a\": 1}");
        assert_eq!(std::fs::read_dir(&dir).expect("list").count(), 1);
        std::fs::remove_dir_all(&dir).expect("clean up");
    }

    /// A target that is a folder, or a folder that does not exist, is named with the operation,
    /// and no temporary file is left behind.
    #[test]
    fn a_failed_write_names_the_path_and_the_operation() {
        let dir = tempfile::tempdir().expect("tempdir");
        let folder = dir.path().join("results.json");
        std::fs::create_dir(&folder).expect("a folder where the file should go");
        let error = write_atomically(&folder, b"{}").expect_err("a folder").to_string();
        assert!(error.contains("results.json: cannot replace: "), "{error}");
        assert_eq!(std::fs::read_dir(dir.path()).expect("list").count(), 1, "no temporary file left");
        let missing = dir.path().join("missing/results.json");
        let error = write_atomically(&missing, b"{}").expect_err("no folder").to_string();
        assert!(error.contains("missing/results.json.tmp: cannot write: "), "{error}");
    }
}
