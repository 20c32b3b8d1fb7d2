//! Reused buffers for the operand copies of [`super::linear`] and the convolutions.
//!
//! dfdx 0.13 keeps tensor storage private, so a fused op copies its operands out once per call.
//! A fresh multi-megabyte `Vec` costs a zero fill and a page fault per page on first touch
//! (the Hinton KD step copies 15 MB of weights per step); a buffer handed back to a small
//! process-wide pool is warm and already mapped. The pool holds at most [`POOL_BYTES`].

use std::any::Any;
use std::ops::{Deref, DerefMut};
use std::sync::Mutex;

use dfdx::prelude::{Cpu, HasShape, Shape, Tensor};
use dfdx::shapes::Dtype;

/// The most bytes the pool keeps; a buffer that would pass it is freed instead.
const POOL_BYTES: usize = 256 << 20;

struct Pool {
    buffers: Vec<(usize, Box<dyn Any + Send>)>,
    bytes: usize,
}

static POOL: Mutex<Pool> = Mutex::new(Pool {
    buffers: Vec::new(),
    bytes: 0,
});

/// A `len`-element buffer of unspecified (initialised) contents, back to the pool on drop.
pub(crate) struct Scratch<E: Dtype> {
    values: Vec<E>,
}

impl<E: Dtype> Scratch<E> {
    /// A buffer of `len` elements from the pool, or a new zeroed one.
    pub(crate) fn new(len: usize) -> Self {
        let reused = POOL.lock().ok().and_then(|mut pool| {
            let at = pool
                .buffers
                .iter()
                .position(|(_, b)| b.downcast_ref::<Vec<E>>().is_some_and(|v| v.len() == len))?;
            let (bytes, buffer) = pool.buffers.swap_remove(at);
            pool.bytes -= bytes;
            buffer.downcast::<Vec<E>>().ok()
        });
        Scratch {
            values: reused.map_or_else(|| vec![E::default(); len], |boxed| *boxed),
        }
    }
}

/// A contiguous tensor's values in row-major order, in a pooled buffer (a memcpy: dfdx's
/// `copy_into` copies the storage as laid out, so callers make the tensor contiguous first).
pub(crate) fn copy_of<S: Shape, E: Dtype, T>(tensor: &Tensor<S, E, Cpu, T>) -> Scratch<E> {
    let mut values = Scratch::new(tensor.shape().num_elements());
    tensor.copy_into(&mut values);
    values
}

impl<E: Dtype> Drop for Scratch<E> {
    fn drop(&mut self) {
        let bytes = self.values.len() * std::mem::size_of::<E>();
        if let Ok(mut pool) = POOL.lock() {
            if pool.bytes + bytes <= POOL_BYTES {
                pool.bytes += bytes;
                let values = std::mem::take(&mut self.values);
                pool.buffers.push((bytes, Box::new(values)));
            }
        }
    }
}

impl<E: Dtype> Deref for Scratch<E> {
    type Target = [E];
    fn deref(&self) -> &[E] {
        &self.values
    }
}

impl<E: Dtype> DerefMut for Scratch<E> {
    fn deref_mut(&mut self) -> &mut [E] {
        &mut self.values
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_returned_buffer_is_handed_out_again_by_length_and_type() {
        // An odd length no other test uses, so parallel tests cannot take it.
        let len = 12_347;
        let mut first = Scratch::<f64>::new(len);
        first[0] = 7.0;
        let address = first.as_ptr();
        drop(first);
        let other_type = Scratch::<f32>::new(len);
        assert_ne!(other_type.as_ptr() as usize, address as usize);
        let again = Scratch::<f64>::new(len);
        assert_eq!(again.as_ptr(), address);
        assert_eq!(again.len(), len);
        assert_eq!(again[0], 7.0, "contents are left as they were (callers overwrite them)");
    }
}
