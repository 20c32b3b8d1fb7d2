//! Distillation losses, one file per method.
//!
//! Every loss is a free function in dfdx's style: `*_loss`, generic over dtype `E`, device `D`
//! and tape `T`, with fixed argument names (`student_logits`, `teacher_logits`, `temperature`,
//! `student_feat`, `teacher_feat`, `targets`, ...). The teacher's tensors are untaped
//! (`Tensor<S, E, D>`), so the teacher receiving no gradient is a fact of the types.
//!
//! Every loss returns `Result<_, `[`LossError`](crate::LossError)`>` and never panics on its
//! inputs: an empty batch, batches of different sizes, a non-finite or out-of-range temperature,
//! weight or kernel parameter, a target out of range, and (for AB, which reads only the
//! teacher's sign) a NaN or infinite teacher value each come back as a named error (the
//! `loss_contract` tests).
//!
//! Each loss returns the *unweighted* term; the weights live in the method's config struct and
//! are applied when terms are summed with [`LossTerms`], which also records every named term's
//! value for logging and for the NaN guard.
//!
//! | method | file | convention |
//! |---|---|---|
//! | logit KD (Hinton) | [`kd`] | `T² · KL(p_t ‖ p_s)`, sum over classes, mean over batch |
//! | reverse KL (MiniLLM) | [`reverse_kl`] | `T² · KL(p_s ‖ p_t)`, as `kd` |
//! | generalised JSD (GKD) | [`jsd`] | TRL's: `β·KL(p_t‖m) + (1−β)·KL(p_s‖m)`, `m = β p_t + (1−β) p_s`, times `T²` |
//! | total variation | [`tvd`] | `T² · ½‖p_s − p_t‖₁`, mean over batch |
//! | several teachers | [`multi_teacher`] | `D(p̄ ‖ p_s)`, `p̄` the weighted average at `T`, or a term per teacher |
//! | DIST | [`dist`] | `τ²·(1 − ρ)` per sample across classes and per class across the batch |
//! | FitNet hints | [`fitnet`] | MSE, mean over all elements, through a typed adapter |
//! | NST | [`nst`] | MMD² of L2-normalised channel maps, means over `B·C·C` |
//! | attention transfer | [`attention`] | authors' code (mean squared diff) or paper (L2 norm) |
//! | gradient attention | [`gradient_attention`] | `½‖J_S − J_T‖²`, finite-difference HVP |
//! | activation boundaries | [`activation_boundary`] | squared hinge, margin 1, sum / B |
//! | FSP | [`fsp`] | paper: `Σ‖G_S − G_T‖²_F / B` |
//! | RKD | [`rkd`] | distance (Huber of μ-normalised) and angle |
//! | similarity-preserving | [`sp`] | `‖G̃_S − G̃_T‖²_F / B²` |
//! | deep mutual learning | [`dml`] | CE + mean KL to the peers, T = 1 |
//! | be your own teacher | [`byot`] | `(1−α)·CE + α·T²·KL + λ·‖F_i − F_C‖²` |
//! | decoupled KD | [`dkd`] | TCKD + NCKD (mdistiller) |

pub mod activation_boundary;
pub mod attention;
pub mod byot;
pub mod dist;
pub mod distilbert;
pub mod divergence;
pub mod dkd;
pub mod dml;
pub mod fitnet;
pub mod fsp;
pub mod gradient_attention;
pub mod jsd;
pub mod kd;
pub mod multi_teacher;
pub mod nst;
pub mod reverse_kl;
pub mod rkd;
pub mod sp;
mod terms;
#[cfg(test)]
mod test_vectors;
pub mod tinybert;
pub mod tvd;

pub use activation_boundary::{ab_loss, AbConfig};
pub use attention::{at_loss, attention_map, AtConvention};
pub use byot::{byot_loss, ByotConfig};
pub use dist::{dist_loss, DistConfig};
pub use distilbert::cosine_embedding_loss;
pub use divergence::{divergence_loss, Divergence};
pub use dkd::{dkd_loss, DkdConfig};
pub use dml::dml_loss;
pub use fitnet::{hint_loss, Conv1x1Adapter, ConvRegDown, ConvRegShrink, ConvRegUp, LinearAdapter};
pub use fsp::{fsp_loss, fsp_matrix, FspConvention};
pub use gradient_attention::{gradient_at_loss, input_gradient};
pub use jsd::jsd_loss;
pub use kd::{cross_entropy_loss, kd_loss, kd_with_ce_loss, KdConfig};
pub use multi_teacher::{ensemble_teacher_logits, multi_teacher_kd_with_ce_loss, Ensemble};
pub use nst::{nst_loss, NstKernel};
pub use reverse_kl::reverse_kl_loss;
pub use rkd::{rkd_angle_loss, rkd_distance_loss, RkdConfig};
pub use sp::sp_loss;
pub use terms::{LossTerms, Term};
pub use tinybert::soft_cross_entropy_loss;
pub use tvd::tvd_loss;
