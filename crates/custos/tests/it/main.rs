//! The `custos` binary, run as a user runs it: one test binary.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "tests fail loudly on what they did not expect"
)]

mod vault;
