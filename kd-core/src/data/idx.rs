//! The IDX format of MNIST and Fashion-MNIST: a big-endian header (two zero bytes, a type
//! byte, the number of dimensions, then each dimension as a `u32`) followed by the data.
//! Only unsigned bytes (type `0x08`) occur in these datasets.

use std::path::Path;

use super::{io_error, DataError};

/// A parsed IDX file of unsigned bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Idx {
    /// The dimensions from the header, outermost first.
    pub dims: Vec<usize>,
    /// The data, row-major.
    pub data: Vec<u8>,
}

/// Parses IDX `bytes` read from `path` (named in errors), expecting `rank` dimensions.
pub fn parse(path: &Path, bytes: &[u8], rank: usize) -> Result<Idx, DataError> {
    let corrupt = |problem: String| DataError::Corrupt {
        path: path.to_path_buf(),
        problem,
    };
    let header_len = 4 + 4 * rank;
    if bytes.len() < 4 {
        return Err(corrupt(format!(
            "truncated: {} bytes, too short for an IDX magic number",
            bytes.len()
        )));
    }
    let magic = u32::from_be_bytes([bytes[0], bytes[1], bytes[2], bytes[3]]);
    let expected_magic = 0x0800 | rank as u32;
    if magic != expected_magic {
        return Err(corrupt(format!(
            "magic number {magic:#010x} is not {expected_magic:#010x} (unsigned bytes, {rank} dimension{})",
            if rank == 1 { "" } else { "s" }
        )));
    }
    if bytes.len() < header_len {
        return Err(corrupt(format!(
            "truncated header: {} bytes, the {rank}-dimensional header needs {header_len}",
            bytes.len()
        )));
    }
    let dims: Vec<usize> = bytes[4..header_len]
        .chunks_exact(4)
        .map(|c| u32::from_be_bytes([c[0], c[1], c[2], c[3]]) as usize)
        .collect();
    let body = dims
        .iter()
        .try_fold(1usize, |acc, &d| acc.checked_mul(d))
        .ok_or_else(|| corrupt(format!("dimensions {dims:?} overflow")))?;
    let found = bytes.len() - header_len;
    if found != body {
        let what = if found < body { "truncated" } else { "trailing bytes" };
        return Err(corrupt(format!(
            "{what}: the header's dimensions {dims:?} need {body} data bytes, the file has {found}"
        )));
    }
    Ok(Idx {
        dims,
        data: bytes[header_len..].to_vec(),
    })
}

/// Reads and parses the IDX file at `path`.
pub fn read(path: &Path, rank: usize) -> Result<Idx, DataError> {
    let bytes = std::fs::read(path).map_err(io_error(path, "read"))?;
    parse(path, &bytes, rank)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(dims: &[u32], data: &[u8]) -> Vec<u8> {
        let mut bytes = vec![0, 0, 8, dims.len() as u8];
        for d in dims {
            bytes.extend(d.to_be_bytes());
        }
        bytes.extend(data);
        bytes
    }

    #[test]
    fn parses_a_well_formed_file() {
        let idx = parse(Path::new("x"), &file(&[2, 2, 3], &[1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12]), 3).expect("valid");
        assert_eq!(idx.dims, vec![2, 2, 3]);
        assert_eq!(idx.data[11], 12);
    }

    #[test]
    fn errors_name_the_file_and_the_problem() {
        let path = Path::new("data/train-images-idx3-ubyte");
        let message = |bytes: &[u8], rank| parse(path, bytes, rank).expect_err("corrupt").to_string();
        assert_eq!(
            message(&file(&[2, 2, 2], &[0; 5]), 3),
            "data/train-images-idx3-ubyte: truncated: the header's dimensions [2, 2, 2] need 8 data bytes, the file has 5"
        );
        assert!(message(&file(&[3], &[0; 4]), 1).contains("trailing bytes"));
        assert!(message(&file(&[3], &[0; 3]), 3).contains("magic number 0x00000801 is not 0x00000803"));
        assert!(message(&[0, 0, 8], 1).contains("too short"));
        assert!(message(&[0, 0, 8, 3, 0, 0], 3).contains("truncated header"));
    }

    /// Every prefix and every single-byte change of a valid file either parses to the same
    /// shape or gives an error that names the file: never a panic.
    #[test]
    fn truncations_and_corruptions_never_panic() {
        let valid = file(&[3, 2, 2], &(0..12).collect::<Vec<u8>>());
        for len in 0..valid.len() {
            let error = parse(Path::new("f"), &valid[..len], 3).expect_err("every prefix is truncated");
            assert!(error.to_string().starts_with("f: "), "{error}");
        }
        for at in 0..valid.len() {
            for value in [0u8, 1, 0x7f, 0xff] {
                let mut bytes = valid.clone();
                bytes[at] = value;
                if let Ok(idx) = parse(Path::new("f"), &bytes, 3) {
                    assert_eq!(idx.data.len(), idx.dims.iter().product::<usize>());
                }
            }
        }
    }
}
