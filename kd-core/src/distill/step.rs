//! The training step of a distiller (and of any model): the loss, a guard that names a
//! non-finite term and the step, backward, the optimiser update and zeroed gradients.

use dfdx::nn::{TensorCollection, ZeroGrads};
use dfdx::optim::Optimizer;
use dfdx::prelude::*;
use dfdx::tensor::{Gradients, OwnedTape};
use dfdx::tensor_ops::Device;

use super::{BatchSize, Distill, DistillFromLogits, Settings};
use crate::loss::{LossTerms, Term};

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
    /// A loss term is finite but has run away: above the stage's bound, or far above its
    /// running median. The step's update was applied; the stage's checkpoints were not.
    #[error("loss term `{term}` diverged at step {step}: {value:e} {reason}")]
    Diverged {
        /// The term's name.
        term: &'static str,
        /// Its value.
        value: f64,
        /// The step counter.
        step: usize,
        /// Which limit it passed.
        reason: String,
    },
    /// The labels do not match the batch; nothing was computed.
    #[error("step {step}: {labels} labels for a batch of {batch} samples; give one label per sample")]
    Labels {
        /// The step counter passed in.
        step: usize,
        /// How many labels were given.
        labels: usize,
        /// How many samples the batch holds.
        batch: usize,
    },
    /// A loss could not be computed from the batch (an empty batch, mismatched shapes, a
    /// target out of range); no update was applied.
    #[error("step {step}: {error}; no update was applied")]
    Loss {
        /// The step counter passed in.
        step: usize,
        /// The loss's error (boxed: it is rare, and keeps every step's `Result` small).
        error: Box<crate::error::LossError>,
    },
    /// The settings passed to a `*_with` step do not fit the student; nothing was computed.
    #[error("step {step}: the settings cannot be used: {message}")]
    Settings {
        /// The step counter passed in.
        step: usize,
        /// What is wrong.
        message: String,
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

impl StepError {
    /// `map_err` adapter: a [`LossError`](crate::error::LossError) at `step`.
    pub fn loss(step: usize) -> impl Fn(crate::error::LossError) -> StepError {
        move |error| StepError::Loss {
            step,
            error: Box::new(error),
        }
    }
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
    O: Optimizer<M::Model, Cpu, M::Dtype>,
{
    distill_step_with::<M, O>(distiller, teacher, optimizer, input, targets, grads, step, &M::settings())
}

/// [`distill_step`] with `settings` instead of the attribute's: for a temperature or weights
/// that change during training ([`crate::train::KdSchedule`]).
#[allow(clippy::too_many_arguments)]
pub fn distill_step_with<M, O>(
    distiller: &mut M::Model,
    teacher: &M::TeacherModel,
    optimizer: &mut O,
    input: M::Input,
    targets: &[usize],
    grads: Gradients<M::Dtype, Cpu>,
    step: usize,
    settings: &Settings,
) -> Result<StepOutput<M::Dtype>, StepError>
where
    M: Distill,
    Cpu: Device<M::Dtype>,
    O: Optimizer<M::Model, Cpu, M::Dtype>,
{
    check_labels(input.batch_size(), targets, step)?;
    check_settings::<M>(settings, step)?;
    let loss = M::distill_loss_with(distiller, teacher, input, targets, grads, settings).map_err(StepError::loss(step))?;
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
    O: Optimizer<M::Model, Cpu, M::Dtype>,
{
    distill_step_from_logits_with::<M, O>(distiller, teacher_logits, optimizer, input, targets, grads, step, &M::settings())
}

/// [`distill_step_from_logits`] with `settings` instead of the attribute's.
#[allow(clippy::too_many_arguments)]
pub fn distill_step_from_logits_with<M, O>(
    distiller: &mut M::Model,
    teacher_logits: M::Logits,
    optimizer: &mut O,
    input: M::Input,
    targets: &[usize],
    grads: Gradients<M::Dtype, Cpu>,
    step: usize,
    settings: &Settings,
) -> Result<StepOutput<M::Dtype>, StepError>
where
    M: DistillFromLogits,
    Cpu: Device<M::Dtype>,
    O: Optimizer<M::Model, Cpu, M::Dtype>,
{
    check_labels(input.batch_size(), targets, step)?;
    check_settings::<M>(settings, step)?;
    let loss =
        M::distill_loss_from_logits_with(distiller, teacher_logits, input, targets, grads, settings).map_err(StepError::loss(step))?;
    apply_step(loss, distiller, optimizer, step)
}

/// A student's training state in one value: its distiller, optimiser, settings, gradient
/// buffers and step counter. [`Trainer::step`] is [`distill_step_with`] without the positional
/// arguments: it counts the steps, keeps the gradient buffers, and returns every mistake as a
/// [`StepError`] (a wrong label count, an empty batch, settings that do not fit).
///
/// Generic code over students needs only the dtype (and the input type it builds):
///
/// ```
/// use kd_core::distill::{Distill, StepError, Trainer};
/// use kd_core::dfdx::optim::{Sgd, SgdConfig};
/// use kd_core::dfdx::prelude::*;
///
/// #[kd_core::model]
/// pub struct Teacher { fc1: Linear<4, 16>, act: ReLU, head: Linear<16, 3> }
///
/// #[kd_core::distill(teacher = Teacher, temp = 4.0, input = [4])]
/// pub struct Student { fc1: Linear<4, 8>, act: ReLU, head: Linear<8, 3> }
///
/// type Batch = Tensor<(usize, Const<4>), f32, Cpu>;
///
/// /// Any student of four features: no bound beyond the dtype and the input.
/// fn train<S: Distill<Dtype = f32, Input = Batch>>(teacher: &S::TeacherModel, steps: usize) -> Result<f64, StepError> {
///     let dev = Cpu::seed_from_u64(0);
///     let distiller = S::build_distiller(&dev);
///     let optimizer = Sgd::new(&distiller, SgdConfig { lr: 0.05, ..Default::default() });
///     let mut trainer = Trainer::<S, _>::new(distiller, optimizer);
///     trainer.settings.kd.temperature = 2.0; // a schedule may change any setting between steps
///     let mut total = 0.0;
///     for _ in 0..steps {
///         let x: Batch = dev.sample_normal_like(&(8, Const));
///         let terms = trainer.step(teacher, x, &[0, 1, 2, 0, 1, 2, 0, 1])?;
///         total = terms.iter().map(|t| t.weight * t.value).sum();
///     }
///     Ok(total)
/// }
///
/// let dev = Cpu::default();
/// let teacher = dev.build_module::<Teacher, f32>();
/// assert!(train::<Student>(&teacher, 3)?.is_finite());
///
/// // A mistake is the step's error; nothing is applied and the trainer stays usable.
/// let distiller = Student::build_distiller(&dev);
/// let optimizer = Sgd::new(&distiller, SgdConfig::default());
/// let mut trainer = Trainer::<Student, _>::new(distiller, optimizer);
/// let x: Batch = dev.sample_normal_like(&(2, Const));
/// assert!(matches!(trainer.step(&teacher, x.clone(), &[0]), Err(StepError::Labels { labels: 1, batch: 2, .. })));
/// trainer.step(&teacher, x, &[0, 1])?;
/// assert_eq!(trainer.steps(), 1);
/// # Ok::<(), StepError>(())
/// ```
pub struct Trainer<M: Distill, O>
where
    Cpu: Device<M::Dtype>,
{
    /// The student and its adapters.
    pub distiller: M::Model,
    /// The optimiser over both.
    pub optimizer: O,
    /// The settings each step uses; [`Distill::settings`] to start with.
    pub settings: Settings,
    grads: Option<Gradients<M::Dtype, Cpu>>,
    steps: usize,
}

impl<M: Distill, O> Trainer<M, O>
where
    Cpu: Device<M::Dtype>,
    O: Optimizer<M::Model, Cpu, M::Dtype>,
{
    /// A trainer at step 0 with the attribute's settings.
    pub fn new(distiller: M::Model, optimizer: O) -> Self {
        Trainer {
            distiller,
            optimizer,
            settings: M::settings(),
            grads: None,
            steps: 0,
        }
    }

    /// How many steps were applied.
    pub fn steps(&self) -> usize {
        self.steps
    }

    /// One step on a batch; the step counter advances only when the update was applied.
    ///
    /// # Errors
    /// As [`distill_step_with`]: the student is then unchanged and the trainer usable.
    pub fn step(&mut self, teacher: &M::TeacherModel, input: M::Input, targets: &[usize]) -> Result<Vec<Term>, StepError> {
        let grads = self.take_grads();
        let result = distill_step_with::<M, O>(
            &mut self.distiller,
            teacher,
            &mut self.optimizer,
            input,
            targets,
            grads,
            self.steps,
            &self.settings,
        );
        self.finish(result)
    }

    /// [`Trainer::step`] with the teacher's logits given (from a [`crate::train::TeacherCache`]).
    ///
    /// # Errors
    /// As [`distill_step_from_logits_with`].
    pub fn step_from_logits(&mut self, teacher_logits: M::Logits, input: M::Input, targets: &[usize]) -> Result<Vec<Term>, StepError>
    where
        M: DistillFromLogits,
    {
        let grads = self.take_grads();
        let result = distill_step_from_logits_with::<M, O>(
            &mut self.distiller,
            teacher_logits,
            &mut self.optimizer,
            input,
            targets,
            grads,
            self.steps,
            &self.settings,
        );
        self.finish(result)
    }

    fn take_grads(&mut self) -> Gradients<M::Dtype, Cpu> {
        match self.grads.take() {
            Some(grads) => grads,
            None => self.distiller.alloc_grads(),
        }
    }

    /// Keeps the returned buffers (a failed step drops them; the next one allocates afresh).
    fn finish(&mut self, result: Result<StepOutput<M::Dtype>, StepError>) -> Result<Vec<Term>, StepError> {
        let (terms, grads) = result?;
        self.grads = Some(grads);
        self.steps += 1;
        Ok(terms)
    }
}

/// Settings with the student's terms, in its order, each valid; or a named error.
fn check_settings<M: Distill>(settings: &Settings, step: usize) -> Result<(), StepError>
where
    Cpu: Device<M::Dtype>,
{
    let own = M::settings();
    let names = |named: &[(&'static str, f64)]| named.iter().map(|(name, _)| *name).collect::<Vec<_>>();
    for (what, given, expected) in [
        ("terms", names(&settings.terms), names(&own.terms)),
        ("teachers", names(&settings.teachers), names(&own.teachers)),
    ] {
        if given != expected {
            return Err(StepError::Settings {
                step,
                message: format!("they name the {what} {given:?} but this student's are {expected:?}"),
            });
        }
    }
    settings.validate().map_err(|error| StepError::Settings {
        step,
        message: error.to_string(),
    })
}

/// One label per sample, or a named error (dfdx would panic inside the loss).
pub fn check_labels(batch: usize, targets: &[usize], step: usize) -> Result<(), StepError> {
    if targets.len() == batch {
        Ok(())
    } else {
        Err(StepError::Labels {
            step,
            labels: targets.len(),
            batch,
        })
    }
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
