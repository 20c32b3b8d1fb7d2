//! The `kd` command end to end, in one test binary (each module was its own binary, linked
//! and compiled against dfdx again): the main job, `run`, `reproduce`, `bench` and the
//! teacher-logit store, each through the built `kd` executable.

mod bench;
mod common;
mod demo;
mod reproduce;
mod run;
mod store;
