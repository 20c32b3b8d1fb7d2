//! The one home of every default setting that more than one place reads: the loss
//! configurations' `Default` impls, `#[distill]`'s generated code (by path, never as a
//! literal) and the documentation. Each value comes from the reference recipe named beside it.
//! `distill::weights` is this module. It imports nothing, so every module can read it. The
//! conventions that are enum variants (FSP's, attention's) are those enums' `#[default]`.

/// Softmax temperature of the logit term: Hinton et al.'s and RepDistiller's T = 4.
pub const TEMPERATURE: f64 = 4.0;
/// Weight of the hard cross-entropy beside the logit term (RepDistiller's `-r 0.1`).
pub const CE_WEIGHT: f64 = 0.1;
/// Weight of the `T²·KL` logit term (RepDistiller's `-a 0.9`).
pub const KD_WEIGHT: f64 = 0.9;
/// Attention transfer's power of the channel statistic: `p = 2`, as in the paper's experiments.
pub const ATTENTION_P: f64 = 2.0;
/// Activation boundaries' margin μ = 1 (the official code).
pub const SPARSITY_MARGIN: f64 = 1.0;
/// NST's kernel is the paper's polynomial kernel `(xᵀy + c)^d` of this degree
/// (`NstKernel::default()`).
pub const NST_KERNEL_DEGREE: i32 = 2;
/// ... and this offset `c`.
pub const NST_KERNEL_CONSTANT: f64 = 0.0;
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
