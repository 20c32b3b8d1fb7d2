//! Errors for settings and inputs that the types cannot rule out.

/// A setting or an input of a loss or regime that cannot work, named so the caller can fix it.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum Error {
    /// A numeric setting is outside its domain (for example `temperature <= 0` or a NaN weight).
    #[error("`{argument}` must be {requirement}, got {value}")]
    InvalidSetting {
        /// The setting's name as the API spells it.
        argument: &'static str,
        /// What the setting must satisfy.
        requirement: &'static str,
        /// The value that was given.
        value: f64,
    },
    /// A tensor holds no elements: a batch of 0 samples (or an axis of size 0).
    #[error("`{argument}` is empty (shape {shape:?}); a loss needs at least one sample")]
    Empty {
        /// The argument's name.
        argument: &'static str,
        /// Its runtime shape.
        shape: Vec<usize>,
    },
    /// A list argument holds nothing (for example no peers).
    #[error("`{argument}` is empty")]
    NoItems {
        /// The argument's name.
        argument: &'static str,
    },
    /// A list argument holds more items than the loss supports.
    #[error("`{argument}` holds {got} items; at most {most} are supported")]
    TooManyItems {
        /// The argument's name.
        argument: &'static str,
        /// The most supported.
        most: usize,
        /// How many were given.
        got: usize,
    },
    /// Two sizes that must agree do not (batch sizes, widths, heights).
    #[error("`{first}` has {what} {first_size} but `{second}` has {what} {second_size}; they must be equal")]
    SizeMismatch {
        /// What is compared ("batch size", "height", ...).
        what: &'static str,
        /// The first argument's name.
        first: &'static str,
        /// Its size.
        first_size: usize,
        /// The second argument's name.
        second: &'static str,
        /// Its size.
        second_size: usize,
    },
    /// Two tensors that must have the same runtime shape do not.
    #[error("`{first}` has shape {first_shape:?} but `{second}` has shape {second_shape:?}; they must be equal")]
    ShapeMismatch {
        /// The first argument's name.
        first: &'static str,
        /// Its shape.
        first_shape: Vec<usize>,
        /// The second argument's name.
        second: &'static str,
        /// Its shape.
        second_shape: Vec<usize>,
    },
    /// The loss needs more samples than the batch holds (RKD's distances need two).
    #[error("`{argument}` needs a batch of at least {needed} samples, got {got}")]
    TooFewSamples {
        /// The argument's name.
        argument: &'static str,
        /// The smallest batch that works.
        needed: usize,
        /// The batch given.
        got: usize,
    },
    /// An input the loss would misread holds NaN or an infinity.
    #[error("`{argument}` holds {value} at element {index}; it must be finite")]
    NonFinite {
        /// The argument's name.
        argument: &'static str,
        /// The first bad element, in row-major order.
        index: usize,
        /// Its value.
        value: f64,
    },
    /// Two feature maps have no common size to pool to: one is taller, the other wider.
    #[error("`{first}` is {first_size:?} (height, width) and `{second}` is {second_size:?}: one is taller and the other wider, so neither can be pooled to the other")]
    MapSizes {
        /// The first argument's name.
        first: &'static str,
        /// Its (height, width).
        first_size: (usize, usize),
        /// The second argument's name.
        second: &'static str,
        /// Its (height, width).
        second_size: (usize, usize),
    },
    /// A layer map needs the teacher's depth to be a positive multiple of the student's.
    #[error("the teacher's {teacher_layers} layers cannot be mapped uniformly onto the student's {student_layers}: the teacher's depth must be a multiple of the student's")]
    LayerMap {
        /// The student's layer count.
        student_layers: usize,
        /// The teacher's layer count.
        teacher_layers: usize,
    },
    /// A class index is not below the number of classes.
    #[error("`targets[{row}]` is {target} but there are only {classes} classes")]
    TargetOutOfRange {
        /// The row.
        row: usize,
        /// Its target.
        target: usize,
        /// The number of classes.
        classes: usize,
    },
}

/// Why a `*_loss` function returned no value: the loss's name and the [`Error`].
///
/// ```
/// use kd_core::dfdx::prelude::*;
/// use kd_core::loss::kd_loss;
///
/// let dev = Cpu::default();
/// let student = dev.tensor([[1.0f32, 2.0]]);
/// let teacher = dev.tensor([[2.0f32, 1.0]]);
/// let error = kd_loss(student.leaky_trace(), teacher, 0.0).unwrap_err();
/// assert_eq!(error.to_string(), "kd_loss: `temperature` must be finite and > 0, got 0");
/// ```
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{loss}: {problem}")]
pub struct LossError {
    /// The loss function's name.
    pub loss: &'static str,
    /// What is wrong.
    pub problem: Error,
}

impl Error {
    /// This error, raised by the loss function `loss`.
    pub fn in_loss(self, loss: &'static str) -> LossError {
        LossError { loss, problem: self }
    }
}

/// `map_err` adapter: names `loss` as the function that failed.
pub(crate) fn in_loss(loss: &'static str) -> impl Fn(Error) -> LossError {
    move |problem| problem.in_loss(loss)
}

/// `Result` with kd-core's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Checks that `value` is finite and strictly positive.
pub(crate) fn positive(argument: &'static str, value: f64) -> Result<f64> {
    if value.is_finite() && value > 0.0 {
        Ok(value)
    } else {
        Err(Error::InvalidSetting {
            argument,
            requirement: "finite and > 0",
            value,
        })
    }
}

/// Checks that `value` is finite and not negative.
pub(crate) fn non_negative(argument: &'static str, value: f64) -> Result<f64> {
    if value.is_finite() && value >= 0.0 {
        Ok(value)
    } else {
        Err(Error::InvalidSetting {
            argument,
            requirement: "finite and >= 0",
            value,
        })
    }
}

/// Checks that `value` lies in the closed unit interval.
pub(crate) fn unit_interval(argument: &'static str, value: f64) -> Result<f64> {
    if (0.0..=1.0).contains(&value) {
        Ok(value)
    } else {
        Err(Error::InvalidSetting {
            argument,
            requirement: "in [0, 1]",
            value,
        })
    }
}

/// Checks that two runtime sizes agree; returns the size.
pub(crate) fn same_size(what: &'static str, first: (&'static str, usize), second: (&'static str, usize)) -> Result<usize> {
    if first.1 == second.1 {
        Ok(first.1)
    } else {
        Err(Error::SizeMismatch {
            what,
            first: first.0,
            first_size: first.1,
            second: second.0,
            second_size: second.1,
        })
    }
}

/// Checks that two tensors' runtime shapes agree.
pub(crate) fn same_shape<S: dfdx::shapes::Shape>(first: (&'static str, &S), second: (&'static str, &S)) -> Result<()> {
    let (first_shape, second_shape) = (
        first.1.concrete().into_iter().collect::<Vec<_>>(),
        second.1.concrete().into_iter().collect(),
    );
    if first_shape == second_shape {
        Ok(())
    } else {
        Err(Error::ShapeMismatch {
            first: first.0,
            first_shape,
            second: second.0,
            second_shape,
        })
    }
}

/// Checks that a tensor holds at least one element; returns its batch size (leading axis).
pub(crate) fn non_empty<S: dfdx::shapes::Shape>(argument: &'static str, shape: &S) -> Result<usize> {
    if shape.num_elements() > 0 {
        Ok(crate::ops::batch_size(shape))
    } else {
        Err(Error::Empty {
            argument,
            shape: shape.concrete().into_iter().collect(),
        })
    }
}

/// Checks that two tensors are non-empty and hold the same number of samples; returns it.
pub(crate) fn paired_batch<S1: dfdx::shapes::Shape, S2: dfdx::shapes::Shape>(
    first: (&'static str, &S1),
    second: (&'static str, &S2),
) -> Result<usize> {
    let first_batch = non_empty(first.0, first.1)?;
    let second_batch = crate::ops::batch_size(second.1);
    let batch = same_size("batch size", (first.0, first_batch), (second.0, second_batch))?;
    non_empty(second.0, second.1)?;
    Ok(batch)
}

/// Checks that every value is finite, naming the first that is not.
pub(crate) fn finite_values<E: dfdx::dtypes::Dtype>(argument: &'static str, values: &[E]) -> Result<()> {
    match values
        .iter()
        .map(|v| v.to_f64().unwrap_or(f64::NAN))
        .enumerate()
        .find(|(_, v)| !v.is_finite())
    {
        None => Ok(()),
        Some((index, value)) => Err(Error::NonFinite { argument, index, value }),
    }
}

/// Checks `targets` against a `(batch, classes)` score matrix named `argument`.
pub(crate) fn class_targets(argument: &'static str, (batch, classes): (usize, usize), targets: &[usize]) -> Result<()> {
    same_size("batch size", (argument, batch), ("targets", targets.len()))?;
    match targets.iter().enumerate().find(|(_, &y)| y >= classes) {
        None => Ok(()),
        Some((row, &target)) => Err(Error::TargetOutOfRange { row, target, classes }),
    }
}

/// Checks that one of two `(B, C, H, W)` maps can be pooled to the other's size.
pub(crate) fn poolable<S1: dfdx::shapes::Shape, S2: dfdx::shapes::Shape>(
    first: (&'static str, &S1),
    second: (&'static str, &S2),
) -> Result<()> {
    let (first_size, second_size) = (map_size(first.1), map_size(second.1));
    let taller_and_narrower = |a: (usize, usize), b: (usize, usize)| a.0 > b.0 && a.1 < b.1;
    if taller_and_narrower(first_size, second_size) || taller_and_narrower(second_size, first_size) {
        Err(Error::MapSizes {
            first: first.0,
            first_size,
            second: second.0,
            second_size,
        })
    } else {
        Ok(())
    }
}

/// `(height, width)` of a `(B, C, H, W)` shape (1 for an axis it lacks).
fn map_size<S: dfdx::shapes::Shape>(shape: &S) -> (usize, usize) {
    let dims: Vec<usize> = shape.concrete().into_iter().collect();
    (dims.get(2).copied().unwrap_or(1), dims.get(3).copied().unwrap_or(1))
}
