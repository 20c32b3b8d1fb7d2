//! The compile-time check of `#[distill]` that paired feature maps can be aligned: each layer
//! declares how it changes a map's `(height, width)` ([`Spatial`]), and the generated code
//! folds a model's chain of layers over its `input = [C, H, W]`.

/// How a layer changes the spatial size of a feature map, for `#[distill]`'s compile-time
/// check that paired maps can be aligned (`input = [C, H, W]`).
#[diagnostic::on_unimplemented(
    message = "`{Self}` does not declare how it changes a feature map's size",
    note = "#[distill] checks paired map sizes at compile time: write `#[distill(keeps_shape)]` on the field if the layer keeps a map's size, or implement `kd_core::distill::Spatial` for your own layer type"
)]
pub trait Spatial {
    /// The layer's effect on `(height, width)`.
    const EFFECT: SpatialEffect;
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
}

impl<const C: usize> Spatial for dfdx::nn::builders::BatchNorm2D<C> {
    const EFFECT: SpatialEffect = SpatialEffect::Keep;
}

impl<const N: usize> Spatial for dfdx::nn::builders::DropoutOneIn<N> {
    const EFFECT: SpatialEffect = SpatialEffect::Keep;
}

impl<const I: usize, const O: usize> Spatial for dfdx::nn::builders::Linear<I, O> {
    const EFFECT: SpatialEffect = SpatialEffect::Vector;
}

impl<const I: usize, const O: usize> Spatial for crate::nn::builders::Linear<I, O> {
    const EFFECT: SpatialEffect = SpatialEffect::Vector;
}

impl<const I: usize, const O: usize, const K: usize, const S: usize, const P: usize> Spatial
    for crate::nn::builders::Conv2D<I, O, K, S, P>
{
    const EFFECT: SpatialEffect = SpatialEffect::Window {
        kernel: K,
        stride: S,
        padding: P,
    };
}

impl<const I: usize, const O: usize, const K: usize, const S: usize, const P: usize> Spatial
    for crate::nn::builders::ConvTrans2D<I, O, K, S, P>
{
    const EFFECT: SpatialEffect = SpatialEffect::TransposedWindow {
        kernel: K,
        stride: S,
        padding: P,
    };
}

impl<const K: usize, const S: usize, const P: usize> Spatial for crate::nn::builders::MaxPool2D<K, S, P> {
    const EFFECT: SpatialEffect = SpatialEffect::Window {
        kernel: K,
        stride: S,
        padding: P,
    };
}

impl<const K: usize, const S: usize, const P: usize> Spatial for crate::nn::builders::AvgPool2D<K, S, P> {
    const EFFECT: SpatialEffect = SpatialEffect::Window {
        kernel: K,
        stride: S,
        padding: P,
    };
}

impl<const OH: usize, const OW: usize> Spatial for crate::nn::builders::AdaptiveAvgPool2D<OH, OW> {
    const EFFECT: SpatialEffect = SpatialEffect::To(OH, OW);
}

impl<const N: usize> Spatial for crate::nn::builders::Flatten2D<N> {
    const EFFECT: SpatialEffect = SpatialEffect::Vector;
}

/// `x + f(x)`: the sum needs `f` to keep the map's size.
impl<F> Spatial for dfdx::nn::builders::Residual<F> {
    const EFFECT: SpatialEffect = SpatialEffect::Keep;
}

/// `f(x) + r(x)`: the size `f` gives.
impl<F: Spatial, R> Spatial for dfdx::nn::builders::GeneralizedResidual<F, R> {
    const EFFECT: SpatialEffect = F::EFFECT;
}

/// `T` applied `N` times.
impl<T: Spatial, const N: usize> Spatial for dfdx::nn::builders::Repeated<T, N> {
    const EFFECT: SpatialEffect = SpatialEffect::Repeat(&T::EFFECT, N);
}

/// A layer that `#[distill(keeps_shape)]` declares size-preserving (a foreign layer kd cannot
/// implement [`Spatial`] for); the macros put it in a model's chain in the layer's place.
pub struct KeepsShape;

impl Spatial for KeepsShape {
    const EFFECT: SpatialEffect = SpatialEffect::Keep;
}

macro_rules! sequence_spatial {
    ($($layer:ident),+) => {
        /// Layers in order, as one field.
        impl<$($layer: Spatial),+> Spatial for ($($layer,)+) {
            const EFFECT: SpatialEffect = SpatialEffect::Chain(<sequence_spatial!(@nest $($layer),+) as SpatialChain>::EFFECTS);
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
}

impl SpatialChain for () {
    const EFFECTS: &'static EffectList = &EffectList::End;
}

impl<Layer: Spatial, Rest: SpatialChain> SpatialChain for (Layer, Rest) {
    const EFFECTS: &'static EffectList = &EffectList::Then(Layer::EFFECT, Rest::EFFECTS);
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
