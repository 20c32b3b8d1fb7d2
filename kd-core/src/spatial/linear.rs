use dfdx::prelude::*;

use std::sync::{Arc, Mutex};

use super::gemm::{matmul_threads, transpose_into, View};
use super::input::is_unwanted;
use super::scratch::{copy_of, Scratch};

/// A fully connected layer, as PyTorch's `F.linear`: `input (B, I)`, `weight (O, I)` and
/// `bias (O)` -> `input · weightᵀ + bias`, `(B, O)`.
///
/// One op on dfdx's tape whose three products (forward, input and weight gradients) run on
/// gemm 0.19's AVX-512 kernels on all rayon threads; dfdx 0.13's own `matmul` uses an older
/// gemm limited to AVX2 (`kd bench` measures the difference). dfdx keeps tensor storage
/// private, so the operands are copied out once (a memcpy, small beside the products).
pub fn linear<B: Dim, const I: usize, const O: usize, E: Dtype, T: Tape<E, Cpu>>(
    input: Tensor<(B, Const<I>), E, Cpu, T>,
    weight: Tensor<Rank2<O, I>, E, Cpu, T>,
    bias: Tensor<Rank1<O>, E, Cpu, T>,
) -> Tensor<(B, Const<O>), E, Cpu, T> {
    let w = Operand::Copied(copy_of(&weight));
    linear_with(input, weight, bias, w)
}

/// [`linear`] for a layer evaluated without a tape (a teacher): the weight's values come from
/// `frozen`, copied out (transposed) on the first call and again only when the weight's
/// storage changes.
pub(crate) fn linear_frozen<B: Dim, const I: usize, const O: usize, E: Dtype, T: Tape<E, Cpu>>(
    input: Tensor<(B, Const<I>), E, Cpu, T>,
    weight: &Tensor<Rank2<O, I>, E, Cpu>,
    bias: Tensor<Rank1<O>, E, Cpu, T>,
    frozen: &FrozenWeight<O, I, E>,
) -> Tensor<(B, Const<O>), E, Cpu, T> {
    let w = Operand::Transposed(frozen.transposed(weight));
    linear_with(input, weight.retaped::<T>(), bias, w)
}

/// A weight's values: copied out for this call as stored, `(O, I)`, or shared from a
/// [`FrozenWeight`], transposed.
enum Operand<E: Dtype> {
    Copied(Scratch<E>),
    Transposed(Arc<Vec<E>>),
}

impl<E: Dtype> Operand<E> {
    /// The weight as an `outputs × inputs` matrix over these values.
    fn view(&self, outputs: usize, inputs: usize) -> View {
        match self {
            Operand::Copied(_) => View::row_major(outputs, inputs),
            Operand::Transposed(_) => View::row_major(inputs, outputs).t(),
        }
    }
}

impl<E: Dtype> std::ops::Deref for Operand<E> {
    type Target = [E];
    fn deref(&self) -> &[E] {
        match self {
            Operand::Copied(values) => values,
            Operand::Transposed(values) => values,
        }
    }
}

/// The values of a weight that a layer reads without changing, kept between calls, transposed:
/// `(I, O)` row-major.
///
/// dfdx keeps storage private, so each call would copy the weight out (9.6 MB for the Hinton
/// teacher). Kept transposed, the weight is the column-major operand gemm multiplies in place,
/// without packing it for every call (see [`super::gemm`]). The cache holds
/// a clone of the weight tensor, which shares its storage: whatever changes the weight in
/// place (an optimiser, `load_safetensors`) first copies the shared storage (dfdx's
/// copy-on-write), so the layer's weight then lives at another address, and the values are
/// copied afresh. While the clone is held the old storage
/// cannot be freed, so an equal address means the same, unchanged values.
pub struct FrozenWeight<const O: usize, const I: usize, E: Dtype> {
    entry: Mutex<Option<Kept<O, I, E>>>,
}

/// A clone of the weight (holding its storage) and the values copied from it.
type Kept<const O: usize, const I: usize, E> = (Tensor<Rank2<O, I>, E, Cpu>, Arc<Vec<E>>);

impl<const O: usize, const I: usize, E: Dtype> FrozenWeight<O, I, E> {
    fn transposed(&self, weight: &Tensor<Rank2<O, I>, E, Cpu>) -> Arc<Vec<E>> {
        let copy = || {
            let mut transposed = vec![E::default(); O * I];
            transpose_into(&copy_of(weight), O, I, &mut transposed);
            Arc::new(transposed)
        };
        if O * I == 0 {
            return copy();
        }
        let Ok(mut entry) = self.entry.lock() else {
            return copy();
        };
        if let Some((held, values)) = entry.as_ref() {
            if std::ptr::eq(&held[[0, 0]], &weight[[0, 0]]) {
                return Arc::clone(values);
            }
        }
        let values = copy();
        *entry = Some((weight.clone(), Arc::clone(&values)));
        values
    }
}

impl<const O: usize, const I: usize, E: Dtype> Default for FrozenWeight<O, I, E> {
    fn default() -> Self {
        Self { entry: Mutex::new(None) }
    }
}

/// A clone starts empty: the cache is a per-layer detail, not part of its value.
impl<const O: usize, const I: usize, E: Dtype> Clone for FrozenWeight<O, I, E> {
    fn clone(&self) -> Self {
        Self::default()
    }
}

impl<const O: usize, const I: usize, E: Dtype> std::fmt::Debug for FrozenWeight<O, I, E> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("FrozenWeight")
    }
}

fn linear_with<B: Dim, const I: usize, const O: usize, E: Dtype, T: Tape<E, Cpu>>(
    input: Tensor<(B, Const<I>), E, Cpu, T>,
    weight: Tensor<Rank2<O, I>, E, Cpu, T>,
    bias: Tensor<Rank1<O>, E, Cpu, T>,
    w: Operand<E>,
) -> Tensor<(B, Const<O>), E, Cpu, T> {
    // A taped `contiguous` is free when the input already is, and otherwise routes the
    // gradient back through dfdx's own reshape.
    let (input, tape) = input.contiguous().split_tape();
    let (weight, weight_tape) = weight.split_tape();
    let (bias, bias_tape) = bias.split_tape();
    let mut tape = tape.merge(weight_tape).merge(bias_tape);
    let x = copy_of(&input);
    let batch = input.shape().0;
    let rows = batch.size();

    let mut y = Vec::with_capacity(rows * O);
    let bias_values = bias.as_vec();
    for _ in 0..rows {
        y.extend_from_slice(&bias_values);
    }
    let threads = rayon::current_num_threads();
    let w_view = w.view(O, I);
    matmul_threads(
        &mut y,
        View::row_major(rows, O),
        &x,
        View::row_major(rows, I),
        &w,
        w_view.t(),
        true,
        threads,
    );
    let output = input.device().tensor_from_vec(y, (batch, Const::<O>));

    let output_ghost = output.ghost();
    tape.add_backward_op(move |grads| {
        grads.try_alloc_for(&output_ghost)?;
        let dy = std::mem::take(&mut **grads.get_or_alloc_mut(&output_ghost)?);
        let dy_view = View::row_major(rows, O);
        let dx = grads.get_or_alloc_mut(&input)?;
        if !is_unwanted(dx) {
            matmul_threads(dx, View::row_major(rows, I), &dy, dy_view, &w, w_view, true, threads);
        }
        let dw = grads.get_or_alloc_mut(&weight)?;
        matmul_threads(
            dw,
            View::row_major(O, I),
            &dy,
            dy_view.t(),
            &x,
            View::row_major(rows, I),
            true,
            threads,
        );
        let bias_grad = grads.get_or_alloc_mut(&bias)?;
        for row in dy.chunks_exact(O) {
            bias_grad.iter_mut().zip(row).for_each(|(g, &d)| *g += d);
        }
        **grads.get_or_alloc_mut(&output_ghost)? = dy;
        Ok(())
    });
    output.put_tape(tape)
}
