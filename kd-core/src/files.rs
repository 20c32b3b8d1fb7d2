//! Files written whole or not at all: a temporary file in the same folder, synced, then renamed
//! over the target, so a crash never leaves a half-written file. Charts, checkpoints, results
//! and downloaded data all write through here.

use std::io::Write;
use std::path::{Path, PathBuf};

/// Writes `bytes` to `path` atomically (see the module doc).
pub fn write_atomically(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let temporary = temporary_path(path);
    {
        let mut file = std::fs::File::create(&temporary)?;
        file.write_all(bytes)?;
        file.sync_all()?;
    }
    std::fs::rename(&temporary, path)
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
}
