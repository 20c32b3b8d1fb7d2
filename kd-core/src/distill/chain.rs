//! The compile-time check of `#[distill]` that each layer takes what the layer before it gives.
//!
//! Sizing `Flatten2D` and the next `Linear` by hand, a convolution's input channels, layers out
//! of order: rustc reports these as a wall of dfdx `TryMatMul` / `ModuleMut` bounds over the
//! whole attribute. Instead each layer declares what it takes ([`Spatial::TAKES`]) and what
//! count it gives ([`Spatial::GIVES`]); the macro folds the student's fields over its
//! `input = [...]` and emits one check per field, spanned at the field's type, whose message
//! names the field, the field before it and both counts.
//!
//! A layer kd knows nothing about (no [`Spatial`] impl) takes anything and makes the shape
//! unknown; one that declares its `EFFECT` only makes the count unknown. The fields after it
//! are not checked until a layer sets the shape again (a `Linear` or `Flatten2D`), so the check
//! never rejects a model that dfdx would run.

use std::marker::PhantomData;

use super::size::{Spatial, SpatialEffect};

/// What a layer accepts as input.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Takes {
    /// Any shape (activations, dropout, a layer that declares nothing).
    Any,
    /// A `channels × height × width` map with any number of channels (pooling).
    Map,
    /// Inputs whose last axis has this many features (`Linear<I, _>`, `LayerNorm1D<I>`).
    Features(usize),
    /// A map with this many channels (`Conv2D<I, ..>`, `BatchNorm2D<I>`).
    Channels(usize),
    /// A map of this many values in all, `C·H·W` (`Flatten2D<N>`).
    Values(usize),
}

/// What a layer does to the feature or channel count.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Gives {
    /// The count it was given (activations, pooling, normalisation).
    Same,
    /// This count (`Linear<_, O>` features, `Conv2D<_, O, ..>` channels, `Flatten2D<N>`).
    Count(usize),
    /// A count kd does not know (a layer that declares nothing).
    Unknown,
}

/// The shape flowing between two layers, for one sample.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Flow {
    /// Whether kd knows the shape at all (not after a layer without [`Spatial`]).
    pub known: bool,
    /// A `channels × height × width` map, or else a vector of features.
    pub map: bool,
    /// Channels of a map, features of a vector; `None` when a layer made it unknown.
    pub count: Option<usize>,
    /// The map's `(height, width)` (`(1, 1)` for a vector).
    pub size: (usize, usize),
}

impl Flow {
    /// The flow of `input = [features]`.
    pub const fn vector(features: usize) -> Flow {
        Flow {
            known: true,
            map: false,
            count: Some(features),
            size: (1, 1),
        }
    }

    /// The flow after a layer kd knows nothing about: nothing is checked against it.
    pub const UNKNOWN: Flow = Flow {
        known: false,
        map: false,
        count: None,
        size: (1, 1),
    };

    /// The flow of `input = [channels, height, width]`.
    pub const fn map(channels: usize, height: usize, width: usize) -> Flow {
        Flow {
            known: true,
            map: true,
            count: Some(channels),
            size: (height, width),
        }
    }

    /// The count, or 0 when unknown (a const generic argument of the error's message).
    pub const fn count_or_zero(self) -> usize {
        match self.count {
            Some(count) => count,
            None => 0,
        }
    }

    /// The map's `C·H·W`, or 0 when the channels are unknown.
    pub const fn values(self) -> usize {
        self.count_or_zero() * self.size.0 * self.size.1
    }
}

/// One layer's declared shapes: what [`Spatial`] says about it, gathered for const folding.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LayerShape {
    /// Its effect on `(height, width)`; `None` for a layer without [`Spatial`].
    pub effect: Option<SpatialEffect>,
    /// What it accepts.
    pub takes: Takes,
    /// What it gives.
    pub gives: Gives,
}

/// The declared shapes of layer `L`.
pub const fn layer_shape<L: Spatial + ?Sized>() -> LayerShape {
    LayerShape {
        effect: Some(L::EFFECT),
        takes: L::TAKES,
        gives: L::GIVES,
    }
}

/// The declared shapes of any field type, without requiring [`Spatial`]: `<ShapeOf<T>>::SHAPE`
/// is the inherent const when `T: Spatial` and [`UnknownShape`]'s otherwise (an inherent item
/// whose bounds fail gives way to the trait's; this only resolves for concrete `T`, as in the
/// macro's expansion).
pub struct ShapeOf<T: ?Sized>(PhantomData<T>);

impl<T: Spatial + ?Sized> ShapeOf<T> {
    /// `T`'s declared shapes.
    pub const SHAPE: LayerShape = layer_shape::<T>();
}

/// The shapes of a field type without [`Spatial`]: unknown, so nothing after it is checked.
pub trait UnknownShape {
    /// Takes anything, gives an unknown shape.
    const SHAPE: LayerShape = LayerShape {
        effect: None,
        takes: Takes::Any,
        gives: Gives::Unknown,
    };
}

impl<T: ?Sized> UnknownShape for ShapeOf<T> {}

impl LayerShape {
    /// The flow out of this layer for `input` (lenient: a mismatch is reported by the checks,
    /// and the flow goes on with what the layer says it gives).
    pub const fn apply(self, input: Flow) -> Flow {
        let Some(effect) = self.effect else { return Flow::UNKNOWN };
        if !rank_fits(self.takes, input) {
            // A map layer given a vector: its error is reported; what it gives is undefined.
            return Flow::UNKNOWN;
        }
        let map = effect.gives_map(input.map);
        let count = match self.gives {
            Gives::Same => input.count,
            Gives::Count(count) => Some(count),
            Gives::Unknown => None,
        };
        match (input.known, map, count) {
            (true, _, _) => Flow {
                known: true,
                map,
                count,
                size: if map { effect.apply(input.size) } else { (1, 1) },
            },
            // After an unknown layer only a vector of a declared count is known again.
            (false, false, Some(features)) => Flow::vector(features),
            (false, _, _) => Flow::UNKNOWN,
        }
    }
}

/// The flow into layer `layers` of `chain` (after the first `layers` layers), from `input`.
pub const fn flow_after(chain: &[LayerShape], layers: usize, input: Flow) -> Flow {
    let (mut flow, mut i) = (input, 0);
    while i < layers && i < chain.len() {
        flow = chain[i].apply(flow);
        i += 1;
    }
    flow
}

/// Whether `shape` accepts `flow` by every check.
pub const fn fits(takes: Takes, flow: Flow) -> bool {
    rank_fits(takes, flow)
        && features_fit(takes, flow)
        && map_features_fit(takes, flow)
        && channels_fit(takes, flow)
        && values_fit(takes, flow)
}

/// The index of the first layer of `chain` that does not take what the one before gives (from
/// `input`), or `chain.len()` when every layer fits.
pub const fn first_misfit(chain: &[LayerShape], input: Flow) -> usize {
    let (mut flow, mut i) = (input, 0);
    while i < chain.len() {
        if !fits(chain[i].takes, flow) {
            return i;
        }
        flow = chain[i].apply(flow);
        i += 1;
    }
    i
}

/// Whether `takes` accepts a map or a vector as given (a vector where a map is needed fails).
pub const fn rank_fits(takes: Takes, flow: Flow) -> bool {
    !flow.known || !matches!(takes, Takes::Map | Takes::Channels(_) | Takes::Values(_)) || flow.map
}

/// Whether a vector's feature count fits `takes` (unknown counts fit).
pub const fn features_fit(takes: Takes, flow: Flow) -> bool {
    match (takes, flow.count) {
        (Takes::Features(want), Some(got)) if !flow.map => want == got,
        _ => true,
    }
}

/// Whether a map fits a layer that takes features on its last axis: only when the map's width
/// is that count (dfdx applies `Linear` to the last axis), which is almost never meant.
pub const fn map_features_fit(takes: Takes, flow: Flow) -> bool {
    match takes {
        Takes::Features(want) if flow.known && flow.map => flow.size.1 == want,
        _ => true,
    }
}

/// Whether a map's channel count fits `takes` (unknown counts fit).
pub const fn channels_fit(takes: Takes, flow: Flow) -> bool {
    match (takes, flow.count) {
        (Takes::Channels(want), Some(got)) if flow.map => want == got,
        _ => true,
    }
}

/// Whether a map's `C·H·W` fits `takes` (unknown counts fit).
pub const fn values_fit(takes: Takes, flow: Flow) -> bool {
    match (takes, flow.count) {
        (Takes::Values(want), Some(_)) if flow.map => want == flow.values(),
        _ => true,
    }
}

/// The count `takes` wants (0 when it wants none): a const argument of the messages.
pub const fn wanted(takes: Takes) -> usize {
    match takes {
        Takes::Features(n) | Takes::Channels(n) | Takes::Values(n) => n,
        Takes::Any | Takes::Map => 0,
    }
}

/// A field type that dfdx can build: a layer. The check names a field that is not one (a
/// `String`, a tensor) at its type, where dfdx's own error names only the struct.
#[diagnostic::on_unimplemented(
    message = "`{Self}` is not a layer",
    label = "not a layer dfdx can build",
    note = "every field of a `#[model]` or `#[distill]` struct is one layer, applied in order; keep other data outside the model struct"
)]
pub trait Layer {}

impl<L: dfdx::nn::BuildOnDevice<dfdx::tensor::Cpu, f32> + ?Sized> Layer for L {}

/// Fails to compile unless `L` is a [`Layer`].
pub const fn require_layer<L: Layer + ?Sized>() {}

/// Implemented exactly when `OK`: field `Self` takes a map and `Prev` gives one.
#[diagnostic::on_unimplemented(
    message = "`{Self}` takes a feature map (channels × height × width), but `{Prev}` gives a vector of {GOT} features",
    label = "this layer needs a map",
    note = "convolution, pooling, `BatchNorm2D` and `Flatten2D` work on maps; put them before the layer that flattens"
)]
pub trait TakesMap<Prev, const OK: bool, const GOT: usize> {}
impl<F, P, const GOT: usize> TakesMap<P, true, GOT> for F {}

/// Implemented exactly when `OK`: field `Self` takes `WANT` features and `Prev` gives them.
#[diagnostic::on_unimplemented(
    message = "`{Self}` expects {WANT} input features, but `{Prev}` gives {GOT}",
    label = "this layer's input size does not match",
    note = "a layer's input size must be the output size of the field before it"
)]
pub trait TakesFeatures<Prev, const OK: bool, const WANT: usize, const GOT: usize> {}
impl<F, P, const WANT: usize, const GOT: usize> TakesFeatures<P, true, WANT, GOT> for F {}

/// Implemented exactly when `OK`: field `Self` takes `WANT` features, and `Prev` gives a map.
#[diagnostic::on_unimplemented(
    message = "`{Self}` expects {WANT} input features, but `{Prev}` gives a {C}×{H}×{W} map",
    label = "this layer needs a vector",
    note = "flatten the map first: `Flatten2D<{VALUES}>` gives its {VALUES} values as features"
)]
pub trait TakesVector<Prev, const OK: bool, const WANT: usize, const C: usize, const H: usize, const W: usize, const VALUES: usize> {}
impl<F, P, const WANT: usize, const C: usize, const H: usize, const W: usize, const VALUES: usize>
    TakesVector<P, true, WANT, C, H, W, VALUES> for F
{
}

/// Implemented exactly when `OK`: field `Self` takes `WANT` channels and `Prev` gives them.
#[diagnostic::on_unimplemented(
    message = "`{Self}` expects {WANT} input channels, but `{Prev}` gives {GOT}",
    label = "this layer's input channels do not match",
    note = "a layer's input channels must be the output channels of the field before it"
)]
pub trait TakesChannels<Prev, const OK: bool, const WANT: usize, const GOT: usize> {}
impl<F, P, const WANT: usize, const GOT: usize> TakesChannels<P, true, WANT, GOT> for F {}

/// Implemented exactly when `OK`: field `Self` flattens `WANT` values and `Prev` gives them.
#[diagnostic::on_unimplemented(
    message = "`{Self}` flattens {WANT} values, but `{Prev}` gives a {C}×{H}×{W} map: {VALUES} values",
    label = "this flatten's size does not match",
    note = "`Flatten2D<N>` needs N = channels × height × width of the map before it"
)]
pub trait TakesValues<Prev, const OK: bool, const WANT: usize, const C: usize, const H: usize, const W: usize, const VALUES: usize> {}
impl<F, P, const WANT: usize, const C: usize, const H: usize, const W: usize, const VALUES: usize>
    TakesValues<P, true, WANT, C, H, W, VALUES> for F
{
}

/// Fails to compile unless field `F` accepts the flow `Prev` gives: each bound is one kind of
/// mismatch, true unless that mismatch happened, so only the one that did is reported.
#[allow(clippy::too_many_arguments)]
pub const fn require_takes<
    F: TakesMap<Prev, RANK, GOT>
        + TakesFeatures<Prev, FEATURES, WANT, GOT>
        + TakesVector<Prev, VECTOR, WANT, GOT, H, W, VALUES>
        + TakesChannels<Prev, CHANNELS, WANT, GOT>
        + TakesValues<Prev, FLAT, WANT, GOT, H, W, VALUES>,
    Prev,
    const RANK: bool,
    const FEATURES: bool,
    const VECTOR: bool,
    const CHANNELS: bool,
    const FLAT: bool,
    const WANT: usize,
    const GOT: usize,
    const H: usize,
    const W: usize,
    const VALUES: usize,
>() {
}

/// Implemented exactly when `OK`: the student side of pairing `Self` gives a map.
#[diagnostic::on_unimplemented(
    message = "`{Self}`: the student's layer gives a vector, but attention, NST and FSP compare feature maps",
    label = "this layer's output is not a (channels × height × width) map",
    note = "pair maps of convolutional layers for `attention`, `features(nst)` and `relations` (FSP); a vector pairs with `features(hint)`, `sparsity` or `relations(samples)`"
)]
pub trait StudentGivesMap<const OK: bool> {}
impl<P> StudentGivesMap<true> for P {}

/// Implemented exactly when `OK`: the teacher side of pairing `Self` gives a map.
#[diagnostic::on_unimplemented(
    message = "`{Self}`: the teacher's layer gives a vector, but attention, NST and FSP compare feature maps",
    label = "this teacher layer's output is not a (channels × height × width) map",
    note = "pair maps of convolutional layers for `attention`, `features(nst)` and `relations` (FSP); a vector pairs with `features(hint)`, `sparsity` or `relations(samples)`"
)]
pub trait TeacherGivesMap<const OK: bool> {}
impl<P> TeacherGivesMap<true> for P {}

/// Implemented exactly when `OK`: FSP's pairing `Self` has equal channel counts.
#[diagnostic::on_unimplemented(
    message = "`{Self}` pairs {S} student channels with {T} teacher channels, but FSP compares its matrices entry by entry",
    label = "FSP needs the teacher layer's channel count here",
    note = "an FSP matrix is channels × channels of two consecutive paired layers; give the student layer the teacher layer's channels, or use `attention` or `features(nst)`, which work across channel counts"
)]
pub trait EqualChannels<const OK: bool, const S: usize, const T: usize> {}
impl<P, const S: usize, const T: usize> EqualChannels<true, S, T> for P {}

/// Fails to compile unless both sides of pairing `P` give maps.
pub const fn require_maps<P: StudentGivesMap<STUDENT> + TeacherGivesMap<TEACHER>, const STUDENT: bool, const TEACHER: bool>() {}

/// Fails to compile unless pairing `P` has equal channel counts.
pub const fn require_equal_channels<P: EqualChannels<OK, S, T>, const OK: bool, const S: usize, const T: usize>() {}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::nn::builders::{Conv2D, Flatten2D, Linear, MaxPool2D};
    use dfdx::nn::builders::ReLU;

    #[test]
    fn a_lenet_flows_through_its_layers() {
        let chain = [
            layer_shape::<Conv2D<1, 6, 5, 1, 2>>(),
            layer_shape::<ReLU>(),
            layer_shape::<MaxPool2D<2, 2>>(),
            layer_shape::<Flatten2D<1176>>(),
            layer_shape::<Linear<1176, 10>>(),
        ];
        let input = Flow::map(1, 28, 28);
        assert_eq!(flow_after(&chain, 3, input), Flow::map(6, 14, 14));
        assert_eq!(flow_after(&chain, 5, input), Flow::vector(10));
        for (i, layer) in chain.iter().enumerate() {
            assert!(fits(layer.takes, flow_after(&chain, i, input)));
        }
        assert_eq!(first_misfit(&chain, input), chain.len());
        assert_eq!(first_misfit(&chain, Flow::map(3, 28, 28)), 0);
        assert_eq!(first_misfit(&chain, Flow::map(1, 32, 32)), 3);
    }

    #[test]
    fn each_mismatch_is_caught_by_its_own_check() {
        let conv = layer_shape::<Conv2D<3, 6, 3>>().takes;
        assert!(!channels_fit(conv, Flow::map(1, 8, 8)));
        assert!(!rank_fits(conv, Flow::vector(3)));
        // Nothing is reported after a map layer given a vector, until a vector is declared.
        assert_eq!(layer_shape::<MaxPool2D<2, 2>>().apply(Flow::vector(128)), Flow::UNKNOWN);
        let flatten = layer_shape::<Flatten2D<64>>().takes;
        assert!(!values_fit(flatten, Flow::map(4, 2, 2)) && values_fit(flatten, Flow::map(4, 4, 4)));
        let linear = layer_shape::<Linear<12, 3>>().takes;
        assert!(!features_fit(linear, Flow::vector(16)) && features_fit(linear, Flow::vector(12)));
        assert!(!map_features_fit(linear, Flow::map(4, 4, 4)));
    }

    #[test]
    fn an_unknown_count_is_not_checked_until_a_layer_sets_it() {
        struct CountFree;
        impl Spatial for CountFree {
            const EFFECT: SpatialEffect = SpatialEffect::Vector;
        }
        let chain = [layer_shape::<CountFree>(), layer_shape::<ReLU>(), layer_shape::<Linear<5, 2>>()];
        let flow = flow_after(&chain, 2, Flow::map(3, 4, 4));
        assert_eq!((flow.known, flow.map, flow.count), (true, false, None));
        assert!(features_fit(Takes::Features(99), flow));
        assert_eq!(flow_after(&chain, 3, Flow::map(3, 4, 4)), Flow::vector(2));
    }

    #[test]
    fn a_layer_without_spatial_makes_the_shape_unknown_until_a_vector_is_declared() {
        struct Foreign;
        let chain = [
            <ShapeOf<Foreign>>::SHAPE,
            layer_shape::<Conv2D<7, 4, 3>>(),
            layer_shape::<Flatten2D<10>>(),
            layer_shape::<Linear<10, 3>>(),
        ];
        assert_eq!(<ShapeOf<ReLU>>::SHAPE, layer_shape::<ReLU>());
        let input = Flow::map(3, 8, 8);
        for layers in 1..3 {
            let flow = flow_after(&chain, layers, input);
            assert_eq!(flow, Flow::UNKNOWN);
            assert!(rank_fits(Takes::Map, flow) && channels_fit(Takes::Channels(7), flow) && values_fit(Takes::Values(10), flow));
        }
        assert_eq!(flow_after(&chain, 3, input), Flow::vector(10));
        assert_eq!(flow_after(&chain, 4, input), Flow::vector(3));
    }

    #[test]
    fn blocks_give_what_their_last_counting_layer_gives() {
        type Block = (Conv2D<3, 8, 3, 1, 1>, ReLU, MaxPool2D<2, 2>);
        type Head = (Flatten2D<128>, Linear<128, 10>);
        let block = layer_shape::<Block>();
        assert_eq!((block.takes, block.gives), (Takes::Channels(3), Gives::Count(8)));
        let chain = [block, layer_shape::<Head>()];
        assert_eq!(flow_after(&chain, 1, Flow::map(3, 8, 8)), Flow::map(8, 4, 4));
        assert_eq!(flow_after(&chain, 2, Flow::map(3, 8, 8)), Flow::vector(10));
        let residual = layer_shape::<dfdx::nn::builders::Residual<(Conv2D<8, 8, 3, 1, 1>, ReLU)>>();
        assert_eq!(residual.apply(Flow::map(8, 4, 4)), Flow::map(8, 4, 4));
    }
}
