//! Integration tests of custos-policy, through its public API: one test binary.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "tests fail loudly on what they did not expect"
)]

mod lint;
mod notice_layout;
mod properties;
mod trace;
mod validation;
mod webex;

use custos_policy::Policy;

/// A small, valid policy the validation and property tests mutate.
pub const MINI: &str = r#"
[policy]
id = "mini"
version = "v1"
effective = "2024-01-01"
title = "Mini policy"
controller = "Example Inc."
minimum_age = 13
clause_range = ["C001", "C010"]
clauses = ["C001"]

[[category]]
id = "contact.email"
name = "Email address"
kind = "contact"
identifier = true
clauses = ["C002"]

[[category]]
id = "contact.name"
name = "Name"
kind = "identity"

[[category]]
id = "payment.card"
name = "Card number"
kind = "financial"

[[purpose]]
id = "account"
name = "Run the account"
basis = "service"
clauses = ["C003"]

[[purpose]]
id = "account.login"
parent = "account"
name = "Log in"
basis = "service"

[[purpose]]
id = "marketing"
name = "Marketing"
basis = "opt_out"

[[purpose]]
id = "marketing.partners"
parent = "marketing"
name = "Share with partners"
basis = "consent"

[[purpose]]
id = "legal"
name = "Legal process"
basis = "legal"

[[accessor]]
id = "app"
name = "The app"
purposes = ["account"]

[[accessor]]
id = "marketer"
name = "Marketing team"
purposes = ["marketing"]
[[accessor.limit]]
purpose = "marketing"
categories = ["contact.email", "contact.name"]

[[accessor]]
id = "partner"
name = "A partner"
recipient = "partner"
purposes = ["marketing.partners"]

[[accessor]]
id = "lawyer"
name = "Legal"
purposes = ["legal"]

[[recipient]]
id = "partner"
name = "Partner Co."
kind = "marketing_partner"
[[recipient.allow]]
purpose = "marketing.partners"
categories = ["contact.email"]

[[service]]
id = "site"
name = "The site"
[[service.role]]
id = "member"
name = "Member"
collects = ["contact.email", "contact.name"]
optional = ["payment.card"]
purposes = ["account", "marketing"]
"#;

pub fn mini() -> Policy {
    match Policy::from_str("mini.toml", MINI) {
        Ok(p) => p,
        Err(d) => panic!("MINI is invalid:\n{d}"),
    }
}

pub fn builtin() -> Policy {
    match Policy::builtin() {
        Ok(p) => p,
        Err(d) => panic!("the built-in policy is invalid:\n{d}"),
    }
}
