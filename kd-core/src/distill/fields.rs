//! How `#[distill]` finds a teacher's layers: traits that `#[model]` implements on the model
//! type itself, so the teacher can be named by any path, alias or `use … as`.
//!
//! A field's name becomes a type, one [`Char`] per character (`fc1` is
//! `(Char<'f'>, Char<'c'>, Char<'1'>)`), and `#[model]` implements [`ModelField`] for it. The
//! student's macro then reads `<Teacher as ModelField<(Char<'f'>, …)>>::Layer` without knowing
//! anything about where the teacher was declared.

/// One character of a field name, as a type.
pub struct Char<const C: char>;

/// A model's layers in order; implemented by `#[model]` (and `#[distill]`).
#[diagnostic::on_unimplemented(
    message = "`{Self}` is not a `#[model]` struct, so `#[distill]` cannot read its layers",
    label = "the teacher named here",
    note = "write `#[kd_core::model]` on the teacher's struct of dfdx layers (a plain dfdx tuple or module cannot be paired)"
)]
pub trait ModelLayers {
    /// The layer types, as nested pairs `(L0, (L1, (..., ())))`.
    type Layers;
    /// Each layer's declared shapes, in order (unknown for a layer without
    /// [`Spatial`](super::Spatial)): the layer-chain check folds them over the input.
    const SHAPES: &'static [super::chain::LayerShape];
}

/// The marker type of the model's input (`I = 0`) or of its `I`-th field (from 1), named
/// `Model_field`: what a failed layer-chain check prints. Implemented by `#[model]`.
pub trait LayerMarker<const I: usize> {
    /// The marker.
    type Name;
}

/// The field `Name` (a tuple of [`Char`]s) of a model; implemented by `#[model]` (and
/// `#[distill]`) for every field.
#[diagnostic::on_unimplemented(
    message = "the teacher `{Self}` has no field of the name that `pair` gives",
    label = "no such field in the teacher",
    note = "`#[distill(pair = name)]` names a field of the teacher, which must be a `#[model]` struct (`name` is the student field's own when `= name` is left out)"
)]
pub trait ModelField<Name> {
    /// The field's layer type.
    type Layer;
    /// The field's position among the layers.
    const POSITION: usize;
}
