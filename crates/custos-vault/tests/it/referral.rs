//! Referral (C027) against the policy: the vault sends one only when the policy lets the
//! accessor pursue `referral`, its limit covers the friend's name and address, and a role
//! of its service collects them transiently. Each weakening of the policy is refused,
//! named, and ledgered without the friend.

use std::sync::Arc;

use custos_vault::{ReferralInput, Vault};

use crate::support::registration;

fn vault_with(name: &str, text: &str) -> (Vault, std::path::PathBuf) {
    let policy = Arc::new(custos_policy::Policy::from_str("p.toml", text).unwrap());
    let dir = std::env::temp_dir().join(format!("custos_referral_{name}_{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    (Vault::open_embedded(&dir, policy).unwrap(), dir)
}

fn attempt(text: &str, name: &str) -> Result<(), String> {
    let (v, dir) = vault_with(name, text);
    let referrer = v
        .collect(
            "website",
            &registration("ref.c027@example.com", &["account"]),
        )
        .unwrap();
    let input = ReferralInput {
        subject: referrer.to_string(),
        name: "Frida Friend".into(),
        email: "frida-c027@friend.example".into(),
        message: None,
    };
    let out = v.refer("website", &input).map(|_| ()).map_err(|e| {
        assert!(!e.to_string().contains("frida"));
        e.code().to_string()
    });
    let n = v.store().ledger_last_seq().unwrap();
    let entries = v.store().ledger_page(1, n).unwrap();
    let last = entries
        .iter()
        .rev()
        .find(|e| e.draft.action == "referral")
        .unwrap();
    assert_eq!(last.draft.subject, referrer.as_str());
    assert_eq!(last.draft.categories, "referral.name,referral.email");
    assert!(!format!("{entries:?}").to_lowercase().contains("frida"));
    if let Err(code) = &out {
        assert_eq!(
            (last.draft.effect.as_str(), last.draft.reasons.as_str()),
            ("refused", code.as_str())
        );
    }
    drop(v);
    let _ = std::fs::remove_dir_all(&dir);
    out
}

#[test]
fn the_policy_decides_who_may_refer() {
    let builtin = custos_policy::BUILTIN_WEBEX_2010;
    assert_eq!(attempt(builtin, "builtin"), Ok(()));
    // The website's limit for `referral` without the address.
    let limit = "purpose = \"referral\"\ncategories = [\"referral.name\", \"referral.email\", \"contact.name\"]";
    assert!(builtin.contains(limit));
    let narrowed = builtin.replace(
        limit,
        "purpose = \"referral\"\ncategories = [\"referral.name\", \"contact.name\"]",
    );
    assert_eq!(
        attempt(&narrowed, "narrowed"),
        Err("exceeds_minimum_necessary".into())
    );
    // The website no longer pursues `referral`.
    let pursued = "  \"recruitment\",\n  \"referral\",\n]";
    assert!(builtin.contains(pursued));
    let not_pursued = builtin.replace(pursued, "  \"recruitment\",\n]").replace(
        &format!("[[accessor.limit]]\n{limit}\nclauses = [\"C027\"]\n"),
        "",
    );
    assert_eq!(
        attempt(&not_pursued, "not_pursued"),
        Err("purpose_not_allowed_for_accessor".into())
    );
    // The referrer role gone from the website: nothing collects the friend's data.
    let role = "[[service.role]]\nid = \"referrer\"";
    assert!(builtin.contains(role));
    let no_role = builtin.replace(
        "collects = [\"referral.name\", \"referral.email\"]\npurposes = [\"referral\"]",
        "collects = [\"referral.name\"]\npurposes = [\"referral\"]",
    );
    assert_ne!(no_role, builtin);
    assert_eq!(
        attempt(&no_role, "no_role"),
        Err("referral_not_offered".into())
    );
}

/// Tenant binding: a key acting for a tenant reaches only that tenant's people, for a
/// referral as for anything else — the website's person of no tenant does not exist to a
/// website key of tenant `acme` (were the policy to make one), and the refusal is ledgered
/// with the tenant rule's reason, nothing queued.
#[test]
fn a_key_of_a_tenant_refers_no_one_outside_it() {
    let (v, dir) = vault_with("tenant", custos_policy::BUILTIN_WEBEX_2010);
    let referrer = v
        .collect(
            "website",
            &registration("tenant.c027@example.com", &["account"]),
        )
        .unwrap();
    let input = ReferralInput {
        subject: referrer.to_string(),
        name: "Tia Tenant".into(),
        email: "tia-c027@friend.example".into(),
        message: None,
    };
    let e = v
        .refer(custos_vault::Actor::of_tenant("website", "acme"), &input)
        .unwrap_err();
    assert_eq!(e.code(), "subject_not_found");
    let n = v.store().ledger_last_seq().unwrap();
    let last = v.store().ledger_page(n, n).unwrap().remove(0).draft;
    assert_eq!(
        (
            last.action.as_str(),
            last.effect.as_str(),
            last.reasons.as_str()
        ),
        ("referral", "refused", "subject_not_in_tenant")
    );
    assert!(v.claim_mail(10).unwrap().is_empty());
    // The same key of no tenant: sent.
    assert!(v.refer("website", &input).is_ok());
    assert_eq!(v.claim_mail(10).unwrap().len(), 1);
    drop(v);
    let _ = std::fs::remove_dir_all(&dir);
}
