//! Distilling a transformer language model, DistilBERT- and TinyBERT-style, over the outputs of
//! [`crate::nn::transformer::Transformer::forward_all`].
//!
//! - **DistilBERT** (Sanh et al. 2019): the student keeps the teacher's width and has fewer
//!   layers; `α_soft·T²·soft-CE(z_S, z_T) + α_ce·CE(z_S, y) + α_cos·(1 − cos(h_S, h_T))` on the
//!   last hidden states ([`crate::loss::cosine_embedding_loss`]).
//! - **TinyBERT** (Jiao et al. 2020): a narrower student; embedding, hidden-state and attention
//!   MSE of uniformly mapped layers (student layer m ← teacher layer m·M/N), the student's
//!   widths mapped up by learned projections, plus the soft cross-entropy of the predictions
//!   ([`crate::loss::soft_cross_entropy_loss`]).
//!
//! Terms are named `"soft_ce"`, `"ce"`, `"cos"`; and `"embedding"`, `"hidden.m"`,
//! `"attention.m"` (m = 1.. the student's layers, up to four), `"prediction"`.

use dfdx::prelude::*;

use crate::error::{Error, LossError};
use crate::loss::{cosine_embedding_loss, cross_entropy_loss, hint_loss, soft_cross_entropy_loss, LossTerms};
use crate::nn::transformer::Outputs;

type Taped = OwnedTape<f32, Cpu>;

const HIDDEN: [&str; 4] = ["hidden.1", "hidden.2", "hidden.3", "hidden.4"];
const ATTENTION: [&str; 4] = ["attention.1", "attention.2", "attention.3", "attention.4"];

/// The teacher layer (0-based) that student layer `m` (0-based) learns from: TinyBERT's uniform
/// mapping `g(m) = m·M/N` on 1-based layers.
///
/// # Panics
/// If the teacher has fewer layers than the student, or its depth is not a multiple.
pub fn uniform_layer_map(student_layers: usize, teacher_layers: usize, m: usize) -> usize {
    assert!(
        student_layers > 0 && teacher_layers.is_multiple_of(student_layers),
        "uniform layer mapping needs the teacher's depth ({teacher_layers}) to be a multiple of the student's ({student_layers})"
    );
    (m + 1) * (teacher_layers / student_layers) - 1
}

/// DistilBERT's weights and temperature (the reference's α_ce = 5, α_mlm = 2, α_cos = 1, T = 2).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct DistilBertConfig {
    /// Weight of the soft cross-entropy (times T²).
    pub soft: f64,
    /// Weight of the cross-entropy on the true next tokens.
    pub ce: f64,
    /// Weight of the cosine term on the last hidden states.
    pub cos: f64,
    /// Temperature of the soft term.
    pub temperature: f64,
}

impl Default for DistilBertConfig {
    fn default() -> Self {
        DistilBertConfig {
            soft: 5.0,
            ce: 2.0,
            cos: 1.0,
            temperature: 2.0,
        }
    }
}

/// The DistilBERT objective of a student of the teacher's width `D`.
///
/// # Errors
/// If either model has no layer, or a term's loss fails (empty batch, targets out of range).
pub fn distilbert_loss<const V: usize, const D: usize>(
    student: Outputs<V, D, Taped>,
    teacher: Outputs<V, D, NoneTape>,
    targets: &[usize],
    config: &DistilBertConfig,
) -> Result<LossTerms<f32, Cpu, Taped>, LossError> {
    let no_layer = |argument| Error::NoItems { argument }.in_loss("distilbert_loss");
    let student_last = student.hidden.into_iter().last().ok_or(no_layer("student.hidden"))?;
    let teacher_last = teacher.hidden.into_iter().last().ok_or(no_layer("teacher.hidden"))?;
    let (logits, tape) = student.logits.split_tape();
    let t2 = config.temperature * config.temperature;
    let soft = soft_cross_entropy_loss(logits.clone().put_tape(tape), teacher.logits, config.temperature)? * t2 as f32;
    let ce = cross_entropy_loss(logits.retaped::<Taped>(), targets)?;
    Ok(LossTerms::new().add("soft_ce", config.soft, soft).add("ce", config.ce, ce).add(
        "cos",
        config.cos,
        cosine_embedding_loss(student_last, teacher_last)?,
    ))
}

/// TinyBERT's term weights (1 each in the paper) and prediction temperature (1).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct TinyBertConfig {
    /// Weight of each layer-wise MSE term (embedding, hidden, attention).
    pub layer: f64,
    /// Weight of the prediction-layer soft cross-entropy.
    pub prediction: f64,
    /// Temperature of the prediction term.
    pub temperature: f64,
}

impl Default for TinyBertConfig {
    fn default() -> Self {
        TinyBertConfig {
            layer: 1.0,
            prediction: 1.0,
            temperature: 1.0,
        }
    }
}

/// The TinyBERT objective of a student of width `DS` against a teacher of width `DT`:
/// `project` maps a student state `(N, DS)` to the teacher's width (the learned `W_h`; the
/// embeddings go through `project_embedding`, the `W_e`).
///
/// # Errors
/// If the student has more than four layers, the depths do not map uniformly, the two models
/// have different numbers of attention heads, or a term's loss fails.
pub fn tinybert_loss<const V: usize, const DS: usize, const DT: usize>(
    student: Outputs<V, DS, Taped>,
    teacher: Outputs<V, DT, NoneTape>,
    project: impl Fn(Tensor<(usize, Const<DS>), f32, Cpu, Taped>) -> Tensor<(usize, Const<DT>), f32, Cpu, Taped>,
    project_embedding: impl Fn(Tensor<(usize, Const<DS>), f32, Cpu, Taped>) -> Tensor<(usize, Const<DT>), f32, Cpu, Taped>,
    config: &TinyBertConfig,
) -> Result<LossTerms<f32, Cpu, Taped>, LossError> {
    let (student_layers, teacher_layers) = (student.hidden.len(), teacher.hidden.len());
    let in_tinybert = |problem: Error| problem.in_loss("tinybert_loss");
    if student_layers > HIDDEN.len() {
        return Err(in_tinybert(Error::TooManyItems {
            argument: "student.hidden",
            most: HIDDEN.len(),
            got: student_layers,
        }));
    }
    if student_layers == 0 || !teacher_layers.is_multiple_of(student_layers) {
        return Err(in_tinybert(Error::LayerMap {
            student_layers,
            teacher_layers,
        }));
    }
    let mut loss = LossTerms::new().add(
        "embedding",
        config.layer,
        hint_loss(project_embedding(student.embedding), teacher.embedding)?,
    );
    let (mut teacher_hidden, mut teacher_scores): (Vec<_>, Vec<_>) = (
        teacher.hidden.into_iter().map(Some).collect(),
        teacher.scores.into_iter().map(Some).collect(),
    );
    for (m, (hidden, scores)) in student.hidden.into_iter().zip(student.scores).enumerate() {
        let g = uniform_layer_map(student_layers, teacher_layers, m);
        let (Some(target_hidden), Some(target_scores)) = (teacher_hidden[g].take(), teacher_scores[g].take()) else {
            unreachable!("the uniform map is injective")
        };
        crate::error::same_size(
            "attention heads",
            ("student.scores", scores.shape().1),
            ("teacher.scores", target_scores.shape().1),
        )
        .map_err(in_tinybert)?;
        loss = loss.add(HIDDEN[m], config.layer, hint_loss(project(hidden), target_hidden)?).add(
            ATTENTION[m],
            config.layer,
            hint_loss(scores, target_scores)?,
        );
    }
    Ok(loss.add(
        "prediction",
        config.prediction,
        soft_cross_entropy_loss(student.logits, teacher.logits, config.temperature)?,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uniform_mapping_takes_every_kth_teacher_layer() {
        assert_eq!((0..2).map(|m| uniform_layer_map(2, 4, m)).collect::<Vec<_>>(), [1, 3]);
        assert_eq!((0..4).map(|m| uniform_layer_map(4, 12, m)).collect::<Vec<_>>(), [2, 5, 8, 11]);
    }

    #[test]
    #[should_panic(expected = "multiple of the student's")]
    fn depths_that_do_not_divide_are_refused() {
        uniform_layer_map(3, 4, 0);
    }
}
