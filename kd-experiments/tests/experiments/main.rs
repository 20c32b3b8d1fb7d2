//! kd-experiments' integration tests, in one test binary (each module was its own binary,
//! linked and compiled against dfdx again): the reproduction harness at its quick size, the
//! README's results table against the committed JSON, the KD schedule and the logit store; and
//! the library's own tests (rows, findings, the Hinton recipe), here rather than in a second,
//! test-mode build of the whole library (`[lib] test = false`).

mod findings;
mod hinton;
mod kd_schedule;
mod logit_store;
mod readme_results;
mod reproduce;
mod rows;
