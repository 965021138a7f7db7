//! Warnings of a valid policy (`Policy::warnings`, issue 12 item 6): elements of kinds no
//! decision reads yet, and declared elements nothing uses, each at its id.

use custos_policy::Policy;

use crate::builtin;

/// The minimal policy of `docs/policy-language.md`, with an unused category, purpose,
/// retention rule, record collection and recipient, and a cookie (read: never warned).
const SMALL: &str = r#"[policy]
id = "tiny"
version = "2024-01-01"
effective = "2024-01-01"
title = "Tiny Privacy Policy"
controller = "Tiny Inc."

[[retention]]
id = "account"
name = "While the account is open"
period = "account"

[[retention]]
id = "forever-ish"
name = "Ten years"
period = "P10Y"

[[category]]
id = "contact.email"
name = "Email address"
identifier = true
retention = "account"

[[category]]
id = "contact.fax"
name = "Fax number"

[[purpose]]
id = "account"
basis = "service"
name = "Your account"

[[purpose]]
id = "telemarketing"
basis = "consent"
name = "Calls"

[[accessor]]
id = "support"
name = "Support"
purposes = ["account"]

[[service]]
id = "website"
name = "Website"

[[service.role]]
id = "account-holder"
name = "Registered user"
collects = ["contact.email"]
purposes = ["account"]

[[collection]]
id = "faxes"
name = "Faxes"

[[collection.field]]
name = "page"
category = "contact.email"

[[recipient]]
id = "dialer"
name = "Call centre"
kind = "processor"

[[recipient.allow]]
purpose = "telemarketing"
categories = ["contact.email"]

[[cookie]]
id = "session"
kind = "cookie"
name = "Session"
purpose = "account"
category = "contact.email"
"#;

#[test]
fn unused_elements_and_notice_only_kinds_are_warned_at_their_lines() {
    let p = Policy::from_str("small.toml", SMALL).unwrap_or_else(|d| panic!("{d}"));
    let lines = p.warning_lines();
    let at = |needle: &str| -> usize {
        SMALL
            .lines()
            .position(|l| l == needle)
            .unwrap_or_else(|| panic!("no line {needle}"))
            + 1
    };
    let want = [
        (
            at("id = \"forever-ish\""),
            "unused: no category or record collection is kept under retention `forever-ish`",
        ),
        (
            at("id = \"contact.fax\""),
            "unused: category `contact.fax` is collected by no role",
        ),
        (
            at("id = \"telemarketing\""),
            "unused: no accessor may pursue purpose `telemarketing`",
        ),
        (
            at("id = \"faxes\""),
            "unused: no role keeps record collection `faxes`",
        ),
        (
            at("id = \"dialer\""),
            "unused: no accessor acts for recipient `dialer`",
        ),
    ];
    assert_eq!(lines.len(), want.len(), "{lines:#?}");
    for (line, (n, text)) in lines.iter().zip(want) {
        assert!(
            line.starts_with(&format!("small.toml:{n}:6: warning: {text}")),
            "{line} (want line {n}: {text})"
        );
    }

    // Used, they are not warned: a role collecting the fax number for telemarketing, which an
    // accessor pursues (so the dialer may be disclosed to), keeping faxes for ten years.
    let used = SMALL
        .replace(
            "collects = [\"contact.email\"]\npurposes = [\"account\"]",
            "collects = [\"contact.email\", \"contact.fax\"]\npurposes = [\"account\", \"telemarketing\"]\nrecords = [\"faxes\"]",
        )
        .replace(
            "purposes = [\"account\"]\n\n[[service]]",
            "purposes = [\"account\", \"telemarketing\"]\n\n[[accessor.limit]]\npurpose = \"telemarketing\"\ncategories = [\"contact.email\"]\n\n[[service]]",
        )
        .replace("name = \"Faxes\"", "name = \"Faxes\"\nretention = \"forever-ish\"");
    let p = Policy::from_str("small.toml", &used).unwrap_or_else(|d| panic!("{d}"));
    let lines = p.warning_lines();
    // A cookie is read (the consent banner's choices): never notice-only.
    assert!(lines.is_empty(), "{lines:#?}");
}

/// A recipient no accessor acts for is still live when an accessor may disclose to it
/// onwards (a read naming it as `recipient`), and a parent purpose is live through its
/// children.
#[test]
fn onward_recipients_and_parent_purposes_are_not_unused() {
    let src = SMALL
        .replace(
            "id = \"telemarketing\"\nbasis = \"consent\"",
            "id = \"account.calls\"\nparent = \"account\"\nbasis = \"consent\"",
        )
        .replace("purpose = \"telemarketing\"", "purpose = \"account.calls\"")
        .replace(
            "purposes = [\"account\"]\n\n[[service]]",
            "purposes = [\"account\"]\n\n[[accessor.limit]]\npurpose = \"account\"\ncategories = [\"contact.email\"]\n\n[[service]]",
        );
    let p = Policy::from_str("small.toml", &src).unwrap_or_else(|d| panic!("{d}"));
    let lines = p.warning_lines().join("\n");
    assert!(!lines.contains("`dialer`"), "{lines}");
    assert!(!lines.contains("`account`"), "{lines}");
    assert!(!lines.contains("`account.calls`"), "{lines}");
}

/// The WebEx policy uses every element it declares; its warnings are exactly the kinds no
/// decision reads yet: regions, transfers and rights (cookies make the consent banner) (`docs/policy-language.md`,
/// "What reads each key").
#[test]
fn the_webex_policy_warns_only_of_its_notice_only_elements() {
    let p = builtin();
    let messages: Vec<String> = p
        .warning_lines()
        .iter()
        .map(|l| {
            l.split_once(": warning: ")
                .map(|(_, m)| m.to_string())
                .unwrap_or_default()
        })
        .collect();
    let kinds: Vec<String> = messages
        .iter()
        .map(|m| {
            let (kind, rest) = m.split_once(" `").unwrap_or_default();
            assert!(
                rest.ends_with(
                    "is notice-only: no decision reads it yet; it is rendered in the notice"
                ),
                "{m}"
            );
            format!("{kind} {}", rest.split('`').next().unwrap_or_default())
        })
        .collect();
    assert_eq!(
        kinds,
        [
            "region us",
            "region worldwide",
            "transfer to us",
            "transfer to worldwide",
            "transfer to us",
            "right rectification",
            "right deactivation",
            "right objection",
            "right consent_withdrawal",
            "right disclosure_list",
        ]
    );
}
