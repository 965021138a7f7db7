//! A small synthetic WebEx world for `custos serve --demo`: a customer tenant with a meeting
//! host and two attendees (through Meeting Center), a Connect user with chat history and
//! contacts, a Mail user; and an API key for each demo accessor (the `customer-admin` key
//! acts for the demo tenant, `acme-corp`; the `analytics` key reads the cookie, beacon, GPC
//! and telemetry aggregates); and a website registrant who gets the
//! `marketing.announcements` mailings. Every person is invented.

use std::collections::BTreeMap;

use custos_vault::{CollectionInput, SubjectId, Vault};

/// The accessors the demo makes keys for.
pub const ACCESSORS: &[&str] = &[
    "meeting-center",
    "connect",
    "mail",
    "marketing",
    "support",
    "customer-admin",
    "authorities",
    "admin",
    "website",
    "analytics",
];

/// The tenant the demo people belong to.
pub const TENANT: &str = "acme-corp";

/// What the demo made.
#[derive(Debug, Default)]
pub struct World {
    /// `(accessor, api key)`.
    pub keys: Vec<(String, String)>,
    /// `(who, subject id)`.
    pub subjects: Vec<(String, SubjectId)>,
}

fn person(
    service: &str,
    role: &str,
    purposes: &[&str],
    notice: &str,
    data: &[(&str, &str)],
) -> CollectionInput {
    CollectionInput {
        service: service.into(),
        role: role.into(),
        purposes: purposes.iter().map(|p| (*p).to_string()).collect(),
        notice: notice.into(),
        age: Some(30),
        tenant: Some(TENANT.into()),
        data: data
            .iter()
            .map(|(k, v)| ((*k).to_string(), (*v).to_string()))
            .collect::<BTreeMap<_, _>>(),
    }
}

/// The demo people: who, and the email they are found by.
const PEOPLE: &[(&str, &str)] = &[
    ("meeting host", "hana.host@acme.example"),
    ("first meeting attendee", "ari@partner.example"),
    ("second meeting attendee", "bea@partner.example"),
    ("connect user", "cy@acme.example"),
    ("mail user", "mo@acme.example"),
];

/// Loads the world into the vault, once (a vault that has it keeps it), and makes a fresh
/// key per demo accessor (a key is shown only when it is made).
pub fn load(vault: &Vault) -> custos_vault::Result<World> {
    let mut existing = Vec::new();
    for (who, email) in PEOPLE {
        if let Some(id) = vault.find_by_identifier("contact.email", email)? {
            existing.push(((*who).to_string(), id));
        }
    }
    let mut w = if existing.len() == PEOPLE.len() {
        World {
            keys: Vec::new(),
            subjects: existing,
        }
    } else {
        populate(vault)?
    };
    // A newsletter reader of the website, who registered for service announcements (a
    // mailing's audience: `POST /v1/mailings`); added to a demo world made before them.
    let reader = match vault.find_by_identifier("contact.email", SUBSCRIBER.1)? {
        Some(id) => id,
        None => subscribe(vault)?,
    };
    w.subjects.push((SUBSCRIBER.0.to_string(), reader));
    for a in ACCESSORS {
        if vault.policy().accessor_id(a).is_ok() {
            // An accessor acting for a business customer (`customer-admin`) gets a key of
            // the demo tenant: to it, only the demo people exist.
            let tenant = vault.tenant_bound(a).then_some(TENANT);
            w.keys
                .push(((*a).to_string(), vault.create_key_for(a, tenant)?));
        }
    }
    Ok(w)
}

/// The demo's website registrant: who, and their email.
const SUBSCRIBER: (&str, &str) = ("website subscriber", "wes@example.org");

fn subscribe(vault: &Vault) -> custos_vault::Result<SubjectId> {
    let mut input = person(
        "website",
        "account-holder",
        &["account", "marketing.announcements"],
        vault.policy().version(),
        &[
            ("contact.name", "Wes Website"),
            ("contact.email", SUBSCRIBER.1),
        ],
    );
    // A person of no business customer.
    input.tenant = None;
    vault.collect("website", &input)
}

fn populate(vault: &Vault) -> custos_vault::Result<World> {
    let notice = vault.policy().version().to_string();
    let n = notice.as_str();
    let mut w = World::default();
    let meetings = ["service.meetings", "collaboration", "support"];

    let host = vault.collect(
        "meeting-center",
        &person(
            "meeting-center",
            "host",
            &["account", "service.meetings", "collaboration", "support"],
            n,
            &[
                ("contact.name", "Hana Host"),
                ("contact.email", "hana.host@acme.example"),
                ("network.ip_address", "192.0.2.10"),
            ],
        ),
    )?;
    w.subjects.push(("meeting host".into(), host.clone()));
    for (label, name, email, ip) in [
        (
            "first meeting attendee",
            "Ari Attendee",
            "ari@partner.example",
            "198.51.100.7",
        ),
        (
            "second meeting attendee",
            "Bea Attendee",
            "bea@partner.example",
            "198.51.100.8",
        ),
    ] {
        let id = vault.collect(
            "meeting-center",
            &person(
                "meeting-center",
                "attendee",
                &meetings,
                n,
                &[
                    ("contact.name", name),
                    ("contact.email", email),
                    ("network.ip_address", ip),
                ],
            ),
        )?;
        vault.append_record(
            "meeting-center",
            &id,
            "meeting_attendance",
            &["service.meetings".to_string()],
            r#"{"meeting":"weekly sync","joined":"2010-05-03T16:00Z","left":"2010-05-03T16:45Z"}"#,
        )?;
        // The log shows this label: a role, never the person's name.
        w.subjects.push((label.to_string(), id));
    }
    vault.append_record(
        "meeting-center",
        &host,
        "meeting_attendance",
        &["service.meetings".to_string()],
        r#"{"meeting":"weekly sync","role":"host","joined":"2010-05-03T15:58Z"}"#,
    )?;

    let connect = vault.collect(
        "connect",
        &person(
            "connect",
            "user",
            &["service.connect", "collaboration", "connect.presence"],
            n,
            &[
                ("contact.name", "Cy Connect"),
                ("contact.email", "cy@acme.example"),
                ("network.ip_address", "192.0.2.20"),
                ("presence.status", "available"),
            ],
        ),
    )?;
    let svc = ["service.connect".to_string()];
    vault.append_records(
        "connect",
        &connect,
        "chat_messages",
        &svc,
        &[
            r#"{"to":"hana.host@acme.example","body":"agenda for the sync?"}"#,
            r#"{"from":"hana.host@acme.example","body":"sent it by mail"}"#,
        ],
    )?;
    vault.append_record(
        "connect",
        &connect,
        "contacts",
        &svc,
        r#"{"name":"Hana Host","email":"hana.host@acme.example"}"#,
    )?;
    w.subjects.push(("connect user".into(), connect));

    let mail = vault.collect(
        "mail",
        &person(
            "mail",
            "mailbox-owner",
            &["service.mail", "mail.filtering"],
            n,
            &[
                ("contact.name", "Mo Mailer"),
                ("contact.email", "mo@acme.example"),
                ("network.ip_address", "192.0.2.30"),
            ],
        ),
    )?;
    w.subjects.push(("mail user".into(), mail));
    Ok(w)
}
