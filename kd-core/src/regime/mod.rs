//! Training regimes beyond one fixed teacher: each a reusable piece that the `kd` command and
//! the notebooks drive with their own models and data.
//!
//! | regime | module | what it provides |
//! |---|---|---|
//! | self-distillation, Born-Again | [`born_again`] | generations, each taught by the previous, fresh weights and optimiser each time; the ensemble |
//! | generative, GAN Compression | [`generative`] | the student generator's objective (L1 to the teacher, adapted feature MSE, adversarial) and the discriminator's |
//! | language models, DistilBERT / TinyBERT | [`language`] | both objectives over a transformer's logits, hidden states and attention scores, with uniform layer mapping |
//! | NetAug | [`netaug`] | a tiny MLP inside wider augmented MLPs that share its weights |
//! | online, Deep Mutual Learning | [`mutual`] | peers of any architectures, each learning CE + mean KL to the others |
//! | deep supervision + self-distillation, BYOT | [`deep_supervision`] | the loss of a network with shallow heads, with or without the self-distillation terms |

pub mod born_again;
pub mod deep_supervision;
pub mod generative;
pub mod language;
pub mod mutual;
pub mod netaug;
