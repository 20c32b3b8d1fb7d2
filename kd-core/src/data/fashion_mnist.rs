//! Fashion-MNIST (Xiao, Rasul, Vollgraf 2017, Zalando): 60,000 + 10,000 grey 28×28 images of 10
//! clothing classes, from Debian's `dataset-fashion-mnist` (`/usr/share/datasets/fashion-mnist`).
//! Debian recompressed the files, so the published md5 sums are checked on the decompressed
//! data.

use std::io::Read;
use std::path::{Path, PathBuf};

use super::mnist::{split_from, Mnist};
use super::{check_md5, idx, io_error, DataError};

/// Where the Debian package puts the files.
pub const DIR: &str = "/usr/share/datasets/fashion-mnist";

/// The command that installs them.
pub const INSTALL: &str = "apt-get update && apt-get install -y dataset-fashion-mnist";

/// The four files and the md5 sums of their decompressed contents.
pub const FILES: [(&str, &str); 4] = [
    ("train-images-idx3-ubyte.gz", "f4a8712d7a061bf5bd6d2ca38dc4d50a"),
    ("train-labels-idx1-ubyte.gz", "9018921c3c673c538a1fc5bad174d6f9"),
    ("t10k-images-idx3-ubyte.gz", "8181f5470baa50b63fa0f6fddb340f0a"),
    ("t10k-labels-idx1-ubyte.gz", "15d484375f8d13e6eb1aabb0c3f46965"),
];

/// The class names, in label order.
pub const CLASSES: [&str; 10] = [
    "T-shirt/top",
    "Trouser",
    "Pullover",
    "Dress",
    "Coat",
    "Sandal",
    "Shirt",
    "Sneaker",
    "Bag",
    "Ankle boot",
];

/// Decompresses, checks and parses one file.
fn read(dir: &Path, (name, md5): (&str, &'static str), rank: usize) -> Result<(PathBuf, idx::Idx), DataError> {
    let path = dir.join(name);
    let file = std::fs::File::open(&path).map_err(io_error(&path, "open"))?;
    let mut bytes = Vec::new();
    flate2::read::GzDecoder::new(file)
        .read_to_end(&mut bytes)
        .map_err(|e| DataError::Corrupt {
            path: path.clone(),
            problem: format!("not a valid gzip file: {e}"),
        })?;
    check_md5(&path, &bytes, md5)?;
    let parsed = idx::parse(&path, &bytes, rank)?;
    Ok((path, parsed))
}

/// Reads both splits from `dir`.
///
/// # Errors
/// [`DataError::NotInstalled`] with the command to run when `dir` does not exist; otherwise an
/// error naming the file that is corrupt.
pub fn load_from(dir: &Path) -> Result<Mnist, DataError> {
    if !dir.is_dir() {
        return Err(DataError::NotInstalled {
            dataset: "Fashion-MNIST",
            path: dir.to_path_buf(),
            command: INSTALL,
        });
    }
    let split = |images: usize, labels: usize| -> Result<_, DataError> {
        let (images_path, images) = read(dir, FILES[images], 3)?;
        let (labels_path, labels) = read(dir, FILES[labels], 1)?;
        split_from((&images_path, images), (&labels_path, labels))
    };
    Ok(Mnist {
        train: split(0, 1)?,
        test: split(2, 3)?,
    })
}

/// Reads Fashion-MNIST from Debian's location.
pub fn load() -> Result<Mnist, DataError> {
    load_from(Path::new(DIR))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    #[test]
    fn a_missing_package_says_what_to_install() {
        let error = load_from(Path::new("/nonexistent/fashion-mnist"))
            .expect_err("not installed")
            .to_string();
        assert!(error.contains("apt-get install -y dataset-fashion-mnist"), "{error}");
    }

    #[test]
    fn corrupt_and_altered_files_name_the_file() {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::write(dir.path().join(FILES[0].0), b"not gzip").expect("write");
        let error = load_from(dir.path()).expect_err("corrupt").to_string();
        assert!(error.contains("train-images-idx3-ubyte.gz: not a valid gzip file"), "{error}");

        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        gz.write_all(&[0, 0, 8, 1, 0, 0, 0, 1, 7]).expect("compress");
        std::fs::write(dir.path().join(FILES[0].0), gz.finish().expect("finish")).expect("write");
        let error = load_from(dir.path()).expect_err("altered").to_string();
        assert!(
            error.contains("train-images-idx3-ubyte.gz: md5") && error.contains(FILES[0].1),
            "{error}"
        );
    }

    /// The real files (`scripts/test` installs the package) load with the canonical counts.
    #[test]
    fn the_installed_package_loads_with_canonical_counts() {
        let data = load().unwrap_or_else(|e| panic!("{e}"));
        assert_eq!((data.train.len(), data.test.len()), (60_000, 10_000));
        assert!((0..10).all(|c| data.test.labels.iter().filter(|&&l| usize::from(l) == c).count() == 1000));
    }
}
