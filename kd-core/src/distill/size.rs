//! The compile-time check of `#[distill]` that paired feature maps can be aligned: each layer
//! declares how it changes a map's `(height, width)` ([`Spatial`]), and the generated code
//! folds a model's chain of layers over its `input = [C, H, W]`.

use super::chain::{Gives, Takes};

/// How a layer changes the shape of its input, for `#[distill]`'s compile-time checks: that
/// paired maps can be aligned (`input = [C, H, W]`), and that each field takes what the field
/// before it gives ([`chain`](super::chain)).
#[diagnostic::on_unimplemented(
    message = "`{Self}` is not a layer whose shapes kd knows",
    label = "not a known layer",
    note = "every field of a `#[model]` or `#[distill]` struct is one layer, applied in order: a dfdx or kd layer, a tuple of them, or a `#[model]` struct",
    note = "for a layer of your own, implement `kd_core::distill::Spatial` for it; for a foreign layer that keeps its input's shape, write `#[distill(keeps_shape)]` on the field"
)]
pub trait Spatial {
    /// The layer's effect on `(height, width)`.
    const EFFECT: SpatialEffect;
    /// What the layer accepts; by default anything, so nothing before it is checked.
    const TAKES: Takes = Takes::Any;
    /// What it does to the channel or feature count; by default unknown, so the fields after it
    /// are not checked until one sets the count.
    const GIVES: Gives = Gives::Unknown;
}

/// One layer's effect on a map's `(height, width)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SpatialEffect {
    /// Height and width unchanged (activations, batch-norm, 1×1 convolutions, ...).
    Keep,
    /// A window: `(size + 2·padding − kernel)/stride + 1` per axis.
    Window {
        /// Kernel size.
        kernel: usize,
        /// Stride.
        stride: usize,
        /// Padding on each side.
        padding: usize,
    },
    /// A transposed window: `(size − 1)·stride − 2·padding + kernel` per axis.
    TransposedWindow {
        /// Kernel size.
        kernel: usize,
        /// Stride.
        stride: usize,
        /// Padding on each side.
        padding: usize,
    },
    /// A fixed output size (adaptive pooling).
    To(usize, usize),
    /// No map any more (flatten, linear): size `1 × 1`.
    Vector,
    /// One effect applied `times` times (dfdx's `Repeated`).
    Repeat(&'static SpatialEffect, usize),
    /// Several layers in order (a tuple of layers as one field).
    Chain(&'static EffectList),
}

impl SpatialEffect {
    /// The output `(height, width)` for an input of `size`.
    pub const fn apply(self, size: (usize, usize)) -> (usize, usize) {
        match self {
            SpatialEffect::Keep => size,
            SpatialEffect::Window { kernel, stride, padding } => {
                (window(size.0, kernel, stride, padding), window(size.1, kernel, stride, padding))
            }
            SpatialEffect::TransposedWindow { kernel, stride, padding } => (
                transposed(size.0, kernel, stride, padding),
                transposed(size.1, kernel, stride, padding),
            ),
            SpatialEffect::To(h, w) => (h, w),
            SpatialEffect::Vector => (1, 1),
            SpatialEffect::Repeat(effect, times) => {
                let (mut size, mut i) = (size, 0);
                while i < times {
                    size = effect.apply(size);
                    i += 1;
                }
                size
            }
            SpatialEffect::Chain(list) => size_after_chain(list, usize::MAX, size),
        }
    }
}

impl SpatialEffect {
    /// Whether the output is a map, for an input that is one (`map`) or a vector.
    pub const fn gives_map(self, map: bool) -> bool {
        match self {
            SpatialEffect::Keep => map,
            SpatialEffect::Vector => false,
            SpatialEffect::Window { .. } | SpatialEffect::TransposedWindow { .. } | SpatialEffect::To(..) => true,
            SpatialEffect::Repeat(effect, times) => {
                if times == 0 {
                    map
                } else {
                    effect.gives_map(map)
                }
            }
            SpatialEffect::Chain(list) => {
                let (mut map, mut rest) = (map, list);
                while let EffectList::Then(effect, next) = rest {
                    map = effect.gives_map(map);
                    rest = next;
                }
                map
            }
        }
    }
}

const fn window(n: usize, kernel: usize, stride: usize, padding: usize) -> usize {
    if n + 2 * padding >= kernel && stride > 0 {
        (n + 2 * padding - kernel) / stride + 1
    } else {
        0
    }
}

const fn transposed(n: usize, kernel: usize, stride: usize, padding: usize) -> usize {
    (n.saturating_sub(1) * stride + kernel).saturating_sub(2 * padding)
}

/// The `(height, width)` after the first `layers` effects of `chain`, from `input`.
pub const fn size_after(chain: &[SpatialEffect], layers: usize, input: (usize, usize)) -> (usize, usize) {
    let mut size = input;
    let mut i = 0;
    while i < layers && i < chain.len() {
        size = chain[i].apply(size);
        i += 1;
    }
    size
}

/// Whether a student map of `student` size and a teacher map of `teacher` size can be
/// aligned: equal sizes when `pooling` is false, otherwise one no smaller in both dimensions.
pub const fn alignable(student: (usize, usize), teacher: (usize, usize), pooling: bool) -> bool {
    if pooling {
        (student.0 >= teacher.0 && student.1 >= teacher.1) || (student.0 <= teacher.0 && student.1 <= teacher.1)
    } else {
        student.0 == teacher.0 && student.1 == teacher.1
    }
}

/// Implemented exactly when `OK`: the compile-time form of a failed size check, whose message
/// names the pairing (`Self`, a type the macro names after both fields) and both sizes.
#[diagnostic::on_unimplemented(
    message = "the paired maps of `{Self}` cannot be aligned: the student's map is {SH}×{SW}, the teacher's is {TH}×{TW}",
    note = "a hint or activation-boundary pairing needs equal sizes (its adapter is 1×1); attention and NST pool the larger map, so one must be no smaller in both dimensions"
)]
pub trait AlignedMaps<const OK: bool, const SH: usize, const SW: usize, const TH: usize, const TW: usize> {}

impl<P, const SH: usize, const SW: usize, const TH: usize, const TW: usize> AlignedMaps<true, SH, SW, TH, TW> for P {}

/// Fails to compile unless `P: AlignedMaps<OK, ...>`, i.e. unless `OK`.
pub const fn require_aligned<
    P: AlignedMaps<OK, SH, SW, TH, TW>,
    const OK: bool,
    const SH: usize,
    const SW: usize,
    const TH: usize,
    const TW: usize,
>() {
}

macro_rules! keep_spatial {
    ($($layer:ty),* $(,)?) => {$(
        impl Spatial for $layer {
            const EFFECT: SpatialEffect = SpatialEffect::Keep;
            const GIVES: Gives = Gives::Same;
        }
    )*};
}

keep_spatial!(
    dfdx::nn::builders::ReLU,
    dfdx::nn::builders::FastGeLU,
    dfdx::nn::builders::AccurateGeLU,
    dfdx::nn::builders::Sigmoid,
    dfdx::nn::builders::Tanh,
    dfdx::nn::builders::Abs,
    dfdx::nn::builders::Square,
    dfdx::nn::builders::Dropout,
    dfdx::nn::builders::Sin,
    dfdx::nn::builders::Cos,
    dfdx::nn::builders::Ln,
    dfdx::nn::builders::Exp,
    dfdx::nn::builders::Sqrt,
    dfdx::nn::builders::Softmax,
    dfdx::nn::builders::LogSoftmax,
);

impl<E: dfdx::dtypes::Dtype> Spatial for dfdx::nn::builders::LeakyReLU<E> {
    const EFFECT: SpatialEffect = SpatialEffect::Keep;
    const GIVES: Gives = Gives::Same;
}

impl<const N: usize> Spatial for dfdx::nn::builders::DropoutOneIn<N> {
    const EFFECT: SpatialEffect = SpatialEffect::Keep;
    const GIVES: Gives = Gives::Same;
}

macro_rules! per_channel_spatial {
    ($($layer:ident),* $(,)?) => {$(
        impl<const C: usize> Spatial for dfdx::nn::builders::$layer<C> {
            const EFFECT: SpatialEffect = SpatialEffect::Keep;
            const TAKES: Takes = Takes::Channels(C);
            const GIVES: Gives = Gives::Same;
        }
    )*};
}

macro_rules! per_feature_spatial {
    ($($layer:ident),* $(,)?) => {$(
        impl<const M: usize> Spatial for dfdx::nn::builders::$layer<M> {
            const EFFECT: SpatialEffect = SpatialEffect::Keep;
            const TAKES: Takes = Takes::Features(M);
            const GIVES: Gives = Gives::Same;
        }
    )*};
}

per_channel_spatial!(BatchNorm2D, Bias2D);
per_feature_spatial!(BatchNorm1D, LayerNorm1D);

impl<const I: usize, const O: usize> Spatial for dfdx::nn::builders::Linear<I, O> {
    const EFFECT: SpatialEffect = SpatialEffect::Vector;
    const TAKES: Takes = Takes::Features(I);
    const GIVES: Gives = Gives::Count(O);
}

impl<const I: usize, const O: usize> Spatial for dfdx::nn::builders::UnbiasedLinear<I, O> {
    const EFFECT: SpatialEffect = SpatialEffect::Vector;
    const TAKES: Takes = Takes::Features(I);
    const GIVES: Gives = Gives::Count(O);
}

macro_rules! global_pool_spatial {
    ($($pool:ident),* $(,)?) => {$(
        /// A map to one value per channel.
        impl Spatial for dfdx::nn::builders::$pool {
            const EFFECT: SpatialEffect = SpatialEffect::Vector;
            const TAKES: Takes = Takes::Map;
            const GIVES: Gives = Gives::Same;
        }
    )*};
}

global_pool_spatial!(AvgPoolGlobal, MaxPoolGlobal, MinPoolGlobal);

impl<const I: usize, const O: usize> Spatial for crate::nn::builders::Linear<I, O> {
    const EFFECT: SpatialEffect = SpatialEffect::Vector;
    const TAKES: Takes = Takes::Features(I);
    const GIVES: Gives = Gives::Count(O);
}

impl<const I: usize, const O: usize, const K: usize, const S: usize, const P: usize> Spatial
    for crate::nn::builders::Conv2D<I, O, K, S, P>
{
    const EFFECT: SpatialEffect = SpatialEffect::Window {
        kernel: K,
        stride: S,
        padding: P,
    };
    const TAKES: Takes = Takes::Channels(I);
    const GIVES: Gives = Gives::Count(O);
}

impl<const I: usize, const O: usize, const K: usize, const S: usize, const P: usize> Spatial
    for crate::nn::builders::ConvTrans2D<I, O, K, S, P>
{
    const EFFECT: SpatialEffect = SpatialEffect::TransposedWindow {
        kernel: K,
        stride: S,
        padding: P,
    };
    const TAKES: Takes = Takes::Channels(I);
    const GIVES: Gives = Gives::Count(O);
}

impl<const K: usize, const S: usize, const P: usize> Spatial for crate::nn::builders::MaxPool2D<K, S, P> {
    const EFFECT: SpatialEffect = SpatialEffect::Window {
        kernel: K,
        stride: S,
        padding: P,
    };
    const TAKES: Takes = Takes::Map;
    const GIVES: Gives = Gives::Same;
}

impl<const K: usize, const S: usize, const P: usize> Spatial for crate::nn::builders::AvgPool2D<K, S, P> {
    const EFFECT: SpatialEffect = SpatialEffect::Window {
        kernel: K,
        stride: S,
        padding: P,
    };
    const TAKES: Takes = Takes::Map;
    const GIVES: Gives = Gives::Same;
}

impl<const OH: usize, const OW: usize> Spatial for crate::nn::builders::AdaptiveAvgPool2D<OH, OW> {
    const EFFECT: SpatialEffect = SpatialEffect::To(OH, OW);
    const TAKES: Takes = Takes::Map;
    const GIVES: Gives = Gives::Same;
}

impl<const N: usize> Spatial for crate::nn::builders::Flatten2D<N> {
    const EFFECT: SpatialEffect = SpatialEffect::Vector;
    const TAKES: Takes = Takes::Values(N);
    const GIVES: Gives = Gives::Count(N);
}

/// `x + f(x)`: the sum needs `f` to keep the map's shape.
impl<F> Spatial for dfdx::nn::builders::Residual<F> {
    const EFFECT: SpatialEffect = SpatialEffect::Keep;
    const GIVES: Gives = Gives::Same;
}

/// `f(x) + r(x)`: the shape `f` gives.
impl<F: Spatial, R> Spatial for dfdx::nn::builders::GeneralizedResidual<F, R> {
    const EFFECT: SpatialEffect = F::EFFECT;
    const TAKES: Takes = F::TAKES;
    const GIVES: Gives = F::GIVES;
}

/// `T` applied `N` times.
impl<T: Spatial, const N: usize> Spatial for dfdx::nn::builders::Repeated<T, N> {
    const EFFECT: SpatialEffect = SpatialEffect::Repeat(&T::EFFECT, N);
    const TAKES: Takes = T::TAKES;
    const GIVES: Gives = T::GIVES;
}

/// A layer that `#[distill(keeps_shape)]` declares shape-preserving (a foreign layer kd cannot
/// implement [`Spatial`] for); the macros put it in a model's chain in the layer's place.
pub struct KeepsShape;

impl Spatial for KeepsShape {
    const EFFECT: SpatialEffect = SpatialEffect::Keep;
    const GIVES: Gives = Gives::Same;
}

macro_rules! sequence_spatial {
    ($first:ident $(, $layer:ident)*) => {
        /// Layers in order, as one field: it takes what its first layer takes.
        impl<$first: Spatial $(, $layer: Spatial)*> Spatial for ($first, $($layer,)*) {
            const EFFECT: SpatialEffect = SpatialEffect::Chain(<sequence_spatial!(@nest $first $(, $layer)*) as SpatialChain>::EFFECTS);
            const TAKES: Takes = <sequence_spatial!(@nest $first $(, $layer)*) as SpatialChain>::TAKES;
            const GIVES: Gives = <sequence_spatial!(@nest $first $(, $layer)*) as SpatialChain>::GIVES;
        }
    };
    (@nest $first:ident $(, $rest:ident)*) => { ($first, sequence_spatial!(@nest $($rest),*)) };
    (@nest) => { () };
}

sequence_spatial!(A);
sequence_spatial!(A, B);
sequence_spatial!(A, B, C);
sequence_spatial!(A, B, C, D);
sequence_spatial!(A, B, C, D, E);
sequence_spatial!(A, B, C, D, E, F);

#[cfg(test)]
mod spatial_tests {
    use super::*;

    #[test]
    fn sizes_follow_the_layers() {
        type Conv = crate::nn::builders::Conv2D<1, 6, 5, 1, 2>;
        type Pool = crate::nn::builders::MaxPool2D<2, 2>;
        let chain = [
            <Conv as Spatial>::EFFECT,
            <dfdx::nn::builders::ReLU as Spatial>::EFFECT,
            <Pool as Spatial>::EFFECT,
        ];
        assert_eq!(size_after(&chain, 1, (28, 28)), (28, 28));
        assert_eq!(size_after(&chain, 3, (28, 28)), (14, 14));
        let up = <crate::nn::builders::ConvTrans2D<4, 4, 4, 2, 1> as Spatial>::EFFECT;
        assert_eq!(up.apply((7, 5)), (14, 10));
        assert!(alignable((14, 14), (7, 7), true) && !alignable((14, 14), (7, 7), false));
        assert!(!alignable((14, 7), (7, 14), true));
    }

    #[test]
    fn blocks_residuals_and_repeats_have_their_layers_effects() {
        type Conv = crate::nn::builders::Conv2D<4, 4, 3, 2, 1>;
        type Keep3 = crate::nn::builders::Conv2D<4, 4, 3, 1, 1>;
        type Pool = crate::nn::builders::MaxPool2D<2, 2>;
        let block = <(Conv, dfdx::nn::builders::ReLU, Pool) as Spatial>::EFFECT;
        assert_eq!(block.apply((28, 28)), (7, 7));
        let residual = <dfdx::nn::builders::Residual<(Keep3, dfdx::nn::builders::ReLU)> as Spatial>::EFFECT;
        assert_eq!(residual.apply((9, 5)), (9, 5));
        let twice = <dfdx::nn::builders::Repeated<(Conv, Pool), 2> as Spatial>::EFFECT;
        assert_eq!(twice.apply((64, 32)), (4, 2));
        let general = <dfdx::nn::builders::GeneralizedResidual<Pool, Pool> as Spatial>::EFFECT;
        assert_eq!(general.apply((8, 8)), (4, 4));
    }

    #[test]
    fn a_chain_has_no_length_limit() {
        type Pool = crate::nn::builders::MaxPool2D<2, 2>;
        type Relu = dfdx::nn::builders::ReLU;
        // Forty layers: a pool, then 39 activations; the pool is counted once.
        type Deep = (Pool, (Relu, (Relu, (Relu, (Relu, (Relu, (Relu, (Relu, (Relu, (Relu, Tail))))))))));
        type Tail = (Relu, (Relu, (Relu, (Relu, (Relu, (Relu, (Relu, (Relu, (Relu, (Relu, Tail2))))))))));
        type Tail2 = (Relu, (Relu, (Relu, (Relu, (Relu, (Relu, (Relu, (Relu, (Relu, (Relu, Tail3))))))))));
        type Tail3 = (Relu, (Relu, (Relu, (Relu, (Relu, (Relu, (Relu, (Relu, (Relu, (Pool, ()))))))))));
        const AFTER_39: (usize, usize) = size_after_chain(<Deep as SpatialChain>::EFFECTS, 39, (28, 28));
        const AFTER_ALL: (usize, usize) = size_after_chain(<Deep as SpatialChain>::EFFECTS, 100, (28, 28));
        assert_eq!((AFTER_39, AFTER_ALL), ((14, 14), (7, 7)));
    }
}

/// A model's layer effects, first to last, as a list built at compile time (so a model may have
/// any number of layers).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EffectList {
    /// After the last layer.
    End,
    /// A layer's effect, then the layers after it.
    Then(SpatialEffect, &'static EffectList),
}

/// The spatial effects of a model's layers in order: `#[model]` writes its layers as the
/// nested pairs `(L0, (L1, (L2, ())))`, whose effects chain without a length limit.
pub trait SpatialChain {
    /// The layers' effects.
    const EFFECTS: &'static EffectList;
    /// What the first layer takes.
    const TAKES: Takes;
    /// The count after the last layer that sets or loses it.
    const GIVES: Gives;
}

impl SpatialChain for () {
    const EFFECTS: &'static EffectList = &EffectList::End;
    const TAKES: Takes = Takes::Any;
    const GIVES: Gives = Gives::Same;
}

impl<Layer: Spatial, Rest: SpatialChain> SpatialChain for (Layer, Rest) {
    const EFFECTS: &'static EffectList = &EffectList::Then(Layer::EFFECT, Rest::EFFECTS);
    const TAKES: Takes = Layer::TAKES;
    const GIVES: Gives = match Rest::GIVES {
        Gives::Same => Layer::GIVES,
        later => later,
    };
}

/// Whether the output of the first `layers` effects of `chain` is a map, from a map input
/// (`map`) or a vector.
pub const fn map_after_chain(chain: &EffectList, layers: usize, map: bool) -> bool {
    let (mut map, mut rest, mut i) = (map, chain, 0);
    while let (true, EffectList::Then(effect, next)) = (i < layers, rest) {
        map = effect.gives_map(map);
        rest = next;
        i += 1;
    }
    map
}

/// The `(height, width)` after the first `layers` effects of `chain`, from `input`.
pub const fn size_after_chain(chain: &EffectList, layers: usize, input: (usize, usize)) -> (usize, usize) {
    let (mut size, mut rest, mut i) = (input, chain, 0);
    while let (true, EffectList::Then(effect, next)) = (i < layers, rest) {
        size = effect.apply(size);
        rest = next;
        i += 1;
    }
    size
}
