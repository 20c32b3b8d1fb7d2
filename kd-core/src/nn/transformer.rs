//! A small causal (GPT-style, pre-LayerNorm) transformer language model whose forward pass also
//! returns what DistilBERT and TinyBERT distil: the embedding output, every layer's hidden
//! states, and every layer's attention scores.
//!
//! Each layer: `x + Attention(LN(x))`, then `x + FFN(LN(x))`; the attention is multi-head,
//! `softmax(QKᵀ/√d_head + causal mask) V`. The exposed attention scores are TinyBERT's: the
//! scaled `QKᵀ/√d_head` before the softmax, zero above the diagonal (the masked positions).

use dfdx::nn::modules::{Embedding, LayerNorm1D, ReLU};
use dfdx::nn::{Module, ModuleVisitor, TensorCollection};
use dfdx::prelude::*;

use dfdx::nn::modules::Repeated;

use crate::nn::builders::Linear;
use crate::tap::tap;

type Dense<const I: usize, const O: usize> = crate::nn::modules::Linear<I, O, f32, Cpu>;
type Attention<const D: usize> = (Dense<D, D>, Dense<D, D>, Dense<D, D>, Dense<D, D>);
type FeedForward<const D: usize, const F: usize> = (Dense<D, F>, ReLU, Dense<F, D>);
type Norm<const D: usize> = LayerNorm1D<D, f32, Cpu>;

/// One transformer layer.
#[derive(Debug, Clone)]
pub struct Block<A, F, N> {
    /// Query, key, value and output projections.
    pub attention: A,
    /// The position-wise feed-forward network.
    pub ffn: F,
    /// LayerNorm before the attention.
    pub norm1: N,
    /// LayerNorm before the feed-forward network.
    pub norm2: N,
}

impl<A: TensorCollection<E, D>, F: TensorCollection<E, D>, N: TensorCollection<E, D>, E: Dtype, D: Device<E>> TensorCollection<E, D>
    for Block<A, F, N>
{
    type To<E2: Dtype, D2: Device<E2>> = Block<A::To<E2, D2>, F::To<E2, D2>, N::To<E2, D2>>;

    fn iter_tensors<V: ModuleVisitor<Self, E, D>>(visitor: &mut V) -> Result<Option<Self::To<V::E2, V::D2>>, V::Err> {
        visitor.visit_fields(
            (
                Self::module("attention", |s| &s.attention, |s| &mut s.attention),
                Self::module("ffn", |s| &s.ffn, |s| &mut s.ffn),
                Self::module("norm1", |s| &s.norm1, |s| &mut s.norm1),
                Self::module("norm2", |s| &s.norm2, |s| &mut s.norm2),
            ),
            |(attention, ffn, norm1, norm2)| Block {
                attention,
                ffn,
                norm1,
                norm2,
            },
        )
    }
}

/// The parts of a [`Transformer`] (generic so that dfdx can convert it between devices and
/// dtypes); `H` is the number of attention heads.
#[derive(Debug, Clone)]
pub struct Parts<Token, Position, Blocks, Norm, Head, const H: usize> {
    /// Token embeddings.
    pub token: Token,
    /// Learned position embeddings.
    pub position: Position,
    /// The layers.
    pub blocks: Blocks,
    /// The final LayerNorm.
    pub norm: Norm,
    /// The output projection to token logits.
    pub head: Head,
}

/// A causal language model: `V` tokens, width `D`, `H` heads, feed-forward width `F`,
/// `LAYERS` layers, contexts of up to `CTX` tokens.
pub type Transformer<const V: usize, const D: usize, const H: usize, const F: usize, const LAYERS: usize, const CTX: usize> = Parts<
    Embedding<V, D, f32, Cpu>,
    Embedding<CTX, D, f32, Cpu>,
    Repeated<Block<Attention<D>, FeedForward<D, F>, Norm<D>>, LAYERS>,
    Norm<D>,
    Dense<D, V>,
    H,
>;

impl<Token, Position, Blocks, N, Head, E, Dev, const H: usize> TensorCollection<E, Dev> for Parts<Token, Position, Blocks, N, Head, H>
where
    Token: TensorCollection<E, Dev>,
    Position: TensorCollection<E, Dev>,
    Blocks: TensorCollection<E, Dev>,
    N: TensorCollection<E, Dev>,
    Head: TensorCollection<E, Dev>,
    E: Dtype,
    Dev: Device<E>,
{
    type To<E2: Dtype, D2: Device<E2>> =
        Parts<Token::To<E2, D2>, Position::To<E2, D2>, Blocks::To<E2, D2>, N::To<E2, D2>, Head::To<E2, D2>, H>;

    fn iter_tensors<W: ModuleVisitor<Self, E, Dev>>(visitor: &mut W) -> Result<Option<Self::To<W::E2, W::D2>>, W::Err> {
        visitor.visit_fields(
            (
                Self::module("token", |s| &s.token, |s| &mut s.token),
                Self::module("position", |s| &s.position, |s| &mut s.position),
                Self::module("blocks", |s| &s.blocks, |s| &mut s.blocks),
                Self::module("norm", |s| &s.norm, |s| &mut s.norm),
                Self::module("head", |s| &s.head, |s| &mut s.head),
            ),
            |(token, position, blocks, norm, head)| Parts {
                token,
                position,
                blocks,
                norm,
                head,
            },
        )
    }
}

/// One layer's attention scores, `(B, H, L, L)`.
pub type Scores<T> = Tensor<(usize, usize, usize, usize), f32, Cpu, T>;

/// What a forward pass returns, all flattened to `(batch · length, ·)` rows.
pub struct Outputs<const V: usize, const D: usize, T> {
    /// Next-token logits, `(B·L, V)`.
    pub logits: Tensor<(usize, Const<V>), f32, Cpu, T>,
    /// The embedding output (token + position), `(B·L, D)`, a tap.
    pub embedding: Tensor<(usize, Const<D>), f32, Cpu, T>,
    /// Each layer's output, `(B·L, D)`, taps.
    pub hidden: Vec<Tensor<(usize, Const<D>), f32, Cpu, T>>,
    /// Each layer's attention scores `(B, H, L, L)`, taps.
    pub scores: Vec<Scores<T>>,
}

type Tokens<T> = Tensor<(usize, usize), usize, Cpu, T>;

impl<const V: usize, const D: usize, const H: usize, const F: usize, const LAYERS: usize, const CTX: usize>
    Transformer<V, D, H, F, LAYERS, CTX>
{
    /// A freshly initialised model (dfdx's initialisations; kd's `Linear` as PyTorch's).
    pub fn build(device: &Cpu) -> Self {
        Transformer {
            token: device.build_module::<dfdx::nn::builders::Embedding<V, D>, f32>(),
            position: device.build_module::<dfdx::nn::builders::Embedding<CTX, D>, f32>(),
            blocks: Repeated {
                modules: (0..LAYERS)
                    .map(|_| Block {
                        attention: device.build_module::<(Linear<D, D>, Linear<D, D>, Linear<D, D>, Linear<D, D>), f32>(),
                        ffn: device.build_module::<(Linear<D, F>, dfdx::nn::builders::ReLU, Linear<F, D>), f32>(),
                        norm1: device.build_module::<dfdx::nn::builders::LayerNorm1D<D>, f32>(),
                        norm2: device.build_module::<dfdx::nn::builders::LayerNorm1D<D>, f32>(),
                    })
                    .collect(),
            },
            norm: device.build_module::<dfdx::nn::builders::LayerNorm1D<D>, f32>(),
            head: device.build_module::<Linear<D, V>, f32>(),
        }
    }

    /// The forward pass of `tokens` `(B, L)`, `L ≤ CTX`, with every internal the distillation
    /// losses use. With a taped input (`tokens.traced(grads)`), everything is taped.
    ///
    /// # Panics
    /// If `L` exceeds `CTX`.
    pub fn forward_all<T: Tape<f32, Cpu>>(&self, tokens: Tokens<T>) -> Outputs<V, D, T> {
        let (batch, length) = *tokens.shape();
        assert!(length <= CTX, "Transformer: {length} tokens, but the context is {CTX}");
        let device = tokens.device().clone();
        let rows = batch * length;
        let positions = device.tensor_from_vec((0..length).collect::<Vec<usize>>(), (length,));
        let embedded = self.token.forward(tokens);
        let shape = *embedded.shape();
        let x = embedded + self.position.forward(positions).retaped::<T>().broadcast_like::<_, Axis<0>>(&shape);
        let (embedding, mut x) = tap(x.reshape_like(&(rows, Const::<D>)));
        let mask_values: Vec<f32> = (0..length * length)
            .map(|i| if i % length > i / length { -1e9 } else { 0.0 })
            .collect();
        let keep_values: Vec<f32> = (0..length * length)
            .map(|i| if i % length > i / length { 0.0 } else { 1.0 })
            .collect();
        let mask = device.tensor_from_vec(mask_values, (length, length));
        let keep = device.tensor_from_vec(keep_values, (length, length));
        let (mut hidden, mut scores) = (Vec::with_capacity(LAYERS), Vec::with_capacity(LAYERS));
        let heads = H;
        let head_width = D / H;
        for block in &self.blocks.modules {
            // Attention on the normalised input, added to the residual stream.
            let (stream, tape) = x.split_tape();
            let normed = block.norm1.forward(stream.clone().put_tape(tape));
            let (normed, tape) = normed.split_tape();
            let split_heads = |t: Tensor<(usize, Const<D>), f32, Cpu, T>| {
                t.reshape_like(&(batch, length, heads, head_width))
                    .permute::<_, Axes4<0, 2, 1, 3>>()
            };
            let q = split_heads(block.attention.0.forward(normed.clone().put_tape(tape)));
            let k = split_heads(block.attention.1.forward(normed.retaped::<T>()));
            let v = split_heads(block.attention.2.forward(normed.retaped::<T>()));
            let raw = q.matmul(k.permute::<_, Axes4<0, 1, 3, 2>>()) * (1.0 / (head_width as f32).sqrt());
            let (raw, tape) = raw.split_tape();
            let score_shape = *raw.shape();
            scores.push(raw.retaped::<T>() * keep.clone().broadcast_like::<_, Axes2<0, 1>>(&score_shape));
            let probabilities = (raw.put_tape(tape) + mask.clone().broadcast_like::<_, Axes2<0, 1>>(&score_shape)).softmax::<Axis<3>>();
            let context = probabilities
                .matmul(v)
                .permute::<_, Axes4<0, 2, 1, 3>>()
                .reshape_like(&(rows, Const::<D>));
            let attended = stream.retaped::<T>() + block.attention.3.forward(context);
            // The feed-forward network, likewise.
            let (stream, tape) = attended.split_tape();
            let fed = block.ffn.forward(block.norm2.forward(stream.clone().put_tape(tape)));
            let (value, out) = tap(stream.retaped::<T>() + fed);
            hidden.push(value.retaped::<T>());
            x = out;
        }
        let logits = self.head.forward(self.norm.forward(x));
        Outputs {
            logits,
            embedding: embedding.retaped::<T>(),
            hidden,
            scores,
        }
    }
}
