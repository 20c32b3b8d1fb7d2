//! Every compile error `#[distill]` and `#[model]` can give, as trybuild UI cases with their
//! `.stderr` committed (`TRYBUILD=overwrite cargo test -p kd-tests --test ui` to regenerate;
//! read the diff). rustc's wording changes between releases, so the snapshots are checked on
//! the toolchain they were written with only.

#[rustversion::attr(not(stable(1.95)), ignore = "UI snapshots are pinned to rustc 1.95")]
#[test]
fn ui() {
    let cases = trybuild::TestCases::new();
    cases.compile_fail("tests/ui/*/*.rs");
}
