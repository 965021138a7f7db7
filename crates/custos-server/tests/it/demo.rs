//! `custos serve --demo`: the synthetic world loads, and its keys and people work.

use std::sync::Arc;

use custos_policy::Policy;
use custos_vault::{MasterKey, ReadInput, RecordsPage, SqliteStore, Vault};

#[test]
fn the_demo_world_loads_with_a_key_per_accessor() {
    let dir = std::env::temp_dir().join(format!("custos_server_demo_{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let vault = Vault::open(
        Arc::new(SqliteStore::open(&dir).unwrap()),
        Arc::new(Policy::builtin().unwrap()),
        MasterKey::generate().unwrap(),
    )
    .unwrap();
    let world = custos_server::demo::load(&vault).unwrap();
    let accessors: Vec<&str> = world.keys.iter().map(|(a, _)| a.as_str()).collect();
    assert_eq!(accessors, custos_server::demo::ACCESSORS);
    for (accessor, key) in &world.keys {
        let principal = vault.authenticate(key).unwrap();
        assert_eq!(&principal.accessor, accessor);
        // Only the accessor acting for a business customer is bound, to the demo tenant.
        let tenant = (accessor == "customer-admin").then_some(custos_server::demo::TENANT);
        assert_eq!(principal.tenant.as_deref(), tenant, "{accessor}");
    }
    let who = |w: &str| {
        world
            .subjects
            .iter()
            .find(|(name, _)| name == w)
            .map(|(_, id)| id.clone())
            .unwrap()
    };
    let host = vault
        .read(
            "meeting-center",
            &who("meeting host"),
            &ReadInput {
                purpose: "service.meetings".into(),
                ..ReadInput::default()
            },
        )
        .unwrap();
    assert_eq!(host.data["contact.name"], "Hana Host");
    // The customer-admin key reaches the demo tenant's people: the policy answers (they were
    // not collected for usage reports, so it withholds), where a key of no tenant or of
    // another tenant finds no one.
    let reports = ReadInput {
        purpose: "reports.customer_usage".into(),
        categories: Some(vec!["contact.email".into()]),
        ..ReadInput::default()
    };
    let admin = world
        .keys
        .iter()
        .find(|(a, _)| a == "customer-admin")
        .map(|(_, k)| vault.authenticate(k).unwrap())
        .unwrap();
    let d = vault
        .decide(&admin, &who("first meeting attendee"), &reports)
        .unwrap();
    assert_eq!(d.withheld["contact.email"], "not_collected_for_purpose");
    for other in [
        custos_vault::Actor::from("customer-admin"),
        custos_vault::Actor::of_tenant("customer-admin", "globex"),
    ] {
        assert!(matches!(
            vault.decide(other, &who("first meeting attendee"), &reports),
            Err(custos_vault::Error::SubjectNotFound)
        ));
    }
    let connect = who("connect user");
    for collection in ["chat_messages", "contacts"] {
        let r = vault
            .read_records(
                "connect",
                &connect,
                collection,
                "service.connect",
                &RecordsPage::default(),
            )
            .unwrap();
        assert_eq!(r.effect, "permit");
        assert!(!r.records.is_empty(), "{collection}");
    }
    assert_eq!(world.subjects.len(), 6);
    // The website subscriber is the audience of a service announcement (`--demo`'s mailing).
    let sent = vault
        .send_mailing(
            "marketing",
            &custos_vault::MailingInput {
                purpose: "marketing.announcements".into(),
                subject: "What is new".into(),
                text: "Hello.".into(),
                html: None,
            },
            "http://127.0.0.1:8080",
        )
        .unwrap();
    assert_eq!(sent.recipients, 1, "{sent:?}");
    assert_eq!(vault.claim_mail(10).unwrap()[0].mail.to, "wes@example.org");
    // A second start on the same data keeps the world and makes new keys.
    let again = custos_server::demo::load(&vault).unwrap();
    assert_eq!(again.subjects, world.subjects);
    assert_ne!(again.keys, world.keys);
    drop(vault);
    let _ = std::fs::remove_dir_all(&dir);
}
