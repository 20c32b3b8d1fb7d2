//! A run's output folder: one run at a time, never overwritten by accident, resumed only with
//! the settings it was started with.
//!
//! [`RunFolder::open`] creates the folder, takes an OS lock on `.kd.lock` in it for as long as
//! the [`RunFolder`] lives (a second run gets an error naming the holder's pid; a killed run's
//! lock is released by the OS, so the next run takes it over), refuses a folder that holds an
//! earlier run unless told to resume or overwrite it, and keeps `manifest.json`: the command,
//! every setting that affects results and the code version. Resuming with other settings is an
//! error that lists each difference.

use std::fs::{File, OpenOptions, TryLockError};
use std::io::{Read, Seek, Write};
use std::path::{Path, PathBuf};

use crate::files::{write_atomically, FileError};

const LOCK: &str = ".kd.lock";
const MANIFEST: &str = "manifest.json";

/// What to do with a folder that holds an earlier run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Start {
    /// Refuse it.
    Fresh,
    /// Continue it (same settings).
    Resume,
    /// Delete it first, saying so.
    Overwrite,
}

/// Why a run's folder could not be used.
#[derive(Debug, thiserror::Error)]
pub enum FolderError {
    /// Creating, reading or writing the folder failed.
    #[error(transparent)]
    File(#[from] FileError),
    /// The manifest of the run to resume is not a manifest.
    #[error("{}: {problem}; the run's settings are unknown, so it cannot be resumed; pass --overwrite to replace it", path.display())]
    Manifest {
        /// The manifest.
        path: PathBuf,
        /// What is wrong.
        problem: String,
    },
    /// Another run holds the folder.
    #[error("{}: another kd run (pid {pid}) is writing to this folder; wait for it or choose another --out", folder.display())]
    Busy {
        /// The folder.
        folder: PathBuf,
        /// The holder's process id, as it wrote it.
        pid: String,
    },
    /// The folder holds an earlier run and neither resuming nor overwriting was asked for.
    #[error("{}: holds an earlier run ({}); pass --resume to continue it or --overwrite to replace it", folder.display(), entries.join(", "))]
    NotEmpty {
        /// The folder.
        folder: PathBuf,
        /// Some of what is in it.
        entries: Vec<String>,
    },
    /// `--resume` with settings other than the run's.
    #[error("{}: the run there was started with other settings, so it cannot be resumed with these: {}; resume with the same settings, or pass --overwrite", folder.display(), differences.join("; "))]
    SettingsDiffer {
        /// The folder.
        folder: PathBuf,
        /// `setting: was → now`, one per difference.
        differences: Vec<String>,
    },
}

/// An output folder held by this run (the lock is released when it is dropped).
#[derive(Debug)]
pub struct RunFolder {
    path: PathBuf,
    _lock: File,
    resuming: bool,
}

impl RunFolder {
    /// Opens `path` for the run `command` with `settings` (a JSON object of every setting that
    /// affects the results); see the module doc.
    pub fn open(path: &Path, command: &str, settings: &serde_json::Value, start: Start) -> Result<RunFolder, FolderError> {
        let io = |operation, path: &Path| FileError::at(path, operation);
        std::fs::create_dir_all(path).map_err(io("create the output folder", path))?;
        let lock_path = path.join(LOCK);
        let mut lock = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&lock_path)
            .map_err(io("create the lock file", &lock_path))?;
        match lock.try_lock() {
            Ok(()) => {}
            Err(TryLockError::WouldBlock) => {
                let mut pid = String::new();
                let _ = lock.read_to_string(&mut pid);
                return Err(FolderError::Busy {
                    folder: path.to_path_buf(),
                    pid: pid.trim().to_string(),
                });
            }
            Err(TryLockError::Error(source)) => return Err(io("lock", &lock_path)(source).into()),
        }
        lock.set_len(0)
            .and_then(|()| lock.rewind())
            .and_then(|()| write!(lock, "{}", std::process::id()))
            .and_then(|()| lock.flush())
            .map_err(io("write the lock file", &lock_path))?;

        let mut entries: Vec<String> = std::fs::read_dir(path)
            .map_err(io("list the output folder", path))?
            .filter_map(|entry| entry.ok()?.file_name().into_string().ok())
            .filter(|name| name != LOCK)
            .collect();
        entries.sort();
        let manifest_path = path.join(MANIFEST);
        let manifest = serde_json::json!({
            "command": command,
            "settings": settings,
            "version": env!("CARGO_PKG_VERSION"),
        });
        let mut resuming = false;
        match start {
            Start::Fresh if !entries.is_empty() => {
                entries.truncate(4);
                return Err(FolderError::NotEmpty {
                    folder: path.to_path_buf(),
                    entries,
                });
            }
            Start::Overwrite if !entries.is_empty() => {
                eprintln!("{}: --overwrite: deleting the earlier run ({})", path.display(), entries.join(", "));
                for name in &entries {
                    let entry = path.join(name);
                    let removed = if entry.is_dir() {
                        std::fs::remove_dir_all(&entry)
                    } else {
                        std::fs::remove_file(&entry)
                    };
                    removed.map_err(io("delete", &entry))?;
                }
            }
            Start::Resume => match std::fs::read_to_string(&manifest_path) {
                Ok(text) => {
                    let earlier: serde_json::Value = serde_json::from_str(&text).map_err(|e| FolderError::Manifest {
                        path: manifest_path.clone(),
                        problem: format!("not JSON ({e})"),
                    })?;
                    if !earlier["settings"].is_object() {
                        return Err(FolderError::Manifest {
                            path: manifest_path,
                            problem: "has no `settings` object".into(),
                        });
                    }
                    let differences = differences(&earlier, &manifest);
                    if !differences.is_empty() {
                        return Err(FolderError::SettingsDiffer {
                            folder: path.to_path_buf(),
                            differences,
                        });
                    }
                    resuming = true;
                }
                Err(e) if e.kind() == std::io::ErrorKind::NotFound && entries.is_empty() => {
                    eprintln!("{}: nothing to resume; starting a new run", path.display());
                }
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                    return Err(FolderError::SettingsDiffer {
                        folder: path.to_path_buf(),
                        differences: vec![format!("it has no {MANIFEST}, so its settings are unknown")],
                    })
                }
                Err(source) => return Err(io("read the manifest", &manifest_path)(source).into()),
            },
            _ => {}
        }
        let text = serde_json::to_string_pretty(&manifest).unwrap_or_default();
        write_atomically(&manifest_path, text.as_bytes())?;
        Ok(RunFolder {
            path: path.to_path_buf(),
            _lock: lock,
            resuming,
        })
    }

    /// The folder.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Whether an earlier run is being continued.
    pub fn resuming(&self) -> bool {
        self.resuming
    }
}

/// `key: was → now` for every command, setting or version that differs.
fn differences(earlier: &serde_json::Value, now: &serde_json::Value) -> Vec<String> {
    let mut found = Vec::new();
    for key in ["command", "version"] {
        if earlier[key] != now[key] {
            found.push(format!("{key}: {} → {}", earlier[key], now[key]));
        }
    }
    let (was, is) = (&earlier["settings"], &now["settings"]);
    let mut keys: Vec<&String> = was.as_object().into_iter().chain(is.as_object()).flat_map(|o| o.keys()).collect();
    keys.sort();
    keys.dedup();
    for key in keys {
        if was[key.as_str()] != is[key.as_str()] {
            found.push(format!("{key}: {} → {}", was[key.as_str()], is[key.as_str()]));
        }
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(seed: u64) -> serde_json::Value {
        serde_json::json!({ "seed": seed, "train_images": 5000 })
    }

    #[test]
    fn a_second_run_is_refused_while_the_first_holds_the_folder() {
        let dir = tempfile::tempdir().expect("tempdir");
        let first = RunFolder::open(dir.path(), "demo", &settings(0), Start::Fresh).expect("the first run");
        let error = RunFolder::open(dir.path(), "demo", &settings(1), Start::Resume)
            .expect_err("busy")
            .to_string();
        assert!(
            error.contains(&format!("pid {}", std::process::id())) && error.contains("another kd run"),
            "{error}"
        );
        drop(first);
        RunFolder::open(dir.path(), "demo", &settings(0), Start::Resume).expect("the lock is free again");
    }

    #[test]
    fn an_earlier_run_is_neither_lost_nor_resumed_with_other_settings() {
        let dir = tempfile::tempdir().expect("tempdir");
        drop(RunFolder::open(dir.path(), "demo", &settings(0), Start::Fresh).expect("a new run"));
        std::fs::create_dir_all(dir.path().join("checkpoints/teacher")).expect("work");
        let error = RunFolder::open(dir.path(), "demo", &settings(0), Start::Fresh)
            .expect_err("not empty")
            .to_string();
        assert!(
            error.contains("--resume") && error.contains("--overwrite") && error.contains("checkpoints"),
            "{error}"
        );
        assert!(dir.path().join("checkpoints/teacher").is_dir(), "nothing deleted");

        let error = RunFolder::open(dir.path(), "demo", &settings(5), Start::Resume)
            .expect_err("other seed")
            .to_string();
        assert!(error.contains("seed: 0 → 5"), "{error}");
        let folder = RunFolder::open(dir.path(), "demo", &settings(0), Start::Resume).expect("same settings");
        assert!(folder.resuming());
        drop(folder);

        drop(RunFolder::open(dir.path(), "demo", &settings(5), Start::Overwrite).expect("overwrite"));
        assert!(!dir.path().join("checkpoints").exists(), "the earlier run is gone");
        let manifest = std::fs::read_to_string(dir.path().join(MANIFEST)).expect("manifest");
        assert!(manifest.contains("\"seed\": 5"), "{manifest}");
    }

    #[test]
    fn a_damaged_manifest_is_named_not_read_as_empty_settings() {
        let dir = tempfile::tempdir().expect("tempdir");
        drop(RunFolder::open(dir.path(), "demo", &settings(0), Start::Fresh).expect("a new run"));
        for (text, problem) in [("{\"settings\": {\"seed\"", "not JSON"), ("[1, 2]", "no `settings` object")] {
            std::fs::write(dir.path().join(MANIFEST), text).expect("damage the manifest");
            let error = RunFolder::open(dir.path(), "demo", &settings(0), Start::Resume)
                .expect_err("a damaged manifest")
                .to_string();
            assert!(
                error.contains("manifest.json: ") && error.contains(problem) && error.contains("--overwrite"),
                "{error}"
            );
            assert!(!error.contains("null"), "no setting is said to differ from null: {error}");
        }
    }

    #[test]
    fn a_folder_that_cannot_be_made_is_named() {
        let dir = tempfile::tempdir().expect("tempdir");
        let file = dir.path().join("results.json");
        std::fs::write(&file, "{}").expect("a file");
        let error = RunFolder::open(&file, "demo", &settings(0), Start::Fresh)
            .expect_err("a file")
            .to_string();
        assert!(
            error.contains("results.json") && error.contains("cannot create the output folder"),
            "{error}"
        );
        let error = RunFolder::open(Path::new("/proc/kd-run"), "demo", &settings(0), Start::Fresh)
            .expect_err("/proc takes no folders")
            .to_string();
        assert!(error.contains("/proc/kd-run: cannot create the output folder: "), "{error}");
    }
}
