//! The compile-time check of `#[distill]` that paired feature maps can be aligned: each layer
//! declares how it changes a map's `(height, width)` ([`Spatial`]), and the generated code
//! folds a model's chain of layers over its `input = [C, H, W]`.

/// How a layer changes the spatial size of a feature map, for `#[distill]`'s compile-time
/// check that paired maps can be aligned (`input = [C, H, W]`).
#[diagnostic::on_unimplemented(
    message = "`{Self}` does not declare how it changes a feature map's size",
    note = "#[distill] checks paired map sizes at compile time; implement `kd_core::distill::Spatial` for this layer"
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
);

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
