//! The conformance suite: every case runs against both backends (see `main.rs`).

pub use crate::tlog::{
    ledger_transparency_log, ledger_tree_of_a_store_with_level0_tiles,
    ledger_tree_shared_by_two_writers,
};
use std::collections::BTreeMap;
use std::sync::Arc;

use custos_vault::{
    CollectionInput, Error, MasterKey, Purging, ReadInput, RecordsPage, SubjectId, Vault,
};

use crate::support::{Harness, attendee, registration};

pub use crate::people::{
    expired_sign_ins_are_swept, finished_mail_is_swept, outbox_seals_and_forgets_what_it_sent,
    sign_in_codes_are_bounded, sign_in_reaches_the_address_subjects_only,
};

pub use crate::consent::{
    consent_begun_is_answered_once_durable,
    consent_changes_share_commits_and_a_failed_store_says_so,
    consent_takes_effect_for_the_next_decision, objection_by_choice_and_its_withdrawal,
    only_a_holder_records_a_persons_choice, partner_consent_is_for_its_recipient,
    preferences_are_consent_records, receipts_read_back_as_signed_after_reopen,
    refusals_queued_are_durable_when_told, subject_holders_is_what_a_change_checks,
    what_is_not_consent_is_refused,
};
pub use crate::cookies::{
    cookie_consent_is_an_anonymous_record, counts_are_flushed_and_bounded,
    telemetry_and_aggregates_are_for_their_accessors,
};
pub use crate::instruments::{
    legal_reads_need_a_registered_instrument, legal_records_reads_need_a_covering_instrument,
    only_staff_register_instruments,
};
pub use crate::mailings::{
    a_tenant_bound_mailing_reaches_only_its_tenant,
    c031_every_mailing_message_carries_unsubscribe_headers_and_footer,
    c031_html_mailings_carry_the_footer_too, c032_a_reply_to_the_mailto_unsubscribes_by_its_token,
    c033_the_footer_and_intake_follow_the_unsubscribe_right,
    mailings_count_the_excluded_and_store_nothing_in_plaintext, only_entitled_senders_mail,
    unsubscribe_tokens_cannot_be_forged_or_moved,
};
pub use crate::requests::{
    completing_a_request_does_it, only_staff_handle_requests, open_and_overdue_requests_are_listed,
    requests_are_checked_field_by_field, requests_are_listed_page_by_page,
    requests_move_through_their_states,
};
pub use crate::rights::{
    a_person_reaches_only_their_own_subjects, a_person_reads_the_ledger_entries_about_them,
    correction_replaces_the_value_everywhere, deactivation_and_erasure_by_the_person,
    export_holds_everything_about_the_person,
};

pub fn read(purpose: &str) -> ReadInput {
    ReadInput {
        purpose: purpose.into(),
        ..ReadInput::default()
    }
}

/// Makes the ledger refuse every append (a trigger), as a failing disk would.
fn ledger_down(h: &Harness) {
    if h.is_sqlite() {
        h.exec(
            "CREATE TRIGGER audit.ledger_down BEFORE INSERT ON ledger_blocks \
             BEGIN SELECT RAISE(ABORT, 'ledger down'); END;",
        );
    } else {
        h.exec(
            "CREATE FUNCTION ledger_down() RETURNS trigger AS $$ \
             BEGIN RAISE EXCEPTION 'ledger down'; END $$ LANGUAGE plpgsql; \
             CREATE TRIGGER ledger_down BEFORE INSERT ON ledger_blocks \
             FOR EACH ROW EXECUTE FUNCTION ledger_down();",
        );
    }
}

/// Undoes [`ledger_down`].
fn ledger_up(h: &Harness) {
    h.exec(if h.is_sqlite() {
        "DROP TRIGGER audit.ledger_down"
    } else {
        "DROP TRIGGER ledger_down ON ledger_blocks"
    });
}

pub(crate) fn last_entry(v: &Vault) -> custos_vault::LedgerEntry {
    let store = v.store();
    let n = v.verify_ledger().unwrap().entries;
    store.ledger_page(n, 1).unwrap().pop().unwrap()
}

pub fn collect_and_read(h: Harness) {
    let v = h.vault();
    let id = v
        .collect(
            "meeting-center",
            &attendee("Ann Example", "ann@example.com"),
        )
        .unwrap();
    let r = v
        .read("meeting-center", &id, &read("service.meetings"))
        .unwrap();
    assert_eq!(r.effect, "permit");
    assert_eq!(r.data["contact.email"], "ann@example.com");
    assert_eq!(r.data["contact.name"], "Ann Example");
    assert!(r.withheld.is_empty());
    // The ledger entry of the read exists and names categories, never values.
    let e = last_entry(v);
    assert_eq!(e.seq, r.ledger_seq);
    assert_eq!(e.draft.action, "read");
    assert_eq!(e.draft.subject, id.as_str());
    assert!(e.draft.categories.contains("contact.email"));
    // A subset of categories.
    let only = v
        .read(
            "meeting-center",
            &id,
            &ReadInput {
                purpose: "service.meetings".into(),
                categories: Some(vec!["contact.name".into()]),
                ..ReadInput::default()
            },
        )
        .unwrap();
    assert_eq!(only.data.keys().collect::<Vec<_>>(), ["contact.name"]);
    // Collect more: the new value replaces the old, purposes accumulate.
    let mut more = attendee("Ann Example", "ann@new.example.com");
    more.purposes = vec!["support".into()];
    v.collect_more("meeting-center", &id, &more).unwrap();
    let r = v
        .read("meeting-center", &id, &read("service.meetings"))
        .unwrap();
    assert_eq!(r.data["contact.email"], "ann@new.example.com");
    assert!(v.verify_ledger().unwrap().ok());
}

pub fn refused_reads_are_ledgered(h: Harness) {
    let v = h.vault();
    let id = v
        .collect("meeting-center", &attendee("Bo", "bo@example.com"))
        .unwrap();
    let before = v.verify_ledger().unwrap().entries;
    // No purpose.
    let e = v.read("meeting-center", &id, &read("")).unwrap_err();
    assert_eq!(e.code(), "purpose_required");
    let last = last_entry(v);
    assert_eq!(
        (last.draft.effect.as_str(), last.draft.reasons.as_str()),
        ("deny", "purpose_required")
    );
    // Unknown purpose: an error, and its name is not ledgered (it could be a value).
    let e = v
        .read("meeting-center", &id, &read("bo@example.com"))
        .unwrap_err();
    assert_eq!(e.code(), "unknown_purpose");
    let last = last_entry(v);
    assert_eq!(last.draft.reasons, "unknown_purpose");
    assert_eq!(last.draft.purpose, "?");
    // A purpose the accessor may not pursue: nothing returned, denial ledgered.
    let r = v.read("mail", &id, &read("service.meetings")).unwrap();
    assert_eq!(r.effect, "deny");
    assert!(r.data.is_empty());
    assert_eq!(
        r.withheld["contact.email"],
        "purpose_not_allowed_for_accessor"
    );
    let last = last_entry(v);
    assert_eq!(last.draft.effect, "deny");
    assert_eq!(last.draft.reasons, "purpose_not_allowed_for_accessor");
    // A purpose the data was not collected for.
    let r = v.read("meeting-center", &id, &read("account")).unwrap();
    assert!(r.data.is_empty());
    // Unknown category and unknown recipient are errors, ledgered.
    let e = v
        .read(
            "meeting-center",
            &id,
            &ReadInput {
                purpose: "service.meetings".into(),
                categories: Some(vec!["contact.shoe_size".into()]),
                ..ReadInput::default()
            },
        )
        .unwrap_err();
    assert_eq!(e.code(), "unknown_category");
    let e = v
        .read(
            "meeting-center",
            &id,
            &ReadInput {
                purpose: "service.meetings".into(),
                recipient: Some("nobody".into()),
                ..ReadInput::default()
            },
        )
        .unwrap_err();
    assert_eq!(e.code(), "unknown_recipient");
    // An unknown subject.
    let ghost = SubjectId::parse("00000000-0000-4000-8000-000000000000").unwrap();
    assert!(matches!(
        v.read("meeting-center", &ghost, &read("service.meetings")),
        Err(Error::SubjectNotFound)
    ));
    let after = v.verify_ledger().unwrap();
    assert!(after.ok());
    assert_eq!(after.entries, before + 7, "every refusal is ledgered");
}

pub fn collection_refusals(h: Harness) {
    let v = h.vault();
    let mut bad = attendee("Cy", "cy@example.com");
    bad.data
        .insert("payment.card_number".into(), "4111111111111111".into());
    let e = v.collect("meeting-center", &bad).unwrap_err();
    assert_eq!(e.code(), "category_not_declared_for_role");
    let mut no_purpose = attendee("Cy", "cy@example.com");
    no_purpose.purposes.clear();
    assert_eq!(
        v.collect("meeting-center", &no_purpose).unwrap_err().code(),
        "purpose_required"
    );
    let mut old_notice = attendee("Cy", "cy@example.com");
    old_notice.notice = "1999-01".into();
    assert_eq!(
        v.collect("meeting-center", &old_notice).unwrap_err().code(),
        "unknown_notice_version"
    );
    // A blank value is no value: refused, naming its field, and ledgered.
    let blank = attendee("Cy", " \t ");
    match v.collect("meeting-center", &blank).unwrap_err() {
        Error::CollectionRefused(errors) => {
            let named: Vec<_> = errors.iter().map(|e| (e.code, e.field.as_str())).collect();
            assert_eq!(named, [("invalid_value", "data.contact.email")]);
        }
        e => panic!("{e:?}"),
    }
    let last = last_entry(v).draft;
    assert_eq!(
        (
            last.effect.as_str(),
            last.reasons.as_str(),
            last.subject.as_str()
        ),
        ("refused", "invalid_value", "")
    );
    assert_eq!(h.count("SELECT COUNT(*) FROM subjects"), 0);
    let held = v
        .collect("meeting-center", &attendee("Cy", "cy@example.com"))
        .unwrap();
    assert_eq!(
        v.collect_more("meeting-center", &held, &attendee(" ", "cy@example.com"))
            .unwrap_err()
            .code(),
        "invalid_value"
    );
    assert_eq!(last_entry(v).draft.reasons, "invalid_value");
    let dump = h.dump();
    assert!(!contains(&dump, b"4111111111111111"));
    assert!(!contains(&dump, b"cy@example.com"));
}

pub fn under_minimum_age(h: Harness) {
    let v = h.vault();
    // C053: refused at collection, nothing kept.
    let mut child = registration("kid@example.com", &["account"]);
    child.age = Some(12);
    let e = v.collect("website", &child).unwrap_err();
    assert_eq!(e.code(), "subject_under_minimum_age");
    assert_eq!(h.count("SELECT COUNT(*) FROM subjects"), 0);
    assert_eq!(h.count("SELECT COUNT(*) FROM field_values"), 0);
    let last = last_entry(v);
    assert_eq!(
        (
            last.draft.effect.as_str(),
            last.draft.reasons.as_str(),
            last.draft.subject.as_str()
        ),
        ("refused", "subject_under_minimum_age", "")
    );
    // An age given as data counts too.
    let mut typed = registration("kid2@example.com", &["account"]);
    typed.age = None;
    typed.data.insert("person.age".into(), " 12 ".into());
    assert_eq!(
        v.collect("website", &typed).unwrap_err().code(),
        "subject_under_minimum_age"
    );
    assert_eq!(h.count("SELECT COUNT(*) FROM subjects"), 0);
    // C053: held data is erased as soon as the age is learned.
    let id = v
        .collect("meeting-center", &attendee("Dee", "dee@example.com"))
        .unwrap();
    v.learn_age("meeting-center", &id, 11).unwrap();
    // The same two-phase erasure: its purge's ledger entry lands before the read's below.
    v.purge_erased().unwrap();
    assert_eq!(h.count("SELECT COUNT(*) FROM field_values"), 0);
    assert!(v.store().wrapped_dek(id.as_str()).unwrap().is_none());
    let r = v
        .read("meeting-center", &id, &read("service.meetings"))
        .unwrap();
    assert!(r.data.is_empty());
    assert_eq!(r.effect, "deny");
    let last = last_entry(v);
    assert_eq!(last.draft.action, "read");
    // And when a later collection states an age under the minimum.
    let id2 = v
        .collect("meeting-center", &attendee("Eve", "eve@example.com"))
        .unwrap();
    let mut more = attendee("Eve", "eve@example.com");
    more.age = Some(9);
    assert_eq!(
        v.collect_more("meeting-center", &id2, &more)
            .unwrap_err()
            .code(),
        "subject_under_minimum_age"
    );
    assert!(v.store().wrapped_dek(id2.as_str()).unwrap().is_none());
    assert_eq!(h.count("SELECT COUNT(*) FROM field_values"), 0);
    // An adult's age is recorded and changes nothing else.
    let id3 = v
        .collect("meeting-center", &attendee("Fay", "fay@example.com"))
        .unwrap();
    v.learn_age("meeting-center", &id3, 40).unwrap();
    assert_eq!(
        v.read("meeting-center", &id3, &read("service.meetings"))
            .unwrap()
            .effect,
        "permit"
    );
}

pub fn canary_never_in_plaintext(h: Harness) {
    let v = h.vault();
    let canary = "zq-canary-7f3a9c@example.invalid";
    let name = "Canaryname Qxjzv";
    let id = v
        .collect("meeting-center", &attendee(name, canary))
        .unwrap();
    v.append_record(
        "meeting-center",
        &id,
        "meeting_attendance",
        &["service.meetings".into()],
        &format!("{{\"note\":\"{canary}\"}}"),
    )
    .unwrap();
    let r = v
        .read("meeting-center", &id, &read("service.meetings"))
        .unwrap();
    assert_eq!(r.data["contact.email"], canary);
    // A refused read and a refused collection carrying the canary.
    let _ = v.read("meeting-center", &id, &read(canary));
    let mut bad = attendee(name, canary);
    bad.service = canary.into();
    let _ = v.collect("meeting-center", &bad);
    assert_eq!(
        v.find_by_identifier("contact.email", canary).unwrap(),
        Some(id.clone())
    );
    let dump = h.dump();
    assert!(dump.len() > 1000);
    for needle in [canary, name, "canary-7f3a9c", "Qxjzv"] {
        assert!(
            !contains(&dump, needle.as_bytes()),
            "`{needle}` found in plaintext"
        );
        let hex = custos_vault::crypto::hex(needle.as_bytes());
        assert!(!contains(&dump, hex.as_bytes()), "`{needle}` found as hex");
    }
}

pub fn ledger_tamper_detected(h: Harness) {
    let v = h.vault();
    let id = v
        .collect("meeting-center", &attendee("Gil", "gil@example.com"))
        .unwrap();
    for _ in 0..6 {
        v.read("meeting-center", &id, &read("service.meetings"))
            .unwrap();
    }
    let n = v.verify_ledger().unwrap().entries;
    assert!(n >= 7);
    let k = 4;
    for col in [
        "actor",
        "action",
        "subject",
        "purpose",
        "recipient",
        "categories",
        "effect",
        "reasons",
        "prev_hash",
        "hash",
    ] {
        let orig = h.ledger_text(k, col);
        h.tamper(k, col, |t| {
            let first = if t.starts_with('x') { "y" } else { "x" };
            format!("{first}{}", t.get(1..).unwrap_or_default())
        });
        let bad = v.verify_ledger().unwrap();
        assert_eq!(bad.first_bad, Some(k), "flipping `{col}` went unnoticed");
        assert_eq!(bad.entries, k - 1);
        h.tamper(k, col, |_| orig.clone());
        assert!(v.verify_ledger().unwrap().ok(), "restoring `{col}`");
    }
    h.edit_ledger(|es| {
        es.iter_mut().for_each(|e| {
            if e.seq == k {
                e.draft.time_ms += 1
            }
        })
    });
    assert_eq!(v.verify_ledger().unwrap().first_bad, Some(k), "`time_ms`");
    h.edit_ledger(|es| {
        es.iter_mut().for_each(|e| {
            if e.seq == k {
                e.draft.time_ms -= 1
            }
        })
    });
    assert!(v.verify_ledger().unwrap().ok());
    h.edit_ledger(|es| {
        es.iter_mut().for_each(|e| {
            if e.seq == k {
                e.seq += 1_000_000
            }
        })
    });
    assert_eq!(v.verify_ledger().unwrap().first_bad, Some(k), "`seq`");
    h.edit_ledger(|es| {
        es.iter_mut().for_each(|e| {
            if e.seq == k + 1_000_000 {
                e.seq = k
            }
        });
        es.sort_by_key(|e| e.seq);
    });
    assert!(v.verify_ledger().unwrap().ok());
    // A deleted entry, and a truncated tail.
    h.delete_entry(n);
    let after = v.verify_ledger().unwrap();
    assert!(
        after.ok(),
        "a truncated tail alone looks like a shorter chain"
    );
    h.delete_entry(k);
    assert_eq!(v.verify_ledger().unwrap().first_bad, Some(k));
}

pub fn moved_ciphertext_fails(h: Harness) {
    let v = h.vault();
    let a = v
        .collect("meeting-center", &attendee("Hal", "hal@example.com"))
        .unwrap();
    let b = v
        .collect("meeting-center", &attendee("Ida", "ida@example.com"))
        .unwrap();
    // Another subject's ciphertext in A's row.
    h.exec(&format!(
        "UPDATE field_values SET ciphertext = (SELECT ciphertext FROM field_values \
         WHERE subject = '{b}' AND category = 'contact.email') \
         WHERE subject = '{a}' AND category = 'contact.email'"
    ));
    let e = v
        .read("meeting-center", &a, &read("service.meetings"))
        .unwrap_err();
    assert_eq!(e.code(), "crypto_failure");
    assert_eq!(e.to_string(), "decryption failed");
    // A's own ciphertext of another category.
    h.exec(&format!(
        "UPDATE field_values SET ciphertext = (SELECT ciphertext FROM field_values \
         WHERE subject = '{b}' AND category = 'contact.name') \
         WHERE subject = '{b}' AND category = 'contact.email'"
    ));
    assert!(
        v.read("meeting-center", &b, &read("service.meetings"))
            .is_err()
    );
    // B's wrapped key under A's id.
    h.exec(&format!(
        "UPDATE keys_table SET wrapped = (SELECT wrapped FROM keys_table WHERE subject = '{b}') \
         WHERE subject = '{a}'"
    )
    .replace("keys_table", if h.is_sqlite() { "keys.subject_keys" } else { "custos_keys.subject_keys" }));
    assert!(
        v.read("meeting-center", &a, &read("service.meetings"))
            .is_err()
    );
}

pub fn erasure_leaves_nothing(h: Harness) {
    let v = h.vault();
    let id = v
        .collect("meeting-center", &attendee("Jo", "jo-erase@example.com"))
        .unwrap();
    let values: Vec<String> = (0..50).map(|i| format!("attended meeting {i}")).collect();
    let refs: Vec<&str> = values.iter().map(String::as_str).collect();
    v.append_records(
        "meeting-center",
        &id,
        "meeting_attendance",
        &["service.meetings".into()],
        &refs,
    )
    .unwrap();
    let wrapped = v.store().wrapped_dek(id.as_str()).unwrap().unwrap();
    let keep = v
        .collect("meeting-center", &attendee("Kim", "kim@example.com"))
        .unwrap();
    v.erase("privacy-office", &id).unwrap();
    // The wrapped key is nowhere in the files any more, from the erasure's return on.
    if h.is_sqlite() {
        assert!(!contains(&h.dump(), &wrapped), "erased key still on disk");
    } else {
        assert!(!contains(
            &h.dump(),
            custos_vault::crypto::hex(&wrapped).as_bytes()
        ));
    }
    // The records are deleted after the erasure returns; wait for that here (the purge's
    // ledger entry then lands before the reads' below). `erasure_returns_before_the_purge`
    // checks the state in between.
    v.purge_erased().unwrap();
    assert_eq!(
        h.count(&format!(
            "SELECT COUNT(*) FROM records WHERE subject = '{id}'"
        )),
        0
    );
    assert!(v.store().purge_queue().unwrap().is_empty());
    assert!(v.store().wrapped_dek(id.as_str()).unwrap().is_none());
    assert!(v.store().values(id.as_str()).unwrap().is_empty());
    assert!(
        v.store()
            .records(id.as_str(), "meeting_attendance", None, u64::MAX)
            .unwrap()
            .is_empty()
    );
    assert_eq!(
        v.find_by_identifier("contact.email", "jo-erase@example.com")
            .unwrap(),
        None
    );
    let r = v
        .read("meeting-center", &id, &read("service.meetings"))
        .unwrap();
    assert_eq!(r.effect, "deny");
    assert_eq!(r.denial.as_deref(), Some("subject_erased"));
    assert_eq!(last_entry(v).draft.reasons, "subject_erased");
    // Records of an erased person: answered as of one who never was; the ledger says why.
    let e = v
        .read_records(
            "meeting-center",
            &id,
            "meeting_attendance",
            "service.meetings",
            &RecordsPage::default(),
        )
        .unwrap_err();
    assert_eq!(e.code(), "subject_not_found");
    assert_eq!(last_entry(v).draft.reasons, "subject_erased");
    // No record can be kept for the erased subject, and the refusal says why.
    let e = v
        .append_record(
            "meeting-center",
            &id,
            "meeting_attendance",
            &["service.meetings".into()],
            "x",
        )
        .unwrap_err();
    assert_eq!(e.code(), "subject_not_found");
    // The ledger keeps the fact, without personal information.
    let erased = v
        .store()
        .ledger_page(1, 10_000)
        .unwrap()
        .into_iter()
        .find(|e| e.draft.action == "erase")
        .unwrap();
    assert_eq!(erased.draft.subject, id.as_str());
    assert_eq!(erased.draft.actor, "privacy-office");
    let purged = v
        .store()
        .ledger_page(1, 10_000)
        .unwrap()
        .into_iter()
        .find(|e| e.draft.action == "purge_erased")
        .unwrap();
    assert_eq!(
        (purged.draft.subject.as_str(), purged.draft.reasons.as_str()),
        (id.as_str(), "count:50")
    );
    assert!(v.verify_ledger().unwrap().ok());
    // Others are untouched.
    assert_eq!(
        v.read("meeting-center", &keep, &read("service.meetings"))
            .unwrap()
            .effect,
        "permit"
    );
}

pub fn consent_and_objection(h: Harness) {
    let v = h.vault();
    let id = v
        .collect(
            "website",
            &registration("lu@example.com", &["account", "marketing.announcements"]),
        )
        .unwrap();
    // Consent-based purpose: silence is not consent.
    let r = v.read("marketing", &id, &read("newsletters")).unwrap();
    assert!(r.data.is_empty(), "{r:?}");
    assert_eq!(r.withheld["contact.email"], "consent_missing", "{r:?}");
    // Minimum necessary: what the marketing accessor may not have for it at all.
    assert_eq!(r.withheld["contact.phone"], "exceeds_minimum_necessary");
    v.give_consent("subject", &id, "newsletters", "privacy-center")
        .unwrap();
    let r = v.read("marketing", &id, &read("newsletters")).unwrap();
    assert!(r.data.contains_key("contact.email"), "{r:?}");
    v.withdraw_consent("subject", &id, "newsletters", "privacy-center")
        .unwrap();
    let r = v.read("marketing", &id, &read("newsletters")).unwrap();
    assert!(r.data.is_empty());
    // Opt-out purpose: allowed until the person objects.
    let r = v
        .read("marketing", &id, &read("marketing.announcements"))
        .unwrap();
    assert!(r.data.contains_key("contact.email"), "{r:?}");
    v.object("subject", &id, "marketing", "unsubscribe-link")
        .unwrap();
    let r = v
        .read("marketing", &id, &read("marketing.announcements"))
        .unwrap();
    assert!(r.data.is_empty());
    assert!(r.withheld.values().any(|w| w == "objected"), "{r:?}");
    // Consent to a purpose that is not consent-based, or unknown, is refused.
    assert!(v.give_consent("subject", &id, "account", "api").is_err());
    assert!(v.give_consent("subject", &id, "nope", "api").is_err());
}

pub fn records_by_purpose(h: Harness) {
    let v = h.vault();
    let id = v
        .collect("meeting-center", &attendee("Mo", "mo@example.com"))
        .unwrap();
    v.append_record(
        "meeting-center",
        &id,
        "meeting_attendance",
        &["service.meetings".into()],
        "m1",
    )
    .unwrap();
    v.append_record(
        "meeting-center",
        &id,
        "meeting_attendance",
        &["service.meetings".into()],
        "m2",
    )
    .unwrap();
    let rr = v
        .read_records(
            "meeting-center",
            &id,
            "meeting_attendance",
            "service.meetings",
            &RecordsPage::default(),
        )
        .unwrap();
    assert_eq!(
        rr.records
            .iter()
            .map(|r| r.value.as_str())
            .collect::<Vec<_>>(),
        ["m1", "m2"]
    );
    let denied = v
        .read_records(
            "mail",
            &id,
            "meeting_attendance",
            "service.meetings",
            &RecordsPage::default(),
        )
        .unwrap();
    assert!(denied.records.is_empty());
    assert_eq!(denied.effect, "deny");
    assert_eq!(last_entry(v).draft.effect, "deny");
    assert!(
        v.read_records(
            "meeting-center",
            &id,
            "meeting_attendance",
            "",
            &RecordsPage::default()
        )
        .is_err()
    );
    assert!(
        v.append_record(
            "meeting-center",
            &id,
            "no_such",
            &["service.meetings".into()],
            "x"
        )
        .is_err()
    );
    assert!(
        v.append_record("meeting-center", &id, "meeting_attendance", &[], "x")
            .is_err()
    );
    // A collection no role of the subject keeps, and a purpose its role does not state.
    let e = v
        .append_record(
            "meeting-center",
            &id,
            "mailbox_items",
            &["service.mail".into()],
            "x",
        )
        .unwrap_err();
    assert_eq!(e.code(), "purpose_not_allowed_for_accessor");
    let e = v
        .append_record(
            "meeting-center",
            &id,
            "mailbox_items",
            &["service.meetings".into()],
            "x",
        )
        .unwrap_err();
    assert_eq!(e.code(), "collection_not_kept_for_subject");
    let e = v
        .append_record(
            "meeting-center",
            &id,
            "meeting_attendance",
            &["service.meetings".into(), "marketing".into()],
            "x",
        )
        .unwrap_err();
    assert_eq!(e.code(), "purpose_not_stated_for_role");
}

pub fn blind_index_lookup(h: Harness) {
    let v = h.vault();
    let id = v
        .collect("meeting-center", &attendee("Ned", "Ned@Example.com"))
        .unwrap();
    assert_eq!(
        v.find_by_identifier("contact.email", "  ned@example.COM ")
            .unwrap(),
        Some(id.clone())
    );
    assert_eq!(
        v.find_by_identifier("contact.email", "other@example.com")
            .unwrap(),
        None
    );
    assert!(v.find_by_identifier("network.ip_address", "x").is_err());
    // Only identifier categories are indexed: the email, not the name.
    assert_eq!(h.count("SELECT COUNT(*) FROM blind_index"), 1);
    // A changed email: the new one finds the subject, the old one nothing.
    v.collect_more(
        "meeting-center",
        &id,
        &attendee("Ned", "ned@new.example.com"),
    )
    .unwrap();
    assert_eq!(
        v.find_by_identifier("contact.email", "ned@new.example.com")
            .unwrap(),
        Some(id)
    );
    assert_eq!(
        v.find_by_identifier("contact.email", "ned@example.com")
            .unwrap(),
        None
    );
    assert_eq!(h.count("SELECT COUNT(*) FROM blind_index"), 1);
}

pub fn api_keys(h: Harness) {
    let v = h.vault();
    let key = v.create_key("meeting-center").unwrap();
    let principal = v.authenticate(&key).unwrap();
    assert_eq!(
        (principal.accessor.as_str(), principal.tenant),
        ("meeting-center", None)
    );
    assert!(matches!(
        v.authenticate("custos_nope"),
        Err(Error::Unauthorized)
    ));
    assert!(v.create_key("nobody").is_err());
    assert!(!contains(&h.dump(), key.as_bytes()), "key stored in clear");
    assert_eq!(v.revoke("meeting-center").unwrap(), 1);
    // Revoked through this vault: refused at once, from memory too.
    assert!(matches!(v.authenticate(&key), Err(Error::Unauthorized)));
    assert_eq!(v.authenticate_cached(&key), None);

    // Revoked by another process (a second vault on the same store): this vault's memory
    // of the key lasts at most `KEY_CACHE_TTL`, then the store's answer counts.
    let key = v.create_key("support").unwrap();
    let accessor = |p: Option<custos_vault::Principal>| p.map(|p| p.accessor);
    assert_eq!(v.authenticate(&key).unwrap().accessor, "support");
    assert_eq!(
        accessor(v.authenticate_cached(&key)).as_deref(),
        Some("support")
    );
    assert_eq!(
        accessor(v.authenticate_cached(&format!(" {key} "))).as_deref(),
        Some("support")
    );
    assert_eq!(v.authenticate_cached("custos_nope"), None);
    let other = h.open(h.kek.clone()).unwrap();
    assert_eq!(other.revoke("support").unwrap(), 1);
    assert!(matches!(other.authenticate(&key), Err(Error::Unauthorized)));
    std::thread::sleep(custos_vault::vault::KEY_CACHE_TTL + std::time::Duration::from_millis(50));
    assert_eq!(v.authenticate_cached(&key), None);
    assert!(matches!(v.authenticate(&key), Err(Error::Unauthorized)));
}

pub fn rotate_master_key(mut h: Harness) {
    let id = h
        .vault()
        .collect("meeting-center", &attendee("Ola", "ola@example.com"))
        .unwrap();
    let new = MasterKey::generate().unwrap();
    let n = h.vault_mut().rotate_master(new.clone()).unwrap();
    assert!(n >= 3, "one data key and two vault secrets");
    let r = h
        .vault()
        .read("meeting-center", &id, &read("service.meetings"))
        .unwrap();
    assert_eq!(r.data["contact.email"], "ola@example.com");
    h.close();
    let old = h.kek.clone();
    let e = h.open(old).unwrap_err();
    assert_eq!(e.to_string(), "the master key does not open this vault");
    let v = h.open(new).unwrap();
    assert_eq!(
        v.read("meeting-center", &id, &read("service.meetings"))
            .unwrap()
            .data["contact.name"],
        "Ola"
    );
    assert_eq!(
        v.find_by_identifier("contact.email", "ola@example.com")
            .unwrap(),
        Some(id)
    );
    assert!(v.verify_ledger().unwrap().ok());
}

pub fn reopen_is_idempotent(mut h: Harness) {
    let id = h
        .vault()
        .collect("meeting-center", &attendee("Pia", "pia@example.com"))
        .unwrap();
    h.close();
    for _ in 0..2 {
        let v = h.open(h.kek.clone()).unwrap();
        assert_eq!(
            v.read("meeting-center", &id, &read("service.meetings"))
                .unwrap()
                .effect,
            "permit"
        );
    }
    let v = h.open(h.kek.clone()).unwrap();
    let ver = v.verify_ledger().unwrap();
    assert!(ver.ok());
    assert_eq!(ver.entries, 3);
}

pub fn concurrent_writers_lose_nothing(h: Harness) {
    const THREADS: usize = 4;
    const EACH: usize = 20;
    // Two vaults on one database: two servers.
    let servers = [
        Arc::new(h.open(h.kek.clone()).unwrap()),
        Arc::new(h.open(h.kek.clone()).unwrap()),
    ];
    let mut handles = Vec::new();
    for t in 0..THREADS {
        let v = Arc::clone(&servers[t % 2]);
        handles.push(std::thread::spawn(move || {
            let mut ids = Vec::new();
            for i in 0..EACH {
                let email = format!("u{t}-{i}@example.com");
                let id = v
                    .collect("meeting-center", &attendee("User", &email))
                    .unwrap();
                let r = v
                    .read("meeting-center", &id, &read("service.meetings"))
                    .unwrap();
                assert_eq!(r.data["contact.email"], email);
                ids.push((id, email));
            }
            ids
        }));
    }
    let all: Vec<(SubjectId, String)> = handles
        .into_iter()
        .flat_map(|h| h.join().unwrap())
        .collect();
    assert_eq!(all.len(), THREADS * EACH);
    let v = h.vault();
    for (id, email) in &all {
        assert_eq!(
            v.find_by_identifier("contact.email", email)
                .unwrap()
                .as_ref(),
            Some(id)
        );
    }
    let ver = v.verify_ledger().unwrap();
    assert!(ver.ok(), "{ver:?}");
    assert_eq!(ver.entries as usize, 2 * THREADS * EACH);
    assert_eq!(
        h.count("SELECT COUNT(*) FROM subjects") as usize,
        THREADS * EACH
    );
}

/// Single collections from many threads share store transactions and ledger commits
/// (`collector.rs`); each is stored, findable and ledgered exactly once, after its data.
pub fn concurrent_collections_each_stored_and_ledgered_once(h: Harness) {
    const THREADS: usize = 16;
    const EACH: usize = 10;
    let v = Arc::new(h.open(h.kek.clone()).unwrap());
    let handles: Vec<_> = (0..THREADS)
        .map(|t| {
            let v = Arc::clone(&v);
            std::thread::spawn(move || {
                (0..EACH)
                    .map(|i| {
                        let email = format!("c{t}-{i}@example.com");
                        let id = v
                            .collect("meeting-center", &attendee("Cora", &email))
                            .unwrap();
                        (id, email)
                    })
                    .collect::<Vec<_>>()
            })
        })
        .collect();
    let all: Vec<(SubjectId, String)> = handles
        .into_iter()
        .flat_map(|h| h.join().unwrap())
        .collect();
    let entries = v.store().ledger_page(1, 100_000).unwrap();
    for (id, email) in &all {
        assert_eq!(
            v.find_by_identifier("contact.email", email)
                .unwrap()
                .as_ref(),
            Some(id)
        );
        let r = v
            .read("meeting-center", id, &read("service.meetings"))
            .unwrap();
        assert_eq!(r.data["contact.email"], *email);
        let collected = entries
            .iter()
            .filter(|e| e.draft.action == "collect" && e.draft.subject == id.as_str())
            .collect::<Vec<_>>();
        assert_eq!(collected.len(), 1, "one collect entry for {id}");
        assert_eq!(collected[0].draft.effect, "permit");
    }
    assert!(v.verify_ledger().unwrap().ok());
}

pub fn checkpoints_signed(h: Harness) {
    let v = Arc::new(h.open(h.kek.clone()).unwrap());
    let id = v
        .collect("meeting-center", &attendee("Quin", "quin@example.com"))
        .unwrap();
    // Enough entries for one checkpoint; concurrent readers share commits.
    let mut handles = Vec::new();
    for _ in 0..8 {
        let v = Arc::clone(&v);
        let id = id.clone();
        handles.push(std::thread::spawn(move || {
            for _ in 0..130 {
                v.read("meeting-center", &id, &read("service.meetings"))
                    .unwrap();
            }
        }));
    }
    for t in handles {
        t.join().unwrap();
    }
    let ver = v.verify_ledger().unwrap();
    assert!(ver.ok());
    assert_eq!(ver.checkpoints, 1);
    assert_eq!(h.count("SELECT COUNT(*) FROM ledger_checkpoints"), 1);
    // A forged signature is caught at its entry.
    let signature = h.text("SELECT signature FROM ledger_checkpoints");
    h.exec(
        "UPDATE ledger_checkpoints SET signature = replace(signature, substr(signature, 1, 1), \
         CASE WHEN substr(signature, 1, 1) = 'a' THEN 'b' ELSE 'a' END)",
    );
    assert_eq!(v.verify_ledger().unwrap().first_bad, Some(1000));
    h.exec(&format!(
        "UPDATE ledger_checkpoints SET signature = '{signature}'"
    ));
    assert!(v.verify_ledger().unwrap().ok());
    // A removed checkpoint is caught: each is written in its entry's own transaction.
    let hash = h.text("SELECT hash FROM ledger_checkpoints");
    h.exec("DELETE FROM ledger_checkpoints");
    assert_eq!(v.verify_ledger().unwrap().first_bad, Some(1000));
    h.exec(&format!(
        "INSERT INTO ledger_checkpoints (seq, hash, signature) VALUES (1000, '{hash}', '{signature}')"
    ));
    assert!(v.verify_ledger().unwrap().ok());
    // A chain rewritten from entry 5 on, every hash recomputed, by someone without the
    // signing key: the chain is consistent again, but the signed checkpoint no longer is.
    let store = h.store().unwrap();
    let mut entries = store.ledger_page(1, 10_000).unwrap();
    let start = 4; // index of seq 5
    entries[start].draft.actor = "mallory".into();
    let head = &entries[start - 1];
    let drafts: Vec<_> = entries[start..].iter().map(|e| e.draft.clone()).collect();
    let forged = custos_vault::ledger::Chained::new(head.seq, head.hash.clone(), &drafts);
    h.edit_ledger(|es| {
        for (i, d) in drafts.iter().enumerate() {
            let e = es.iter_mut().find(|e| e.seq == forged.seq(i)).unwrap();
            e.draft.actor.clone_from(&d.actor);
            e.prev_hash = forged.prev_hash(i).to_string();
            e.hash = forged.hash(i).to_string();
        }
    });
    let ver = v.verify_ledger().unwrap();
    assert_eq!(ver.first_bad, Some(1000), "{ver:?}");
}

pub fn retention_deadline(h: Harness) {
    let v = h.vault();
    let id = v
        .collect("meeting-center", &attendee("Rex", "rex@example.com"))
        .unwrap();
    for m in ["old", "new"] {
        v.append_record(
            "meeting-center",
            &id,
            "meeting_attendance",
            &["service.meetings".into()],
            m,
        )
        .unwrap();
    }
    assert_eq!(
        h.count("SELECT COUNT(*) FROM records WHERE retain_until_ms IS NOT NULL"),
        2,
        "activity logs have a deadline"
    );
    h.exec("UPDATE records SET retain_until_ms = 1 WHERE seq = (SELECT MIN(seq) FROM records)");
    let rr = v
        .read_records(
            "meeting-center",
            &id,
            "meeting_attendance",
            "service.meetings",
            &RecordsPage::default(),
        )
        .unwrap();
    assert_eq!(
        rr.records
            .iter()
            .map(|r| r.value.as_str())
            .collect::<Vec<_>>(),
        ["new"]
    );
    // A value held longer than its category's retention (an IP address: one year), and one
    // kept with the account (the email).
    h.exec("UPDATE field_values SET time_ms = 1 WHERE category IN ('network.ip_address', 'contact.email')");
    let sweep = v.purge_expired("retention").unwrap();
    assert_eq!(sweep.records, 1);
    assert_eq!(sweep.values, [("network.ip_address".to_string(), 1)]);
    assert_eq!(h.count("SELECT COUNT(*) FROM records"), 1);
    assert_eq!(
        h.count("SELECT COUNT(*) FROM field_values WHERE category = 'network.ip_address'"),
        0
    );
    let last = last_entry(v);
    assert_eq!(
        (
            last.draft.action.as_str(),
            last.draft.categories.as_str(),
            last.draft.reasons.as_str(),
            last.draft.subject.as_str()
        ),
        (
            "purge_expired",
            "network.ip_address",
            "records:1,values:1,codes:0,sessions:0,mail:0",
            ""
        )
    );
    let r = v
        .read("meeting-center", &id, &read("service.meetings"))
        .unwrap();
    assert_eq!(r.data["contact.email"], "rex@example.com");
    assert!(!r.data.contains_key("network.ip_address"));
    // Nothing more is due: a second sweep deletes nothing.
    let again = v.purge_expired("retention").unwrap();
    assert_eq!((again.records, again.value_count()), (0, 0));
}

pub fn undeclared_callers_and_methods(h: Harness) {
    let v = h.vault();
    let e = v
        .collect("nobody", &attendee("Sam", "sam@example.com"))
        .unwrap_err();
    assert_eq!(e.code(), "unknown_accessor");
    assert_eq!(h.count("SELECT COUNT(*) FROM subjects"), 0);
    assert_eq!(last_entry(v).draft.reasons, "unknown_accessor");
    let id = v
        .collect("website", &registration("sam@example.com", &["account"]))
        .unwrap();
    let e = v
        .give_consent("subject", &id, "newsletters", "Sam Example")
        .unwrap_err();
    assert_eq!(e.code(), "invalid_method");
    let e = v
        .read("nobody@example.com", &id, &read("account"))
        .unwrap_err();
    assert_eq!(e.code(), "unknown_accessor");
    let last = last_entry(v);
    assert_eq!(
        (last.draft.actor.as_str(), last.draft.reasons.as_str()),
        ("?", "unknown_accessor")
    );
}

pub fn no_data_without_a_durable_ledger_entry(h: Harness) {
    let v = h.vault();
    let id = v
        .collect("meeting-center", &attendee("Tia", "tia@example.com"))
        .unwrap();
    // The ledger refuses every append: a read must fail closed, returning nothing.
    ledger_down(&h);
    let e = v
        .read("meeting-center", &id, &read("service.meetings"))
        .unwrap_err();
    assert_eq!(e.code(), "storage_failure");
    assert!(!e.to_string().contains("tia@example.com"));
    assert!(
        v.read_records(
            "meeting-center",
            &id,
            "meeting_attendance",
            "service.meetings",
            &RecordsPage::default()
        )
        .is_err()
    );
    ledger_up(&h);
    let r = v
        .read("meeting-center", &id, &read("service.meetings"))
        .unwrap();
    assert_eq!(r.data["contact.email"], "tia@example.com");
    assert!(v.verify_ledger().unwrap().ok());
}

pub fn connection_loss_recovers(h: Harness) {
    if h.is_sqlite() {
        return; // no server to lose
    }
    let v = h.vault();
    let id = v
        .collect("meeting-center", &attendee("Uma", "uma@example.com"))
        .unwrap();
    // The server drops every connection of the vault's database (a restart, a failover).
    h.exec(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity \
         WHERE datname = current_database() AND pid <> pg_backend_pid()",
    );
    let mut failures = 0;
    let r = loop {
        match v.read("meeting-center", &id, &read("service.meetings")) {
            Ok(r) => break r,
            Err(e) => {
                assert_eq!(e.code(), "storage_failure");
                failures += 1;
                assert!(failures < 20, "the store never reconnected");
            }
        }
    };
    assert_eq!(r.data["contact.email"], "uma@example.com");
    assert!(v.verify_ledger().unwrap().ok());
}

pub fn deactivation_keeps_only_contract_and_legal(h: Harness) {
    let v = h.vault();
    let id = v
        .collect(
            "website",
            &registration("vi@example.com", &["account", "support", "contract"]),
        )
        .unwrap();
    let before = v.read("billing", &id, &read("contract")).unwrap();
    assert!(before.data.contains_key("contact.name"), "{before:?}");
    assert!(
        !v.read("support", &id, &read("support"))
            .unwrap()
            .data
            .is_empty()
    );
    v.deactivate("subject", &id).unwrap();
    let r = v.read("support", &id, &read("support")).unwrap();
    assert!(r.data.is_empty());
    assert_eq!(r.denial.as_deref(), Some("subject_deactivated"));
    let after = v.read("billing", &id, &read("contract")).unwrap();
    assert_eq!(after.data, before.data, "contract purposes remain");
}

pub fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    !needle.is_empty() && haystack.windows(needle.len()).any(|w| w == needle)
}

pub fn collect_many_batches(h: Harness) {
    let v = h.vault();
    let before = v.verify_ledger().unwrap().entries;
    let mut refused = attendee("Cy", "cy-many@example.com");
    refused.notice = "1999-01".into();
    let inputs = vec![
        attendee("Ann", "ann-many@example.com"),
        refused,
        attendee("Bo", "bo-many@example.com"),
    ];
    let out = v.collect_many("meeting-center", &inputs).unwrap();
    assert_eq!(out.len(), 3);
    assert!(matches!(out[1], Err(Error::CollectionRefused(_))));
    let ann = out[0].as_ref().unwrap();
    let bo = out[2].as_ref().unwrap();
    assert_ne!(ann, bo);
    // Each stored subject reads back its own values, through a decision.
    let r = v
        .read("meeting-center", bo, &read("service.meetings"))
        .unwrap();
    assert_eq!(r.data["contact.email"], "bo-many@example.com");
    assert_eq!(
        v.find_by_identifier("contact.email", "ann-many@example.com")
            .unwrap()
            .as_ref(),
        Some(ann)
    );
    // One ledger entry per input (the refusal's without a subject), then the read.
    let check = v.verify_ledger().unwrap();
    assert!(check.ok());
    assert_eq!(check.entries, before + 4);
    let entries = v.store().ledger_page(before + 1, 10).unwrap();
    let collected: Vec<(&str, &str)> = entries[..3]
        .iter()
        .map(|e| (e.draft.effect.as_str(), e.draft.subject.as_str()))
        .collect();
    assert!(collected.contains(&("refused", "")));
    assert!(collected.contains(&("permit", ann.as_str())));
    assert!(collected.contains(&("permit", bo.as_str())));
    // Nothing in clear at rest.
    if h.is_sqlite() {
        assert!(!contains(&h.dump(), b"ann-many@example.com"));
    }
}

/// A UUIDv7 in the lowercase 36-character shape: version 7, variant 1, and a timestamp of
/// about now.
pub fn assert_uuid_v7(id: &str) {
    assert!(SubjectId::parse(id).is_ok(), "{id}");
    assert_eq!(&id[14..15], "7", "version 7: {id}");
    assert!("89ab".contains(&id[19..20]), "variant 1: {id}");
    let ms = u64::from_str_radix(&format!("{}{}", &id[0..8], &id[9..13]), 16).unwrap();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64;
    assert!(
        ms <= now && now - ms < 600_000,
        "timestamp {ms} is not about now ({now})"
    );
}

/// A batch larger than a sealing block, a store round and a PostgreSQL chunk: every subject
/// gets a UUIDv7 id, increasing in input order, its own values (AAD-bound) and its index term;
/// records get time-ordered ids too; and a store failure part-way through stores nothing,
/// ledgers no collection and leaves the vault working.
pub fn collect_many_in_order_all_or_none(h: Harness) {
    const N: usize = 2_100;
    let v = h.vault();
    let inputs: Vec<_> = (0..N)
        .map(|i| attendee(&format!("Bulk {i}"), &format!("bulk{i}@example.com")))
        .collect();
    let before = v.verify_ledger().unwrap().entries;
    let ids: Vec<SubjectId> = v
        .collect_many("meeting-center", &inputs)
        .unwrap()
        .into_iter()
        .map(Result::unwrap)
        .collect();
    assert_eq!(ids.len(), N);
    assert!(
        ids.windows(2).all(|w| w[0] < w[1]),
        "ids increase in input order"
    );
    for id in &ids {
        assert_uuid_v7(id.as_str());
    }
    assert_eq!(
        h.count("SELECT COUNT(*) FROM blind_index"),
        i64::try_from(N).unwrap()
    );
    let mut reads = 0;
    for i in (0..N).step_by(211) {
        let r = v
            .read("meeting-center", &ids[i], &read("service.meetings"))
            .unwrap();
        reads += 1;
        assert_eq!(r.data["contact.email"], format!("bulk{i}@example.com"));
        assert_eq!(r.data["contact.name"], format!("Bulk {i}"));
        assert_eq!(
            v.find_by_identifier("contact.email", &format!("BULK{i}@example.com"))
                .unwrap()
                .as_ref(),
            Some(&ids[i])
        );
    }
    let check = v.verify_ledger().unwrap();
    assert!(check.ok());
    assert_eq!(check.entries, before + N as u64 + reads);
    // Record ids: UUIDv7s as 32 hex digits, increasing in append order.
    let values = ["a", "b", "c"];
    v.append_records(
        "meeting-center",
        &ids[0],
        "meeting_attendance",
        &["service.meetings".into()],
        &values,
    )
    .unwrap();
    let records = v
        .read_records(
            "meeting-center",
            &ids[0],
            "meeting_attendance",
            "service.meetings",
            &RecordsPage::default(),
        )
        .unwrap()
        .records;
    assert_eq!(records.len(), 3);
    for r in &records {
        assert_eq!(r.id.len(), 32);
        assert_eq!(&r.id[12..13], "7", "{}", r.id);
        assert!(
            r.id.bytes()
                .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase())
        );
    }
    assert!(records.windows(2).all(|w| w[0].id < w[1].id));

    // All or none: the subject at 2090 (in the last store round on either backend) cannot be
    // written; nothing of the batch stays, and the ledger says so: each `collect` entry,
    // durable before the data, is followed by a `failed` one.
    h.refuse_inserts("tenant_down", "subject_tenants", "tenant", "down");
    let keys_table = if h.is_sqlite() {
        "keys.subject_keys"
    } else {
        "custos_keys.subject_keys"
    };
    let (subjects, keys, terms) = (
        h.count("SELECT COUNT(*) FROM subjects"),
        h.count(&format!("SELECT COUNT(*) FROM {keys_table}")),
        h.count("SELECT COUNT(*) FROM blind_index"),
    );
    let entries = v.verify_ledger().unwrap().entries;
    let mut failing: Vec<_> = (0..N)
        .map(|i| attendee("Again", &format!("again{i}@example.com")))
        .collect();
    failing[2090].tenant = Some("down".into());
    let e = v.collect_many("meeting-center", &failing).unwrap_err();
    assert_eq!(e.code(), "storage_failure");
    assert!(!e.to_string().contains("example.com"));
    assert_eq!(h.count("SELECT COUNT(*) FROM subjects"), subjects);
    assert_eq!(h.count(&format!("SELECT COUNT(*) FROM {keys_table}")), keys);
    assert_eq!(h.count("SELECT COUNT(*) FROM blind_index"), terms);
    let n = u64::try_from(N).unwrap();
    assert_eq!(v.verify_ledger().unwrap().entries, entries + 2 * n);
    let failed = v.store().ledger_page(entries + n + 1, n).unwrap();
    assert!(failed.iter().all(|e| e.draft.effect == "failed"));
    assert_eq!(
        v.find_by_identifier("contact.email", "again0@example.com")
            .unwrap(),
        None
    );
    // The vault goes on: the same batch, without the failing tenant, is stored whole.
    failing[2090].tenant = Some("acme".into());
    let out = v.collect_many("meeting-center", &failing).unwrap();
    assert!(out.iter().all(Result::is_ok));
    assert_eq!(
        h.count("SELECT COUNT(*) FROM subjects"),
        subjects + i64::try_from(N).unwrap()
    );
    assert!(v.verify_ledger().unwrap().ok());
}

/// `Store::subject_state`: what a decision needs, read together — the status, the sealed
/// values by category, the consent events oldest first and the wrapped key; an erased subject
/// keeps its status and nothing else; an unknown one is `None`.
pub fn subject_state_in_one_read(h: Harness) {
    use custos_vault::store::{Age, Status};
    let v = h.vault();
    let store = v.store();
    assert_eq!(
        store
            .subject_state("00000000-0000-4000-8000-000000000000")
            .unwrap(),
        None
    );
    let id = v
        .collect(
            "website",
            &registration("st@example.com", &["account", "marketing.announcements"]),
        )
        .unwrap();
    v.give_consent("subject", &id, "newsletters", "privacy-center")
        .unwrap();
    v.object("subject", &id, "marketing", "unsubscribe-link")
        .unwrap();
    v.withdraw_consent("subject", &id, "newsletters", "api")
        .unwrap();
    let s = store.subject_state(id.as_str()).unwrap().unwrap();
    assert_eq!((s.status, s.age), (Status::Active, Age::AtLeastMinimum));
    let categories: Vec<&str> = s.values.iter().map(|v| v.category.as_str()).collect();
    let mut sorted = categories.clone();
    sorted.sort_unstable();
    assert_eq!(categories, sorted);
    assert!(categories.contains(&"contact.email"), "{categories:?}");
    assert!(s.values.iter().all(|x| x.subject == id.as_str()
        && !x.ciphertext.is_empty()
        && x.purposes.contains(&"account".to_string())));
    let events: Vec<(&str, &str, bool, &str)> = s
        .consents
        .iter()
        .map(|c| {
            (
                c.kind.as_str(),
                c.purpose.as_str(),
                c.given,
                c.method.as_str(),
            )
        })
        .collect();
    assert_eq!(
        events,
        [
            ("consent", "newsletters", true, "privacy-center"),
            ("objection", "marketing", true, "unsubscribe-link"),
            ("consent", "newsletters", false, "api"),
        ]
    );
    assert_eq!(
        s.wrapped_dek.as_deref(),
        store.wrapped_dek(id.as_str()).unwrap().as_deref()
    );
    assert!(s.wrapped_dek.is_some());
    v.erase("operator", &id).unwrap();
    let s = store.subject_state(id.as_str()).unwrap().unwrap();
    assert_eq!(s.status, Status::Erased);
    assert!(s.values.is_empty() && s.consents.is_empty() && s.wrapped_dek.is_none());
}

/// `Vault::begin_read`: the values stay sealed until the ledger writer confirms this read's
/// own entry; another read's confirmation does not open it; a ledger that refuses the entry
/// leaves it sealed for good. Commits are counted by size.
pub fn sealed_reads_open_only_with_their_own_entry(h: Harness) {
    use std::sync::mpsc;
    let v = h.vault();
    let id = v
        .collect("meeting-center", &attendee("Sal", "sal@example.com"))
        .unwrap();
    let begin = || {
        let (tx, rx) = mpsc::channel();
        let sealed = v
            .begin_read("meeting-center", &id, &read("service.meetings"), move |d| {
                tx.send(d).unwrap();
            })
            .unwrap();
        (sealed, rx)
    };
    let (first, first_rx) = begin();
    let (second, second_rx) = begin();
    let first_ok = first_rx.recv().unwrap().unwrap();
    let second_ok = second_rx.recv().unwrap().unwrap();
    // Crossed acknowledgements: refused, nothing decrypted.
    let e = first.open(v, second_ok).unwrap_err();
    assert_eq!(e.code(), "storage_failure");
    let r = second.open(v, first_ok);
    assert!(r.is_err());
    // Its own: the data, and the entry it names is the read's.
    let (sealed, rx) = begin();
    let r = sealed.open(v, rx.recv().unwrap().unwrap()).unwrap();
    assert_eq!(r.data["contact.email"], "sal@example.com");
    assert_eq!(last_entry(v).seq, r.ledger_seq);
    assert_eq!(last_entry(v).draft.action, "read");
    // The ledger refuses the entry: the callback gets the error, the read stays sealed.
    ledger_down(&h);
    let (_sealed, rx) = begin();
    let e = rx.recv().unwrap().unwrap_err();
    assert!(!e.to_string().contains("sal@example.com"));
    // Every commit so far was counted, and each held at least one entry.
    let stats = v.ledger_batches();
    let commits = stats.commits.load(std::sync::atomic::Ordering::Relaxed);
    let entries = stats.entries.load(std::sync::atomic::Ordering::Relaxed);
    let bucketed: u64 = stats
        .buckets
        .iter()
        .map(|b| b.load(std::sync::atomic::Ordering::Relaxed))
        .sum();
    // The collection and three reads, in as few commits as the writer could group.
    assert!(
        entries >= 4 && (1..=entries).contains(&commits) && bucketed == commits,
        "{stats:?}"
    );
}

/// A subject holding `n` meeting-attendance records.
fn subject_with_records(v: &Vault, email: &str, n: usize) -> SubjectId {
    let id = v
        .collect("meeting-center", &attendee("Wes", email))
        .unwrap();
    let values: Vec<String> = (0..n).map(|i| format!("attended meeting {i}")).collect();
    let refs: Vec<&str> = values.iter().map(String::as_str).collect();
    for chunk in refs.chunks(custos_vault::MAX_RECORDS_APPEND) {
        v.append_records(
            "meeting-center",
            &id,
            "meeting_attendance",
            &["service.meetings".into()],
            chunk,
        )
        .unwrap();
    }
    id
}

pub fn erasure_returns_before_the_purge(mut h: Harness) {
    h.close();
    let v = h.open_with(h.kek.clone(), Purging::OnDemand).unwrap();
    // More than one purge transaction's worth.
    let n = custos_vault::purge::CHUNK as usize + 7;
    let id = subject_with_records(&v, "wes-erase@example.com", n);
    let keep = subject_with_records(&v, "xan-keep@example.com", 3);
    let rows = |s: &SubjectId| {
        h.count(&format!(
            "SELECT COUNT(*) FROM records WHERE subject = '{s}'"
        ))
    };
    let wrapped = v.store().wrapped_dek(id.as_str()).unwrap().unwrap();
    v.erase("privacy-office", &id).unwrap();
    // At return: the erasure is ledgered, the key and every value are gone, the records are
    // still rows, and nothing of them can be read.
    let erased = last_entry(&v);
    assert_eq!(
        (erased.draft.action.as_str(), erased.draft.subject.as_str()),
        ("erase", id.as_str())
    );
    assert_eq!(rows(&id), n as i64);
    assert!(v.store().wrapped_dek(id.as_str()).unwrap().is_none());
    if h.is_sqlite() {
        assert!(!contains(&h.dump(), &wrapped), "erased key still on disk");
    }
    assert!(v.store().values(id.as_str()).unwrap().is_empty());
    assert!(
        v.store()
            .records(id.as_str(), "meeting_attendance", None, u64::MAX)
            .unwrap()
            .is_empty()
    );
    assert_eq!(v.store().purge_queue().unwrap(), [id.as_str()]);
    let r = v
        .read("meeting-center", &id, &read("service.meetings"))
        .unwrap();
    assert_eq!(r.denial.as_deref(), Some("subject_erased"));
    let e = v
        .read_records(
            "meeting-center",
            &id,
            "meeting_attendance",
            "service.meetings",
            &RecordsPage::default(),
        )
        .unwrap_err();
    assert_eq!(e.code(), "subject_not_found");
    assert_eq!(last_entry(&v).draft.reasons, "subject_erased");
    // No record can be added behind the erasure, through the vault or the store.
    assert!(
        v.append_record(
            "meeting-center",
            &id,
            "meeting_attendance",
            &["service.meetings".into()],
            "late",
        )
        .is_err()
    );
    let mut late = v
        .store()
        .records(keep.as_str(), "meeting_attendance", None, u64::MAX)
        .unwrap()
        .remove(0);
    late.id = "late-record".into();
    late.subject = id.as_str().into();
    assert_eq!(
        v.store().append_records(&[late]).unwrap_err().code(),
        "subject_not_found"
    );
    assert_eq!(rows(&id), n as i64);
    // The purge refuses a subject that is not erased.
    assert_eq!(
        v.store()
            .purge_records(keep.as_str(), 10)
            .unwrap_err()
            .code(),
        "subject_not_erased"
    );
    // The purge: every record of the subject, in bounded transactions, and no other.
    assert_eq!(v.purge_erased().unwrap(), n as u64);
    assert_eq!(rows(&id), 0);
    assert_eq!(rows(&keep), 3);
    assert!(v.store().purge_queue().unwrap().is_empty());
    assert_eq!(v.purge_erased().unwrap(), 0);
    let last = last_entry(&v);
    assert_eq!(
        (
            last.draft.action.as_str(),
            last.draft.subject.as_str(),
            last.draft.effect.as_str(),
            last.draft.reasons.as_str()
        ),
        (
            "purge_erased",
            id.as_str(),
            "done",
            format!("count:{n}").as_str()
        )
    );
    assert!(v.verify_ledger().unwrap().ok());
    assert_eq!(
        v.read_records(
            "meeting-center",
            &keep,
            "meeting_attendance",
            "service.meetings",
            &RecordsPage::default()
        )
        .unwrap()
        .records
        .len(),
        3
    );
}

pub fn interrupted_purge_resumes_on_open(mut h: Harness) {
    h.close();
    let v = h.open_with(h.kek.clone(), Purging::OnDemand).unwrap();
    let id = subject_with_records(&v, "yul-erase@example.com", 120);
    v.erase("privacy-office", &id).unwrap();
    // A purge cut short: one transaction of it ran, then the process went away.
    let first = v.store().purge_records(id.as_str(), 20).unwrap();
    assert_eq!((first.deleted, first.done), (20, false));
    drop(v);
    let rows = || {
        h.count(&format!(
            "SELECT COUNT(*) FROM records WHERE subject = '{id}'"
        ))
    };
    assert_eq!(rows(), 100);
    // The next vault to open finishes it, in the background.
    let store = h.store().unwrap();
    let v = Vault::open(Arc::clone(&store), crate::support::policy(), h.kek.clone()).unwrap();
    let purged = |v: &Vault| {
        v.store()
            .ledger_page(1, 10_000)
            .unwrap()
            .into_iter()
            .find(|e| e.draft.action == "purge_erased")
    };
    let start = std::time::Instant::now();
    while rows() > 0 || purged(&v).is_none() {
        assert!(
            start.elapsed() < std::time::Duration::from_secs(30),
            "the purge did not resume"
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    assert!(store.purge_queue().unwrap().is_empty());
    let entry = purged(&v).unwrap();
    assert_eq!(
        (entry.draft.subject.as_str(), entry.draft.reasons.as_str()),
        (id.as_str(), "count:100")
    );
    assert!(v.verify_ledger().unwrap().ok());
    // Dropping the vault stops its purger and ledger writer: neither keeps the store.
    let busy = subject_with_records(&v, "zed-erase@example.com", 3000);
    v.erase("privacy-office", &busy).unwrap();
    drop(v);
    assert_eq!(Arc::strong_count(&store), 1);
    // What the drop cut short, the next open finishes.
    let v = Vault::open(Arc::clone(&store), crate::support::policy(), h.kek.clone()).unwrap();
    v.purge_erased().unwrap();
    assert_eq!(
        h.count(&format!(
            "SELECT COUNT(*) FROM records WHERE subject = '{busy}'"
        )),
        0
    );
    assert!(store.purge_queue().unwrap().is_empty());
}

pub fn purge_queue_migration_reruns(mut h: Harness) {
    let v = h.vault();
    let id = subject_with_records(v, "abe-erase@example.com", 5);
    h.close();
    let meta = if h.is_sqlite() { "meta" } else { "custos_meta" };
    // The version the migrations bring a database to (later migrations raise it).
    let latest = h.text(&format!(
        "SELECT value FROM {meta} WHERE key = 'schema_version'"
    ));
    assert!(latest.parse::<u32>().unwrap() >= 2);
    // A database from before the purge queue: migration 2 not applied, no table.
    h.exec(&format!(
        "DROP TABLE erasures; UPDATE {meta} SET value = '1' WHERE key = 'schema_version'"
    ));
    let v = h.open(h.kek.clone()).unwrap();
    assert_eq!(
        h.text(&format!(
            "SELECT value FROM {meta} WHERE key = 'schema_version'"
        )),
        latest
    );
    v.erase("privacy-office", &id).unwrap();
    v.purge_erased().unwrap();
    assert_eq!(
        h.count(&format!(
            "SELECT COUNT(*) FROM records WHERE subject = '{id}'"
        )),
        0
    );
    drop(v);
    // Applied again over its own table (a version count rolled back): harmless.
    h.exec(&format!(
        "UPDATE {meta} SET value = '1' WHERE key = 'schema_version'"
    ));
    let v = h.open(h.kek.clone()).unwrap();
    assert_eq!(
        h.text(&format!(
            "SELECT value FROM {meta} WHERE key = 'schema_version'"
        )),
        latest
    );
    assert!(v.verify_ledger().unwrap().ok());
}

pub fn ledger_verify_spans_batches(mut h: Harness) {
    use custos_vault::ledger::{self, CheckpointSigner, Draft, Ledger};
    // A chain longer than the verifier's batches (4096 entries), so links, checkpoints and
    // tampering are checked across their seams.
    h.close();
    let store = h.store().unwrap();
    let signer = CheckpointSigner::new(&custos_vault::crypto::random_secret().unwrap());
    let n = 9_000u64;
    {
        let writer = Ledger::start(Arc::clone(&store), signer.clone()).unwrap();
        for k in 0..n / 1000 {
            let drafts = (0..1000)
                .map(|i| Draft {
                    time_ms: i64::try_from(k * 1000 + i).unwrap(),
                    actor: "meeting-center".into(),
                    action: "read".into(),
                    subject: format!("s{k}-{i}"),
                    purpose: "service.meetings".into(),
                    effect: "permit".into(),
                    ..Draft::default()
                })
                .collect();
            writer.append_many(drafts).unwrap();
        }
    }
    let ok = ledger::verify(&*store, &signer).unwrap();
    assert!(ok.ok(), "{ok:?}");
    assert_eq!((ok.entries, ok.checkpoints), (n, 9));
    assert_eq!(ok.head, store.ledger_page(n, 1).unwrap()[0].hash);
    let check_bad = |seq: u64, what: &str| {
        let bad = ledger::verify(&*store, &signer).unwrap();
        assert_eq!(bad.first_bad, Some(seq), "{what} at {seq}");
        assert_eq!(bad.entries, seq - 1, "{what} at {seq}");
        assert_eq!(bad.checkpoints, (seq - 1) / 1000, "{what} at {seq}");
    };
    // The last entry of the first batch, the first of the second, one deep in the third.
    for (seq, col, tamper) in [
        (4096u64, "hash", "x"),
        (4096, "hash", "upper"),
        (4097, "prev_hash", "upper"),
        (4097, "actor", "x"),
        (8500, "time_ms", "+1"),
    ] {
        let orig = h.ledger_entries();
        h.edit_ledger(|es| {
            let e = es.iter_mut().find(|e| e.seq == seq).unwrap();
            match (col, tamper) {
                ("hash", "x") => e.hash.replace_range(0..1, "x"),
                ("hash", "upper") => e.hash = e.hash.to_uppercase(),
                ("prev_hash", "upper") => e.prev_hash = e.prev_hash.to_uppercase(),
                ("actor", "x") => e.draft.actor.insert(0, 'x'),
                ("time_ms", "+1") => e.draft.time_ms += 1,
                other => panic!("{other:?}"),
            }
        });
        check_bad(seq, tamper);
        h.edit_ledger(|es| *es = orig);
        assert!(ledger::verify(&*store, &signer).unwrap().ok(), "{tamper}");
    }
    // An entry missing at a seam.
    let e = store.ledger_page(8193, 1).unwrap().remove(0);
    h.delete_entry(8193);
    check_bad(8193, "a deleted entry");
    h.insert_entry(e);
    assert!(ledger::verify(&*store, &signer).unwrap().ok());
    // A checkpoint removed at a multiple of 1000 past the first batch.
    let cp = h.text("SELECT signature FROM ledger_checkpoints WHERE seq = 8000");
    let hash = h.text("SELECT hash FROM ledger_checkpoints WHERE seq = 8000");
    h.exec("DELETE FROM ledger_checkpoints WHERE seq = 8000");
    assert_eq!(
        ledger::verify(&*store, &signer).unwrap().first_bad,
        Some(8000)
    );
    h.exec(&format!(
        "INSERT INTO ledger_checkpoints (seq, hash, signature) VALUES (8000, '{hash}', '{cp}')"
    ));
    assert!(ledger::verify(&*store, &signer).unwrap().ok());
}

/// A ledger kept as a row per entry (versions before 0.3) is converted into blocks on open,
/// whole: same entries, same head, and the chain goes on from it; a tampered row stays
/// tampered (verify still names it), and gaps and broken links survive the conversion.
pub fn ledger_rows_convert_to_blocks(mut h: Harness) {
    let v = h.vault();
    let id = v
        .collect("meeting-center", &attendee("Row", "row@example.com"))
        .unwrap();
    for _ in 0..5 {
        v.read("meeting-center", &id, &read("service.meetings"))
            .unwrap();
    }
    let before = v.verify_ledger().unwrap();
    let entries = h.ledger_entries();
    h.close();
    h.to_rows(|_| {});
    let v = h.open(h.kek.clone()).unwrap();
    let after = v.verify_ledger().unwrap();
    assert!(after.ok(), "{after:?}");
    assert_eq!((after.entries, &after.head), (before.entries, &before.head));
    assert_eq!(h.ledger_entries(), entries);
    v.read("meeting-center", &id, &read("service.meetings"))
        .unwrap();
    assert_eq!(v.verify_ledger().unwrap().entries, before.entries + 1);
    drop(v);
    // Tampered rows: an actor changed at 3, a hash upper-cased at 5 (its successor's link
    // no longer matches, so the conversion starts a block there).
    h.to_rows(|es| {
        es[2].draft.actor = "mallory".into();
        es[4].hash = es[4].hash.to_uppercase();
    });
    let v = h.open(h.kek.clone()).unwrap();
    assert_eq!(v.verify_ledger().unwrap().first_bad, Some(3));
    let stored = h.ledger_entries();
    assert_eq!(stored[2].draft.actor, "mallory");
    assert_eq!(stored[4].hash, entries[4].hash.to_uppercase());
}

/// Appends `n` entries by `actor`, `group` at a time (a block each), with a ledger writer of
/// its own.
fn append_entries(
    store: &Arc<dyn custos_vault::Store>,
    signer: &custos_vault::ledger::CheckpointSigner,
    n: u64,
    group: u64,
    actor: &str,
) {
    use custos_vault::ledger::{Draft, Ledger};
    let writer = Ledger::start(Arc::clone(store), signer.clone()).unwrap();
    for k in 0..n / group {
        let drafts = (0..group)
            .map(|i| Draft {
                time_ms: i64::try_from(k * group + i).unwrap(),
                actor: actor.into(),
                action: "read".into(),
                subject: format!("s{k}-{i}"),
                purpose: "service.meetings".into(),
                effect: "permit".into(),
                ..Draft::default()
            })
            .collect();
        writer.append_many(drafts).unwrap();
    }
}

/// The harness's database (its vault closed) with a chain of `n` entries in blocks of
/// `group`; the store, and the signer of its checkpoints.
fn ledger_of(
    h: &mut Harness,
    n: u64,
    group: u64,
) -> (
    Arc<dyn custos_vault::Store>,
    custos_vault::ledger::CheckpointSigner,
) {
    h.close();
    let store = h.store().unwrap();
    let signer = custos_vault::ledger::CheckpointSigner::new(
        &custos_vault::crypto::random_secret().unwrap(),
    );
    append_entries(&store, &signer, n, group, "meeting-center");
    (store, signer)
}

/// `(first_bad, broken, entries)` of a verification.
fn broken_at(
    v: &custos_vault::Verification,
) -> (Option<u64>, Option<custos_vault::ledger::Broken>, u64) {
    (v.first_bad, v.broken, v.entries)
}

/// The last blocks deleted. From inside the database that is a shorter ledger (unless a
/// signed checkpoint names an entry that went with them); a head kept outside it is not in
/// it any more.
pub fn ledger_last_blocks_deleted_fail_the_head(mut h: Harness) {
    use custos_vault::ledger::{Broken, Head, verify_against};
    let (store, signer) = ledger_of(&mut h, 2_500, 100);
    let verify = |head: Option<&Head>| verify_against(&*store, &signer, head).unwrap();
    let ok = verify(None);
    assert!(ok.ok() && ok.entries == 2_500, "{ok:?}");
    let head = ok.verified_head();
    assert_eq!(head.to_string(), format!("2500:{}", ok.head));
    assert_eq!(head.to_string().parse::<Head>().unwrap(), head);
    assert!(verify(Some(&head)).ok());
    h.exec("DELETE FROM ledger_blocks WHERE first_seq = 2401");
    let inside = verify(None);
    assert!(inside.ok() && inside.entries == 2_400, "{inside:?}");
    assert_eq!(
        broken_at(&verify(Some(&head))),
        (Some(2_401), Some(Broken::HeadPastEnd), 2_400)
    );
    // A head from before the cut is still in it.
    let older = Head {
        seq: 2_000,
        hash: store.ledger_page(2_000, 1).unwrap()[0].hash.clone(),
    };
    assert!(verify(Some(&older)).ok());
    // Deleted back past a signed checkpoint: the checkpoint names an entry that is gone.
    h.exec("DELETE FROM ledger_blocks WHERE first_seq > 1900");
    assert_eq!(
        broken_at(&verify(None)),
        (Some(1_901), Some(Broken::CheckpointPastEnd), 1_900)
    );
    assert_eq!(
        broken_at(&verify(Some(&older))),
        (Some(1_901), Some(Broken::CheckpointPastEnd), 1_900)
    );
}

/// Everything after the last signed checkpoint deleted, and nothing else. What is left is a
/// consistent, shorter ledger — every block, link and checkpoint in it checks out — so this
/// can only be caught with a head kept outside the database (`--head`), which is what this
/// case checks. The cut ledger, grown again, has another entry at the head's seq.
pub fn ledger_cut_after_last_checkpoint_fails_only_the_head(mut h: Harness) {
    use custos_vault::ledger::{Broken, Head, verify_against};
    let (store, signer) = ledger_of(&mut h, 2_500, 100);
    let verify = |head: Option<&Head>| verify_against(&*store, &signer, head).unwrap();
    let head = verify(None).verified_head();
    h.exec("DELETE FROM ledger_blocks WHERE first_seq > 2000");
    let inside = verify(None);
    assert!(
        inside.ok() && (inside.entries, inside.checkpoints) == (2_000, 2),
        "{inside:?}"
    );
    assert_eq!(
        broken_at(&verify(Some(&head))),
        (Some(2_001), Some(Broken::HeadPastEnd), 2_000)
    );
    // The Merkle tree still holds the entries cut: nothing is appended onto the cut ledger.
    let refused = store.append_ledger(&[custos_vault::ledger::Draft::default()], &|_, _| None);
    assert!(
        matches!(&refused, Err(custos_vault::Error::Storage(m)) if m.contains("entries were removed")),
        "{refused:?}"
    );
    // An attacker who removes the tree too gets it rebuilt from what is left, and goes on.
    h.exec("DELETE FROM ledger_tiles");
    append_entries(&store, &signer, 600, 100, "mallory");
    assert!(verify(None).ok());
    assert_eq!(store.ledger_tree_size().unwrap(), 2_600);
    assert_eq!(
        broken_at(&verify(Some(&head))),
        (Some(2_500), Some(Broken::HeadDiffers), 2_499)
    );
}

/// Every block and checkpoint deleted: an empty ledger, as far as the database tells; not
/// one that holds the head kept outside it (checked through `Vault::verify_ledger_against`).
pub fn ledger_emptied_fails_the_head(mut h: Harness) {
    use custos_vault::ledger::{Broken, GENESIS, Head, verify};
    let (store, signer) = ledger_of(&mut h, 1_200, 100);
    let head = verify(&*store, &signer).unwrap().verified_head();
    h.exec("DELETE FROM ledger_blocks; DELETE FROM ledger_checkpoints;");
    let empty = verify(&*store, &signer).unwrap();
    assert!(empty.ok() && empty.entries == 0, "{empty:?}");
    let genesis: Head = format!("0:{GENESIS}").parse().unwrap();
    assert_eq!(empty.verified_head(), genesis);
    let v = h.open(h.kek.clone()).unwrap();
    assert!(v.verify_ledger_against(Some(&genesis)).unwrap().ok());
    let bad = v.verify_ledger_against(Some(&head)).unwrap();
    assert_eq!(
        broken_at(&bad),
        (
            Some(bad.entries + 1),
            Some(Broken::HeadPastEnd),
            bad.entries
        )
    );
    assert!(bad.entries < 1_200);
}

/// A block's `first_seq` raised: past every other block (so the blocks after it were never
/// read, and the next append would collide with them), past its own `last_seq`, or by one.
pub fn ledger_raised_first_seq_detected(mut h: Harness) {
    use custos_vault::ledger::{Broken, verify};
    let (store, signer) = ledger_of(&mut h, 30, 10);
    let check = || broken_at(&verify(&*store, &signer).unwrap());
    assert_eq!(check(), (None, None, 30));
    for (first, raised, bad) in [
        (11u64, 1_000_000u64, 11u64),
        (21, 1_000_000, 21),
        (11, 12, 11),
    ] {
        h.exec(&format!(
            "UPDATE ledger_blocks SET first_seq = {raised} WHERE first_seq = {first}"
        ));
        assert_eq!(
            check(),
            (Some(bad), Some(Broken::Entry), bad - 1),
            "block {first} raised to {raised}"
        );
        h.exec(&format!(
            "UPDATE ledger_blocks SET first_seq = {first} WHERE first_seq = {raised}"
        ));
        assert_eq!(check(), (None, None, 30));
    }
}

/// Blocks whose seq ranges leave a gap, overlap, claim entries past the last block, or
/// start before seq 1.
pub fn ledger_block_overlap_or_gap_detected(mut h: Harness) {
    use custos_vault::ledger::{Broken, verify};
    let (store, signer) = ledger_of(&mut h, 30, 10);
    let check = || broken_at(&verify(&*store, &signer).unwrap());
    let entries = h.ledger_entries();
    // The last block moved a seq on (a gap), then a seq back (an overlap).
    for (first, last) in [(22, 31), (20, 29)] {
        h.exec(&format!(
            "UPDATE ledger_blocks SET first_seq = {first}, last_seq = {last} WHERE first_seq = 21"
        ));
        assert_eq!(
            check(),
            (Some(21), Some(Broken::Entry), 20),
            "{first}..{last}"
        );
        h.exec(&format!(
            "UPDATE ledger_blocks SET first_seq = 21, last_seq = 30 WHERE first_seq = {first}"
        ));
        assert_eq!(check(), (None, None, 30));
    }
    // A block of 11..25 beside a last block of 12..20: the chain up to 20 links, and 21..25
    // hide behind the last block's end.
    h.exec("DELETE FROM ledger_blocks WHERE first_seq >= 11");
    h.insert_block(&entries[10..25]);
    h.insert_block(&entries[11..20]);
    assert_eq!(check(), (Some(21), Some(Broken::Entry), 20));
    h.exec("DELETE FROM ledger_blocks WHERE first_seq >= 11");
    h.insert_block(&entries[10..20]);
    h.insert_block(&entries[20..30]);
    assert_eq!(check(), (None, None, 30));
    // A block before seq 1, behind the first one.
    h.exec(
        "INSERT INTO ledger_blocks (first_seq, last_seq, prev_hash, entries) \
         SELECT 0, 0, prev_hash, entries FROM ledger_blocks WHERE first_seq = 1",
    );
    assert_eq!(check(), (Some(1), Some(Broken::Entry), 0));
}

/// A signed checkpoint that names an entry past the last: a copy of one moved there, or one
/// left behind by a cut tail.
pub fn ledger_checkpoint_past_end_detected(mut h: Harness) {
    use custos_vault::ledger::{Broken, verify};
    let (store, signer) = ledger_of(&mut h, 1_500, 100);
    let check = || broken_at(&verify(&*store, &signer).unwrap());
    assert_eq!(check(), (None, None, 1_500));
    h.exec(
        "INSERT INTO ledger_checkpoints (seq, hash, signature) \
         SELECT 5000, hash, signature FROM ledger_checkpoints WHERE seq = 1000",
    );
    assert_eq!(
        check(),
        (Some(1_501), Some(Broken::CheckpointPastEnd), 1_500)
    );
    h.exec("DELETE FROM ledger_checkpoints WHERE seq = 5000");
    assert_eq!(check(), (None, None, 1_500));
    h.exec("DELETE FROM ledger_blocks WHERE first_seq > 900");
    assert_eq!(check(), (Some(901), Some(Broken::CheckpointPastEnd), 900));
}

/// Every ledger entry about a subject, oldest first: `(action, effect, reasons, actor)`.
fn entries_about(v: &Vault, subject: &str) -> Vec<(String, String, String, String)> {
    let n = v.verify_ledger().unwrap().entries;
    v.store()
        .ledger_page(1, n)
        .unwrap()
        .into_iter()
        .filter(|e| e.draft.subject == subject)
        .map(|e| {
            (
                e.draft.action,
                e.draft.effect,
                e.draft.reasons,
                e.draft.actor,
            )
        })
        .collect()
}

/// Issue 10, finding 1: a stated age erases only on a request that passed every other
/// check, made by a service that holds the person.
pub fn age_erases_only_on_a_sound_request_by_a_holder(h: Harness) {
    let v = h.vault();
    let id = v
        .collect("meeting-center", &attendee("Ida", "ida@example.com"))
        .unwrap();
    let held = || v.store().wrapped_dek(id.as_str()).unwrap().is_some();
    // Another service's key, with a request valid for its own service.
    let mut mailbox = attendee("Ida", "ida@example.com");
    mailbox.service = "mail".into();
    mailbox.role = "mailbox-owner".into();
    mailbox.purposes = vec!["service.mail".into()];
    mailbox.age = Some(1);
    assert_eq!(
        v.collect_more("mail", &id, &mailbox).unwrap_err().code(),
        "subject_not_found"
    );
    assert!(held());
    // Another service's key posing as the holder (mail shares `account` with hosts).
    let mut posing = attendee("Ida", "ida@example.com");
    posing.role = "host".into();
    posing.purposes = vec!["account".into()];
    posing.age = Some(1);
    assert_eq!(
        v.collect_more("mail", &id, &posing).unwrap_err().code(),
        "subject_not_found"
    );
    // A team's key, with nonsense around the age.
    let nonsense = CollectionInput {
        service: "nope".into(),
        role: "nope".into(),
        purposes: vec!["nope".into()],
        notice: "nope".into(),
        age: Some(1),
        tenant: None,
        data: BTreeMap::new(),
    };
    for accessor in ["marketing", "support", "customer-admin"] {
        assert_eq!(
            v.collect_more(accessor, &id, &nonsense).unwrap_err().code(),
            "subject_not_found",
            "{accessor}"
        );
    }
    assert!(v.learn_age("support", &id, 1).is_err());
    assert!(held());
    // The holder itself, with a request wrong in anything else: refused, nothing erased.
    let mut wrong = attendee("Ida", "ida@example.com");
    wrong.age = Some(1);
    wrong.purposes = vec!["nope".into()];
    let e = v.collect_more("meeting-center", &id, &wrong).unwrap_err();
    let Error::CollectionRefused(errors) = e else {
        panic!("expected a refusal, got {e:?}")
    };
    let codes: Vec<&str> = errors.iter().map(|e| e.code).collect();
    assert_eq!(
        codes,
        [
            "unknown_purpose",
            "subject_under_minimum_age",
            "purpose_not_allowed_for_accessor"
        ]
    );
    let mut stale = attendee("Ida", "ida@example.com");
    stale.age = Some(1);
    stale.notice = "1999-01-01".into();
    assert!(v.collect_more("meeting-center", &id, &stale).is_err());
    assert!(held());
    let r = v
        .read("meeting-center", &id, &read("service.meetings"))
        .unwrap();
    assert_eq!(r.data["contact.email"], "ida@example.com");
    // Every attempt is in the ledger, without the values.
    let refused: Vec<String> = entries_about(v, id.as_str())
        .into_iter()
        .filter(|(_, effect, _, _)| effect == "refused")
        .map(|(_, _, reasons, actor)| format!("{actor}:{reasons}"))
        .collect();
    assert!(
        refused.contains(&"mail:subject_not_held".to_string()),
        "{refused:?}"
    );
    assert!(
        refused.contains(&"marketing:subject_not_held".to_string()),
        "{refused:?}"
    );
    // The holder, with a sound request: C053 erases at once.
    let mut child = attendee("Ida", "ida@example.com");
    child.age = Some(9);
    assert_eq!(
        v.collect_more("meeting-center", &id, &child)
            .unwrap_err()
            .code(),
        "subject_under_minimum_age"
    );
    assert!(!held());
    assert!(v.verify_ledger().unwrap().ok());
}

/// Issue 10, finding 2: records are appended only by a service that holds the person, in a
/// role that keeps the collection, for a purpose the caller pursues.
pub fn records_only_by_the_holding_service(h: Harness) {
    let v = h.vault();
    let id = v
        .collect("meeting-center", &attendee("Rae", "rae@example.com"))
        .unwrap();
    let meetings = ["service.meetings".to_string()];
    for accessor in ["marketing", "mail", "connect", "support", "nobody"] {
        let e = v
            .append_record(accessor, &id, "meeting_attendance", &meetings, "forged")
            .unwrap_err();
        assert!(
            matches!(e.code(), "subject_not_found" | "unknown_accessor"),
            "{accessor}: {e:?}"
        );
        assert!(
            v.append_records(accessor, &id, "meeting_attendance", &meetings, &["forged"])
                .is_err()
        );
    }
    // The holder, stating only a purpose its role states but it does not pursue.
    let e = v
        .append_record(
            "meeting-center",
            &id,
            "meeting_attendance",
            &["reports.customer_usage".into()],
            "forged",
        )
        .unwrap_err();
    assert_eq!(e.code(), "purpose_not_allowed_for_accessor");
    // Nothing forged was kept; nothing is served as permitted.
    let rr = v
        .read_records(
            "meeting-center",
            &id,
            "meeting_attendance",
            "service.meetings",
            &RecordsPage::default(),
        )
        .unwrap();
    assert!(rr.records.is_empty(), "{:?}", rr.records);
    assert_eq!(h.count("SELECT COUNT(*) FROM records"), 0);
    let refused = entries_about(v, id.as_str())
        .into_iter()
        .filter(|(action, effect, _, _)| action == "append_record" && effect == "refused")
        .count();
    assert_eq!(refused, 11);
    // The holder, as it should.
    v.append_record(
        "meeting-center",
        &id,
        "meeting_attendance",
        &meetings,
        "real",
    )
    .unwrap();
    assert_eq!(h.count("SELECT COUNT(*) FROM records"), 1);
}

/// Issue 10, finding 5: the entry is durable before the data. With the ledger refusing
/// appends nothing is stored; with the store refusing, the ledger says the data never came.
pub fn no_data_held_without_its_ledger_entry(h: Harness) {
    let v = h.vault();
    let id = v
        .collect("meeting-center", &attendee("Lia", "lia@example.com"))
        .unwrap();
    let counts = || {
        (
            h.count("SELECT COUNT(*) FROM subjects"),
            h.count("SELECT COUNT(*) FROM field_values"),
            h.count("SELECT COUNT(*) FROM records"),
        )
    };
    let before = counts();
    ledger_down(&h);
    assert!(
        v.collect("meeting-center", &attendee("Max", "max@example.com"))
            .is_err()
    );
    let many = v.collect_many(
        "meeting-center",
        &[
            attendee("Ned", "ned@example.com"),
            attendee("Ola", "ola@example.com"),
        ],
    );
    assert!(many.is_err(), "{many:?}");
    let mut more = attendee("Lia", "lia@example.com");
    more.data
        .insert("telemetry.service_health".into(), "cpu 3%".into());
    assert!(v.collect_more("meeting-center", &id, &more).is_err());
    let meetings = ["service.meetings".to_string()];
    assert!(
        v.append_record("meeting-center", &id, "meeting_attendance", &meetings, "r")
            .is_err()
    );
    assert!(
        v.append_records(
            "meeting-center",
            &id,
            "meeting_attendance",
            &meetings,
            &["a", "b"]
        )
        .is_err()
    );
    ledger_up(&h);
    assert_eq!(counts(), before, "data stored without its ledger entry");
    assert!(v.verify_ledger().unwrap().ok());
    // The store refuses new subjects: the `collect` entry is followed by a `failed` one.
    h.exec(if h.is_sqlite() {
        "CREATE TRIGGER subjects_down BEFORE INSERT ON subjects \
         BEGIN SELECT RAISE(ABORT, 'store down'); END;"
    } else {
        "CREATE FUNCTION subjects_down() RETURNS trigger AS $$ \
         BEGIN RAISE EXCEPTION 'store down'; END $$ LANGUAGE plpgsql; \
         CREATE TRIGGER subjects_down BEFORE INSERT ON subjects \
         FOR EACH ROW EXECUTE FUNCTION subjects_down();"
    });
    assert!(
        v.collect("meeting-center", &attendee("Pia", "pia@example.com"))
            .is_err()
    );
    let n = v.verify_ledger().unwrap().entries;
    let tail = v.store().ledger_page(n - 1, 2).unwrap();
    let tail: Vec<(&str, &str, &str)> = tail
        .iter()
        .map(|e| {
            (
                e.draft.action.as_str(),
                e.draft.effect.as_str(),
                e.draft.subject.as_str(),
            )
        })
        .collect();
    assert_eq!((tail[0].0, tail[0].1), ("collect", "permit"));
    assert_eq!((tail[1].0, tail[1].1), ("collect", "failed"));
    assert_eq!(tail[0].2, tail[1].2);
    assert_eq!(counts(), before);
    assert!(v.verify_ledger().unwrap().ok());
}

/// Issue 10, finding 7: a read answers one bounded page; an append adds a bounded amount.
pub fn records_are_paged_and_bounded(h: Harness) {
    let v = h.vault();
    let id = v
        .collect("meeting-center", &attendee("Pam", "pam@example.com"))
        .unwrap();
    let meetings = ["service.meetings".to_string()];
    let values: Vec<String> = (0..250).map(|i| format!("r{i:03}")).collect();
    let refs: Vec<&str> = values.iter().map(String::as_str).collect();
    v.append_records(
        "meeting-center",
        &id,
        "meeting_attendance",
        &meetings,
        &refs,
    )
    .unwrap();
    let page = |after: Option<String>, limit: u64| {
        v.read_records(
            "meeting-center",
            &id,
            "meeting_attendance",
            "service.meetings",
            &RecordsPage { after, limit },
        )
        .unwrap()
    };
    let first = page(None, 0);
    assert_eq!(first.records.len(), 100);
    let mut seen: Vec<String> = Vec::new();
    let mut after = None;
    loop {
        let p = page(after, 70);
        seen.extend(p.records.iter().map(|r| r.value.clone()));
        match p.next {
            Some(n) => after = Some(n),
            None => break,
        }
    }
    assert_eq!(seen, values);
    // At most a thousand, whatever is asked.
    assert_eq!(page(None, 1_000_000).records.len(), 250);
    // A cursor of another subject reads nothing of this one.
    let other = v
        .collect("meeting-center", &attendee("Quin", "quin@example.com"))
        .unwrap();
    let theirs = v
        .append_record(
            "meeting-center",
            &other,
            "meeting_attendance",
            &meetings,
            "x",
        )
        .unwrap();
    assert!(page(Some(theirs), 10).records.is_empty());
    // Appends are bounded in count and size.
    let many: Vec<&str> = vec!["x"; custos_vault::MAX_RECORDS_APPEND + 1];
    assert_eq!(
        v.append_records(
            "meeting-center",
            &id,
            "meeting_attendance",
            &meetings,
            &many
        )
        .unwrap_err()
        .code(),
        "too_many_records"
    );
    let big = "x".repeat(custos_vault::MAX_RECORD_BYTES + 1);
    assert_eq!(
        v.append_record("meeting-center", &id, "meeting_attendance", &meetings, &big)
            .unwrap_err()
            .code(),
        "record_too_large"
    );
    assert_eq!(page(None, 1000).records.len(), 250);
}

// ---- issue 12, item 3: tenant binding ----------------------------------------------------

/// A meeting attendee of `tenant`, collected for meetings and the customer's usage reports.
fn attendee_of(tenant: Option<&str>, email: &str) -> CollectionInput {
    let mut a = attendee("Tess Tenant", email);
    a.purposes = vec!["service.meetings".into(), "reports.customer_usage".into()];
    a.tenant = tenant.map(str::to_string);
    a
}

/// The principal of a new key of `accessor` for `tenant`, as authentication returns it.
fn principal(v: &Vault, accessor: &str, tenant: &str) -> custos_vault::Principal {
    let key = v.create_key_for(accessor, Some(tenant)).unwrap();
    v.authenticate(&key).unwrap()
}

fn report(categories: &[&str]) -> ReadInput {
    ReadInput {
        purpose: "reports.customer_usage".into(),
        categories: Some(categories.iter().map(|c| c.to_string()).collect()),
        ..ReadInput::default()
    }
}

/// The last ledger entry about `subject`: (action, effect, reasons, actor).
fn last_about(v: &Vault, subject: &SubjectId) -> (String, String, String, String) {
    entries_about(v, subject.as_str()).pop().unwrap()
}

/// Issue 12, item 3, from the attacker's side: a key of a business customer (tenant) asks
/// for people of another tenant and of none, on every path that reads a subject. Each is
/// answered exactly as a subject that was never collected, and each attempt is ledgered
/// with its reason (never the tenant); its own tenant's people get the policy's answer.
pub fn tenant_bound_keys_reach_only_their_tenants_people(h: Harness) {
    let v = h.vault();
    let mine = v
        .collect(
            "meeting-center",
            &attendee_of(Some("acme"), "a@acme.example"),
        )
        .unwrap();
    let theirs = v
        .collect(
            "meeting-center",
            &attendee_of(Some("globex"), "b@globex.example"),
        )
        .unwrap();
    let nobodys = v
        .collect("meeting-center", &attendee_of(None, "c@example.com"))
        .unwrap();
    let never = SubjectId::parse("00000000-0000-4000-8000-000000000000").unwrap();
    let usage = [
        "service.meetings".to_string(),
        "reports.customer_usage".to_string(),
    ];
    for id in [&mine, &theirs, &nobodys] {
        v.append_record("meeting-center", id, "meeting_attendance", &usage, "sync")
            .unwrap();
    }
    let acme = principal(v, "customer-admin", "acme");
    assert_eq!(acme.tenant.as_deref(), Some("acme"));
    let name_and_email = report(&["contact.name", "contact.email"]);
    let page = RecordsPage::default();

    // Another tenant's person, a person of no tenant, and a key of the right accessor made
    // with no tenant (as every key was before keys had tenants): nobody, on every path.
    let no_tenant = custos_vault::Actor::from("customer-admin");
    for (actor, id, reason) in [
        (acme.actor(), &theirs, "subject_not_in_tenant"),
        (acme.actor(), &nobodys, "subject_not_in_tenant"),
        (no_tenant, &mine, "tenant_required"),
    ] {
        let as_if_never = |e: Error| {
            assert!(matches!(e, Error::SubjectNotFound), "{e:?}");
            e.to_string()
        };
        let answer = as_if_never(v.read(actor, id, &name_and_email).unwrap_err());
        assert_eq!(
            answer,
            v.read(actor, &never, &name_and_email)
                .unwrap_err()
                .to_string()
        );
        assert_eq!(
            last_about(v, id),
            (
                "read".into(),
                "deny".into(),
                reason.into(),
                "customer-admin".into()
            )
        );
        as_if_never(v.decide(actor, id, &name_and_email).unwrap_err());
        assert_eq!(last_about(v, id).2, reason);
        // Every category held, as a client that names none asks.
        as_if_never(
            v.read(actor, id, &read("reports.customer_usage"))
                .unwrap_err(),
        );
        assert_eq!(last_about(v, id).2, reason);
        let (tx, _rx) = std::sync::mpsc::channel();
        as_if_never(
            v.begin_read(actor, id, &name_and_email, move |d| {
                let _ = tx.send(d.is_ok());
            })
            .unwrap_err(),
        );
        as_if_never(
            v.read_records(
                actor,
                id,
                "meeting_attendance",
                "reports.customer_usage",
                &page,
            )
            .unwrap_err(),
        );
        assert_eq!(
            last_about(v, id),
            (
                "read_records".into(),
                "deny".into(),
                reason.into(),
                "customer-admin".into()
            )
        );
    }
    // Nothing of the tenant's name in the ledger (a refusal names the reason only).
    let n = v.verify_ledger().unwrap().entries;
    let ledger = v.store().ledger_page(1, n).unwrap();
    assert!(
        ledger
            .iter()
            .all(|e| !format!("{:?}", e.draft).contains("acme")
                && !format!("{:?}", e.draft).contains("globex"))
    );

    // Its own tenant's person: the policy's answer.
    let r = v.read(&acme, &mine, &name_and_email).unwrap();
    assert_eq!(r.effect, "permit");
    assert_eq!(r.data["contact.email"], "a@acme.example");
    let d = v.decide(&acme, &mine, &name_and_email).unwrap();
    assert_eq!(
        (d.effect.as_str(), d.disclosure_to.as_deref()),
        ("permit", Some("customer"))
    );
    // Beyond what the policy lets the customer have: withheld, as for any key.
    let r = v
        .read(&acme, &mine, &report(&["network.ip_address"]))
        .unwrap();
    assert_eq!(
        r.withheld["network.ip_address"],
        "exceeds_minimum_necessary"
    );
    // Its records: the policy decides (the attendance collection also holds the IP
    // address, more than the customer may have, so each record is withheld — an answer,
    // where another tenant's key got no subject at all).
    let rr = v
        .read_records(
            &acme,
            &mine,
            "meeting_attendance",
            "reports.customer_usage",
            &page,
        )
        .unwrap();
    assert!(rr.records.is_empty());
    assert_eq!(
        rr.withheld,
        BTreeMap::from([("exceeds_minimum_necessary".to_string(), 1)])
    );
    // The other tenant's key reaches its own person, and not acme's.
    let globex = principal(v, "customer-admin", "globex");
    assert_eq!(
        v.read(&globex, &theirs, &name_and_email).unwrap().data["contact.email"],
        "b@globex.example"
    );
    assert!(matches!(
        v.read(&globex, &mine, &name_and_email),
        Err(Error::SubjectNotFound)
    ));

    // Accessors that act for no tenant are unaffected: every person, any tenant or none.
    for id in [&mine, &theirs, &nobodys] {
        let r = v
            .read("meeting-center", id, &read("service.meetings"))
            .unwrap();
        assert_eq!(r.effect, "permit");
        let r = v.read("support", id, &read("support")).unwrap();
        assert_ne!(r.effect, "");
    }
    assert!(v.verify_ledger().unwrap().ok());
}

/// Issue 12, item 3: the policy decides which accessors are tenant-bound (those acting for
/// a `customer`, `employer` or `purchaser` recipient), and their keys are made for one
/// tenant; each of them reaches its tenant's people only (C067, C071, C075, C079).
pub fn tenant_bound_accessors_and_their_keys(h: Harness) {
    let v = h.vault();
    let bound: Vec<&str> = v
        .policy()
        .accessors()
        .iter()
        .filter(|a| a.tenant_bound)
        .map(|a| a.id.as_str())
        .collect();
    assert_eq!(bound, ["customer-admin", "employer", "mailbox-purchaser"]);
    // Made without a tenant, or with one that is no id: refused, and nothing stored.
    let keys_before = h.count("SELECT COUNT(*) FROM api_keys");
    for a in &bound {
        assert_eq!(v.create_key(a).unwrap_err().code(), "tenant_required");
        for bad in ["", " acme", "ac\nme", &"x".repeat(129)] {
            assert_eq!(
                v.create_key_for(a, Some(bad)).unwrap_err().code(),
                "invalid_tenant"
            );
        }
    }
    // An accessor acting for no tenant takes none.
    assert_eq!(
        v.create_key_for("meeting-center", Some("acme"))
            .unwrap_err()
            .code(),
        "tenant_not_bound"
    );
    assert_eq!(h.count("SELECT COUNT(*) FROM api_keys"), keys_before);

    // The tenant is stored with the key's hash and comes back with the accessor, from the
    // store and from memory.
    let key = v.create_key_for("employer", Some("acme")).unwrap();
    let p = v.authenticate(&key).unwrap();
    assert_eq!(
        (p.accessor.as_str(), p.tenant.as_deref()),
        ("employer", Some("acme"))
    );
    assert_eq!(v.authenticate_cached(&key), Some(p.clone()));
    assert_eq!(
        h.text("SELECT tenant FROM api_keys WHERE accessor = 'employer'"),
        "acme"
    );
    let other = h.open(h.kek.clone()).unwrap();
    assert_eq!(other.authenticate(&key).unwrap(), p);

    // The employer (C071, C079): a Connect user of its tenant, not another's.
    let connect_user = |tenant: &str, email: &str| {
        let mut c = attendee("Cy Connect", email);
        c.service = "connect".into();
        c.role = "user".into();
        c.purposes = vec!["service.connect".into(), "employer.access".into()];
        c.tenant = Some(tenant.into());
        c.data.insert("presence.status".into(), "available".into());
        v.collect("connect", &c).unwrap()
    };
    let ours = connect_user("acme", "cy@acme.example");
    let theirs = connect_user("globex", "cy@globex.example");
    let access = ReadInput {
        purpose: "employer.access".into(),
        categories: Some(vec!["contact.email".into()]),
        ..ReadInput::default()
    };
    assert_eq!(
        v.read(&p, &ours, &access).unwrap().data["contact.email"],
        "cy@acme.example"
    );
    assert!(matches!(
        v.read(&p, &theirs, &access),
        Err(Error::SubjectNotFound)
    ));
    // A disclosure onwards to the employer is the employer's own key's: the Connect
    // service's key, bound to no tenant, reaches nobody that way (and everyone otherwise).
    let archival = ReadInput {
        purpose: "connect.archival".into(),
        categories: Some(vec!["chat.history".into()]),
        recipient: Some("employer".into()),
        ..ReadInput::default()
    };
    assert!(matches!(
        v.decide("connect", &ours, &archival),
        Err(Error::SubjectNotFound)
    ));
    assert_eq!(last_about(v, &ours).2, "tenant_required");
    assert!(v.read("connect", &ours, &read("service.connect")).is_ok());

    // The mailbox purchaser (C075): with a reference, its tenant's mailbox only.
    let mailbox = |tenant: &str, email: &str| {
        let mut m = attendee("Mo Mailer", email);
        m.service = "mail".into();
        m.role = "mailbox-owner".into();
        m.purposes = vec!["service.mail".into(), "mail.purchaser_access".into()];
        m.tenant = Some(tenant.into());
        v.collect("mail", &m).unwrap()
    };
    let ours = mailbox("acme", "mo@acme.example");
    let theirs = mailbox("globex", "mo@globex.example");
    let purchaser = principal(v, "mailbox-purchaser", "acme");
    // The purchaser's verified authority, registered by the operator, covers both.
    let authority = v
        .register_instrument_as_operator(&crate::instruments::instrument(
            "purchaser_authority",
            &[&ours, &theirs],
            &["contact.email"],
        ))
        .unwrap();
    let verified = ReadInput {
        purpose: "mail.purchaser_access".into(),
        categories: Some(vec!["contact.email".into()]),
        reference: Some(authority.id),
        ..ReadInput::default()
    };
    assert_eq!(
        v.read(&purchaser, &ours, &verified).unwrap().data["contact.email"],
        "mo@acme.example"
    );
    assert!(matches!(
        v.read(&purchaser, &theirs, &verified),
        Err(Error::SubjectNotFound)
    ));

    // Revoking one tenant's keys leaves the other tenants' keys working.
    let globex = v.create_key_for("employer", Some("globex")).unwrap();
    assert_eq!(v.revoke_for("employer", Some("acme")).unwrap(), 1);
    assert!(matches!(v.authenticate(&key), Err(Error::Unauthorized)));
    assert_eq!(
        v.authenticate(&globex).unwrap().tenant.as_deref(),
        Some("globex")
    );
    assert!(v.verify_ledger().unwrap().ok());
}

/// Issue 12, item 3: the binding holds on the paths that act on a subject as well — adding
/// data, appending records, stating an age, consent, deactivation and erasure — and a key
/// of a tenant collects people into its own tenant only. (The policy's tenant-bound
/// accessors collect for no service, so the holder paths are shown with an actor that names
/// a tenant: a tenant named always binds.)
pub fn tenant_binding_holds_on_every_path(h: Harness) {
    let v = h.vault();
    let acme_person = v
        .collect(
            "meeting-center",
            &attendee_of(Some("acme"), "d@acme.example"),
        )
        .unwrap();
    let globex = custos_vault::Actor::of_tenant("meeting-center", "globex");
    let usage = ["service.meetings".to_string()];
    let mut more = attendee_of(Some("globex"), "d@acme.example");
    more.purposes = vec!["support".into()];
    assert!(matches!(
        v.collect_more(globex, &acme_person, &more),
        Err(Error::SubjectNotFound)
    ));
    assert_eq!(last_about(v, &acme_person).2, "subject_not_in_tenant");
    for e in [
        v.append_record(globex, &acme_person, "meeting_attendance", &usage, "x")
            .unwrap_err(),
        v.append_records(globex, &acme_person, "meeting_attendance", &usage, &["x"])
            .unwrap_err(),
    ] {
        assert!(matches!(e, Error::SubjectNotFound), "{e:?}");
        assert_eq!(
            last_about(v, &acme_person),
            (
                "append_record".into(),
                "refused".into(),
                "subject_not_in_tenant".into(),
                "meeting-center".into()
            )
        );
    }
    // Under the minimum age, from another tenant: nothing erased.
    assert!(matches!(
        v.learn_age(globex, &acme_person, 5),
        Err(Error::SubjectNotFound)
    ));
    assert_eq!(last_about(v, &acme_person).2, "subject_not_in_tenant");
    // The lifecycle, by a tenant-bound accessor's name with no tenant: nobody.
    type Act<'v> = Box<dyn Fn() -> custos_vault::Result<()> + 'v>;
    let acts: [(&str, &str, Act<'_>); 4] = [
        (
            "consent",
            "customer-admin",
            Box::new(|| v.give_consent("customer-admin", &acme_person, "newsletters", "api")),
        ),
        (
            "objection",
            "employer",
            Box::new(|| v.object("employer", &acme_person, "marketing", "api")),
        ),
        (
            "deactivate",
            "customer-admin",
            Box::new(|| v.deactivate("customer-admin", &acme_person)),
        ),
        (
            "erase",
            "mailbox-purchaser",
            Box::new(|| v.erase("mailbox-purchaser", &acme_person)),
        ),
    ];
    for (action, actor, act) in acts {
        let e = act().unwrap_err();
        assert!(matches!(e, Error::SubjectNotFound), "{action}: {e:?}");
        assert_eq!(
            last_about(v, &acme_person),
            (
                action.into(),
                "refused".into(),
                "tenant_required".into(),
                actor.into()
            )
        );
    }
    assert_eq!(
        h.count(&format!(
            "SELECT COUNT(*) FROM records WHERE subject = '{acme_person}'"
        )),
        0
    );
    // Still there, whole, for its holder.
    let r = v
        .read("meeting-center", &acme_person, &read("service.meetings"))
        .unwrap();
    assert_eq!(r.data["contact.email"], "d@acme.example");

    // A key of a tenant collects into its own tenant, stated, and then reaches the person.
    let mut into_acme = attendee_of(Some("acme"), "e@acme.example");
    let e = v.collect(globex, &into_acme).unwrap_err();
    assert_eq!(e.code(), "tenant_mismatch");
    into_acme.tenant = None;
    assert_eq!(
        v.collect(globex, &into_acme).unwrap_err().code(),
        "tenant_mismatch"
    );
    into_acme.tenant = Some("globex".into());
    let id = v.collect(globex, &into_acme).unwrap();
    v.append_record(globex, &id, "meeting_attendance", &usage, "y")
        .unwrap();
    // Nor may it add its person to another tenant.
    let mut elsewhere = into_acme.clone();
    elsewhere.tenant = Some("acme".into());
    assert_eq!(
        v.collect_more(globex, &id, &elsewhere).unwrap_err().code(),
        "tenant_mismatch"
    );
    assert!(matches!(
        v.read(
            custos_vault::Actor::of_tenant("meeting-center", "acme"),
            &id,
            &read("service.meetings")
        ),
        Err(Error::SubjectNotFound)
    ));
    assert!(v.verify_ledger().unwrap().ok());
}

/// Issue 12, item 3: the tenant column comes with a migration on both backends; keys made
/// before it keep working (bound to no tenant), a bound accessor's old key reaches nobody
/// until the operator makes it a key of a tenant, and the migration applied again is
/// harmless.
pub fn keys_made_before_tenants_keep_working(mut h: Harness) {
    let v = h.vault();
    let id = v
        .collect(
            "meeting-center",
            &attendee_of(Some("acme"), "f@acme.example"),
        )
        .unwrap();
    let key = v.create_key("meeting-center").unwrap();
    h.close();
    let meta = if h.is_sqlite() { "meta" } else { "custos_meta" };
    let latest = h.text(&format!(
        "SELECT value FROM {meta} WHERE key = 'schema_version'"
    ));
    // A database from before keys had tenants, with a customer-admin key made then.
    let old_admin = "custos_00000000000000000000000000000000000000000000000000000000000000aa";
    let old_hash = custos_vault::crypto::hex(&custos_vault::crypto::sha256(old_admin.as_bytes()));
    let before = if h.is_sqlite() { "4" } else { "3" };
    if h.is_sqlite() {
        h.exec(&format!(
            "CREATE TABLE k0 (hash TEXT PRIMARY KEY, accessor TEXT NOT NULL,
                 revoked INTEGER NOT NULL, created_ms INTEGER NOT NULL);
             INSERT INTO k0 SELECT hash, accessor, revoked, created_ms FROM api_keys;
             DROP TABLE api_keys; ALTER TABLE k0 RENAME TO api_keys;
             INSERT INTO api_keys VALUES ('{old_hash}', 'customer-admin', 0, 0);
             UPDATE meta SET value = '{before}' WHERE key = 'schema_version';"
        ));
    } else {
        h.exec(&format!(
            "ALTER TABLE api_keys DROP COLUMN tenant;
             INSERT INTO api_keys VALUES ('{old_hash}', 'customer-admin', FALSE, 0);
             UPDATE custos_meta SET value = '{before}' WHERE key = 'schema_version';"
        ));
    }
    for _ in 0..2 {
        let v = h.open(h.kek.clone()).unwrap();
        assert_eq!(
            h.text(&format!(
                "SELECT value FROM {meta} WHERE key = 'schema_version'"
            )),
            latest
        );
        let p = v.authenticate(&key).unwrap();
        assert_eq!(
            (p.accessor.as_str(), p.tenant.as_deref()),
            ("meeting-center", None)
        );
        assert!(v.read(&p, &id, &read("service.meetings")).is_ok());
        let old = v.authenticate(old_admin).unwrap();
        assert_eq!(
            (old.accessor.as_str(), old.tenant.as_deref()),
            ("customer-admin", None)
        );
        assert!(matches!(
            v.read(&old, &id, &report(&["contact.email"])),
            Err(Error::SubjectNotFound)
        ));
        assert_eq!(last_about(&v, &id).2, "tenant_required");
        let new = principal(&v, "customer-admin", "acme");
        assert_eq!(
            v.read(&new, &id, &report(&["contact.email"]))
                .unwrap()
                .effect,
            "permit"
        );
        drop(v);
        // The migration applied again over its own column (a version count rolled back).
        h.exec(&format!(
            "UPDATE {meta} SET value = '{before}' WHERE key = 'schema_version'"
        ));
    }
}

/// C044: a category the policy marks `transport = "tls"` (here chat history, in a copy of
/// the WebEx policy) is refused on a plain channel from another host on every path — record
/// append, records read, read — before anything is sealed or decrypted, and each refusal
/// ledgered as `tls_required`; over TLS, from loopback and in-process it is kept and answered.
pub fn tls_only_categories_cross_only_secure_channels(mut h: Harness) {
    use custos_vault::{Actor, Channel};
    h.close();
    let text = custos_policy::BUILTIN_WEBEX_2010.replace(
        "id = \"chat.history\"\nname = \"Chat history\"\n",
        "id = \"chat.history\"\nname = \"Chat history\"\ntransport = \"tls\"\n",
    );
    assert_ne!(text, custos_policy::BUILTIN_WEBEX_2010);
    let policy = Arc::new(custos_policy::Policy::from_str("tls.toml", &text).unwrap());
    let v = Vault::open(h.store().unwrap(), policy, h.kek.clone()).unwrap();
    let user = CollectionInput {
        service: "connect".into(),
        role: "user".into(),
        purposes: vec!["service.connect".into()],
        notice: v.policy().version().to_string(),
        data: BTreeMap::from([("contact.email".into(), "cy@example.com".into())]),
        ..CollectionInput::default()
    };
    let plain = Actor::from("connect").over(Channel::Plain);
    // No TLS-only category in the collection: plain HTTP is fine.
    let id = v.collect(plain, &user).unwrap();
    let purposes = vec!["service.connect".to_string()];
    let msg = r#"{"body":"hi","participants":"ann","sent_at":"t"}"#;

    // Appending chat messages over plain HTTP from another host: refused and ledgered.
    let err = v
        .append_record(plain, &id, "chat_messages", &purposes, msg)
        .unwrap_err();
    assert_eq!(err.code(), "tls_required");
    assert!(err.to_string().contains("`chat.history`"), "{err}");
    let e = last_entry(&v);
    assert_eq!(
        (
            e.draft.action.as_str(),
            e.draft.effect.as_str(),
            e.draft.reasons.as_str()
        ),
        ("append_record", "refused", "tls_required")
    );
    let page = RecordsPage::default();
    let none = v
        .read_records("connect", &id, "chat_messages", "service.connect", &page)
        .unwrap();
    assert!(none.records.is_empty(), "nothing was appended");

    // Over TLS, and from the server's own host, it is appended.
    for channel in [Channel::Tls, Channel::Loopback, Channel::Local] {
        v.append_record(
            Actor::from("connect").over(channel),
            &id,
            "chat_messages",
            &purposes,
            msg,
        )
        .unwrap();
    }
    // Reading them out over plain HTTP to another host: refused, ledgered, undecrypted.
    let err = v
        .read_records(plain, &id, "chat_messages", "service.connect", &page)
        .unwrap_err();
    assert_eq!(err.code(), "tls_required");
    let e = last_entry(&v);
    assert_eq!(
        (
            e.draft.action.as_str(),
            e.draft.effect.as_str(),
            e.draft.reasons.as_str()
        ),
        ("read_records", "deny", "tls_required")
    );
    let tls = Actor::from("connect").over(Channel::Tls);
    let ok = v
        .read_records(tls, &id, "chat_messages", "service.connect", &page)
        .unwrap();
    assert_eq!(ok.records.len(), 3);
    // A collection without a TLS-only category reads as before over plain HTTP.
    let other = v
        .read_records(plain, &id, "contacts", "service.connect", &page)
        .unwrap();
    assert_eq!(other.effect, "deny", "no contacts were appended: {other:?}");
}
