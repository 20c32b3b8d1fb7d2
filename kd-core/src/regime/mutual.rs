//! Deep Mutual Learning: K ≥ 2 peers trained together from scratch, each taught by the others.
//!
//! **Paper:** Y. Zhang, T. Xiang, T. M. Hospedales, H. Lu, *Deep Mutual Learning*, CVPR 2018,
//! <https://arxiv.org/abs/1706.00384>.
//!
//! ```text
//! L_k = CE(z_k, y) + (1/(K−1)) Σ_{l≠k} KL(p_l ‖ p_k)        (crate::loss::dml_loss)
//! ```
//!
//! **Convention:** every peer runs one forward pass per batch; each peer's loss sees the other
//! peers' logits of that pass detached (untaped), and every peer is then updated, as the
//! Knowledge-Distillation-Zoo `dml.py` does. Peers may differ in architecture and optimiser:
//! they meet only through their logits.

use dfdx::nn::{ModuleMut, TensorCollection, ZeroGrads};
use dfdx::optim::Optimizer;
use dfdx::prelude::*;

use crate::distill::{apply_step, StepError};
use crate::loss::{dml_loss, LossTerms, Term};

/// A batch of logits that carries its peer's tape.
pub type TapedLogits<const C: usize> = Tensor<(usize, Const<C>), f32, Cpu, OwnedTape<f32, Cpu>>;

/// A model taking part in mutual learning on inputs `X` with `C` classes.
pub trait MutualPeer<X, const C: usize> {
    /// The peer's logits of `input`, recorded for backward.
    fn forward_taped(&mut self, input: X) -> TapedLogits<C>;
    /// Back-propagates `loss` (built on [`MutualPeer::forward_taped`]'s output) and updates the peer.
    ///
    /// # Errors
    /// A non-finite term (named) or an optimiser failure.
    fn update(&mut self, loss: LossTerms<f32, Cpu, OwnedTape<f32, Cpu>>, step: usize) -> Result<Vec<Term>, StepError>;
}

/// A peer: a model, its optimiser and its gradient buffers.
#[derive(Debug)]
pub struct Peer<M, O> {
    /// The model.
    pub model: M,
    /// Its optimiser.
    pub optimizer: O,
    grads: Option<Gradients<f32, Cpu>>,
}

impl<M: TensorCollection<f32, Cpu>, O> Peer<M, O> {
    /// A peer ready to train.
    pub fn new(model: M, optimizer: O) -> Self {
        let grads = Some(model.alloc_grads());
        Peer { model, optimizer, grads }
    }
}

impl<M, O, S: Shape, const C: usize> MutualPeer<Tensor<S, f32, Cpu>, C> for Peer<M, O>
where
    M: ModuleMut<Tensor<S, f32, Cpu, OwnedTape<f32, Cpu>>, Output = TapedLogits<C>> + TensorCollection<f32, Cpu>,
    O: Optimizer<M, Cpu, f32>,
{
    fn forward_taped(&mut self, input: Tensor<S, f32, Cpu>) -> TapedLogits<C> {
        let grads = self.grads.take().unwrap_or_else(|| self.model.alloc_grads());
        self.model.forward_mut(crate::spatial::trace_input(input, grads))
    }

    fn update(&mut self, loss: LossTerms<f32, Cpu, OwnedTape<f32, Cpu>>, step: usize) -> Result<Vec<Term>, StepError> {
        let (terms, grads) = apply_step(loss, &mut self.model, &mut self.optimizer, step)?;
        self.grads = Some(grads);
        Ok(terms)
    }
}

/// A peer borrowed from its owner: a model and its optimiser, as an epoch runner holds them.
/// Its gradient buffers are allocated each step.
impl<M, O, S: Shape, const C: usize> MutualPeer<Tensor<S, f32, Cpu>, C> for (&mut M, &mut O)
where
    M: ModuleMut<Tensor<S, f32, Cpu, OwnedTape<f32, Cpu>>, Output = TapedLogits<C>> + TensorCollection<f32, Cpu>,
    O: Optimizer<M, Cpu, f32>,
{
    fn forward_taped(&mut self, input: Tensor<S, f32, Cpu>) -> TapedLogits<C> {
        let grads = self.0.alloc_grads();
        self.0.forward_mut(crate::spatial::trace_input(input, grads))
    }

    fn update(&mut self, loss: LossTerms<f32, Cpu, OwnedTape<f32, Cpu>>, step: usize) -> Result<Vec<Term>, StepError> {
        apply_step(loss, &mut *self.0, &mut *self.1, step).map(|(terms, _)| terms)
    }
}

/// One mutual-learning step on a batch: every peer's forward, then each peer's
/// [`dml_loss`] against the others' detached logits, then every update. Returns each peer's
/// terms (`"ce"`, `"kl"`).
///
/// # Errors
/// The first peer whose loss is not finite (named by its term and `step`) or whose update fails.
///
/// # Panics
/// If fewer than two peers are given.
pub fn mutual_step<X: Clone, const C: usize>(
    peers: &mut [&mut dyn MutualPeer<X, C>],
    input: X,
    targets: &[usize],
    step: usize,
) -> Result<Vec<Vec<Term>>, StepError> {
    assert!(
        peers.len() >= 2,
        "mutual_step: mutual learning needs at least two peers, got {}",
        peers.len()
    );
    let taped: Vec<TapedLogits<C>> = peers.iter_mut().map(|peer| peer.forward_taped(input.clone())).collect();
    let detached: Vec<Tensor<(usize, Const<C>), f32, Cpu>> = taped.iter().map(|logits| logits.retaped::<NoneTape>()).collect();
    let mut all_terms = Vec::with_capacity(peers.len());
    for (k, (peer, logits)) in peers.iter_mut().zip(taped).enumerate() {
        let others: Vec<_> = detached
            .iter()
            .enumerate()
            .filter(|(l, _)| *l != k)
            .map(|(_, d)| d.clone())
            .collect();
        all_terms.push(peer.update(dml_loss(logits, &others, targets).map_err(StepError::loss(step))?, step)?);
    }
    Ok(all_terms)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::loss::kd_loss;
    use crate::train::Sgd;

    /// With three peers of different widths, each peer's `kl` is the mean KL from the two
    /// others' logits of the same pass, and every peer moves.
    #[test]
    fn every_peer_gets_the_kl_to_every_other_peer() {
        let dev = Cpu::seed_from_u64(3);
        let mut a = Peer::new(
            dev.build_module::<(Linear<4, 8>, ReLU, Linear<8, 3>), f32>(),
            Sgd::new(SgdConfig::default()),
        );
        let mut b = Peer::new(
            dev.build_module::<(Linear<4, 16>, ReLU, Linear<16, 3>), f32>(),
            Sgd::new(SgdConfig::default()),
        );
        let mut c = Peer::new(dev.build_module::<Linear<4, 3>, f32>(), Sgd::new(SgdConfig::default()));
        let x: Tensor<(usize, Const<4>), f32, _> = dev.sample_normal_like(&(6, Const));
        let y = [0, 1, 2, 0, 1, 2];
        let before = [a.model.forward(x.clone()), b.model.forward(x.clone()), c.model.forward(x.clone())];
        let terms = mutual_step::<_, 3>(&mut [&mut a, &mut b, &mut c], x.clone(), &y, 0).expect("finite");
        for (k, peer_terms) in terms.iter().enumerate() {
            let expected: f64 = (0..3)
                .filter(|&l| l != k)
                .map(|l| crate::ops::value_of(&kd_loss(before[k].clone(), before[l].clone(), 1.0).unwrap()))
                .sum::<f64>()
                / 2.0;
            let kl = peer_terms.iter().find(|t| t.name == "kl").map(|t| t.value).expect("a kl term");
            assert!((kl - expected).abs() < 1e-5, "peer {k}: kl {kl} vs {expected}");
        }
        assert_ne!(a.model.forward(x.clone()).as_vec(), before[0].as_vec());
        assert_ne!(c.model.forward(x).as_vec(), before[2].as_vec());
    }
}
