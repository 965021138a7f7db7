//! Cookies, beacons, GPC and telemetry in the vault (`vault/cookies.rs`), on both backends.

use std::collections::BTreeMap;

use custos_vault::{Actor, Aggregate, CookieChoice};

use crate::support::Harness;

fn choice(pairs: &[(&str, bool)], gpc: bool) -> CookieChoice {
    CookieChoice {
        choices: pairs
            .iter()
            .map(|(k, v)| ((*k).to_string(), *v))
            .collect::<BTreeMap<_, _>>(),
        notice: "2010-04-24".into(),
        gpc,
    }
}

/// C047, C048: a cookie choice is an anonymous record with the notice's hash, ledgered
/// before it is stored; optional cookies left out are off, required ones on; GPC turns off
/// the cookies of a sale or sharing purpose's tree.
pub fn cookie_consent_is_an_anonymous_record(h: Harness) {
    let v = h.vault();
    let before = h.store().unwrap().ledger_last_seq().unwrap();
    let r = v
        .record_cookie_consent(&choice(&[("preferences", true)], false))
        .unwrap();
    assert!(r.choices["session"]);
    assert!(r.choices["preferences"]);
    assert!(!r.choices["analytics"]);
    assert!(!r.choices["web-beacon"]);
    assert_eq!(r.notice_sha256, v.notice_sha256());
    assert!(!r.gpc);
    let stored = h.store().unwrap().cookie_consent(&r.id).unwrap().unwrap();
    assert_eq!(stored.notice_sha256, v.notice_sha256());
    assert_eq!(
        stored.choices,
        "session=1&preferences=1&analytics=0&web-beacon=0&email-beacon=0"
    );
    let entries = h.store().unwrap().ledger_page(before + 1, 10).unwrap();
    let e = entries
        .iter()
        .find(|e| e.draft.action == "cookie_consent")
        .expect("a cookie_consent entry");
    assert_eq!(e.draft.subject, "");
    assert_eq!(e.draft.actor, "visitor");
    assert!(e.draft.reasons.contains(&r.id));
    // GPC: the email beacon (marketing, the tree of partner marketing) is off whatever was
    // sent; analytics is not a sale and stays as chosen.
    let g = v
        .record_cookie_consent(&choice(
            &[("email-beacon", true), ("analytics", true)],
            true,
        ))
        .unwrap();
    assert!(g.gpc);
    assert!(!g.choices["email-beacon"]);
    assert!(g.choices["analytics"]);
    // Refusals name the field; nothing is stored for them.
    let e = v
        .record_cookie_consent(&choice(&[("session", false)], false))
        .unwrap_err();
    assert_eq!(e.code(), "cookie_required");
    assert!(e.to_string().starts_with("choices.session:"), "{e}");
    let e = v
        .record_cookie_consent(&choice(&[("tracker", true)], false))
        .unwrap_err();
    assert_eq!(e.code(), "unknown_cookie");
    assert!(e.to_string().starts_with("choices.tracker:"), "{e}");
    let mut old = choice(&[], false);
    old.notice = "2009-01-01".into();
    assert_eq!(
        v.record_cookie_consent(&old).unwrap_err().code(),
        "unknown_notice_version"
    );
}

/// C034, C049: counts are aggregates by day, added to the store by the counter, and what is
/// held in memory is flushed when the vault closes.
pub fn counts_are_flushed_and_bounded(mut h: Harness) {
    {
        let v = h.vault();
        v.count_page("/pricing");
        v.count_page("/pricing");
        v.count_gpc_visit();
    }
    // Closing flushes what the counter held.
    h.close();
    let store = h.store().unwrap();
    let pages = store
        .counts("page", "0000-01-01", "9999-12-31", 100)
        .unwrap();
    assert_eq!(pages.len(), 1);
    assert_eq!(pages[0].name, "/pricing");
    assert_eq!(pages[0].count, 2);
    let gpc = store
        .counts("gpc", "0000-01-01", "9999-12-31", 100)
        .unwrap();
    assert_eq!(gpc[0].count, 1);
    // The table is bounded per day: past the bound, new names count under `(other)`.
    let rows: Vec<custos_vault::store::CountRow> = (0..5)
        .map(|i| custos_vault::store::CountRow {
            kind: "page".into(),
            name: format!("/p{i}"),
            day: "2026-01-01".into(),
            count: 1,
            total: 0,
        })
        .collect();
    store.add_counts(&rows, 3, "(other)").unwrap();
    let day = store
        .counts("page", "2026-01-01", "2026-01-01", 100)
        .unwrap();
    let names: Vec<&str> = day.iter().map(|r| r.name.as_str()).collect();
    assert_eq!(names, ["(other)", "/p0", "/p1", "/p2"]);
    assert_eq!(day[0].count, 2);
}

/// C035: telemetry only from an internal service allowed service health, of a declared
/// metric; aggregates read by the analytics accessor only.
pub fn telemetry_and_aggregates_are_for_their_accessors(h: Harness) {
    let v = h.vault();
    v.record_telemetry(Actor::from("meeting-center"), "crash", 1, 0)
        .unwrap();
    v.record_telemetry(Actor::from("meeting-center"), "join_latency_ms", 2, 300)
        .unwrap();
    assert_eq!(
        v.record_telemetry(Actor::from("meeting-center"), "user_email", 1, 0)
            .unwrap_err()
            .code(),
        "unknown_metric"
    );
    assert_eq!(
        v.record_telemetry(Actor::from("marketing"), "crash", 1, 0)
            .unwrap_err()
            .code(),
        "purpose_not_allowed_for_accessor"
    );
    for other in ["meeting-center", "marketing", "website", "nobody"] {
        assert_eq!(
            v.aggregates(
                Actor::from(other),
                Aggregate::Telemetry,
                "0000-01-01",
                "9999-12-31",
                10
            )
            .unwrap_err()
            .code(),
            "purpose_not_allowed_for_accessor",
            "{other}"
        );
    }
    let rows = v
        .aggregates(
            Actor::from("analytics"),
            Aggregate::Telemetry,
            "0000-01-01",
            "9999-12-31",
            10,
        )
        .unwrap();
    let got: Vec<(&str, i64, i64)> = rows
        .iter()
        .map(|r| (r.name.as_str(), r.count, r.total))
        .collect();
    assert_eq!(
        got,
        [
            ("meeting-center/crash", 1, 0),
            ("meeting-center/join_latency_ms", 2, 300)
        ]
    );
}
