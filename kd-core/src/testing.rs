//! Numeric test helpers: a [`Tolerance`] with relative and absolute parts (as burn's), and
//! [`assert_close!`](crate::assert_close) that reports the index and both values of the first
//! mismatch (dfdx's reports only the values).
//!
//! ```
//! use kd_core::{assert_close, testing::Tolerance};
//!
//! assert_close!([[1.0, 2.0], [3.0, 4.0]], [[1.0, 2.0], [3.0, 4.0 + 1e-9]], Tolerance::F64);
//! let message = std::panic::catch_unwind(|| {
//!     assert_close!([1.0, 2.0, 3.0], [1.0, 2.5, 3.0], Tolerance::F32);
//! })
//! .unwrap_err();
//! let message = message.downcast_ref::<String>().unwrap();
//! assert!(message.contains("[1]") && message.contains("2.5"), "{message}");
//! ```

use dfdx::prelude::*;

/// How far two numbers may be apart: `|a − e| ≤ max(absolute, relative · max(|a|, |e|))`.
///
/// NaN is never close to anything; infinities are close only to themselves.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Tolerance {
    /// The part that scales with the magnitude of the values.
    pub relative: f64,
    /// The floor, for values near zero.
    pub absolute: f64,
}

impl Tolerance {
    /// For f32 results against an f64 reference: relative 1e-5, absolute 1e-6.
    pub const F32: Self = Self {
        relative: 1e-5,
        absolute: 1e-6,
    };
    /// For f64 results against an f64 reference: relative 1e-9, absolute 1e-12.
    pub const F64: Self = Self {
        relative: 1e-9,
        absolute: 1e-12,
    };

    /// A tolerance with both parts given.
    pub const fn rel_abs(relative: f64, absolute: f64) -> Self {
        Self { relative, absolute }
    }

    /// The preset for the dtype `E` ([`Self::F32`] for 4-byte floats, [`Self::F64`] otherwise).
    pub fn for_dtype<E: Dtype>() -> Self {
        if std::mem::size_of::<E>() <= 4 {
            Self::F32
        } else {
            Self::F64
        }
    }

    /// Whether `actual` is close to `expected`.
    pub fn is_close(&self, actual: f64, expected: f64) -> bool {
        if actual.is_infinite() || expected.is_infinite() {
            return actual == expected;
        }
        let allowed = self.absolute.max(self.relative * actual.abs().max(expected.abs()));
        (actual - expected).abs() <= allowed
    }
}

/// Values that [`assert_close!`](crate::assert_close) can compare: numbers, nested arrays,
/// vectors and slices of them, and dfdx tensors of any shape.
pub trait Values {
    /// The shape (empty for a scalar) and the values in row-major order.
    fn values(&self) -> (Vec<usize>, Vec<f64>);
}

impl Values for f64 {
    fn values(&self) -> (Vec<usize>, Vec<f64>) {
        (Vec::new(), vec![*self])
    }
}

impl Values for f32 {
    fn values(&self) -> (Vec<usize>, Vec<f64>) {
        (Vec::new(), vec![f64::from(*self)])
    }
}

impl<V: Values> Values for [V] {
    fn values(&self) -> (Vec<usize>, Vec<f64>) {
        let mut inner_shape = Vec::new();
        let mut all = Vec::new();
        for item in self {
            let (shape, values) = item.values();
            inner_shape = shape;
            all.extend(values);
        }
        let mut shape = vec![self.len()];
        shape.extend(inner_shape);
        (shape, all)
    }
}

impl<V: Values, const N: usize> Values for [V; N] {
    fn values(&self) -> (Vec<usize>, Vec<f64>) {
        self.as_slice().values()
    }
}

impl<V: Values> Values for Vec<V> {
    fn values(&self) -> (Vec<usize>, Vec<f64>) {
        self.as_slice().values()
    }
}

impl<V: Values + ?Sized> Values for &V {
    fn values(&self) -> (Vec<usize>, Vec<f64>) {
        (**self).values()
    }
}

impl<S: Shape, E: Dtype, D: Device<E>, T> Values for Tensor<S, E, D, T> {
    fn values(&self) -> (Vec<usize>, Vec<f64>) {
        let shape = self.shape().concrete().into_iter().collect();
        let values = self.as_vec().into_iter().map(|v| v.to_f64().unwrap_or(f64::NAN)).collect();
        (shape, values)
    }
}

/// Where two value sets first differ.
#[derive(Debug, Clone, PartialEq)]
pub struct Mismatch {
    /// The multi-dimensional index of the first far pair.
    pub index: Vec<usize>,
    /// The value found there.
    pub actual: f64,
    /// The value expected there.
    pub expected: f64,
}

/// The first element where `actual` and `expected` are not close, or a shape mismatch message.
pub fn first_mismatch(actual: &dyn Values, expected: &dyn Values, tolerance: Tolerance) -> std::result::Result<Option<Mismatch>, String> {
    let (actual_shape, actual) = actual.values();
    let (expected_shape, expected) = expected.values();
    if actual.len() != expected.len() {
        return Err(format!(
            "shapes differ: actual {actual_shape:?} ({} values), expected {expected_shape:?} ({} values)",
            actual.len(),
            expected.len()
        ));
    }
    let shape = if actual_shape.is_empty() { expected_shape } else { actual_shape };
    Ok(actual
        .iter()
        .zip(&expected)
        .position(|(&a, &e)| !tolerance.is_close(a, e))
        .map(|flat| Mismatch {
            index: unravel(flat, &shape),
            actual: actual[flat],
            expected: expected[flat],
        }))
}

fn unravel(mut flat: usize, shape: &[usize]) -> Vec<usize> {
    let mut index = vec![0; shape.len()];
    for (slot, &size) in index.iter_mut().zip(shape).rev() {
        if size > 0 {
            *slot = flat % size;
            flat /= size;
        }
    }
    index
}

/// Panics with the first mismatch; the implementation behind [`assert_close!`](crate::assert_close).
#[track_caller]
pub fn assert_close_impl(actual: &dyn Values, expected: &dyn Values, tolerance: Tolerance, what: &str) {
    match first_mismatch(actual, expected, tolerance) {
        Ok(None) => {}
        Ok(Some(m)) => panic!(
            "{what}: not close at index {:?}: actual {} vs expected {} (|diff| = {:e}, tolerance {:?})",
            m.index,
            m.actual,
            m.expected,
            (m.actual - m.expected).abs(),
            tolerance
        ),
        Err(shapes) => panic!("{what}: {shapes}"),
    }
}

/// Asserts that two values (numbers, nested arrays, vectors or dfdx tensors) are close under a
/// [`Tolerance`], reporting the index and both values of the first mismatch.
#[macro_export]
macro_rules! assert_close {
    ($actual:expr, $expected:expr, $tolerance:expr $(,)?) => {
        $crate::testing::assert_close_impl(
            &$actual,
            &$expected,
            $tolerance,
            concat!("assert_close!(", stringify!($actual), ", ", stringify!($expected), ")"),
        )
    };
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reports_the_multi_dimensional_index_of_the_first_mismatch() {
        let m = first_mismatch(&[[1.0, 2.0], [3.0, 4.0]], &[[1.0, 2.0], [3.5, 4.0]], Tolerance::F64)
            .expect("same shapes")
            .expect("a mismatch");
        assert_eq!(
            m,
            Mismatch {
                index: vec![1, 0],
                actual: 3.0,
                expected: 3.5
            }
        );
    }

    #[test]
    fn relative_part_scales_with_magnitude_and_absolute_part_is_a_floor() {
        let tol = Tolerance::rel_abs(1e-3, 1e-6);
        assert!(tol.is_close(1000.0, 1000.9));
        assert!(!tol.is_close(1000.0, 1001.1));
        assert!(tol.is_close(0.0, 9e-7));
        assert!(!tol.is_close(0.0, 2e-6));
    }

    #[test]
    fn nan_is_never_close_and_infinity_only_to_itself() {
        let tol = Tolerance::rel_abs(1.0, 1.0);
        assert!(!tol.is_close(f64::NAN, f64::NAN));
        assert!(!tol.is_close(f64::NAN, 0.0));
        assert!(tol.is_close(f64::INFINITY, f64::INFINITY));
        assert!(!tol.is_close(f64::INFINITY, f64::MAX));
    }

    #[test]
    fn shape_mismatch_is_reported() {
        let err = first_mismatch(&[1.0, 2.0], &[1.0, 2.0, 3.0], Tolerance::F64).expect_err("shapes differ");
        assert!(err.contains("[2]") && err.contains("[3]"), "{err}");
    }

    #[test]
    fn tensors_compare_with_arrays() {
        let dev = Cpu::default();
        let t: Tensor<Rank2<2, 2>, f32, _> = dev.tensor([[1.0, 2.0], [3.0, 4.0]]);
        crate::assert_close!(t, [[1.0, 2.0], [3.0, 4.0]], Tolerance::F32);
        let (shape, _) = t.values();
        assert_eq!(shape, vec![2, 2]);
    }
}
