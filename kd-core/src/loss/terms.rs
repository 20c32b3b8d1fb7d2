use dfdx::prelude::*;

use crate::ops::{scalar, value_of};

/// One named, weighted term of a distillation objective, with its unweighted value.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Term {
    /// The term's name (`"ce"`, `"kd"`, `"hint.layer3"`, ...).
    pub name: &'static str,
    /// The weight the term enters the total with.
    pub weight: f64,
    /// The term's unweighted value.
    pub value: f64,
}

/// A weighted sum of named loss terms: the total to back-propagate, plus each term's value.
///
/// ```
/// use dfdx::prelude::*;
/// use kd_core::loss::{cross_entropy_loss, kd_loss, LossTerms};
///
/// let dev = Cpu::default();
/// let student: Tensor<Rank2<2, 3>, f32, _> = dev.sample_normal();
/// let teacher: Tensor<Rank2<2, 3>, f32, _> = dev.sample_normal();
/// let loss = LossTerms::new()
///     .add("ce", 0.1, cross_entropy_loss(student.leaky_trace(), &[0, 2])?)
///     .add("kd", 0.9, kd_loss(student.leaky_trace(), teacher, 4.0)?);
/// assert_eq!(loss.terms().len(), 2);
/// let _grads = loss.into_total().backward();
/// # Ok::<(), kd_core::LossError>(())
/// ```
pub struct LossTerms<E: Dtype, D: Device<E>, T: Tape<E, D>> {
    total: Option<Tensor<Rank0, E, D, T>>,
    /// The tapes of zero-weight terms: they may hold operations the weighted terms share (a
    /// term computed on a `retaped` copy of the logits relies on the cross-entropy's tape for
    /// the network's backward), so they are kept, merged into the total's.
    zero_weight_tapes: Option<T>,
    terms: Vec<Term>,
}

impl<E: Dtype, D: Device<E>, T: Tape<E, D>> Default for LossTerms<E, D, T> {
    fn default() -> Self {
        Self {
            total: None,
            zero_weight_tapes: None,
            terms: Vec::new(),
        }
    }
}

impl<E: Dtype, D: Device<E>, T: Tape<E, D>> LossTerms<E, D, T> {
    /// An empty sum.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds `weight · term` under `name`.
    ///
    /// A term with weight 0 is recorded but not added to the total; its tape is kept, since the
    /// other terms may share its operations.
    ///
    /// # Panics
    /// If `weight` is negative, NaN or infinite: the message names the term.
    pub fn add(mut self, name: &'static str, weight: f64, term: Tensor<Rank0, E, D, T>) -> Self {
        assert!(
            weight.is_finite() && weight >= 0.0,
            "LossTerms::add: the weight of term `{name}` must be finite and >= 0, got {weight}"
        );
        self.terms.push(Term {
            name,
            weight,
            value: value_of(&term),
        });
        if weight != 0.0 {
            let weighted = term * scalar::<E>(weight);
            self.total = Some(match self.total.take() {
                Some(total) => total + weighted,
                None => weighted,
            });
        } else {
            let (_, tape) = term.split_tape();
            self.keep_tape(tape);
        }
        self
    }

    fn keep_tape(&mut self, tape: T) {
        self.zero_weight_tapes = Some(match self.zero_weight_tapes.take() {
            Some(kept) => kept.merge(tape),
            None => tape,
        });
    }

    /// Adds every term of `other`, renamed by `rename` (for objectives assembled from parts,
    /// such as one [`crate::loss::byot_loss`] per head).
    pub fn merge(mut self, other: LossTerms<E, D, T>, rename: impl Fn(&'static str) -> &'static str) -> Self {
        self.terms
            .extend(other.terms.into_iter().map(|t| Term { name: rename(t.name), ..t }));
        self.total = match (self.total.take(), other.total) {
            (Some(a), Some(b)) => Some(a + b),
            (a, b) => a.or(b),
        };
        if let Some(tape) = other.zero_weight_tapes {
            self.keep_tape(tape);
        }
        self
    }

    /// Every term, in the order added.
    pub fn terms(&self) -> &[Term] {
        &self.terms
    }

    /// The value of the term called `name`, if there is one.
    pub fn get(&self, name: &str) -> Option<f64> {
        self.terms.iter().find(|t| t.name == name).map(|t| t.value)
    }

    /// The first term whose value is NaN or infinite: what a NaN guard reports.
    pub fn first_non_finite(&self) -> Option<&Term> {
        self.terms.iter().find(|t| !t.value.is_finite())
    }

    /// The weighted total's value.
    pub fn value(&self) -> f64 {
        self.terms.iter().filter(|t| t.weight != 0.0).map(|t| t.weight * t.value).sum()
    }

    /// The weighted total, ready for `backward()`.
    ///
    /// # Panics
    /// If no term with a non-zero weight was added: there is nothing to differentiate.
    pub fn into_total(self) -> Tensor<Rank0, E, D, T> {
        match (self.total, self.zero_weight_tapes) {
            (Some(total), None) => total,
            (Some(total), Some(kept)) => {
                let (total, tape) = total.split_tape();
                total.put_tape(tape.merge(kept))
            }
            (None, _) => panic!(
                "LossTerms::into_total: no term with a non-zero weight was added (terms: {:?})",
                self.terms.iter().map(|t| t.name).collect::<Vec<_>>()
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::assert_close;
    use crate::testing::Tolerance;

    #[test]
    fn total_is_the_weighted_sum_and_zero_weights_are_recorded_only() {
        let dev = Cpu::default();
        let x: Tensor<Rank1<3>, f64, _> = dev.tensor([1.0, 2.0, 3.0]);
        let loss = LossTerms::new()
            .add("a", 2.0, x.leaky_trace().sum())
            .add("b", 0.0, x.leaky_trace().square().sum())
            .add("c", 0.5, x.leaky_trace().square().sum());
        assert_eq!(loss.terms().iter().map(|t| t.name).collect::<Vec<_>>(), ["a", "b", "c"]);
        assert_close!(loss.get("b").unwrap_or(f64::NAN), 14.0, Tolerance::F64);
        assert_close!(loss.value(), 2.0 * 6.0 + 0.5 * 14.0, Tolerance::F64);
        // d/dx (2 Σx + 0.5 Σx²) = 2 + x
        assert_close!(loss.into_total().backward().get(&x), [3.0, 4.0, 5.0], Tolerance::F64);
    }

    /// `kd_with_ce_loss` computes the soft term on a `retaped` copy of the logits, so only the
    /// cross-entropy's tape holds the operations before them; with `ce_weight = 0` that tape
    /// must still reach the total, or the layers get no gradient.
    #[test]
    fn a_zero_weight_term_keeps_the_operations_the_others_share() {
        let dev = Cpu::default();
        let w: Tensor<Rank1<2>, f64, _> = dev.tensor([1.0, 2.0]);
        let y = w.leaky_trace() * 3.0;
        let (y, tape) = y.split_tape();
        let loss = LossTerms::new().add("shared_tape", 0.0, y.clone().put_tape(tape).sum()).add(
            "retaped",
            1.0,
            y.retaped::<OwnedTape<f64, Cpu>>().square().sum(),
        );
        // d/dw Σ(3w)² = 18 w
        assert_close!(loss.into_total().backward().get(&w), [18.0, 36.0], Tolerance::F64);
    }

    #[test]
    fn the_first_non_finite_term_is_named() {
        let dev = Cpu::default();
        let x: Tensor<Rank1<2>, f64, _> = dev.tensor([1.0, -1.0]);
        let loss = LossTerms::new()
            .add("fine", 1.0, x.leaky_trace().sum())
            .add("broken", 1.0, x.leaky_trace().sqrt().sum());
        assert_eq!(loss.first_non_finite().map(|t| t.name), Some("broken"));
    }

    #[test]
    #[should_panic(expected = "the weight of term `kd` must be finite and >= 0, got -1")]
    fn negative_weights_are_rejected_by_term_name() {
        let dev = Cpu::default();
        let x: Tensor<Rank0, f64, _> = dev.tensor(1.0);
        let _ = LossTerms::new().add("kd", -1.0, x.leaky_trace());
    }
}
