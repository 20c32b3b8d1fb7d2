//! Logit knowledge distillation with temperature.
//!
//! **Paper:** G. Hinton, O. Vinyals, J. Dean, *Distilling the Knowledge in a Neural Network*,
//! NIPS Deep Learning Workshop 2014, <https://arxiv.org/abs/1503.02531>.
//!
//! ```text
//! p_s = softmax(z_s / T),  p_t = softmax(z_t / T)
//! L_kd  = T² · (1/B) Σ_b Σ_c p_t[b,c] · (log p_t[b,c] − log p_s[b,c])     (KL(p_t ‖ p_s))
//! L_ce  = −(1/B) Σ_b log softmax(z_s)[b, y_b]
//! L     = ce_weight · L_ce + kd_weight · L_kd          (defaults 0.1 / 0.9, T = 4)
//! ```
//!
//! **Convention:** KL summed over classes and averaged over the batch (PyTorch
//! `reduction="batchmean"`), multiplied by `T²` so the soft gradients keep their scale as `T`
//! grows (paper §2). This matches RepDistiller `distiller_zoo/KD.py`, mdistiller
//! `distillers/KD.py` and Zagoruyko's `utils.py`. It differs from TextBrewer and TinyBERT (soft
//! cross-entropy, no `T²`) and KD_Lib's `VanillaKD` (MSE of probabilities).
//!
//! For inputs of rank > 2 the last axis holds the classes and every other axis is averaged
//! (dfdx's `kl_div_with_logits_loss` reduction), which is DistilBERT's per-token `batchmean`.
//!
//! **Numerics:** `log p_t` is computed as `log_softmax(z_t / T)`, never `ln(p_t)`, so a teacher
//! probability that underflows to 0 contributes `0 · (finite)` = 0. dfdx's
//! `kl_div_with_logits_loss` takes `ln` of the probabilities and returns NaN there.
//!
//! The gradient with respect to the student logits is `T · (p_s − p_t) / B`.
//!
//! **f32 precision:** at large `T` both log-probabilities sit near `−ln C` and differ by about
//! `Δz / T`, so their f32 difference loses digits and the value's relative error grows roughly
//! with `T` (the `T²` factor scales value and error alike), as in PyTorch. On 64 × 100 logits of
//! scale 8 the f32 value is off by 7.6e-6 (relative) at T = 1, 6.3e-7 at T = 4, 2.7e-7 at
//! T = 20 and 4.4e-6 at T = 100 (`precision` test). Use `dtype = f64` where that matters.

use dfdx::prelude::*;

use crate::error::{self, in_loss, positive, LossError};
use crate::loss::{divergence_loss, Divergence, LossTerms};
use crate::ops::scalar;

/// Settings of Hinton's KD objective. Defaults follow mdistiller/RepDistiller: T = 4,
/// `ce_weight = 0.1`, `kd_weight = 0.9`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct KdConfig {
    /// Softmax temperature `T` of the soft term (> 0).
    pub temperature: f64,
    /// Weight of the hard cross-entropy on the labels.
    pub ce_weight: f64,
    /// Weight of the soft `T² · KL` term.
    pub kd_weight: f64,
    /// The soft term's divergence (Hinton's forward KL by default).
    pub divergence: Divergence,
}

impl Default for KdConfig {
    fn default() -> Self {
        Self {
            temperature: crate::defaults::TEMPERATURE,
            ce_weight: crate::defaults::CE_WEIGHT,
            kd_weight: crate::defaults::KD_WEIGHT,
            divergence: Divergence::ForwardKl,
        }
    }
}

impl KdConfig {
    /// Sets the temperature.
    pub fn with_temperature(self, temperature: f64) -> Self {
        Self { temperature, ..self }
    }
    /// Sets the weight of the hard cross-entropy.
    pub fn with_ce_weight(self, ce_weight: f64) -> Self {
        Self { ce_weight, ..self }
    }
    /// Sets the weight of the soft term.
    pub fn with_kd_weight(self, kd_weight: f64) -> Self {
        Self { kd_weight, ..self }
    }
    /// Sets the soft term's divergence.
    pub fn with_divergence(self, divergence: Divergence) -> Self {
        Self { divergence, ..self }
    }
    /// Checks every setting, naming the first bad one.
    pub fn validate(&self) -> error::Result<()> {
        positive("temperature", self.temperature)?;
        error::non_negative("ce_weight", self.ce_weight)?;
        error::non_negative("kd_weight", self.kd_weight)?;
        self.divergence.validate()
    }
}

/// Hinton's soft term: `T² · KL(softmax(teacher_logits/T) ‖ softmax(student_logits/T))`,
/// summed over the last (class) axis and averaged over the others.
///
/// # Arguments
/// - `student_logits`: raw scores, **not** the output of softmax.
/// - `teacher_logits`: raw scores of the teacher, untaped: the teacher gets no gradient.
/// - `temperature`: `T`, finite and > 0.
///
/// # Shapes
/// Both `(B, C)` (or `(..., C)`), the same shape.
///
/// # Errors
/// If `temperature` is not finite and positive, the logits are empty or their runtime shapes
/// differ.
pub fn kd_loss<S: Shape, E: Dtype, D: Device<E>, T: Tape<E, D>>(
    student_logits: Tensor<S, E, D, T>,
    teacher_logits: Tensor<S, E, D>,
    temperature: f64,
) -> Result<Tensor<Rank0, E, D, T>, LossError> {
    let temperature = check_logit_pair(&student_logits, &teacher_logits, temperature).map_err(in_loss("kd_loss"))?;
    let log_p_student = tempered_log_probs(student_logits, temperature);
    let log_p_teacher = tempered_log_probs(teacher_logits, temperature);
    let p_teacher = log_p_teacher.clone().exp();
    Ok(sum_classes_mean_rest_times_t2(
        (log_p_student.negate() + log_p_teacher) * p_teacher,
        temperature,
    ))
}

/// Checks what every logit divergence needs (a finite, positive temperature, non-empty logits
/// and equal shapes); returns the temperature.
pub(crate) fn check_logit_pair<S: Shape, E: Dtype, D: Device<E>, T: Tape<E, D>>(
    student_logits: &Tensor<S, E, D, T>,
    teacher_logits: &Tensor<S, E, D>,
    temperature: f64,
) -> error::Result<f64> {
    let temperature = positive("temperature", temperature)?;
    error::non_empty("student_logits", student_logits.shape())?;
    error::same_shape(
        ("student_logits", student_logits.shape()),
        ("teacher_logits", teacher_logits.shape()),
    )?;
    Ok(temperature)
}

/// `log_softmax(logits / T)` over the last (class) axis.
pub(crate) fn tempered_log_probs<S: Shape, E: Dtype, D: Device<E>, T: Tape<E, D>>(
    logits: Tensor<S, E, D, T>,
    temperature: f64,
) -> Tensor<S, E, D, T> {
    (logits * scalar::<E>(1.0 / temperature)).log_softmax::<S::LastAxis>()
}

/// `T² ·` the per-class values summed over the last axis and averaged over every other axis
/// (PyTorch's `batchmean` for `(B, C)`).
pub(crate) fn sum_classes_mean_rest_times_t2<S: Shape, E: Dtype, D: Device<E>, T: Tape<E, D>>(
    per_class: Tensor<S, E, D, T>,
    temperature: f64,
) -> Tensor<Rank0, E, D, T> {
    let classes = <S as HasAxes<S::LastAxis>>::size(per_class.shape()) as f64;
    // mean() averages over rows and classes; × C turns it into a sum over classes.
    per_class.mean() * scalar::<E>(temperature * temperature * classes)
}

/// Cross-entropy with class indices: `−mean_b log softmax(student_logits)[b, targets[b]]`.
///
/// # Arguments
/// - `student_logits`: raw scores `(B, C)`, **not** the output of softmax.
/// - `targets`: one class index per row, each `< C`.
///
/// # Errors
/// If the logits are empty, `targets.len() != B` or a target is out of range.
pub fn cross_entropy_loss<B: Dim, C: Dim, E: Dtype, D: Device<E>, T: Tape<E, D>>(
    student_logits: Tensor<(B, C), E, D, T>,
    targets: &[usize],
) -> Result<Tensor<Rank0, E, D, T>, LossError> {
    check_targets(&student_logits, targets).map_err(in_loss("cross_entropy_loss"))?;
    let dev = student_logits.device().clone();
    let index = dev.tensor_from_vec(targets.to_vec(), (student_logits.shape().0,));
    Ok(student_logits.log_softmax::<Axis<1>>().select(index).mean().negate())
}

/// Checks that `(B, C)` logits are non-empty and `targets` holds one class `< C` per row.
pub(crate) fn check_targets<B: Dim, C: Dim, E: Dtype, D: Device<E>, T: Tape<E, D>>(
    student_logits: &Tensor<(B, C), E, D, T>,
    targets: &[usize],
) -> error::Result<()> {
    let (batch, classes) = *student_logits.shape();
    error::non_empty("student_logits", student_logits.shape())?;
    error::class_targets("student_logits", (batch.size(), classes.size()), targets)
}

/// Hinton's full objective: `ce_weight · CE(student, targets) + kd_weight · kd_loss`, returned
/// as [`LossTerms`] with the terms named `"ce"` and `"kd"`. With another
/// [`KdConfig::divergence`] the `"kd"` term is that divergence ([`divergence_loss`]).
///
/// # Errors
/// If `config` is invalid (see [`KdConfig::validate`]), the logits are empty, their shapes
/// disagree or a target is out of range.
pub fn kd_with_ce_loss<B: Dim, C: Dim, E: Dtype, D: Device<E>, T: Tape<E, D>>(
    student_logits: Tensor<(B, C), E, D, T>,
    teacher_logits: Tensor<(B, C), E, D>,
    targets: &[usize],
    config: &KdConfig,
) -> Result<LossTerms<E, D, T>, LossError> {
    let checked = config
        .validate()
        .and_then(|()| check_logit_pair(&student_logits, &teacher_logits, config.temperature))
        .and_then(|_| check_targets(&student_logits, targets));
    checked.map_err(in_loss("kd_with_ce_loss"))?;
    let (student_logits, tape) = student_logits.split_tape();
    let ce = cross_entropy_loss(student_logits.clone().put_tape(tape), targets)?;
    let kd = divergence_loss(
        student_logits.retaped::<T>(),
        teacher_logits,
        config.temperature,
        &config.divergence,
    )?;
    Ok(LossTerms::new().add("ce", config.ce_weight, ce).add("kd", config.kd_weight, kd))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::assert_close;
    use crate::loss::test_vectors::*;
    use crate::ops::value_of;
    use crate::testing::Tolerance;

    #[test]
    fn methods_md_test_vectors() {
        let soft = kd_loss(student_logits(), teacher_logits(), 4.0).unwrap();
        assert_close!(value_of(&soft), 0.2389909405, TABLE);
        assert_close!(
            value_of(&kd_loss(student_logits(), teacher_logits(), 1.0).unwrap()),
            0.1676312889,
            TABLE
        );
        assert_close!(
            value_of(&cross_entropy_loss(student_logits(), &LABELS).unwrap()),
            0.2702599809,
            TABLE
        );
        let total = kd_with_ce_loss(student_logits(), teacher_logits(), &LABELS, &KdConfig::default()).unwrap();
        assert_close!(total.value(), 0.2421178446, TABLE);
    }

    #[test]
    fn a_student_equal_to_its_teacher_has_zero_loss_and_gradient() {
        let logits = wavy::<Rank2<4, 7>>(1.0, 5.0);
        let loss = kd_loss(logits.leaky_trace(), logits.clone(), 3.0).unwrap();
        assert_close!(value_of(&loss), 0.0, Tolerance::F64);
        assert_close!(loss.backward().get(&logits), [[0.0; 7]; 4], Tolerance::F64);
    }

    // d/ds [T²/B Σ p_t (log p_t − log_softmax(s/T))] = T²/B · (p_s − p_t)/T = T (p_s − p_t)/B.
    #[test]
    fn gradient_is_t_times_probability_difference_over_batch() {
        let (student, teacher) = (wavy::<Rank2<4, 7>>(1.0, 5.0), wavy::<Rank2<4, 7>>(2.0, 5.0));
        for temperature in [1.0, 4.0, 20.0] {
            let grads = kd_loss(student.leaky_trace(), teacher.clone(), temperature).unwrap().backward();
            let p_s = (student.clone() / temperature).softmax::<Axis<1>>();
            let p_t = (teacher.clone() / temperature).softmax::<Axis<1>>();
            let expected = (p_s - p_t) * (temperature / 4.0);
            assert_close!(grads.get(&student), expected, Tolerance::F64);
        }
    }

    #[test]
    fn equals_dfdx_kl_div_times_t_squared_where_that_is_finite() {
        let (student, teacher) = (wavy::<Rank2<3, 5>>(3.0, 2.0), wavy::<Rank2<3, 5>>(4.0, 2.0));
        let t = 4.0;
        let ours = kd_loss(student.leaky_trace(), teacher.clone(), t).unwrap();
        let dfdx_kl = dfdx::losses::kl_div_with_logits_loss(student.leaky_trace() / t, (teacher / t).softmax::<Axis<1>>()) * (t * t);
        assert_close!(value_of(&ours), value_of(&dfdx_kl), Tolerance::F64);
        assert_close!(ours.backward().get(&student), dfdx_kl.backward().get(&student), Tolerance::F64);
    }

    #[test]
    fn stays_finite_where_teacher_probabilities_underflow_and_dfdx_kl_div_is_nan() {
        let dev = Dev::default();
        let student: Tensor<Rank2<2, 3>, f32, _> = dev.tensor([[100.0, -100.0, 0.0], [-100.0, 100.0, 50.0]]);
        let teacher: Tensor<Rank2<2, 3>, f32, _> = dev.tensor([[-100.0, 100.0, 0.0], [100.0, -100.0, -50.0]]);
        for temperature in [1.0, 20.0] {
            let loss = kd_loss(student.leaky_trace(), teacher.clone(), temperature).unwrap();
            assert!(value_of(&loss).is_finite(), "T = {temperature}: {}", value_of(&loss));
            let grads = loss.backward().get(&student).as_vec();
            assert!(grads.iter().all(|g| g.is_finite()), "T = {temperature}: {grads:?}");
        }
        let p_teacher = teacher.softmax::<Axis<1>>();
        assert!(
            p_teacher.as_vec().contains(&0.0),
            "the teacher probability must underflow for this test"
        );
        let dfdx_kl = dfdx::losses::kl_div_with_logits_loss(student, p_teacher);
        assert!(
            dfdx_kl.array().is_nan(),
            "dfdx's kl_div is NaN here, which is why kd_loss avoids ln(p)"
        );
    }

    // DistilBERT's per-token KD: rank-3 logits reduce like the (B·L, V) flattening.
    #[test]
    fn sequence_logits_average_over_every_position() {
        let (student, teacher) = (wavy::<Rank3<2, 3, 5>>(6.0, 3.0), wavy::<Rank3<2, 3, 5>>(7.0, 3.0));
        let sequence = kd_loss(student.clone(), teacher.clone(), 2.0).unwrap();
        let flat = kd_loss(student.reshape::<Rank2<6, 5>>(), teacher.reshape::<Rank2<6, 5>>(), 2.0).unwrap();
        assert_close!(value_of(&sequence), value_of(&flat), Tolerance::F64);
    }

    #[test]
    fn zero_temperature_is_rejected_by_name() {
        let error = kd_loss(student_logits(), teacher_logits(), 0.0).unwrap_err().to_string();
        assert!(error.contains("kd_loss: `temperature` must be finite and > 0, got 0"), "{error}");
    }

    #[test]
    fn nan_temperature_is_rejected_by_name() {
        let error = kd_loss(student_logits(), teacher_logits(), f64::NAN).unwrap_err().to_string();
        assert!(error.contains("`temperature` must be finite and > 0, got NaN"), "{error}");
    }

    #[test]
    fn config_validation_names_the_bad_setting() {
        assert!(KdConfig::default().validate().is_ok());
        let error = KdConfig::default().with_kd_weight(-0.5).validate().expect_err("invalid setting");
        assert_eq!(error.to_string(), "`kd_weight` must be finite and >= 0, got -0.5");
        let error = KdConfig::default().with_temperature(-1.0).validate().expect_err("invalid setting");
        assert_eq!(error.to_string(), "`temperature` must be finite and > 0, got -1");
    }

    #[test]
    fn out_of_range_target_is_rejected_by_index() {
        let error = cross_entropy_loss(student_logits(), &[0, 3]).unwrap_err().to_string();
        assert!(
            error.contains("cross_entropy_loss: `targets[1]` is 3 but there are only 3 classes"),
            "{error}"
        );
    }

    #[test]
    fn runtime_shape_mismatch_names_both_arguments() {
        let dev = Dev::default();
        let student: Tensor<(usize, Const<3>), f64, _> = dev.zeros_like(&(2, Const));
        let teacher: Tensor<(usize, Const<3>), f64, _> = dev.zeros_like(&(3, Const));
        let error = kd_loss(student, teacher, 4.0).unwrap_err().to_string();
        assert!(
            error.contains("kd_loss: `student_logits` has shape [2, 3] but `teacher_logits` has shape [3, 3]"),
            "{error}"
        );
    }
}

#[cfg(test)]
mod precision {
    use super::*;
    use crate::loss::test_vectors::*;
    use crate::ops::value_of;

    /// The f32 error that the module doc states: below 1e-5 relative up to T = 100 on 64 × 100
    /// logits of scale 8, and growing at large T.
    #[test]
    fn f32_error_against_temperature() {
        let (student, teacher) = (wavy::<Rank2<64, 100>>(1.0, 8.0), wavy::<Rank2<64, 100>>(2.0, 8.0));
        let relative = |t: f64| {
            let exact = value_of(&kd_loss(student.clone(), teacher.clone(), t).unwrap());
            let single = value_of(&kd_loss(student.clone().to_dtype::<f32>(), teacher.clone().to_dtype::<f32>(), t).unwrap());
            ((single - exact) / exact).abs()
        };
        let errors: Vec<f64> = [1.0, 4.0, 20.0, 100.0].into_iter().map(relative).collect();
        assert!(errors.iter().all(|&e| e < 1e-5), "{errors:?}");
        assert!(errors[3] > 4.0 * errors[2], "the error grows from T = 20 to T = 100: {errors:?}");
    }
}
