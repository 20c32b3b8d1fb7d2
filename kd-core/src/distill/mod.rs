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
//! | `teacher = Path` | the teacher model (`teacher = Self`: self-distillation) | required (or `teachers`) |
//! | `teachers(a = T1, b = T2)` | several teachers (2 to 6), each named; `Teacher` is the tuple `(T1, T2)` | — |
//! | `teacher_weights(a = 2.0)` | a teacher's relative weight in the soft term (shares summing to 1) | 1 each |
//! | `ensemble = average` or `each` | one `"kd"` term against the teachers' averaged probabilities, or a `"kd.<name>"` term per teacher ([`multi_teacher`](crate::loss::multi_teacher)) | `average` |
//! | `input = [F]` or `[C, H, W]` | one sample's shape; the batch dimension is dynamic | required |
//! | `temp = 4.0` | softmax temperature of the logit term (finite, > 0) | 4 |
//! | `ce_weight = 0.1`, `kd_weight = 0.9` | weights of the hard CE and the `T²·KL` term | 0.1 / 0.9 |
//! | `logits = jsd(beta = 0.5)` | the soft term's divergence: `kl`, `reverse_kl`, `jsd(beta = β)`, `tvd`, `dist(beta = β, gamma = γ)` ([`Divergence`](crate::loss::Divergence); each at `temp`, times `T²`) | `kl` |
//! | `match(...)` | kinds of knowledge, below | logits only |
//! | `dtype = f64` | float type of the generated code | `f32` |
//! | `crate = "path"` | where kd-core is, if renamed | `::kd_core` |
//!
//! `temp`, `ce_weight`, `kd_weight` and a kind's `weight` also take a path to a `const` of any
//! numeric type (`temp = crate::TEMPERATURE`); the generated code checks its value at compile
//! time (``evaluation panicked: `temp = TEMPERATURE` must be finite and > 0``).
//!
//! Every number written here is a default, not a constant: [`Distill::settings`] returns them
//! as [`Settings`], which a training loop may change between steps (a
//! [`KdSchedule`](crate::train::KdSchedule) for the temperature and weights, or
//! [`Settings::set_weight`] for one term) and pass to [`distill_step_with`].
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
//! What each kind needs of a pair: `features(hint)`, `sparsity` and `relations(samples | rkd |
//! sp)` work on vectors and on maps; `features(nst)`, `attention` and `relations` (FSP) need
//! 4-D maps `(batch, channels, height, width)`, so they do not apply to a `Linear`; FSP also
//! needs each paired student layer to have its teacher layer's channel count, because the FSP
//! matrices are compared entry by entry (of two consecutive maps of different sizes, the larger
//! is pooled to the smaller). Both are checked at compile time, naming the pairing: "the
//! student's layer gives a vector, but attention, NST and FSP compare feature maps", "pairs 8
//! student channels with 16 teacher channels, but FSP compares its matrices entry by entry".
//!
//! A student field joins a pairing with `#[distill(pair)]` (the teacher field of the same name)
//! or `#[distill(pair = teacher_field)]`, and with several teachers `#[distill(pair =
//! wide.field)]` names the teacher too (each teacher has its own pairings; FSP relates
//! consecutive pairs of one teacher). A field may name its pair's own kinds, which replace the
//! container's `match(...)` for that pair: `#[distill(pair, features(hint, weight = 5.0),
//! attention)]` (kinds of one pair only; FSP and gradient attention stay in `match(...)`, and
//! FSP relates the pairs on the container's kinds); `#[distill(pair, weight = 2.0)]` scales that pair's
//! terms (an FSP term between two pairs takes the product of both pairs' weights). Each kind
//! takes one method (`features(hint), features(nst)` for both), and kinds whose terms overlap
//! (`relations(samples)` with `relations(sp)`) are a compile error, as is a `weight` on a field
//! without `pair`. An adapter maps the student field's width to the teacher field's, sized from the two
//! layer types at compile time ([`Width`]): a `Linear` for vectors, a 1×1 convolution for maps.
//! With `input = [C, H, W]`, paired maps are checked at compile time to be alignable, through
//! every layer before them: kd knows the size rule of its and dfdx's layers, of a tuple of
//! layers as one field, of dfdx's `Residual` (size kept), `GeneralizedResidual` and `Repeated`;
//! a layer it does not know (a third crate's, your own) takes
//! `#[distill(keeps_shape)]` on its field when it keeps its input's shape ([`Spatial`] otherwise).
//! A model may have any number of layers.
//!
//! Each student field is also checked to take what the field before it gives (the first field,
//! what `input = [...]` gives), spanned at the field's type: "`` `Student_fc2` expects 12 input
//! features, but `Student_relu1` gives 16 ``", a convolution's input channels, a `Flatten2D<N>`
//! whose `N` is not the map's `C·H·W`, a `Linear` given an unflattened map, a pooling layer
//! given a vector, and a field that is not a layer at all. A layer kd has no [`Spatial`] rule
//! for is passed over (the shape after it is unknown until a `Linear` or `Flatten2D` sets it
//! again), so the check never rejects a model dfdx would run.
//!
//! The generated loss ([`Distill::distill_loss`]) returns [`LossTerms`]: `"ce"`, `"kd"` (or
//! `"kd.wide"`, `"kd.deep"`, ... with `ensemble = each`), then one named term per pair and kind
//! (`"hint.fc2"`, `"attention.conv1"`, ...), or the first loss's
//! [`LossError`]. Its maths is
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
//! and both sizes), a field that does not take what the field before it gives (naming both
//! fields and both counts), a vector paired for attention, NST or FSP, FSP pairs of unequal
//! channel counts, `teacher` together with `teachers(...)`, fewer than two teachers, a pairing
//! that does not name its teacher among several (or names an unknown one), teachers whose
//! logits differ from the student's, and the macro on an enum, tuple or unit struct. `tests/tests/ui/` holds one
//! case per message.
//!
//! The folder's files: this one holds the contract the generated code implements, `step.rs`
//! the training step and its guard, [`weights`] the default of every setting, `size.rs`
//! the compile-time check that paired maps can be aligned, and `chain.rs` the check that each
//! layer takes what the one before it gives.

pub(crate) mod chain;
mod fields;
mod size;
mod step;

pub use crate::defaults as weights;
pub use crate::tap::{tap, TappedModule, TappedModuleMut};
pub use chain::{Gives, Takes};
pub use fields::{Char, LayerMarker, ModelField, ModelLayers};
pub use size::{
    alignable, map_after_chain, require_aligned, size_after, size_after_chain, AlignedMaps, EffectList, KeepsShape, Spatial, SpatialChain,
    SpatialEffect,
};
pub use step::{
    apply_step, check_labels, distill_step, distill_step_from_logits, distill_step_from_logits_with, distill_step_with, StepError,
    StepOutput, Trainer,
};

use dfdx::nn::{BuildOnDevice, ModuleVisitor, TensorCollection};
use dfdx::prelude::*;
use dfdx::tensor::{Gradients, OwnedTape};
use dfdx::tensor_ops::Device;

use crate::error::LossError;
use crate::loss::{KdConfig, LossTerms};

/// The built (on-device) type of a builder: `Built<Teacher>` is what `dev.build_module::<Teacher,
/// f32>()` returns.
pub type Built<M, E = f32, D = Cpu> = <M as BuildOnDevice<D, E>>::Built;

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

/// The number of samples in a batch: its first dimension.
pub trait BatchSize {
    /// The first dimension's size (0 for a scalar).
    fn batch_size(&self) -> usize;
}

impl<S: dfdx::shapes::Shape, E, D: dfdx::tensor::Storage<E>, T> BatchSize for dfdx::tensor::Tensor<S, E, D, T> {
    fn batch_size(&self) -> usize {
        use dfdx::shapes::HasShape;
        self.shape().concrete().into_iter().next().unwrap_or(0)
    }
}

/// The numbers a `#[distill]` attribute wrote, as values that can change while training runs
/// (a schedule, a sweep): the logit term's [`KdConfig`] and the weight of every other term, in
/// the order of the loss terms. [`Distill::settings`] gives the attribute's; the `*_with`
/// methods and [`distill_step_with`] take any.
#[derive(Debug, Clone, PartialEq)]
pub struct Settings {
    /// Temperature, `ce_weight`, `kd_weight` and divergence of the logit terms.
    pub kd: KdConfig,
    /// Each feature, attention or relation term's name and weight, in loss order.
    pub terms: Vec<(&'static str, f64)>,
    /// With `teachers(...)`: each teacher's name and relative weight in the soft term
    /// (normalised to sum 1; [`crate::loss::multi_teacher`]). Empty for one teacher.
    pub teachers: Vec<(&'static str, f64)>,
}

/// A [`Settings`] change that cannot apply.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum SettingsError {
    /// No teacher of this student has the name.
    #[error("this student has no teacher `{name}`; its teachers are {known:?}")]
    UnknownTeacher {
        /// The name asked for.
        name: String,
        /// The student's teacher names.
        known: Vec<&'static str>,
    },
    /// No term of this student has the name.
    #[error("this student has no term `{name}`; its terms are {known:?}")]
    UnknownTerm {
        /// The name asked for.
        name: String,
        /// The student's term names.
        known: Vec<&'static str>,
    },
    /// A weight or setting outside its domain.
    #[error(transparent)]
    Invalid(#[from] crate::Error),
}

impl Settings {
    /// The weight of the term called `name`.
    pub fn weight(&self, name: &str) -> Option<f64> {
        self.terms.iter().find(|(term, _)| *term == name).map(|(_, weight)| *weight)
    }

    /// Sets the weight of the term called `name` (finite, ≥ 0).
    pub fn set_weight(&mut self, name: &str, weight: f64) -> Result<(), SettingsError> {
        crate::error::non_negative("weight", weight)?;
        set_named(&mut self.terms, name, weight).map_err(|known| SettingsError::UnknownTerm {
            name: name.to_string(),
            known,
        })
    }

    /// Sets the relative weight of the teacher called `name` (finite, ≥ 0).
    pub fn set_teacher_weight(&mut self, name: &str, weight: f64) -> Result<(), SettingsError> {
        crate::error::non_negative("teacher weight", weight)?;
        set_named(&mut self.teachers, name, weight).map_err(|known| SettingsError::UnknownTeacher {
            name: name.to_string(),
            known,
        })
    }

    /// Checks the logit settings and every weight, naming the first bad one.
    pub fn validate(&self) -> Result<(), SettingsError> {
        self.kd.validate()?;
        for (_, weight) in &self.terms {
            crate::error::non_negative("weight", *weight)?;
        }
        for (_, weight) in &self.teachers {
            crate::error::non_negative("teacher weight", *weight)?;
        }
        let total: f64 = self.teachers.iter().map(|(_, weight)| weight).sum();
        if !self.teachers.is_empty() && total <= 0.0 {
            return Err(SettingsError::Invalid(crate::Error::InvalidSetting {
                argument: "teacher weights",
                requirement: "not all 0",
                value: total,
            }));
        }
        Ok(())
    }
}

/// Implemented only by a type for itself: the compile-time check that every teacher of
/// `teachers(...)` gives logits of the student's type (the same classes), whose message names
/// both logit types at the teacher's path.
#[diagnostic::on_unimplemented(
    message = "a teacher's logits `{Self}` differ from the student's `{Student}`",
    label = "this teacher predicts other classes than the student",
    note = "every teacher of `teachers(...)` must output the student's logits: the same number of classes and the same dtype"
)]
pub trait SameLogits<Student> {
    /// The teacher's logits, as the student's type they are.
    fn into_student_logits(self) -> Student;
}

impl<T> SameLogits<T> for T {
    fn into_student_logits(self) -> T {
        self
    }
}

/// Sets the weight of the entry called `name`, or returns every name when there is none.
fn set_named(named: &mut [(&'static str, f64)], name: &str, weight: f64) -> Result<(), Vec<&'static str>> {
    match named.iter_mut().find(|(entry, _)| *entry == name) {
        Some((_, slot)) => {
            *slot = weight;
            Ok(())
        }
        None => Err(named.iter().map(|(entry, _)| *entry).collect()),
    }
}

/// What a distiller's loss returns: the named terms, or the first loss's error.
pub type DistillLoss<E> = Result<LossTerms<E, Cpu, OwnedTape<E, Cpu>>, LossError>;

/// Implemented by `#[distill]` on a student: its teacher, its adapters and its loss. Every
/// loss term comes from [`crate::loss`].
pub trait Distill: Sized
where
    Cpu: Device<Self::Dtype>,
{
    /// The float type of the generated code (`f32` unless `dtype = f64`).
    type Dtype: Dtype;
    /// The teacher's builder type (`Self` for self-distillation).
    type Teacher;
    /// The built teacher, as `dev.build_module::<Self::Teacher, _>()` returns it.
    type TeacherModel;
    /// The built student and adapters: a [`Distiller`], which the optimiser updates.
    type Model: TensorCollection<Self::Dtype, Cpu>;
    /// The untaped input batch: `(usize, ...)`, the batch dimension dynamic.
    type Input: BatchSize;

    /// Builds the student and its adapters on `device`.
    fn build_distiller(device: &Cpu) -> Self::Model;

    /// The settings the attribute wrote (its literals and kd-core's defaults).
    fn settings() -> Settings;

    /// The loss of one batch with `settings`: `"ce"` and `"kd"` on the logits, then one named
    /// term per pairing and kind (`"hint.fc2"`, `"attention.conv2"`, ...).
    ///
    /// # Errors
    /// The first loss that fails names itself and the problem: an invalid setting, an empty
    /// batch, targets that do not fit.
    ///
    /// # Panics
    /// If `settings` has fewer terms than [`Distill::settings`] ([`distill_step_with`] checks
    /// that first and returns [`StepError::Settings`]).
    fn distill_loss_with(
        distiller: &mut Self::Model,
        teacher: &Self::TeacherModel,
        input: Self::Input,
        targets: &[usize],
        grads: Gradients<Self::Dtype, Cpu>,
        settings: &Settings,
    ) -> DistillLoss<Self::Dtype>;

    /// [`Distill::distill_loss_with`] the attribute's settings.
    ///
    /// # Errors
    /// As [`Distill::distill_loss_with`].
    fn distill_loss(
        distiller: &mut Self::Model,
        teacher: &Self::TeacherModel,
        input: Self::Input,
        targets: &[usize],
        grads: Gradients<Self::Dtype, Cpu>,
    ) -> DistillLoss<Self::Dtype> {
        Self::distill_loss_with(distiller, teacher, input, targets, grads, &Self::settings())
    }
}

/// Implemented by `#[distill]` when the student learns from the teacher's logits alone (no
/// `match(...)`), so the teacher's outputs can be computed once and cached
/// ([`crate::train::TeacherCache`]) while the inputs are not augmented.
#[diagnostic::on_unimplemented(
    message = "`{Self}` cannot learn from cached teacher logits",
    note = "only a student without `match(...)` learns from the logits alone; feature, attention and relation terms need the teacher's forward pass each step"
)]
pub trait DistillFromLogits: Distill
where
    Cpu: Device<Self::Dtype>,
{
    /// The teacher's logits of a batch: `(usize, Const<CLASSES>)`.
    type Logits;

    /// The teacher's logits of `input`, for filling a cache.
    fn teacher_logits(teacher: &Self::TeacherModel, input: Self::Input) -> Self::Logits;

    /// [`Distill::distill_loss_with`] with the teacher's logits given.
    ///
    /// # Errors
    /// As [`Distill::distill_loss_with`].
    fn distill_loss_from_logits_with(
        distiller: &mut Self::Model,
        teacher_logits: Self::Logits,
        input: Self::Input,
        targets: &[usize],
        grads: Gradients<Self::Dtype, Cpu>,
        settings: &Settings,
    ) -> DistillLoss<Self::Dtype>;

    /// [`Distill::distill_loss`] with the teacher's logits given.
    ///
    /// # Errors
    /// As [`Distill::distill_loss_with`].
    fn distill_loss_from_logits(
        distiller: &mut Self::Model,
        teacher_logits: Self::Logits,
        input: Self::Input,
        targets: &[usize],
        grads: Gradients<Self::Dtype, Cpu>,
    ) -> DistillLoss<Self::Dtype> {
        Self::distill_loss_from_logits_with(distiller, teacher_logits, input, targets, grads, &Self::settings())
    }
}
