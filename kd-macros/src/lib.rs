//! Procedural macros of kd. Use them through `kd-core`, which re-exports them together with the
//! `__private` paths their generated code relies on; their reference documentation lives there.
//!
//! Shaped like serde_derive: `attr` parses the attribute, `ast` is the semantic model, `check`
//! validates, `expand` generates code, and `ctxt::Ctxt` collects every mistake of one build.

mod ast;
mod attr;
mod check;
mod ctxt;
mod expand;
mod symbol;

use proc_macro::TokenStream;

/// Marks a struct of dfdx layers as a model (see `kd_core::model`).
#[proc_macro_attribute]
pub fn model(args: TokenStream, item: TokenStream) -> TokenStream {
    expand::expand_model(args.into(), item.into()).into()
}

/// Declares a student model and how it learns from its teacher (see `kd_core::distill`).
#[proc_macro_attribute]
pub fn distill(args: TokenStream, item: TokenStream) -> TokenStream {
    expand::expand_distill(args.into(), item.into()).into()
}
