//! Declarative distillation: `#[model]` and `#[distill(...)]`, and the runtime contract
//! their generated code implements.
//!
//! # The grammar
//!
//! A teacher and a student are structs whose named fields are dfdx 0.13 layer builders,
//! applied in order. `#[model]` marks a teacher; `#[distill(...)]` marks a student (and makes
//! it a model too). Both generate the dfdx boilerplate: `BuildOnDevice` (so
//! `dev.build_module::<Teacher, f32>()` works), `TensorCollection` (optimisers, `alloc_grads`,
//! `zero_grads`, safetensors, `to_device`), `Module`/`ModuleMut` (sequential forward), and
//! [`TappedModule`]/[`TappedModuleMut`], a forward that also returns every layer's output,
//! typed and named after its field.
//!
//! | key | meaning | default |
//! |---|---|---|
//! | `teacher = Path` | the teacher model (`teacher = Self`: self-distillation) | required |
//! | `input = [F]` or `[C, H, W]` | one sample's shape; the batch dimension is dynamic | required |
//! | `temp = 4.0` | softmax temperature of the logit term (finite, > 0) | 4 |
//! | `ce_weight = 0.1`, `kd_weight = 0.9` | weights of the hard CE and the `T²·KL` term | 0.1 / 0.9 |
//! | `match(...)` | kinds of knowledge, below | logits only |
//! | `dtype = f64` | float type of the generated code | `f32` |
//! | `crate = "path"` | where kd-core is, if renamed | `::kd_core` |
//!
//! `match(...)` kinds, each optionally `kind(option, weight = w)`:
//!
//! | kind | terms (per pair unless noted) | default weight |
//! |---|---|---|
//! | `features` / `features(hint)` | FitNet [`hint_loss`](crate::loss::hint_loss) through a typed adapter | [`weights::HINT`] |
//! | `features(nst)` | [`nst_loss`](crate::loss::nst_loss), polynomial kernel | [`weights::NST`] |
//! | `attention` / `attention(paper)` | [`at_loss`](crate::loss::at_loss), authors' code or paper convention | [`weights::ATTENTION`] |
//! | `attention(gradient)` | one [`gradient_at_loss`](crate::loss::gradient_at_loss) term | [`weights::GRADIENT_ATTENTION`] |
//! | `sparsity` | [`ab_loss`](crate::loss::ab_loss) through a connector adapter | [`weights::SPARSITY`] |
//! | `relations` | [`fsp_loss`](crate::loss::fsp_loss) between consecutive paired layers | [`weights::FSP`] |
//! | `relations(samples)` | RKD distance and angle, and [`sp_loss`](crate::loss::sp_loss) | [`weights::RKD_DISTANCE`], [`weights::RKD_ANGLE`], [`weights::SP`] |
//! | `relations(rkd)` / `relations(sp)` | RKD distance and angle only / SP only | as above |
//!
//! A student field joins a pairing with `#[distill(pair)]` (the teacher field of the same name)
//! or `#[distill(pair = teacher_field)]`; `#[distill(pair, weight = 2.0)]` scales that pair's
//! terms. An adapter maps the student field's width to the teacher field's, sized from the two
//! layer types at compile time ([`Width`]): a `Linear` for vectors, a 1×1 convolution for maps.
//! With `input = [C, H, W]`, paired maps are checked at compile time to be alignable.
//!
//! The generated loss ([`Distill::distill_loss`]) returns [`LossTerms`]: `"ce"`, `"kd"`, then
//! one named term per pair and kind (`"hint.fc2"`, `"attention.conv1"`, ...). Its maths is
//! calls into [`crate::loss`]; a test checks it equals a hand-written dfdx step.
//!
//! ```
//! use dfdx::optim::{Sgd, SgdConfig};
//! use dfdx::prelude::*;
//! use kd_core::distill::{distill_step, Distill};
//! use kd_core::{distill, model};
//!
//! #[model]
//! struct Teacher {
//!     fc1: Linear<784, 256>,
//!     act: ReLU,
//!     fc2: Linear<256, 256>,
//!     act2: ReLU,
//!     head: Linear<256, 10>,
//! }
//!
//! #[distill(teacher = Teacher, input = [784], temp = 20.0, match(features))]
//! struct Student {
//!     fc1: Linear<784, 64>,
//!     act: ReLU,
//!     #[distill(pair)] // hint from the teacher's fc2, through a Linear<64, 256> adapter
//!     fc2: Linear<64, 64>,
//!     act2: ReLU,
//!     head: Linear<64, 10>,
//! }
//!
//! let dev = Cpu::default();
//! let teacher = dev.build_module::<Teacher, f32>();
//! let mut distiller = Student::build_distiller(&dev); // student + adapters
//! let mut opt = Sgd::new(&distiller, SgdConfig::default());
//! let grads = distiller.alloc_grads();
//! let images: Tensor<(usize, Const<784>), f32, _> = dev.sample_normal_like(&(8, Const));
//! let labels = [3, 1, 4, 1, 5, 9, 2, 6];
//! let (terms, _grads) = distill_step::<Student, _>(&mut distiller, &teacher, &mut opt, images, &labels, grads, 0)?;
//! for term in &terms {
//!     println!("{:>8}: {:.4} (weight {})", term.name, term.value, term.weight);
//! }
//! assert_eq!(terms.iter().map(|t| t.name).collect::<Vec<_>>(), ["ce", "kd", "hint.fc2"]);
//! # Ok::<(), kd_core::distill::StepError>(())
//! ```
//!
//! # Mistakes are compile errors
//!
//! Each points at the token that is wrong, and every one in a build is reported together: an
//! unknown key, kind or option (with a did-you-mean), a duplicate key or kind, a `temp` that is
//! ≤ 0, NaN or not a number, an empty `match()`, a kind that needs pairs without any (or a pair
//! no kind uses), a missing `teacher` or `input`, a pairing naming a teacher field that does not
//! exist, a layer without a known width, paired maps that cannot be aligned (naming both fields
//! and both sizes), and the macro on an enum, tuple or unit struct. `tests/tests/ui/` holds one
//! case per message.

use dfdx::nn::{BuildOnDevice, Module, ModuleMut, ModuleVisitor, TensorCollection, ZeroGrads};
use dfdx::optim::Optimizer;
use dfdx::prelude::*;
use dfdx::tensor::{Gradients, OwnedTape, PutTape, SplitTape};
use dfdx::tensor_ops::Device;

use crate::loss::{LossTerms, Term};

/// The built (on-device) type of a builder: `Built<Teacher>` is what `dev.build_module::<Teacher,
/// f32>()` returns.
pub type Built<M, E = f32, D = Cpu> = <M as BuildOnDevice<D, E>>::Built;

/// A module whose forward also returns every layer's output ("taps"), untaped and typed.
pub trait TappedModule<Input>: Module<Input> {
    /// One field per layer, holding that layer's output.
    type Taps;
    /// The forward pass and its taps.
    fn try_forward_tapped(&self, input: Input) -> Result<(Self::Output, Self::Taps), Self::Error>;
}

/// [`TappedModule`] for training forwards (`ModuleMut`: dropout, batch-norm statistics).
pub trait TappedModuleMut<Input>: ModuleMut<Input> {
    /// One field per layer, holding that layer's output.
    type Taps;
    /// The training forward pass and its taps.
    fn try_forward_tapped_mut(&mut self, input: Input) -> Result<(Self::Output, Self::Taps), Self::Error>;
}

/// Splits a layer output into its untaped tap and the value that flows on with the tape.
pub fn tap<T: SplitTape>(output: T) -> (T::NoTape, T) {
    let (value, tape) = output.split_tape();
    (value.clone(), value.put_tape(tape))
}

/// The output width of a layer: features of a `Linear`, channels of a convolution. The
/// adapters of `#[distill]` pairs take their sizes from it.
#[diagnostic::on_unimplemented(
    message = "`{Self}` has no known output width, so `#[distill]` cannot size an adapter for it",
    note = "pair a layer with weights (Linear, Conv2D, ConvTrans2D, BatchNorm2D), not an activation or pooling layer"
)]
pub trait Width {
    /// Features or channels out.
    const WIDTH: usize;
    /// The adapter mapping `FROM` such outputs to `TO` (a `Linear` for vectors, a 1×1
    /// convolution for feature maps).
    type Adapter<const FROM: usize, const TO: usize>;
}

impl<const I: usize, const O: usize> Width for dfdx::nn::builders::Linear<I, O> {
    const WIDTH: usize = O;
    type Adapter<const FROM: usize, const TO: usize> = crate::loss::LinearAdapter<FROM, TO>;
}

impl<const I: usize, const O: usize> Width for crate::nn::builders::Linear<I, O> {
    const WIDTH: usize = O;
    type Adapter<const FROM: usize, const TO: usize> = crate::loss::LinearAdapter<FROM, TO>;
}

impl<const I: usize, const O: usize, const K: usize, const S: usize, const P: usize> Width for crate::nn::builders::Conv2D<I, O, K, S, P> {
    const WIDTH: usize = O;
    type Adapter<const FROM: usize, const TO: usize> = crate::loss::Conv1x1Adapter<FROM, TO>;
}

impl<const I: usize, const O: usize, const K: usize, const S: usize, const P: usize> Width
    for crate::nn::builders::ConvTrans2D<I, O, K, S, P>
{
    const WIDTH: usize = O;
    type Adapter<const FROM: usize, const TO: usize> = crate::loss::Conv1x1Adapter<FROM, TO>;
}

impl<const C: usize> Width for dfdx::nn::builders::BatchNorm2D<C> {
    const WIDTH: usize = C;
    type Adapter<const FROM: usize, const TO: usize> = crate::loss::Conv1x1Adapter<FROM, TO>;
}

/// A student and the adapters of its pairings: what the optimiser updates.
#[derive(Debug, Clone)]
pub struct Distiller<S, A> {
    /// The student model.
    pub student: S,
    /// One adapter per pairing that needs one, in declaration order.
    pub adapters: A,
}

impl<S: TensorCollection<E, D>, A: TensorCollection<E, D>, E: Dtype, D: Device<E>> TensorCollection<E, D> for Distiller<S, A> {
    type To<E2: Dtype, D2: Device<E2>> = Distiller<S::To<E2, D2>, A::To<E2, D2>>;

    fn iter_tensors<V: ModuleVisitor<Self, E, D>>(visitor: &mut V) -> Result<Option<Self::To<V::E2, V::D2>>, V::Err> {
        visitor.visit_fields(
            (
                Self::module("student", |s| &s.student, |s| &mut s.student),
                Self::module("adapters", |s| &s.adapters, |s| &mut s.adapters),
            ),
            |(student, adapters)| Distiller { student, adapters },
        )
    }
}

/// Implemented by `#[distill]` on a student: its teacher, its adapters and its loss. Every
/// loss term comes from [`crate::loss`].
pub trait Distill: Sized {
    /// The float type of the generated code (`f32` unless `dtype = f64`).
    type Dtype: Dtype;
    /// The teacher's builder type (`Self` for self-distillation).
    type Teacher;
    /// The built teacher, as `dev.build_module::<Self::Teacher, _>()` returns it.
    type TeacherModel;
    /// The built student and adapters: a [`Distiller`], which the optimiser updates.
    type Model;
    /// The untaped input batch: `(usize, ...)`, the batch dimension dynamic.
    type Input;

    /// Builds the student and its adapters on `device`.
    fn build_distiller(device: &Cpu) -> Self::Model;

    /// The loss of one batch: `"ce"` and `"kd"` on the logits, then one named term per pairing
    /// and kind (`"hint.fc2"`, `"attention.conv2"`, ...).
    fn distill_loss(
        distiller: &mut Self::Model,
        teacher: &Self::TeacherModel,
        input: Self::Input,
        targets: &[usize],
        grads: Gradients<Self::Dtype, Cpu>,
    ) -> LossTerms<Self::Dtype, Cpu, OwnedTape<Self::Dtype, Cpu>>
    where
        Cpu: Device<Self::Dtype>;
}

/// Implemented by `#[distill]` when the student learns from the teacher's logits alone (no
/// `match(...)`), so the teacher's outputs can be computed once and cached
/// ([`crate::train::TeacherCache`]) while the inputs are not augmented.
#[diagnostic::on_unimplemented(
    message = "`{Self}` cannot learn from cached teacher logits",
    note = "only a student without `match(...)` learns from the logits alone; feature, attention and relation terms need the teacher's forward pass each step"
)]
pub trait DistillFromLogits: Distill {
    /// The teacher's logits of a batch: `(usize, Const<CLASSES>)`.
    type Logits;

    /// The teacher's logits of `input`, for filling a cache.
    fn teacher_logits(teacher: &Self::TeacherModel, input: Self::Input) -> Self::Logits;

    /// [`Distill::distill_loss`] with the teacher's logits given.
    fn distill_loss_from_logits(
        distiller: &mut Self::Model,
        teacher_logits: Self::Logits,
        input: Self::Input,
        targets: &[usize],
        grads: Gradients<Self::Dtype, Cpu>,
    ) -> LossTerms<Self::Dtype, Cpu, OwnedTape<Self::Dtype, Cpu>>
    where
        Cpu: Device<Self::Dtype>;
}

/// Why a training step stopped.
#[derive(Debug, thiserror::Error)]
pub enum StepError {
    /// A loss term was NaN or infinite; no update was applied.
    #[error("loss term `{term}` is {value} at step {step}; no update was applied")]
    NonFinite {
        /// The term's name.
        term: &'static str,
        /// Its value.
        value: f64,
        /// The step counter passed in.
        step: usize,
    },
    /// The optimiser failed.
    #[error("optimiser update failed at step {step}: {message}")]
    Update {
        /// The step counter passed in.
        step: usize,
        /// The optimiser's error.
        message: String,
    },
}

/// What a step returns: every named term, and the gradient buffers for the next step.
pub type StepOutput<E> = (Vec<Term>, Gradients<E, Cpu>);

/// One distillation step: the loss, a NaN/Inf guard naming the term and the step, backward,
/// the optimiser update of student and adapters together, and zeroed gradients for the next
/// step.
///
/// Returns every named term of the step and the gradient buffers to pass to the next one.
pub fn distill_step<M, O>(
    distiller: &mut M::Model,
    teacher: &M::TeacherModel,
    optimizer: &mut O,
    input: M::Input,
    targets: &[usize],
    grads: Gradients<M::Dtype, Cpu>,
    step: usize,
) -> Result<StepOutput<M::Dtype>, StepError>
where
    M: Distill,
    Cpu: Device<M::Dtype>,
    M::Model: TensorCollection<M::Dtype, Cpu>,
    O: Optimizer<M::Model, Cpu, M::Dtype>,
{
    let loss = M::distill_loss(distiller, teacher, input, targets, grads);
    apply_step(loss, distiller, optimizer, step)
}

/// [`distill_step`] with the teacher's logits given (from a [`crate::train::TeacherCache`])
/// instead of a teacher forward pass: for students that learn from the logits alone.
pub fn distill_step_from_logits<M, O>(
    distiller: &mut M::Model,
    teacher_logits: M::Logits,
    optimizer: &mut O,
    input: M::Input,
    targets: &[usize],
    grads: Gradients<M::Dtype, Cpu>,
    step: usize,
) -> Result<StepOutput<M::Dtype>, StepError>
where
    M: DistillFromLogits,
    Cpu: Device<M::Dtype>,
    M::Model: TensorCollection<M::Dtype, Cpu>,
    O: Optimizer<M::Model, Cpu, M::Dtype>,
{
    let loss = M::distill_loss_from_logits(distiller, teacher_logits, input, targets, grads);
    apply_step(loss, distiller, optimizer, step)
}

/// The shared end of every training step: a NaN/Inf guard naming the term and the step,
/// backward, the optimiser update, and zeroed gradients for the next step.
pub fn apply_step<E, M, O>(
    loss: LossTerms<E, Cpu, OwnedTape<E, Cpu>>,
    model: &mut M,
    optimizer: &mut O,
    step: usize,
) -> Result<StepOutput<E>, StepError>
where
    E: Dtype,
    Cpu: Device<E>,
    M: TensorCollection<E, Cpu>,
    O: Optimizer<M, Cpu, E>,
{
    if let Some(bad) = loss.first_non_finite() {
        return Err(StepError::NonFinite {
            term: bad.name,
            value: bad.value,
            step,
        });
    }
    let terms = loss.terms().to_vec();
    let mut grads = loss.into_total().backward();
    optimizer.update(model, &grads).map_err(|e| StepError::Update {
        step,
        message: format!("{e:?}"),
    })?;
    model.zero_grads(&mut grads);
    Ok((terms, grads))
}

/// The default weight of each kind of term `#[distill]` generates, from the reference recipes;
/// `match(kind(weight = w))` overrides one, `#[distill(pair, weight = s)]` scales one pair.
pub mod weights {
    /// FitNet hint: RepDistiller's `-b 100`.
    pub const HINT: f64 = 100.0;
    /// NST: RepDistiller's `-b 50`.
    pub const NST: f64 = 50.0;
    /// Attention transfer (authors' code form): β = 1000.
    pub const ATTENTION: f64 = 1000.0;
    /// Gradient-based attention transfer, `½‖J_S − J_T‖²` as is.
    pub const GRADIENT_ATTENTION: f64 = 1.0;
    /// The finite-difference step of the gradient-attention Hessian-vector product (f32).
    pub const GRADIENT_ATTENTION_STEP: f64 = 1e-2;
    /// Activation boundaries: the official 3/1000 on the layer sum.
    pub const SPARSITY: f64 = 3.0 / 1000.0;
    /// FSP: the paper's λ = 1 per pair of layers.
    pub const FSP: f64 = 1.0;
    /// RKD distance: RepDistiller's 25.
    pub const RKD_DISTANCE: f64 = 25.0;
    /// RKD angle: RepDistiller's 50.
    pub const RKD_ANGLE: f64 = 50.0;
    /// Similarity-preserving: RepDistiller's γ = 3000.
    pub const SP: f64 = 3000.0;
}

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
}

/// The spatial effects of a model's layers in order, for a tuple of layer builders.
pub trait SpatialChain {
    /// One effect per layer.
    const EFFECTS: &'static [SpatialEffect];
}

macro_rules! spatial_chain {
    ($($layer:ident),+) => {
        impl<$($layer: Spatial),+> SpatialChain for ($($layer,)+) {
            const EFFECTS: &'static [SpatialEffect] = &[$($layer::EFFECT),+];
        }
    };
}

spatial_chain!(L0);
spatial_chain!(L0, L1);
spatial_chain!(L0, L1, L2);
spatial_chain!(L0, L1, L2, L3);
spatial_chain!(L0, L1, L2, L3, L4);
spatial_chain!(L0, L1, L2, L3, L4, L5);
spatial_chain!(L0, L1, L2, L3, L4, L5, L6);
spatial_chain!(L0, L1, L2, L3, L4, L5, L6, L7);
spatial_chain!(L0, L1, L2, L3, L4, L5, L6, L7, L8);
spatial_chain!(L0, L1, L2, L3, L4, L5, L6, L7, L8, L9);
spatial_chain!(L0, L1, L2, L3, L4, L5, L6, L7, L8, L9, L10);
spatial_chain!(L0, L1, L2, L3, L4, L5, L6, L7, L8, L9, L10, L11);
spatial_chain!(L0, L1, L2, L3, L4, L5, L6, L7, L8, L9, L10, L11, L12);
spatial_chain!(L0, L1, L2, L3, L4, L5, L6, L7, L8, L9, L10, L11, L12, L13);
spatial_chain!(L0, L1, L2, L3, L4, L5, L6, L7, L8, L9, L10, L11, L12, L13, L14);
spatial_chain!(L0, L1, L2, L3, L4, L5, L6, L7, L8, L9, L10, L11, L12, L13, L14, L15);
