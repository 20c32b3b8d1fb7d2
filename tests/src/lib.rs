//! Cross-crate tests of kd: the behaviour tests live in `tests/tests/`.
