//! The error context: every mistake in one build (serde_derive's `Ctxt`).

use std::cell::RefCell;

use proc_macro2::Span;
use quote::ToTokens;

/// Collects errors while parsing and checking; [`Ctxt::check`] turns them into one
/// `syn::Error` with every message.
#[derive(Default)]
pub struct Ctxt {
    errors: RefCell<Option<Vec<syn::Error>>>,
}

impl Ctxt {
    pub fn new() -> Self {
        Ctxt {
            errors: RefCell::new(Some(Vec::new())),
        }
    }

    /// An error pointing at `tokens`.
    pub fn error_spanned_by<T: ToTokens, M: std::fmt::Display>(&self, tokens: T, message: M) {
        self.syn_error(syn::Error::new_spanned(tokens.into_token_stream(), message));
    }

    /// An error pointing at `span`.
    pub fn error_at<M: std::fmt::Display>(&self, span: Span, message: M) {
        self.syn_error(syn::Error::new(span, message));
    }

    /// An error syn produced.
    pub fn syn_error(&self, error: syn::Error) {
        if let Some(errors) = self.errors.borrow_mut().as_mut() {
            errors.push(error);
        }
    }

    /// All errors so far, combined, or `Ok` if there were none.
    pub fn check(self) -> syn::Result<()> {
        let errors = self.errors.borrow_mut().take().unwrap_or_default();
        let mut combined: Option<syn::Error> = None;
        for error in errors {
            match combined.as_mut() {
                Some(all) => all.combine(error),
                None => combined = Some(error),
            }
        }
        match combined {
            Some(error) => Err(error),
            None => Ok(()),
        }
    }
}

impl Drop for Ctxt {
    fn drop(&mut self) {
        if !std::thread::panicking() && self.errors.borrow().is_some() {
            panic!("forgot to check for errors");
        }
    }
}
