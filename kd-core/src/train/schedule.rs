//! Values that change over a run: the temperature, each loss weight, the learning rate.
//!
//! A [`Schedule`] maps an epoch of a run to a value; [`KdSchedule`] schedules the three settings
//! of logit KD and gives the [`KdConfig`] of each epoch, which a training loop passes to the
//! loss and records in the epoch's metrics ([`KdSchedule::record`]).
//!
//! | schedule | value at epoch `e` of `E` (`s = e / (E − 1)`, 0 when `E = 1`) |
//! |---|---|
//! | `constant` | `value` |
//! | `linear` | `from + (to − from) · s` |
//! | `cosine` | `to + (from − to) · (1 + cos π s) / 2` (cosine annealing, SGDR without restarts) |
//! | `step` | `initial · factor^⌊e / every⌋` |
//!
//! The first epoch gets `from` and the last `to` exactly, so a schedule's ends are the values
//! written. Schedules are plain data (serde, tagged by `kind`), so configs can hold them.

use serde::{Deserialize, Serialize};

use crate::error::{self, Error};
use crate::loss::KdConfig;
use crate::train::Record;

/// A value over the epochs of a run.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Schedule {
    /// The same value every epoch.
    Constant {
        /// The value.
        value: f64,
    },
    /// A straight line from `from` (first epoch) to `to` (last epoch).
    Linear {
        /// The first epoch's value.
        from: f64,
        /// The last epoch's value.
        to: f64,
    },
    /// Half a cosine from `from` (first epoch) to `to` (last epoch).
    Cosine {
        /// The first epoch's value.
        from: f64,
        /// The last epoch's value.
        to: f64,
    },
    /// `initial`, multiplied by `factor` every `every` epochs.
    Step {
        /// The first epoch's value.
        initial: f64,
        /// The factor applied at each step.
        factor: f64,
        /// Epochs between steps (≥ 1).
        every: usize,
    },
}

impl Schedule {
    /// A constant schedule.
    pub const fn constant(value: f64) -> Schedule {
        Schedule::Constant { value }
    }

    /// The value at `epoch` (0-based) of a run of `epochs`; epochs past the end keep the last
    /// epoch's value.
    pub fn at(&self, epoch: usize, epochs: usize) -> f64 {
        let last = epochs.saturating_sub(1);
        let progress = if last == 0 { 0.0 } else { epoch.min(last) as f64 / last as f64 };
        match *self {
            Schedule::Constant { value } => value,
            Schedule::Linear { from, to } => from + (to - from) * progress,
            Schedule::Cosine { from, to } => to + (from - to) * (1.0 + (std::f64::consts::PI * progress).cos()) / 2.0,
            Schedule::Step { initial, factor, every } => initial * factor.powi((epoch.min(last) / every.max(1)) as i32),
        }
    }

    /// Checks that every value it takes satisfies `valid` (checked at its ends, which bound a
    /// linear, cosine or step schedule), naming `argument`.
    fn validate(&self, argument: &'static str, valid: fn(&'static str, f64) -> error::Result<f64>) -> error::Result<()> {
        match *self {
            Schedule::Constant { value } => valid(argument, value).map(drop),
            Schedule::Linear { from, to } | Schedule::Cosine { from, to } => {
                valid(argument, from)?;
                valid(argument, to).map(drop)
            }
            Schedule::Step { initial, factor, every } => {
                valid(argument, initial)?;
                error::non_negative("factor", factor)?;
                if every == 0 {
                    return Err(Error::InvalidSetting {
                        argument: "every",
                        requirement: "at least 1",
                        value: 0.0,
                    });
                }
                Ok(())
            }
        }
    }
}

/// Logit KD's temperature and weights, each on a schedule.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct KdSchedule {
    /// The softmax temperature.
    pub temperature: Schedule,
    /// The hard cross-entropy's weight.
    pub ce_weight: Schedule,
    /// The soft term's weight.
    pub kd_weight: Schedule,
}

impl KdSchedule {
    /// `config`'s settings, held constant (its divergence is kept by [`KdSchedule::config`]).
    pub fn constant(config: &KdConfig) -> KdSchedule {
        KdSchedule {
            temperature: Schedule::constant(config.temperature),
            ce_weight: Schedule::constant(config.ce_weight),
            kd_weight: Schedule::constant(config.kd_weight),
        }
    }

    /// Checks each schedule, naming the first bad setting.
    pub fn validate(&self) -> error::Result<()> {
        self.temperature.validate("temperature", error::positive)?;
        self.ce_weight.validate("ce_weight", error::non_negative)?;
        self.kd_weight.validate("kd_weight", error::non_negative)
    }

    /// `base` with the scheduled settings of `epoch` of `epochs`.
    pub fn config(&self, base: &KdConfig, epoch: usize, epochs: usize) -> KdConfig {
        KdConfig {
            temperature: self.temperature.at(epoch, epochs),
            ce_weight: self.ce_weight.at(epoch, epochs),
            kd_weight: self.kd_weight.at(epoch, epochs),
            ..*base
        }
    }

    /// Records the settings of `epoch` in an epoch record (`temperature`, `ce_weight`,
    /// `kd_weight`), so the metrics show what each epoch trained with.
    pub fn record(&self, record: &mut Record, epoch: usize, epochs: usize) {
        for (name, schedule) in [
            ("temperature", self.temperature),
            ("ce_weight", self.ce_weight),
            ("kd_weight", self.kd_weight),
        ] {
            record.insert(name.into(), serde_json::json!(schedule.at(epoch, epochs)));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_schedule_starts_and_ends_where_written() {
        let linear = Schedule::Linear { from: 1.0, to: 5.0 };
        let cosine = Schedule::Cosine { from: 0.1, to: 0.0 };
        assert_eq!((linear.at(0, 5), linear.at(2, 5), linear.at(4, 5)), (1.0, 3.0, 5.0));
        assert_eq!((cosine.at(0, 11), cosine.at(10, 11)), (0.1, 0.0));
        assert!((cosine.at(5, 11) - 0.05).abs() < 1e-15, "half-way is the mean");
        let expected = 0.05 * (1.0 + (0.1 * std::f64::consts::PI).cos());
        assert!((cosine.at(1, 11) - expected).abs() < 1e-15, "a tenth of the way");
        assert_eq!(linear.at(99, 5), 5.0, "past the end keeps the last value");
        assert_eq!(linear.at(0, 1), 1.0, "a one-epoch run gets the first value");
    }

    #[test]
    fn a_step_schedule_multiplies_every_n_epochs() {
        let step = Schedule::Step {
            initial: 0.1,
            factor: 0.5,
            every: 3,
        };
        let values: Vec<f64> = (0..7).map(|e| step.at(e, 10)).collect();
        assert_eq!(values, [0.1, 0.1, 0.1, 0.05, 0.05, 0.05, 0.025]);
    }

    #[test]
    fn a_kd_schedule_gives_each_epochs_config_and_records_it() {
        let schedule = KdSchedule {
            temperature: Schedule::Linear { from: 8.0, to: 2.0 },
            ..KdSchedule::constant(&KdConfig::default())
        };
        let base = KdConfig::default().with_divergence(crate::loss::Divergence::Tvd);
        let last = schedule.config(&base, 3, 4);
        assert_eq!(
            (last.temperature, last.kd_weight, last.divergence),
            (2.0, 0.9, crate::loss::Divergence::Tvd)
        );
        let mut record = Record::new();
        schedule.record(&mut record, 1, 4);
        assert_eq!(record["temperature"], serde_json::json!(6.0));
        assert_eq!(record["ce_weight"], serde_json::json!(0.1));
    }

    #[test]
    fn invalid_schedules_are_named() {
        let schedule = KdSchedule {
            temperature: Schedule::Cosine { from: 4.0, to: 0.0 },
            ..KdSchedule::constant(&KdConfig::default())
        };
        assert_eq!(
            schedule.validate().map_err(|e| e.to_string()),
            Err("`temperature` must be finite and > 0, got 0".to_string())
        );
        let schedule = KdSchedule {
            kd_weight: Schedule::Step {
                initial: 1.0,
                factor: 0.5,
                every: 0,
            },
            ..KdSchedule::constant(&KdConfig::default())
        };
        assert_eq!(
            schedule.validate().map_err(|e| e.to_string()),
            Err("`every` must be at least 1, got 0".to_string())
        );
    }

    #[test]
    fn schedules_are_plain_data_tagged_by_kind() {
        let json = serde_json::to_value(Schedule::Cosine { from: 1.0, to: 0.0 }).unwrap_or_default();
        assert_eq!(json, serde_json::json!({"kind": "cosine", "from": 1.0, "to": 0.0}));
        let back: Schedule = serde_json::from_value(json).unwrap_or(Schedule::constant(f64::NAN));
        assert_eq!(back, Schedule::Cosine { from: 1.0, to: 0.0 });
    }
}
