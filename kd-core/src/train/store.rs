//! The offline teacher-logit store: a teacher's outputs on a whole dataset, written once (on
//! this machine or on several) and read back, memory-mapped, by any number of student runs.
//!
//! This is how DistillKit and Megatron scale distillation out: the teacher runs once per
//! dataset, in shards on as many machines as there are, and the students never load it.
//!
//! **Layout** of a store folder:
//!
//! | file | content |
//! |---|---|
//! | `header.json` | [`StoreHeader`]: the teacher checkpoint's MD5, the dataset and its checksum, the transform, the classes, `top_k`, the chunk size |
//! | `chunk-NNNNNN.gz` | the records of samples `[N·chunk, (N+1)·chunk)`, gzip (flate2); each written atomically |
//! | `logits.bin` | every record in sample order, uncompressed: [`pack`] writes it, [`LogitStore`] maps it |
//!
//! **Records** (little-endian): exact, `C × f32` logits; top-k, `k × f32` logits (largest
//! first), `k × u32` class indices, `f32` log-partition `log Z = logsumexp(z)` and `f32` tail
//! mass `1 − Σ_top-k softmax(z)` (computed in f64).
//!
//! **Reading top-k back** ([`LogitStore::gather`]): the stored classes keep their logits; the
//! `C − k` others share the tail mass evenly, each at `log Z + ln(tail / (C − k))` (floored at
//! a mass of 1e-30 so no logit is infinite). The teacher's distribution at `T = 1` is kept
//! exactly on the top-k and in total; at other temperatures the tail's shape is the
//! approximation. With `k = C` the logits are stored as they are, so KD from the store equals
//! KD from the live teacher bit for bit.
//!
//! **Shards and resume:** [`StoreWriter::write_shard`] with shard `i` of `n` writes chunks
//! `i, i + n, i + 2n, …` and skips those already on disk, so a killed writer resumes where it
//! stopped and `n` machines can each write one shard into their own folder; [`merge`] gathers
//! the chunks of several folders (their headers must agree) and [`pack`] joins them.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::files::{write_atomically, FileError};

/// Samples per chunk unless the header says otherwise.
pub const DEFAULT_CHUNK: usize = 4096;

/// Bytes of one logit or index.
const WORD: usize = 4;

/// What a store holds and how it was made; a reader checks it against what it expects.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoreHeader {
    /// Format version (1).
    pub format: u32,
    /// MD5 (hex) of the teacher checkpoint the logits come from.
    pub teacher: String,
    /// The dataset and split ("MNIST train").
    pub dataset: String,
    /// A checksum of the dataset's samples as the teacher saw them.
    pub dataset_checksum: String,
    /// What was done to each sample before the teacher ("pixels / 255, no augmentation").
    pub transform: String,
    /// Samples in the dataset.
    pub samples: usize,
    /// Classes per sample.
    pub classes: usize,
    /// `None`: exact logits; `Some(k)`: the top `k` (1 ≤ k ≤ classes).
    pub top_k: Option<usize>,
    /// Samples per chunk file.
    pub chunk: usize,
}

impl StoreHeader {
    /// Bytes of one sample's record.
    pub fn record_bytes(&self) -> usize {
        match self.top_k {
            None => self.classes * WORD,
            Some(k) => 2 * k * WORD + 2 * WORD,
        }
    }

    /// Chunk files in a full store.
    pub fn chunks(&self) -> usize {
        self.samples.div_ceil(self.chunk.max(1))
    }

    /// The samples of chunk `index`.
    fn chunk_samples(&self, index: usize) -> std::ops::Range<usize> {
        index * self.chunk..((index + 1) * self.chunk).min(self.samples)
    }

    fn check(&self, path: &Path) -> Result<(), StoreError> {
        let bad = |reason: String| {
            Err(StoreError::Header {
                path: path.to_path_buf(),
                reason,
            })
        };
        if self.format != 1 {
            return bad(format!("format {} is not the format this kd reads (1)", self.format));
        }
        if self.classes == 0 || self.samples == 0 || self.chunk == 0 {
            return bad("classes, samples and chunk must each be at least 1".into());
        }
        if let Some(k) = self.top_k {
            if k == 0 || k > self.classes {
                return bad(format!("top_k is {k} but must be between 1 and the {} classes", self.classes));
            }
        }
        Ok(())
    }

    /// The first field in which `self` (stored) and `expected` differ.
    fn first_difference(&self, expected: &StoreHeader) -> Option<(&'static str, String, String)> {
        let fields: [(&'static str, String, String); 9] = [
            ("format", self.format.to_string(), expected.format.to_string()),
            ("teacher", self.teacher.clone(), expected.teacher.clone()),
            ("dataset", self.dataset.clone(), expected.dataset.clone()),
            ("dataset_checksum", self.dataset_checksum.clone(), expected.dataset_checksum.clone()),
            ("transform", self.transform.clone(), expected.transform.clone()),
            ("samples", self.samples.to_string(), expected.samples.to_string()),
            ("classes", self.classes.to_string(), expected.classes.to_string()),
            ("top_k", format!("{:?}", self.top_k), format!("{:?}", expected.top_k)),
            ("chunk", self.chunk.to_string(), expected.chunk.to_string()),
        ];
        fields.into_iter().find(|(_, stored, wanted)| stored != wanted)
    }
}

/// Why a store cannot be written or read.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// A file could not be read or written.
    #[error(transparent)]
    File(#[from] FileError),
    /// `header.json` is not a header this kd can read.
    #[error("{}: not a logit-store header: {reason}", path.display())]
    Header {
        /// The header file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// The store was made from another teacher, dataset, transform or k than expected.
    #[error("{}: the store's {field} is {stored} but {expected} was expected; write a new store for this teacher and dataset", path.display())]
    Mismatch {
        /// The header file.
        path: PathBuf,
        /// The first field that differs.
        field: &'static str,
        /// The store's value.
        stored: String,
        /// The expected value.
        expected: String,
    },
    /// A chunk or `logits.bin` does not hold what its header says.
    #[error("{}: {reason}", path.display())]
    Corrupt {
        /// The damaged file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// [`pack`] found chunks missing.
    #[error("{}: chunks {missing:?} of {total} are missing; write their shards (or merge their folders) first", dir.display())]
    MissingChunks {
        /// The store folder.
        dir: PathBuf,
        /// The missing chunk numbers.
        missing: Vec<usize>,
        /// Chunks in a full store.
        total: usize,
    },
    /// A shard written as `--shard i/n` with `i ≥ n` or `n = 0`.
    #[error("shard {index}/{count} does not exist; shards are numbered 0/{count} to {}/{count}", count.saturating_sub(1))]
    Shard {
        /// The shard asked for.
        index: usize,
        /// The number of shards.
        count: usize,
    },
    /// The teacher returned a wrong number of logits for a chunk.
    #[error("the teacher returned {got} logits for {samples} samples of {classes} classes")]
    TeacherOutput {
        /// Logits returned.
        got: usize,
        /// Samples asked for.
        samples: usize,
        /// Classes per sample.
        classes: usize,
    },
}

/// One shard of `count`: `--shard index/count`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Shard {
    /// This shard, `0..count`.
    pub index: usize,
    /// Shards in all.
    pub count: usize,
}

impl Shard {
    /// The whole store as one shard.
    pub const ALL: Shard = Shard { index: 0, count: 1 };

    /// Parses `i/n` with `i < n`.
    pub fn parse(text: &str) -> Option<Shard> {
        let (index, count) = text.split_once('/')?;
        let shard = Shard {
            index: index.trim().parse().ok()?,
            count: count.trim().parse().ok()?,
        };
        (shard.index < shard.count).then_some(shard)
    }
}

/// What one [`StoreWriter::write_shard`] call did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ShardReport {
    /// Chunks computed and written now.
    pub written: usize,
    /// Chunks found on disk and kept.
    pub skipped: usize,
}

fn header_path(dir: &Path) -> PathBuf {
    dir.join("header.json")
}

fn chunk_path(dir: &Path, index: usize) -> PathBuf {
    dir.join(format!("chunk-{index:06}.gz"))
}

fn packed_path(dir: &Path) -> PathBuf {
    dir.join("logits.bin")
}

/// Reads and checks `dir/header.json`.
pub fn read_header(dir: &Path) -> Result<StoreHeader, StoreError> {
    let path = header_path(dir);
    let text = std::fs::read_to_string(&path).map_err(FileError::at(&path, "read the store header"))?;
    let header: StoreHeader = serde_json::from_str(&text).map_err(|e| StoreError::Header {
        path: path.clone(),
        reason: e.to_string(),
    })?;
    header.check(&path)?;
    Ok(header)
}

/// Fails with [`StoreError::Mismatch`] unless the store in `dir` has `expected`'s header.
fn expect_header(dir: &Path, expected: &StoreHeader) -> Result<StoreHeader, StoreError> {
    let stored = read_header(dir)?;
    match stored.first_difference(expected) {
        None => Ok(stored),
        Some((field, stored, expected)) => Err(StoreError::Mismatch {
            path: header_path(dir),
            field,
            stored,
            expected,
        }),
    }
}

/// Encodes the records of `samples` samples from their row-major logits.
fn encode(header: &StoreHeader, logits: &[f32]) -> Vec<u8> {
    let classes = header.classes;
    let mut bytes = Vec::with_capacity(logits.len() / classes * header.record_bytes());
    for row in logits.chunks(classes) {
        match header.top_k {
            None => row.iter().for_each(|v| bytes.extend(v.to_le_bytes())),
            Some(k) => {
                let mut order: Vec<usize> = (0..classes).collect();
                order.sort_by(|&a, &b| row[b].total_cmp(&row[a]).then(a.cmp(&b)));
                let top = &order[..k];
                let max = row.iter().fold(f64::NEG_INFINITY, |m, &v| m.max(v as f64));
                let sum: f64 = row.iter().map(|&v| (v as f64 - max).exp()).sum();
                let log_z = max + sum.ln();
                let kept: f64 = top.iter().map(|&c| (row[c] as f64 - log_z).exp()).sum();
                top.iter().for_each(|&c| bytes.extend(row[c].to_le_bytes()));
                top.iter().for_each(|&c| bytes.extend((c as u32).to_le_bytes()));
                bytes.extend((log_z as f32).to_le_bytes());
                bytes.extend(((1.0 - kept).max(0.0) as f32).to_le_bytes());
            }
        }
    }
    bytes
}

/// Reads a chunk file back, checking its length.
fn read_chunk(header: &StoreHeader, path: &Path, index: usize) -> Result<Vec<u8>, StoreError> {
    let file = std::fs::File::open(path).map_err(FileError::at(path, "open the chunk"))?;
    let mut bytes = Vec::new();
    flate2::read::GzDecoder::new(file)
        .read_to_end(&mut bytes)
        .map_err(|e| StoreError::Corrupt {
            path: path.to_path_buf(),
            reason: format!("not a complete gzip stream ({e}); delete it and write its shard again"),
        })?;
    let expected = header.chunk_samples(index).len() * header.record_bytes();
    if bytes.len() != expected {
        return Err(StoreError::Corrupt {
            path: path.to_path_buf(),
            reason: format!(
                "holds {} bytes but its samples need {expected}; delete it and write its shard again",
                bytes.len()
            ),
        });
    }
    Ok(bytes)
}

/// Writes a store's chunks.
pub struct StoreWriter {
    dir: PathBuf,
    header: StoreHeader,
}

impl StoreWriter {
    /// Starts a store in `dir`, or resumes the one there, which must have the same header.
    pub fn create(dir: &Path, header: StoreHeader) -> Result<StoreWriter, StoreError> {
        let path = header_path(dir);
        header.check(&path)?;
        if path.exists() {
            expect_header(dir, &header)?;
        } else {
            std::fs::create_dir_all(dir).map_err(FileError::at(dir, "create the store folder"))?;
            let text = serde_json::to_string_pretty(&header).map_err(|e| StoreError::Header {
                path: path.clone(),
                reason: e.to_string(),
            })?;
            write_atomically(&path, text.as_bytes())?;
        }
        Ok(StoreWriter {
            dir: dir.to_path_buf(),
            header,
        })
    }

    /// Writes the chunks of `shard` that are not on disk yet; `teacher(indices)` returns the
    /// logits of those samples, row-major. `progress(done, total)` follows each chunk.
    pub fn write_shard(
        &self,
        shard: Shard,
        mut teacher: impl FnMut(&[usize]) -> Vec<f32>,
        mut progress: impl FnMut(usize, usize),
    ) -> Result<ShardReport, StoreError> {
        if shard.count == 0 || shard.index >= shard.count {
            return Err(StoreError::Shard {
                index: shard.index,
                count: shard.count,
            });
        }
        let mine: Vec<usize> = (shard.index..self.header.chunks()).step_by(shard.count).collect();
        let mut report = ShardReport { written: 0, skipped: 0 };
        for (done, &index) in mine.iter().enumerate() {
            let path = chunk_path(&self.dir, index);
            if path.exists() {
                read_chunk(&self.header, &path, index)?;
                report.skipped += 1;
            } else {
                let samples: Vec<usize> = self.header.chunk_samples(index).collect();
                let logits = teacher(&samples);
                if logits.len() != samples.len() * self.header.classes {
                    return Err(StoreError::TeacherOutput {
                        got: logits.len(),
                        samples: samples.len(),
                        classes: self.header.classes,
                    });
                }
                let mut gzip = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
                let compressed = gzip
                    .write_all(&encode(&self.header, &logits))
                    .and_then(|()| gzip.finish())
                    .map_err(FileError::at(&path, "compress the chunk"))?;
                write_atomically(&path, &compressed)?;
                report.written += 1;
            }
            progress(done + 1, mine.len());
        }
        Ok(report)
    }
}

/// Copies the chunks of the stores in `sources` into `into` (created with their header if
/// absent); every header must agree.
pub fn merge(sources: &[PathBuf], into: &Path) -> Result<usize, StoreError> {
    let mut copied = 0;
    for source in sources {
        let header = read_header(source)?;
        StoreWriter::create(into, header.clone())?;
        for index in 0..header.chunks() {
            let (from, to) = (chunk_path(source, index), chunk_path(into, index));
            if from.exists() && !to.exists() {
                read_chunk(&header, &from, index)?;
                let bytes = std::fs::read(&from).map_err(FileError::at(&from, "read the chunk"))?;
                write_atomically(&to, &bytes)?;
                copied += 1;
            }
        }
    }
    Ok(copied)
}

/// Joins every chunk of the store in `dir` into `logits.bin` (atomically); fails naming the
/// missing chunks if the shards are not all written.
pub fn pack(dir: &Path) -> Result<(), StoreError> {
    let header = read_header(dir)?;
    let missing: Vec<usize> = (0..header.chunks()).filter(|&i| !chunk_path(dir, i).exists()).collect();
    if !missing.is_empty() {
        return Err(StoreError::MissingChunks {
            dir: dir.to_path_buf(),
            missing,
            total: header.chunks(),
        });
    }
    let mut bytes = Vec::with_capacity(header.samples * header.record_bytes());
    for index in 0..header.chunks() {
        bytes.extend(read_chunk(&header, &chunk_path(dir, index), index)?);
    }
    write_atomically(&packed_path(dir), &bytes)?;
    Ok(())
}

/// A packed store, memory-mapped.
pub struct LogitStore {
    header: StoreHeader,
    map: memmap2::Mmap,
}

impl LogitStore {
    /// Maps the packed store in `dir`, whose header must equal `expected` (the teacher, the
    /// dataset, the transform and k the caller trains with).
    pub fn open(dir: &Path, expected: &StoreHeader) -> Result<LogitStore, StoreError> {
        let header = expect_header(dir, expected)?;
        let path = packed_path(dir);
        let file = std::fs::File::open(&path).map_err(FileError::at(&path, "open the packed logits (run pack first)"))?;
        // SAFETY: kd only ever replaces the file by a rename (write_atomically), never writes it
        // in place, so the mapped bytes do not change under the map.
        #[allow(unsafe_code)]
        let map = unsafe { memmap2::Mmap::map(&file) }.map_err(FileError::at(&path, "memory-map the packed logits"))?;
        let expected_bytes = header.samples * header.record_bytes();
        if map.len() != expected_bytes {
            return Err(StoreError::Corrupt {
                path,
                reason: format!(
                    "holds {} bytes but {} samples need {expected_bytes}; run pack again",
                    map.len(),
                    header.samples
                ),
            });
        }
        Ok(LogitStore { header, map })
    }

    /// The header.
    pub fn header(&self) -> &StoreHeader {
        &self.header
    }

    /// Bytes of the packed records.
    pub fn size_bytes(&self) -> usize {
        self.map.len()
    }

    /// The teacher's logits of `indices`, row-major (reconstructed for top-k: see the module
    /// doc).
    ///
    /// # Panics
    /// If an index is not below the header's `samples`.
    pub fn gather(&self, indices: &[usize]) -> Vec<f32> {
        let (classes, record) = (self.header.classes, self.header.record_bytes());
        let word = |bytes: &[u8], at: usize| [bytes[at], bytes[at + 1], bytes[at + 2], bytes[at + 3]];
        let mut logits = Vec::with_capacity(indices.len() * classes);
        for &sample in indices {
            assert!(
                sample < self.header.samples,
                "sample {sample} is outside the store's {}",
                self.header.samples
            );
            let bytes = &self.map[sample * record..(sample + 1) * record];
            match self.header.top_k {
                None => logits.extend((0..classes).map(|c| f32::from_le_bytes(word(bytes, c * WORD)))),
                Some(k) => {
                    let log_z = f32::from_le_bytes(word(bytes, 2 * k * WORD));
                    let tail = f32::from_le_bytes(word(bytes, 2 * k * WORD + WORD));
                    let others = (classes - k).max(1) as f32;
                    let fill = log_z + (tail.max(1e-30) / others).ln();
                    let start = logits.len();
                    logits.resize(start + classes, fill);
                    for j in 0..k {
                        let value = f32::from_le_bytes(word(bytes, j * WORD));
                        let class = u32::from_le_bytes(word(bytes, (k + j) * WORD)) as usize;
                        logits[start + class.min(classes - 1)] = value;
                    }
                }
            }
        }
        logits
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header(samples: usize, classes: usize, top_k: Option<usize>) -> StoreHeader {
        StoreHeader {
            format: 1,
            teacher: "d41d8cd98f00b204e9800998ecf8427e".into(),
            dataset: "toy".into(),
            dataset_checksum: "abc".into(),
            transform: "none".into(),
            samples,
            classes,
            top_k,
            chunk: 3,
        }
    }

    /// A deterministic teacher: sample i, class c → a spread of logits.
    fn teacher(classes: usize) -> impl FnMut(&[usize]) -> Vec<f32> {
        move |indices| {
            indices
                .iter()
                .flat_map(|&i| (0..classes).map(move |c| ((i * 7 + c * 13) % 11) as f32 * 0.9 - 4.0 + i as f32 * 0.01))
                .collect()
        }
    }

    fn written(dir: &Path, header: StoreHeader) -> LogitStore {
        let writer = StoreWriter::create(dir, header.clone()).expect("created");
        writer.write_shard(Shard::ALL, teacher(header.classes), |_, _| {}).expect("written");
        pack(dir).expect("packed");
        LogitStore::open(dir, &header).expect("opened")
    }

    #[test]
    fn exact_and_full_top_k_stores_return_the_teachers_logits_bit_for_bit() {
        let live = teacher(5)(&[4, 0, 9, 3]);
        for top_k in [None, Some(5)] {
            let dir = tempfile::tempdir().expect("temp dir");
            let store = written(dir.path(), header(10, 5, top_k));
            assert_eq!(store.gather(&[4, 0, 9, 3]), live, "top_k {top_k:?}");
        }
    }

    /// Top-k keeps the k largest logits, and the rest share the tail mass: the distribution at
    /// T = 1 keeps its top-k probabilities and sums to 1.
    #[test]
    fn top_k_keeps_the_largest_logits_and_the_tail_mass() {
        let dir = tempfile::tempdir().expect("temp dir");
        let store = written(dir.path(), header(7, 6, Some(2)));
        let live = teacher(6)(&[5]);
        let stored = store.gather(&[5]);
        let softmax = |z: &[f32]| {
            let max = z.iter().fold(f64::NEG_INFINITY, |m, &v| m.max(v as f64));
            let exps: Vec<f64> = z.iter().map(|&v| (v as f64 - max).exp()).collect();
            let sum: f64 = exps.iter().sum();
            exps.into_iter().map(|e| e / sum).collect::<Vec<_>>()
        };
        let (p_live, p_stored) = (softmax(&live), softmax(&stored));
        let mut order: Vec<usize> = (0..6).collect();
        order.sort_by(|&a, &b| live[b].total_cmp(&live[a]));
        for &c in &order[..2] {
            assert_eq!(stored[c], live[c]);
            assert!(
                (p_live[c] - p_stored[c]).abs() < 1e-6,
                "class {c}: {} vs {}",
                p_live[c],
                p_stored[c]
            );
        }
        let tail: Vec<f32> = order[2..].iter().map(|&c| stored[c]).collect();
        assert!(tail.windows(2).all(|w| w[0] == w[1]), "the tail is shared evenly: {tail:?}");
        assert_eq!(store.size_bytes(), 7 * (2 * 2 * 4 + 8));
    }

    #[test]
    fn shards_written_apart_merge_into_the_whole_store() {
        let whole_dir = tempfile::tempdir().expect("temp dir");
        let whole = written(whole_dir.path(), header(10, 4, Some(3)));
        let parts: Vec<tempfile::TempDir> = (0..3).map(|_| tempfile::tempdir().expect("temp dir")).collect();
        for (i, part) in parts.iter().enumerate() {
            let writer = StoreWriter::create(part.path(), header(10, 4, Some(3))).expect("created");
            let report = writer
                .write_shard(Shard { index: i, count: 3 }, teacher(4), |_, _| {})
                .expect("written");
            assert_eq!(report.written, if i == 0 { 2 } else { 1 }, "4 chunks over 3 shards");
        }
        let merged = tempfile::tempdir().expect("temp dir");
        let missing = pack(parts[0].path()).expect_err("one shard alone is incomplete");
        assert!(missing.to_string().contains("chunks [1, 2] of 4 are missing"), "{missing}");
        let sources: Vec<PathBuf> = parts.iter().map(|p| p.path().to_path_buf()).collect();
        assert_eq!(merge(&sources, merged.path()).expect("merged"), 4);
        pack(merged.path()).expect("packed");
        let merged = LogitStore::open(merged.path(), &header(10, 4, Some(3))).expect("opened");
        let all: Vec<usize> = (0..10).collect();
        assert_eq!(merged.gather(&all), whole.gather(&all));
    }

    #[test]
    fn a_resumed_writer_skips_the_chunks_on_disk() {
        let dir = tempfile::tempdir().expect("temp dir");
        let writer = StoreWriter::create(dir.path(), header(10, 4, None)).expect("created");
        writer
            .write_shard(Shard { index: 1, count: 2 }, teacher(4), |_, _| {})
            .expect("written");
        let mut asked = 0;
        let counting = |indices: &[usize]| {
            asked += indices.len();
            teacher(4)(indices)
        };
        let again = StoreWriter::create(dir.path(), header(10, 4, None)).expect("resumed");
        let report = again.write_shard(Shard::ALL, counting, |_, _| {}).expect("written");
        assert_eq!(report, ShardReport { written: 2, skipped: 2 });
        assert_eq!(asked, 3 + 3, "only chunks 0 and 2 (samples 0..3 and 6..9) were computed");
    }

    #[test]
    fn a_store_of_another_teacher_or_k_is_refused_by_field() {
        let dir = tempfile::tempdir().expect("temp dir");
        written(dir.path(), header(4, 3, Some(2)));
        let other_teacher = StoreHeader {
            teacher: "0cc175b9c0f1b6a831c399e269772661".into(),
            ..header(4, 3, Some(2))
        };
        let error = LogitStore::open(dir.path(), &other_teacher)
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(
            error.contains("the store's teacher is d41d8cd98f00b204e9800998ecf8427e but 0cc175b9"),
            "{error}"
        );
        let error = StoreWriter::create(dir.path(), header(4, 3, None))
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(error.contains("the store's top_k is Some(2) but None was expected"), "{error}");
    }

    #[test]
    fn damaged_files_are_named() {
        let dir = tempfile::tempdir().expect("temp dir");
        written(dir.path(), header(4, 3, None));
        std::fs::write(chunk_path(dir.path(), 1), b"not gzip").expect("damaged");
        let error = pack(dir.path()).expect_err("damaged chunk").to_string();
        assert!(error.contains("chunk-000001.gz: not a complete gzip stream"), "{error}");
        std::fs::write(packed_path(dir.path()), [0u8; 5]).expect("truncated");
        let error = LogitStore::open(dir.path(), &header(4, 3, None))
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(error.contains("logits.bin: holds 5 bytes but 4 samples need 48"), "{error}");
        std::fs::write(header_path(dir.path()), b"{}").expect("damaged header");
        let error = read_header(dir.path()).expect_err("damaged header").to_string();
        assert!(error.contains("header.json: not a logit-store header"), "{error}");
        let error = StoreWriter::create(dir.path(), header(4, 3, Some(9)))
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(error.contains("top_k is 9 but must be between 1 and the 3 classes"), "{error}");
        assert_eq!(Shard::parse(" 1/2"), Some(Shard { index: 1, count: 2 }));
        assert_eq!((Shard::parse("2/2"), Shard::parse("0/0"), Shard::parse("1")), (None, None, None));
        let fresh = tempfile::tempdir().expect("temp dir");
        let writer = StoreWriter::create(fresh.path(), header(4, 3, None)).expect("created");
        let error = writer
            .write_shard(Shard { index: 2, count: 2 }, teacher(3), |_, _| {})
            .expect_err("no shard 2/2");
        assert_eq!(error.to_string(), "shard 2/2 does not exist; shards are numbered 0/2 to 1/2");
    }
}
