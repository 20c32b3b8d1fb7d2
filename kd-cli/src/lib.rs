//! The experiments behind the `kd` command, as a library: the command-line front end
//! (`src/main.rs`) and the notebooks in `notebooks/` call the same functions.
//!
//! | module | experiment |
//! |---|---|
//! | [`hinton`] | `kd demo`: Hinton et al. (2015) §3 on MNIST |
//! | [`methods`] | `kd run --method`: the feature and relation losses on one CNN pair |
//! | [`regimes`] | `kd run --regime`: Born-Again, DML, BYOT, NetAug (and the two below) |
//! | [`generative`] | `kd run --regime gan`: GAN Compression-style MNIST denoising |
//! | [`language`] | `kd run --regime language`: DistilBERT/TinyBERT-style character models |
//! | [`bench`] | `kd bench` |

pub mod bench;
pub mod generative;
pub mod hinton;
pub mod language;
pub mod methods;
pub mod regimes;
