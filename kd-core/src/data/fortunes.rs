//! Debian's `fortunes` corpus (`/usr/share/games/fortunes/`), as characters for a small
//! language model: every fortune file's quotations, separated by the `%` lines, kept to
//! printable ASCII, newline and tab (anything else becomes `?`).

use std::path::{Path, PathBuf};

use super::DataError;

/// Where Debian installs the corpus.
pub const DIR: &str = "/usr/share/games/fortunes";
/// What installs it.
pub const INSTALL: &str = "apt-get update && apt-get install -y fortunes";

/// The characters a model sees: `\n`, `\t`, and printable ASCII (95), in that order.
pub const VOCAB: usize = 97;

/// The vocabulary index of byte `b`; bytes outside the vocabulary map to `?`.
pub fn encode(b: u8) -> usize {
    match b {
        b'\n' => 0,
        b'\t' => 1,
        b' '..=b'~' => usize::from(b - b' ') + 2,
        _ => usize::from(b'?' - b' ') + 2,
    }
}

/// The byte of vocabulary index `i`.
pub fn decode(i: usize) -> u8 {
    match i {
        0 => b'\n',
        1 => b'\t',
        _ => b' ' + (i - 2).min(94) as u8,
    }
}

/// The corpus, encoded: quotations in file order, the last tenth held out.
#[derive(Debug, Clone)]
pub struct Corpus {
    /// Encoded training text.
    pub train: Vec<usize>,
    /// Encoded held-out text.
    pub test: Vec<usize>,
    /// The files read.
    pub files: Vec<PathBuf>,
}

/// Reads every fortune file in `dir` (the files without an extension; `.dat` and `.u8` are
/// indexes and links).
///
/// # Errors
/// [`DataError::NotInstalled`] with the command to run when `dir` is missing; an error naming
/// the file when one cannot be read or holds no quotation.
pub fn load_from(dir: &Path) -> Result<Corpus, DataError> {
    if !dir.is_dir() {
        return Err(DataError::NotInstalled {
            dataset: "the fortunes corpus",
            path: dir.to_path_buf(),
            command: INSTALL,
        });
    }
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .map_err(super::io_error(dir, "list the corpus"))?
        .filter_map(|entry| entry.ok().map(|e| e.path()))
        .filter(|path| path.is_file() && path.extension().is_none())
        .collect();
    files.sort();
    let mut quotations: Vec<Vec<usize>> = Vec::new();
    for file in &files {
        let bytes = std::fs::read(file).map_err(super::io_error(file, "read"))?;
        let before = quotations.len();
        for quotation in bytes.split(|&b| b == b'%').map(|q| q.trim_ascii()).filter(|q| !q.is_empty()) {
            let mut encoded: Vec<usize> = quotation.iter().map(|&b| encode(b)).collect();
            encoded.push(encode(b'\n'));
            encoded.push(encode(b'\n'));
            quotations.push(encoded);
        }
        if quotations.len() == before {
            return Err(DataError::Corrupt {
                path: file.clone(),
                problem: "holds no quotation (expected text separated by `%` lines)".into(),
            });
        }
    }
    if quotations.is_empty() {
        return Err(DataError::Corrupt {
            path: dir.to_path_buf(),
            problem: "holds no fortune file".into(),
        });
    }
    let held_out = quotations.len() / 10;
    let test = quotations.split_off(quotations.len() - held_out.max(1));
    Ok(Corpus {
        train: quotations.concat(),
        test: test.concat(),
        files,
    })
}

/// Reads the corpus from Debian's location.
///
/// # Errors
/// As [`load_from`].
pub fn load() -> Result<Corpus, DataError> {
    load_from(Path::new(DIR))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn characters_round_trip_and_others_become_question_marks() {
        for b in (b' '..=b'~').chain([b'\n', b'\t']) {
            assert_eq!(decode(encode(b)), b);
            assert!(encode(b) < VOCAB);
        }
        assert_eq!(decode(encode(0xE9)), b'?');
    }

    #[test]
    fn quotations_split_on_percent_lines_and_bad_files_are_named() {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::write(dir.path().join("wisdom"), "First.\n%\nSecond one.\n%\n").expect("write");
        std::fs::write(dir.path().join("wisdom.dat"), [0u8, 1, 2]).expect("write");
        let corpus = load_from(dir.path()).expect("reads");
        assert_eq!(corpus.files.len(), 1, "indexes are skipped");
        let text: String = corpus.train.iter().chain(&corpus.test).map(|&i| decode(i) as char).collect();
        assert_eq!(text, "First.\n\nSecond one.\n\n");

        std::fs::write(dir.path().join("empty"), "%\n%\n").expect("write");
        let message = load_from(dir.path()).expect_err("no quotation").to_string();
        assert!(message.contains("empty") && message.contains("no quotation"), "{message}");
        let message = load_from(&dir.path().join("missing")).expect_err("missing").to_string();
        assert!(message.contains("apt-get install -y fortunes"), "{message}");
    }

    #[test]
    fn debians_corpus_loads() {
        let corpus = load().unwrap_or_else(|e| panic!("{e}"));
        assert!(
            corpus.train.len() > 1_000_000 && corpus.test.len() > 50_000,
            "{} / {}",
            corpus.train.len(),
            corpus.test.len()
        );
    }
}
