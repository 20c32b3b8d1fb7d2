//! A safe wrapper over the `gemm` crates' f32 and f64 matrix kernels (gemm-f32, gemm-f64), for the
//! fused convolution. The only `unsafe` in kd-core.
#![allow(unsafe_code)]

use std::any::TypeId;

use dfdx::shapes::Dtype;
use gemm_common::Parallelism;

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

/// Writes the `rows × cols` row-major `source` transposed into `target` (`cols × rows`), a tile
/// of columns at a time: a plain strided scatter touched one cache line per element.
pub(crate) fn transpose_into<E: Copy>(source: &[E], rows: usize, cols: usize, target: &mut [E]) {
    const TILE: usize = 64;
    for start in (0..cols).step_by(TILE) {
        let end = (start + TILE).min(cols);
        for (r, row) in source.chunks(cols).take(rows).enumerate() {
            for (c, &value) in row[start..end].iter().enumerate() {
                target[(start + c) * rows + r] = value;
            }
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

/// [`matmul`] on up to `threads` rayon threads.
///
/// A large product is cut into one slab of `dst` per thread, each a single-threaded gemm call:
/// along the columns when `rhs` is the larger operand (a weight matrix, in a linear layer), so
/// every thread packs only its share of it, and along the rows otherwise. gemm's own threading
/// splits finer jobs, in which both threads pack the same weight blocks. Products too small to cut (a 10-wide head) keep gemm's own threading.
///
/// # Panics
/// If the shapes do not chain or a view reaches past its slice.
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
    UNPACKED_LHS.call_once(|| gemm_common::gemm::set_lhs_packing_threshold_single_thread(LHS_PACKING_THRESHOLD));
    if dst_view.rows == 0 || dst_view.cols == 0 {
        return;
    }
    if lhs_view.cols == 0 {
        if !accumulate {
            dst.iter_mut().for_each(|d| *d = E::default());
        }
        return;
    }
    let split_columns = rhs_view.cols >= lhs_view.rows;
    let along = if split_columns { dst_view.cols } else { dst_view.rows };
    let work = dst_view.rows * dst_view.cols * lhs_view.cols;
    if threads < 2 || along < threads * SLAB_ALIGN || work < gemm_common::gemm::get_threading_threshold() {
        let parallelism = if threads > 1 {
            Parallelism::Rayon(threads)
        } else {
            Parallelism::None
        };
        // SAFETY: the asserts above keep every offset gemm computes from these views inside
        // its slice; `dst` is a unique borrow, so it overlaps neither `lhs` nor `rhs`.
        unsafe {
            gemm_raw(
                dst.as_mut_ptr(),
                dst_view,
                lhs.as_ptr(),
                lhs_view,
                rhs.as_ptr(),
                rhs_view,
                accumulate,
                parallelism,
            )
        };
        return;
    }
    let slab = along.div_ceil(threads).div_ceil(SLAB_ALIGN) * SLAB_ALIGN;
    let dst_ptr = SendPtr(dst.as_mut_ptr());
    rayon::scope(|scope| {
        for start in (0..along).step_by(slab) {
            let len = slab.min(along - start);
            let (dst_view, lhs_view, rhs_view, dst_at, lhs_at, rhs_at) = if split_columns {
                (
                    View { cols: len, ..dst_view },
                    lhs_view,
                    View { cols: len, ..rhs_view },
                    start * dst_view.col_stride,
                    0,
                    start * rhs_view.col_stride,
                )
            } else {
                (
                    View { rows: len, ..dst_view },
                    View { rows: len, ..lhs_view },
                    rhs_view,
                    start * dst_view.row_stride,
                    start * lhs_view.row_stride,
                    0,
                )
            };
            let dst_ptr = &dst_ptr;
            scope.spawn(move |_| {
                // SAFETY: each slab is a sub-view of the asserted views (same strides, a range
                // of their rows or columns), so its offsets stay inside the slices; slabs cover
                // disjoint rows or columns of `dst`, so no two calls write the same element, and
                // `dst` (uniquely borrowed for the scope) overlaps neither operand.
                unsafe {
                    gemm_raw(
                        dst_ptr.0.add(dst_at),
                        dst_view,
                        lhs.as_ptr().add(lhs_at),
                        lhs_view,
                        rhs.as_ptr().add(rhs_at),
                        rhs_view,
                        accumulate,
                        Parallelism::None,
                    );
                }
            });
        }
    });
}

/// gemm multiplies a column-major left operand in place unless the other operand is wider than
/// 6 × this many columns (6 is the AVX-512 f32 kernel's width), and packs it otherwise; its
/// default is 8 (48 columns). kd's linear layers hand gemm exactly such operands, with the batch
/// as the other side: a kept transposed teacher weight in the forward, the weight itself in the
/// input gradient, which then skip the packing copy for batches up to 256 (258 columns); at
/// batch 512 gemm packs again. `kd bench` measures the effect.
const LHS_PACKING_THRESHOLD: usize = 43;

/// gemm's f32 micro-kernels are this many columns wide (AVX2 and AVX-512 alike); its packing
/// threshold counts in kernels.
const KERNEL_COLUMNS: usize = 6;

/// The widest right operand, in columns, that gemm multiplies a kept (column-major) weight
/// against in place: [`LHS_PACKING_THRESHOLD`] kernels. Still one machine's value: a start-up
/// microbenchmark of packed against in-place products chose gemm's default on that machine,
/// where this value runs `kd bench`'s Hinton step faster.
pub fn unpacked_lhs_columns() -> usize {
    LHS_PACKING_THRESHOLD * KERNEL_COLUMNS
}

/// Sets [`LHS_PACKING_THRESHOLD`] once per process (a gemm-wide setting; dfdx's own products
/// use an older gemm and are unaffected).
static UNPACKED_LHS: std::sync::Once = std::sync::Once::new();

/// Slabs are whole multiples of this many rows or columns (gemm's AVX-512 f32 kernel covers
/// 64 rows of its column-major problem at a time).
const SLAB_ALIGN: usize = 64;

/// `dst`'s base pointer, shared by the slab tasks, which write disjoint elements.
struct SendPtr<E>(*mut E);
// SAFETY: the tasks holding it write disjoint elements of one uniquely borrowed slice.
unsafe impl<E: Send> Sync for SendPtr<E> {}

/// One gemm call on views.
///
/// # Safety
/// Every offset the views reach from their pointers must be inside one allocation, and `dst`'s
/// elements must not be read or written by anyone else during the call.
#[allow(clippy::too_many_arguments)]
unsafe fn gemm_raw<E: Dtype>(
    dst: *mut E,
    dst_view: View,
    lhs: *const E,
    lhs_view: View,
    rhs: *const E,
    rhs_view: View,
    accumulate: bool,
    parallelism: Parallelism,
) {
    // The kernels prefer a column-major destination: a row-major product is computed as its
    // transpose, dstᵀ = rhsᵀ · lhsᵀ (`gemm::gemm` does the same).
    let (dst_view, lhs, lhs_view, rhs, rhs_view) = if dst_view.col_stride < dst_view.row_stride {
        (dst_view.t(), rhs, rhs_view.t(), lhs, lhs_view.t())
    } else {
        (dst_view, lhs, lhs_view, rhs, rhs_view)
    };
    let s = |stride: usize| stride as isize;
    macro_rules! multiply {
        ($kernel:expr) => {
            $kernel(
                dst_view.rows,
                dst_view.cols,
                lhs_view.cols,
                dst.cast(),
                s(dst_view.col_stride),
                s(dst_view.row_stride),
                accumulate,
                lhs.cast(),
                s(lhs_view.col_stride),
                s(lhs_view.row_stride),
                rhs.cast(),
                s(rhs_view.col_stride),
                s(rhs_view.row_stride),
                1.0,
                1.0,
                false,
                false,
                false,
                parallelism,
            )
        };
    }
    // SAFETY: the caller's contract; gemm reads `dst` only when `accumulate` (read_dst). The
    // casts are to the type `E` is, checked by its `TypeId`.
    unsafe {
        if TypeId::of::<E>() == TypeId::of::<f32>() {
            multiply!(gemm_f32::gemm::f32::get_gemm_fn())
        } else if TypeId::of::<E>() == TypeId::of::<f64>() {
            multiply!(gemm_f64::gemm::f64::get_gemm_fn())
        } else {
            panic!("kd's matmul runs in f32 and f64 only, not {}", std::any::type_name::<E>());
        }
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

    /// `dst (+)= lhs · rhs` in f64, element by element.
    fn naive(dst: &mut [f64], dst_view: View, lhs: &[f64], lhs_view: View, rhs: &[f64], rhs_view: View, accumulate: bool) {
        for r in 0..dst_view.rows {
            for c in 0..dst_view.cols {
                let sum: f64 = (0..lhs_view.cols)
                    .map(|k| {
                        lhs[r * lhs_view.row_stride + k * lhs_view.col_stride] * rhs[k * rhs_view.row_stride + c * rhs_view.col_stride]
                    })
                    .sum();
                let at = r * dst_view.row_stride + c * dst_view.col_stride;
                dst[at] = if accumulate { dst[at] + sum } else { sum };
            }
        }
    }

    #[test]
    fn slabs_per_thread_give_the_product_along_rows_and_columns() {
        let values = |n: usize, seed: usize| {
            (0..n)
                .map(|i| ((i * 7919 + seed * 104_729) % 1000) as f64 / 500.0 - 1.0)
                .collect::<Vec<_>>()
        };
        // (rows, inner, cols): wide rhs (cut by columns, into uneven slabs), tall lhs (by rows).
        for (rows, inner, cols) in [(96, 150, 300), (330, 120, 70)] {
            for (lhs_t, rhs_t) in [(false, false), (true, false), (false, true)] {
                let lhs = values(rows * inner, 1);
                let rhs = values(inner * cols, 2);
                let lhs_view = if lhs_t {
                    View::row_major(inner, rows).t()
                } else {
                    View::row_major(rows, inner)
                };
                let rhs_view = if rhs_t {
                    View::row_major(cols, inner).t()
                } else {
                    View::row_major(inner, cols)
                };
                let start = values(rows * cols, 3);
                let (mut ours, mut expected) = (start.clone(), start);
                let dst_view = View::row_major(rows, cols);
                matmul_threads(&mut ours, dst_view, &lhs, lhs_view, &rhs, rhs_view, true, 3);
                naive(&mut expected, dst_view, &lhs, lhs_view, &rhs, rhs_view, true);
                let worst = ours.iter().zip(&expected).map(|(a, b)| (a - b).abs()).fold(0.0, f64::max);
                assert!(worst < 1e-9, "{rows}×{inner}×{cols} (lhsᵀ {lhs_t}, rhsᵀ {rhs_t}): off by {worst}");
            }
        }
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
