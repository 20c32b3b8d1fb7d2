use dfdx::prelude::*;

use rayon::prelude::*;

use super::geometry::{Conv2dGeometry, ShapeError};
use super::input::is_unwanted;
use super::scratch::copy_of;

/// One window per channel: pooling is a depthwise patch traversal.
fn depthwise(geometry: Conv2dGeometry, channels: usize) -> Conv2dGeometry {
    Conv2dGeometry {
        groups: channels,
        ..geometry
    }
}

fn check_pool_padding(geometry: &Conv2dGeometry) -> Result<(), ShapeError> {
    for (dimension, padding, kernel) in [
        ("height", geometry.padding.0, geometry.kernel.0),
        ("width", geometry.padding.1, geometry.kernel.1),
    ] {
        if 2 * padding > kernel {
            return Err(ShapeError::PaddingOverHalfKernel {
                dimension,
                padding,
                kernel,
            });
        }
    }
    Ok(())
}

/// 2-D max pooling (PyTorch's `F.max_pool2d`): `(B, C, H, W)` -> `(B, C, OH, OW)`.
///
/// Padding counts as `−∞`. Ties send the whole gradient to the first maximum in row-major window
/// order, as PyTorch does. `geometry.groups` is not used. One op on the tape: the planes run in
/// parallel, each window keeps the index of its maximum, and the backward adds each output's
/// gradient there.
///
/// # Errors
/// A [`ShapeError`] when the window does not fit, or the padding exceeds half the kernel.
pub fn max_pool2d<B: Dim, C: Dim, H: Dim, W: Dim, E: Dtype, T: Tape<E, Cpu>>(
    input: Tensor<(B, C, H, W), E, Cpu, T>,
    geometry: Conv2dGeometry,
) -> super::SpatialResult<(B, C, usize, usize), E, T> {
    pooling(
        input,
        geometry,
        |planes, source, values| {
            // In-plane index of each window's maximum, kept only when a backward will read it.
            let mut arg_max = if T::OWNS_TAPE { vec![NO_TAP; values.len()] } else { Vec::new() };
            let Planes { windows, plane, out_plane } = planes;
            if T::OWNS_TAPE {
                values
                    .par_chunks_mut(*out_plane)
                    .zip(arg_max.par_chunks_mut(*out_plane))
                    .zip(source.par_chunks(*plane))
                    .for_each(|((values, arg_max), source)| windows.pool(source, values, Some(arg_max)));
            } else {
                values
                    .par_chunks_mut(*out_plane)
                    .zip(source.par_chunks(*plane))
                    .for_each(|(values, source)| windows.pool(source, values, None));
            }
            arg_max
        },
        |Planes { plane, out_plane, .. }, arg_max, dy, dx| {
            dx.par_chunks_mut(*plane)
                .zip(dy.par_chunks(*out_plane).zip(arg_max.par_chunks(*out_plane)))
                .for_each(|(dx, (dy, arg_max))| {
                    for (&g, &at) in dy.iter().zip(arg_max) {
                        if at != NO_TAP {
                            dx[at] += g;
                        }
                    }
                });
        },
    )
}

/// One sample-channel plane's windows, and the plane sizes in and out.
struct Planes {
    windows: Windows,
    plane: usize,
    out_plane: usize,
}

/// The body both pooling ops share: one op on the tape, over the input's planes. `pool` fills
/// the output values from the input's and returns what the backward needs; `spread` adds the
/// output's gradient into the input's (skipped for a batch traced with [`super::trace_input`]).
fn pooling<B: Dim, C: Dim, H: Dim, W: Dim, E: Dtype, T: Tape<E, Cpu>, Saved: Send + Sync + 'static>(
    input: Tensor<(B, C, H, W), E, Cpu, T>,
    geometry: Conv2dGeometry,
    pool: impl FnOnce(&Planes, &[E], &mut [E]) -> Saved,
    spread: impl Fn(&Planes, &Saved, &[E], &mut [E]) + Send + Sync + 'static,
) -> super::SpatialResult<(B, C, usize, usize), E, T> {
    check_pool_padding(&geometry)?;
    let (batch, channels, height, width) = *input.shape();
    let (h, w) = (height.size(), width.size());
    let (out_h, out_w) = depthwise(geometry, channels.size()).output_size(h, w)?;
    let planes = Planes {
        windows: Windows::new(geometry, (h, w), (out_h, out_w)),
        plane: (h * w).max(1),
        out_plane: (out_h * out_w).max(1),
    };

    let (input, mut tape) = input.contiguous().split_tape();
    let mut values = vec![E::default(); batch.size() * channels.size() * out_h * out_w];
    let saved = pool(&planes, &copy_of(&input), &mut values);
    let output = input.device().tensor_from_vec(values, (batch, channels, out_h, out_w));

    let output_ghost = output.ghost();
    tape.add_backward_op(move |grads| {
        grads.try_alloc_for(&output_ghost)?;
        let dy = std::mem::take(&mut **grads.get_or_alloc_mut(&output_ghost)?);
        let dx = grads.get_or_alloc_mut(&input)?;
        if !is_unwanted(dx) {
            spread(&planes, &saved, &dy, dx);
        }
        **grads.get_or_alloc_mut(&output_ghost)? = dy;
        Ok(())
    });
    Ok(output.put_tape(tape))
}

/// The arg-max of a window of padding only (it has no gradient).
const NO_TAP: usize = usize::MAX;

/// Where each pooling window of one plane reads.
struct Windows {
    geometry: Conv2dGeometry,
    width: usize,
    out_w: usize,
    /// Per output row and column: the first input coordinate and the taps that land inside.
    rows: Vec<(usize, std::ops::Range<usize>)>,
    columns: Vec<(usize, std::ops::Range<usize>)>,
    /// The output columns whose windows have every tap inside the plane's width.
    interior: std::ops::Range<usize>,
    /// The windows tile the plane (stride = kernel, no padding or dilation): every tap is
    /// inside, and a window's rows are contiguous runs.
    tiled: bool,
}

impl Windows {
    fn new(geometry: Conv2dGeometry, (h, w): (usize, usize), (out_h, out_w): (usize, usize)) -> Self {
        let g = geometry;
        let columns = window_taps(out_w, w, g.kernel.1, g.stride.1, g.padding.1, g.dilation.1);
        let whole = |(_, taps): &(usize, std::ops::Range<usize>)| taps.len() == g.kernel.1;
        let interior = match (columns.iter().position(whole), columns.iter().rposition(whole)) {
            (Some(first), Some(last)) => first..last + 1,
            _ => 0..0,
        };
        Windows {
            geometry,
            width: w,
            out_w,
            rows: window_taps(out_h, h, g.kernel.0, g.stride.0, g.padding.0, g.dilation.0),
            columns,
            interior,
            tiled: g.stride == g.kernel && g.padding == (0, 0) && g.dilation == (1, 1),
        }
    }

    /// The in-plane index of the first tap inside window `(oy, ox)`, if any tap is.
    fn first_tap(&self, oy: usize, ox: usize) -> Option<usize> {
        let ((y0, y_taps), (x0, x_taps)) = (&self.rows[oy], &self.columns[ox]);
        let d = self.geometry.dilation;
        (!y_taps.is_empty() && !x_taps.is_empty())
            .then(|| y0.wrapping_add(y_taps.start * d.0) * self.width + x0.wrapping_add(x_taps.start * d.1))
    }

    /// Calls `visit(columns, start, step)` for every tap inside the windows of output row
    /// `oy`: windows `columns` read that tap at in-plane indices `start, start + step, ..`. Each
    /// window sees its taps in row-major order. The interior windows go a tap at a time across
    /// the row, in one run, so their updates are independent and pipeline rather than one
    /// window's taps forming a chain of dependent steps; an edge window's taps are runs of one.
    #[inline(always)]
    fn row_runs(&self, oy: usize, mut visit: impl FnMut(std::ops::Range<usize>, usize, usize)) {
        let (y0, y_taps) = &self.rows[oy];
        let (stride, padding, dilation) = (self.geometry.stride.1, self.geometry.padding.1, self.geometry.dilation);
        let edges = (0..self.interior.start).chain(self.interior.end..self.out_w);
        for ky in y_taps.clone() {
            let row = y0.wrapping_add(ky * dilation.0) * self.width;
            if !self.interior.is_empty() {
                for kx in 0..self.geometry.kernel.1 {
                    // Column ox's tap kx reads x = ox·stride − padding + kx·dilation.
                    let start = (row + kx * dilation.1 + self.interior.start * stride).wrapping_sub(padding);
                    visit(self.interior.clone(), start, stride);
                }
            }
            for ox in edges.clone() {
                let (x0, x_taps) = &self.columns[ox];
                for kx in x_taps.clone() {
                    visit(ox..ox + 1, row + x0.wrapping_add(kx * dilation.1), 1);
                }
            }
        }
    }

    /// Writes each window's maximum of one plane into `values`, and its in-plane index into
    /// `arg_max` when given. Windows of padding only give 0 and [`NO_TAP`].
    fn pool<E: Dtype>(&self, source: &[E], values: &mut [E], arg_max: Option<&mut [usize]>) {
        match (self.tiled, self.geometry.kernel) {
            // The common 2×2 pool, with the kernel a constant the loops unroll on.
            (true, (2, 2)) => self.pool_tiles(source, (2, 2), values, arg_max),
            (true, kernel) => self.pool_tiles(source, kernel, values, arg_max),
            (false, _) => self.pool_windows(source, values, arg_max),
        }
    }

    #[inline(always)]
    fn pool_tiles<E: Dtype>(&self, source: &[E], (kh, kw): (usize, usize), values: &mut [E], mut arg_max: Option<&mut [usize]>) {
        let (width, out_w) = (self.width, self.out_w);
        for (oy, out_row) in values.chunks_mut(out_w).enumerate() {
            for (ox, value) in out_row.iter_mut().enumerate() {
                let start = oy * kh * width + ox * kw;
                let mut best = (start, source[start]);
                for ky in 0..kh {
                    let row = start + ky * width;
                    for (at, &candidate) in (row..).zip(&source[row..row + kw]) {
                        best = keep_max(best, at, candidate);
                    }
                }
                *value = best.1;
                if let Some(arg_max) = arg_max.as_deref_mut() {
                    arg_max[oy * out_w + ox] = best.0;
                }
            }
        }
    }

    fn pool_windows<E: Dtype>(&self, source: &[E], values: &mut [E], arg_max: Option<&mut [usize]>) {
        let mut untaped = Vec::new();
        let arg_max = match arg_max {
            Some(arg_max) => arg_max,
            None => {
                untaped.resize(values.len(), NO_TAP);
                &mut untaped[..]
            }
        };
        let out_w = self.out_w;
        for (oy, (values, arg_max)) in values.chunks_mut(out_w).zip(arg_max.chunks_mut(out_w)).enumerate() {
            for (ox, (value, arg)) in values.iter_mut().zip(arg_max.iter_mut()).enumerate() {
                if let Some(at) = self.first_tap(oy, ox) {
                    (*value, *arg) = (source[at], at);
                }
            }
            self.row_runs(oy, |columns, start, step| {
                let taps = (start..).step_by(step).zip(source[start..].iter().step_by(step));
                for ((value, arg), (at, &candidate)) in values[columns.clone()].iter_mut().zip(&mut arg_max[columns]).zip(taps) {
                    // Only the index is selected; the value is read back through it. A select
                    // of the value itself compiles to a branch here, which mispredicts on
                    // activations half the time (14 ms against 4.9 on the bench's ResNet stem pool).
                    *arg = keep_max((*arg, *value), at, candidate).0;
                    *value = source[*arg];
                }
            });
        }
    }

    /// The share of each tap in its window's average: `1 / (KH·KW)`, padding counted.
    fn average_weight<E: Dtype>(&self) -> E {
        let (kh, kw) = self.geometry.kernel;
        E::from_f64(1.0 / (kh * kw) as f64).unwrap_or_default()
    }

    /// Writes each window's average of one plane into `values` (zeroed).
    fn average<E: Dtype>(&self, source: &[E], values: &mut [E]) {
        let weight = self.average_weight::<E>();
        for (oy, values) in values.chunks_mut(self.out_w).enumerate() {
            self.row_runs(oy, |columns, start, step| {
                for (value, &tap) in values[columns].iter_mut().zip(source[start..].iter().step_by(step)) {
                    *value += tap;
                }
            });
            values.iter_mut().for_each(|v| *v *= weight);
        }
    }

    /// Adds each window's share of its output gradient `dy` to its taps' input gradient `dx`.
    fn spread_average<E: Dtype>(&self, dy: &[E], dx: &mut [E]) {
        let weight = self.average_weight::<E>();
        for (oy, dy) in dy.chunks(self.out_w).enumerate() {
            self.row_runs(oy, |columns, start, step| {
                for (tap, &g) in dx[start..].iter_mut().step_by(step).zip(&dy[columns]) {
                    *tap += g * weight;
                }
            });
        }
    }
}

/// The running `(index, value)` maximum after seeing `candidate` at `at`: strictly greater
/// keeps the first maximum (PyTorch's tie rule), and NaN wins (PyTorch propagates it). Both
/// selects are branch-free: on activations the comparison is a coin flip, and a branch
/// tripled the time; carrying the value keeps the next comparison off a dependent load.
#[inline(always)]
fn keep_max<E: Dtype>(best: (usize, E), at: usize, candidate: E) -> (usize, E) {
    let take = (candidate > best.1) | candidate.partial_cmp(&candidate).is_none();
    (
        std::hint::select_unpredictable(take, at, best.0),
        std::hint::select_unpredictable(take, candidate, best.1),
    )
}

/// For each of `out` windows along an axis: its start coordinate (wrapped when it lies in the
/// padding, so `start.wrapping_add(k·dilation)` is the coordinate of tap `k`) and the range of
/// taps that land inside the input.
fn window_taps(
    out: usize,
    size: usize,
    kernel: usize,
    stride: usize,
    padding: usize,
    dilation: usize,
) -> Vec<(usize, std::ops::Range<usize>)> {
    (0..out)
        .map(|o| {
            let start = (o * stride) as isize - padding as isize;
            let inside = |k: &usize| (0..size as isize).contains(&(start + (k * dilation) as isize));
            let lo = (0..kernel).find(inside).unwrap_or(kernel);
            let hi = (lo..kernel).rev().find(inside).map_or(lo, |k| k + 1);
            (start as usize, lo..hi)
        })
        .collect()
}

/// 2-D average pooling (PyTorch's `F.avg_pool2d` with its default `count_include_pad=True`):
/// `(B, C, H, W)` -> `(B, C, OH, OW)`, every window divided by `KH·KW`. `geometry.groups` is not
/// used. One op on the tape: the planes run in parallel, and the backward spreads each output's
/// gradient evenly over its window's taps.
///
/// # Errors
/// A [`ShapeError`] when the window does not fit, or the padding exceeds half the kernel.
pub fn avg_pool2d<B: Dim, C: Dim, H: Dim, W: Dim, E: Dtype, T: Tape<E, Cpu>>(
    input: Tensor<(B, C, H, W), E, Cpu, T>,
    geometry: Conv2dGeometry,
) -> super::SpatialResult<(B, C, usize, usize), E, T> {
    pooling(
        input,
        geometry,
        |Planes { windows, plane, out_plane }, source, values| {
            values
                .par_chunks_mut(*out_plane)
                .zip(source.par_chunks(*plane))
                .for_each(|(values, source)| windows.average(source, values));
        },
        |Planes { windows, plane, out_plane }, (), dy, dx| {
            dx.par_chunks_mut(*plane)
                .zip(dy.par_chunks(*out_plane))
                .for_each(|(dx, dy)| windows.spread_average(dy, dx));
        },
    )
}

/// The `(out, in)` averaging matrix of PyTorch's adaptive pooling along one axis: output `i`
/// averages inputs `floor(i·in/out) .. ceil((i+1)·in/out)`.
fn adaptive_bins<E: Dtype>(input: usize, output: usize) -> Vec<E> {
    let mut matrix = vec![E::default(); output * input];
    for i in 0..output {
        let (start, end) = (i * input / output, ((i + 1) * input).div_ceil(output));
        let weight = E::from_f64(1.0 / (end - start) as f64).unwrap_or_default();
        for j in start..end {
            matrix[i * input + j] = weight;
        }
    }
    matrix
}

/// Adaptive average pooling to `size` (PyTorch's `F.adaptive_avg_pool2d`): `(B, C, H, W)` ->
/// `(B, C, OH, OW)`, as `P_h · X · P_wᵀ` with PyTorch's bins. Built from dfdx ops only, so it
/// runs on any dfdx device. Used to bring a teacher's and a student's feature maps to a common
/// size ([`pool_to_common_size`]).
///
/// # Panics
/// If an output size is 0.
pub fn adaptive_avg_pool2d<B: Dim, C: Dim, H: Dim, W: Dim, E: Dtype, D: Device<E>, T: Tape<E, D>>(
    input: Tensor<(B, C, H, W), E, D, T>,
    size: (usize, usize),
) -> Tensor<(B, C, usize, usize), E, D, T> {
    let (batch, channels, height, width) = *input.shape();
    let (b, c, h, w) = (batch.size(), channels.size(), height.size(), width.size());
    let (out_h, out_w) = size;
    assert!(out_h > 0 && out_w > 0, "adaptive_avg_pool2d: output size {size:?} must be positive");
    let dev = input.device().clone();
    let columns: Tensor<(usize, usize), E, D> = dev.tensor_from_vec(adaptive_bins(w, out_w), (out_w, w));
    let rows: Tensor<(usize, usize), E, D> = dev.tensor_from_vec(adaptive_bins(h, out_h), (out_h, h));
    input
        .reshape_like(&(b * c * h, w))
        .matmul(columns.permute::<_, Axes2<1, 0>>()) // (B·C·H, OW)
        .reshape_like(&(b * c, h, out_w))
        .permute::<_, Axes3<0, 2, 1>>()
        .reshape_like(&(b * c * out_w, h))
        .matmul(rows.permute::<_, Axes2<1, 0>>()) // (B·C·OW, OH)
        .reshape_like(&(b, c, out_w, out_h))
        .permute::<_, Axes4<0, 1, 3, 2>>()
        .reshape_like(&(batch, channels, out_h, out_w))
}

/// Flattens `(B, C, H, W)` to `(B, C·H·W)` (PyTorch's `torch.flatten(x, 1)`).
pub fn flatten<B: Dim, C: Dim, H: Dim, W: Dim, E: Dtype, T: Tape<E, Cpu>>(
    input: Tensor<(B, C, H, W), E, Cpu, T>,
) -> Tensor<(B, usize), E, Cpu, T>
where
    Cpu: Device<E>,
{
    let (batch, channels, height, width) = *input.shape();
    input.reshape_like(&(batch, channels.size() * height.size() * width.size()))
}

/// Pools the larger of two feature maps to the other's `H × W` with [`adaptive_avg_pool2d`], as
/// RepDistiller and mdistiller do before attention transfer, NST and FSP. Maps of equal size
/// pass through unchanged.
///
/// # Panics
/// If one map is taller and the other wider: there is no "smaller" map to pool to.
#[allow(clippy::type_complexity)]
pub fn pool_to_common_size<B1, C1, H1, W1, B2, C2, H2, W2, E, D, T1, T2>(
    first: Tensor<(B1, C1, H1, W1), E, D, T1>,
    second: Tensor<(B2, C2, H2, W2), E, D, T2>,
) -> (Tensor<(B1, C1, usize, usize), E, D, T1>, Tensor<(B2, C2, usize, usize), E, D, T2>)
where
    B1: Dim,
    C1: Dim,
    H1: Dim,
    W1: Dim,
    B2: Dim,
    C2: Dim,
    H2: Dim,
    W2: Dim,
    E: Dtype,
    D: Device<E>,
    T1: Tape<E, D>,
    T2: Tape<E, D>,
{
    let (b1, c1, h1, w1) = *first.shape();
    let (b2, c2, h2, w2) = *second.shape();
    let (first_size, second_size) = ((h1.size(), w1.size()), (h2.size(), w2.size()));
    let common = (first_size.0.min(second_size.0), first_size.1.min(second_size.1));
    assert!(
        common == first_size || common == second_size,
        "pool_to_common_size: maps of {first_size:?} and {second_size:?}: one is taller and the other wider"
    );
    let resize = |size: (usize, usize)| size != common;
    let first = if resize(first_size) {
        adaptive_avg_pool2d(first, common)
    } else {
        first.reshape_like(&(b1, c1, common.0, common.1))
    };
    let second = if resize(second_size) {
        adaptive_avg_pool2d(second, common)
    } else {
        second.reshape_like(&(b2, c2, common.0, common.1))
    };
    (first, second)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A 1×1×4×4 plane with a NaN in the top-left window and a tie in the bottom-right one.
    fn plane() -> Tensor<Rank4<1, 1, 4, 4>, f64, Cpu> {
        let nan = f64::NAN;
        Cpu::default().tensor([[[
            [1.0, nan, 2.0, 3.0],
            [4.0, 0.0, 5.0, -1.0],
            [0.0, 1.0, 7.0, 7.0],
            [2.0, -3.0, 7.0, 6.0],
        ]]])
    }

    /// Both paths: 2×2 stride-2 windows tile the plane, 3×3 stride-1 windows overlap.
    #[test]
    fn nan_propagates_and_ties_go_to_the_first_maximum() {
        for taped in [false, true] {
            let input = plane();
            let output = if taped {
                max_pool2d(input.leaky_trace(), Conv2dGeometry::square(2).with_stride(2)).map(|o| o.retaped::<NoneTape>())
            } else {
                max_pool2d(input.clone(), Conv2dGeometry::square(2).with_stride(2))
            }
            .expect("fits");
            let values = output.as_vec();
            assert!(values[0].is_nan(), "taped {taped}: NaN propagates, got {values:?}");
            assert_eq!(&values[1..], &[5.0, 2.0, 7.0], "taped {taped}");
        }
        let input = plane();
        let output = max_pool2d(input.leaky_trace(), Conv2dGeometry::square(2).with_stride(2)).expect("fits");
        let grads = output.sum().backward();
        // The tie in the bottom-right window (7, 7 / 7, 6) sends the gradient to its first 7.
        let grad = grads.get(&input).as_vec();
        assert_eq!(grad[10], 1.0);
        assert_eq!(grad[11] + grad[14], 0.0);
        assert_eq!(grad[1], 1.0, "the NaN window's gradient goes to the NaN");

        let general = max_pool2d(plane(), Conv2dGeometry::square(3)).expect("fits").as_vec();
        assert!(general[0].is_nan() && general[1].is_nan(), "{general:?}");
        assert_eq!(&general[2..], &[7.0, 7.0]);
    }
}
