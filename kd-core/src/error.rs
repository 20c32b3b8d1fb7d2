//! Errors for settings that the types cannot rule out.

/// A setting of a loss or regime that cannot work, named so the caller can fix it.
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

/// Unwraps a setting check inside an infallible `*_loss` function: a bad setting is a
/// programming error, so it panics with the message naming the function and argument.
#[track_caller]
pub(crate) fn expect_setting(function: &'static str, checked: Result<f64>) -> f64 {
    match checked {
        Ok(value) => value,
        Err(error) => panic!("{function}: {error}"),
    }
}
