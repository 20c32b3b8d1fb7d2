//! A safe wrapper over the `gemm` crate's matrix multiply (the kernels dfdx uses), for the
//! fused convolution. The only `unsafe` in kd-core.
#![allow(unsafe_code)]

use dfdx::shapes::Dtype;

/// A strided matrix view: `rows × cols`, element `(r, c)` at `r·row_stride + c·col_stride`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct View {
    pub rows: usize,
    pub cols: usize,
    pub row_stride: usize,
    pub col_stride: usize,
}

impl View {
    /// A contiguous row-major matrix.
    pub fn row_major(rows: usize, cols: usize) -> Self {
        Self {
            rows,
            cols,
            row_stride: cols,
            col_stride: 1,
        }
    }

    /// The transpose, without moving data.
    pub fn t(self) -> Self {
        Self {
            rows: self.cols,
            cols: self.rows,
            row_stride: self.col_stride,
            col_stride: self.row_stride,
        }
    }

    /// One past the largest offset the view touches.
    fn extent(&self) -> usize {
        if self.rows == 0 || self.cols == 0 {
            0
        } else {
            (self.rows - 1) * self.row_stride + (self.cols - 1) * self.col_stride + 1
        }
    }
}

/// `dst = lhs · rhs`, or `dst += lhs · rhs` when `accumulate`, single-threaded (callers
/// parallelise over the batch).
///
/// # Panics
/// If the shapes do not chain or a view reaches past its slice.
pub(crate) fn matmul<E: Dtype>(dst: &mut [E], dst_view: View, lhs: &[E], lhs_view: View, rhs: &[E], rhs_view: View, accumulate: bool) {
    matmul_threads(dst, dst_view, lhs, lhs_view, rhs, rhs_view, accumulate, 1);
}

/// [`matmul`] on up to `threads` rayon threads (gemm splits the product itself).
#[allow(clippy::too_many_arguments)]
pub(crate) fn matmul_threads<E: Dtype>(
    dst: &mut [E],
    dst_view: View,
    lhs: &[E],
    lhs_view: View,
    rhs: &[E],
    rhs_view: View,
    accumulate: bool,
    threads: usize,
) {
    assert!(
        lhs_view.rows == dst_view.rows && rhs_view.cols == dst_view.cols && lhs_view.cols == rhs_view.rows,
        "matmul: {lhs_view:?} · {rhs_view:?} does not give {dst_view:?}"
    );
    assert!(
        dst_view.extent() <= dst.len() && lhs_view.extent() <= lhs.len() && rhs_view.extent() <= rhs.len(),
        "matmul: a view reaches past its slice"
    );
    if dst_view.rows == 0 || dst_view.cols == 0 {
        return;
    }
    if lhs_view.cols == 0 {
        if !accumulate {
            dst.iter_mut().for_each(|d| *d = E::default());
        }
        return;
    }
    let stride = |s: usize| s as isize;
    // SAFETY: the asserts above keep every offset gemm computes from these views inside its
    // slice; `dst` is a unique borrow, so it overlaps neither `lhs` nor `rhs`; gemm reads `dst`
    // only when `accumulate` (read_dst).
    unsafe {
        gemm::gemm(
            dst_view.rows,
            dst_view.cols,
            lhs_view.cols,
            dst.as_mut_ptr(),
            stride(dst_view.col_stride),
            stride(dst_view.row_stride),
            accumulate,
            lhs.as_ptr(),
            stride(lhs_view.col_stride),
            stride(lhs_view.row_stride),
            rhs.as_ptr(),
            stride(rhs_view.col_stride),
            stride(rhs_view.row_stride),
            E::ONE,
            E::ONE,
            false,
            false,
            false,
            if threads > 1 {
                gemm::Parallelism::Rayon(threads)
            } else {
                gemm::Parallelism::None
            },
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn multiplies_transposed_views_and_accumulates() {
        // a = [[1, 2], [3, 4]], b = [[5, 6], [7, 8]]
        let a = [1.0f64, 2.0, 3.0, 4.0];
        let b = [5.0f64, 6.0, 7.0, 8.0];
        let mut c = [0.0f64; 4];
        matmul(
            &mut c,
            View::row_major(2, 2),
            &a,
            View::row_major(2, 2),
            &b,
            View::row_major(2, 2),
            false,
        );
        assert_eq!(c, [19.0, 22.0, 43.0, 50.0]);
        // aᵀ · b = [[26, 30], [38, 44]], added on top.
        matmul(
            &mut c,
            View::row_major(2, 2),
            &a,
            View::row_major(2, 2).t(),
            &b,
            View::row_major(2, 2),
            true,
        );
        assert_eq!(c, [45.0, 52.0, 81.0, 94.0]);
    }

    #[test]
    #[should_panic(expected = "reaches past its slice")]
    fn views_past_the_slice_are_refused() {
        let mut c = [0.0f32; 3];
        matmul(
            &mut c,
            View::row_major(2, 2),
            &[1.0; 4],
            View::row_major(2, 2),
            &[1.0; 4],
            View::row_major(2, 2),
            false,
        );
    }
}
