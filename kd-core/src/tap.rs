//! Taps: a forward pass that also returns every layer's output, untaped and typed. The
//! `#[model]` macro implements these traits; distillation reads teacher and student layers
//! through them, and any model (a transformer, a generator) can expose its layers the same way.

use dfdx::nn::{Module, ModuleMut};
use dfdx::tensor::{PutTape, SplitTape};

/// A module whose forward also returns every layer's output ("taps"), untaped and typed.
#[diagnostic::on_unimplemented(
    message = "`{Self}` cannot report its layers' outputs: it is not built from a `#[model]` struct",
    note = "a teacher or student of `#[distill]` must be a struct with `#[kd_core::model]` (or `#[distill]`), whose layers take `{Input}` in turn"
)]
pub trait TappedModule<Input>: Module<Input> {
    /// One field per layer, holding that layer's output.
    type Taps;
    /// The forward pass and its taps.
    fn try_forward_tapped(&self, input: Input) -> Result<(Self::Output, Self::Taps), Self::Error>;
}

/// [`TappedModule`] for training forwards (`ModuleMut`: dropout, batch-norm statistics).
#[diagnostic::on_unimplemented(
    message = "`{Self}` cannot report its layers' outputs: it is not built from a `#[model]` struct",
    note = "a teacher or student of `#[distill]` must be a struct with `#[kd_core::model]` (or `#[distill]`), whose layers take `{Input}` in turn"
)]
pub trait TappedModuleMut<Input>: ModuleMut<Input> {
    /// One field per layer, holding that layer's output.
    type Taps;
    /// The training forward pass and its taps.
    fn try_forward_tapped_mut(&mut self, input: Input) -> Result<(Self::Output, Self::Taps), Self::Error>;
}

/// Splits a layer output into its untaped tap and the value that flows on with the tape.
pub fn tap<T: SplitTape>(output: T) -> (T::NoTape, T) {
    let (value, tape) = output.split_tape();
    (value.clone(), value.put_tape(tape))
}
