//! The HTTP API, exercised over real sockets: one test binary.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "tests fail loudly on what they did not expect"
)]

mod attacks;
mod auth;
mod canary;
mod consents;
mod contract;
mod cookies;
mod demo;
mod hardening;
mod instruments;
mod mailings;
mod observability;
mod people;
mod referrals;
mod requests;
mod rights;
mod smtp_tls;
mod subjects;
mod support;
mod tenants;
mod tlog;
mod tls;
mod transport;
mod unsubscribe;
