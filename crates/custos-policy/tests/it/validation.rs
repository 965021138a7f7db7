//! Validation: every problem reported, each with `path:line:column` and a way to fix it.

use custos_policy::Policy;

use crate::MINI;

fn errors(text: &str) -> Vec<String> {
    match Policy::from_str("p.toml", text) {
        Ok(_) => panic!("policy unexpectedly valid"),
        Err(d) => d.lines(),
    }
}

fn line_of(text: &str, needle: &str) -> usize {
    text.lines()
        .position(|l| l.contains(needle))
        .expect("needle present")
        + 1
}

#[test]
fn mini_policy_is_valid() {
    let p = crate::mini();
    assert_eq!(p.id(), "mini");
    assert_eq!(p.categories().len(), 3);
}

#[test]
fn misspelt_category_names_line_column_and_nearest_id() {
    let text = MINI.replace(
        r#"collects = ["contact.email", "contact.name"]"#,
        r#"collects = ["contact.emial", "contact.name"]"#,
    );
    let errs = errors(&text);
    let line = line_of(&text, "contact.emial");
    assert_eq!(errs.len(), 1, "{errs:?}");
    assert_eq!(
        errs[0],
        format!(
            "p.toml:{line}:13: unknown category `contact.emial`; did you mean `contact.email`?"
        )
    );
}

#[test]
fn several_errors_in_one_run() {
    let text = MINI
        .replace(r#"purposes = ["account"]"#, r#"purposes = ["acount"]"#)
        .replace(
            r#"categories = ["contact.email"]"#,
            r#"categories = ["contact.mail"]"#,
        )
        .replace(r#"clauses = ["C003"]"#, r#"clauses = ["C099"]"#);
    let errs = errors(&text);
    assert_eq!(errs.len(), 3, "{errs:?}");
    assert!(
        errs.iter()
            .any(|e| e.contains("unknown purpose `acount`; did you mean `account`?"))
    );
    assert!(
        errs.iter()
            .any(|e| e.contains("unknown category `contact.mail`; did you mean `contact.email`?"))
    );
    assert!(
        errs.iter()
            .any(|e| e.contains("unknown clause `C099`; clause ids run from `C001` to `C010`"))
    );
}

#[test]
fn toml_syntax_error_has_a_location() {
    let text = MINI.replace(r#"name = "Log in""#, r#"name = "Log in"#);
    let errs = errors(&text);
    let line = line_of(&text, r#"name = "Log in"#);
    assert_eq!(errs.len(), 1);
    assert!(errs[0].starts_with(&format!("p.toml:{line}:")), "{errs:?}");
}

#[test]
fn unknown_key_is_an_error() {
    let text = MINI.replace(r#"kind = "financial""#, r#"knid = "financial""#);
    let errs = errors(&text);
    assert!(errs[0].contains("unknown field `knid`"), "{errs:?}");
}

#[test]
fn duplicate_ids_are_refused() {
    let text = MINI.replace(r#"id = "contact.name""#, r#"id = "contact.email""#);
    let errs = errors(&text);
    assert!(
        errs.iter()
            .any(|e| e.contains("duplicate category id `contact.email`")),
        "{errs:?}"
    );
}

#[test]
fn a_duplicate_purpose_causes_no_false_follow_on_errors() {
    // In the WebEx policy, declare `order` a second time where `collaboration` was: the ids
    // after it must not shift (they once did, and `billing`'s limit for `order.payment` was
    // reported as a purpose it may not pursue).
    let text = custos_policy::BUILTIN_WEBEX_2010.replacen(
        "\nid = \"collaboration\"\n",
        "\nid = \"order\"\n",
        1,
    );
    let errs = errors(&text);
    assert!(errs[0].contains("duplicate purpose id `order`"), "{errs:?}");
    assert!(errs.len() > 1, "{errs:?}");
    assert!(
        errs[1..]
            .iter()
            .all(|e| e.contains("unknown purpose `collaboration`")),
        "{errs:?}"
    );
}

#[test]
fn a_duplicate_table_names_the_key() {
    let text = format!("{MINI}\n[contacts]\nprivacy_email = \"a@example.com\"\n\n[contacts]\n");
    let errs = errors(&text);
    let line = text.lines().count();
    assert_eq!(
        errs,
        [format!(
            "p.toml:{line}:2: duplicate key `contacts`; a key or table appears once in a file"
        )]
    );
}

#[test]
fn a_second_contacts_table_in_another_file_names_that_file_and_line() {
    let dir = std::env::temp_dir().join(format!("custos-policy-contacts-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(
        dir.join("a.toml"),
        format!("{MINI}\n[contacts]\nprivacy_email = \"a@example.com\"\n"),
    )
    .unwrap();
    std::fs::write(
        dir.join("b.toml"),
        "# more contacts\n[contacts]\nprivacy_email = \"b@example.com\"\n",
    )
    .unwrap();
    let errs = Policy::from_path(&dir).unwrap_err().lines();
    assert_eq!(
        errs,
        [format!(
            "{}:2:1: a second `[contacts]` table; a policy has one",
            dir.join("b.toml").display()
        )]
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn a_child_purpose_protecting_less_than_its_parent_is_refused() {
    // `marketing` is opt-out; a service-basis child would outlive an objection to it.
    let text = MINI.replace(
        "parent = \"marketing\"\nname = \"Share with partners\"\nbasis = \"consent\"",
        "parent = \"marketing\"\nname = \"Share with partners\"\nbasis = \"service\"",
    );
    let errs = errors(&text);
    assert_eq!(errs.len(), 1, "{errs:?}");
    assert!(errs[0].contains("purpose `marketing.partners` (basis service) refines `marketing` (basis opt_out) but protects less"), "{errs:?}");
}

#[test]
fn a_consent_purpose_without_a_limit_is_refused() {
    // Consent opens every held category; minimum necessary must come from a limit.
    let text = MINI.replace(
        "purposes = [\"account\"]",
        "purposes = [\"account\", \"marketing.partners\"]",
    );
    let errs = errors(&text);
    assert_eq!(errs.len(), 1, "{errs:?}");
    assert!(
        errs[0].contains(
            "accessor `app` may pursue consent purpose `marketing.partners` with no limit"
        ),
        "{errs:?}"
    );
}

#[test]
fn a_non_ascii_retention_period_is_an_error_not_a_panic() {
    let text = format!("{MINI}\n[[retention]]\nid = \"logs\"\nname = \"Logs\"\nperiod = \"P6é\"\n");
    let errs = errors(&text);
    assert!(
        errs[0].contains("invalid retention period `P6é`"),
        "{errs:?}"
    );
}

#[test]
fn a_huge_clause_range_is_refused() {
    let text = MINI.replace(
        "clause_range = [\"C001\", \"C010\"]",
        "clause_range = [\"C0000000001\", \"C4000000000\"]",
    );
    let errs = errors(&text);
    assert!(
        errs.iter()
            .any(|e| e
                .contains("`clause_range` spans 4000000000 clauses; a policy has at most 10000")),
        "{errs:?}"
    );
}

#[test]
fn purpose_cycles_are_refused() {
    let text = MINI.replace(
        "id = \"account\"\nname = \"Run the account\"",
        "id = \"account\"\nparent = \"account.login\"\nname = \"Run the account\"",
    );
    let errs = errors(&text);
    assert!(
        errs.iter().any(|e| e.contains("is its own ancestor")),
        "{errs:?}"
    );
}

#[test]
fn purpose_without_basis_is_refused() {
    let text = MINI.replace(
        "name = \"Log in\"\nbasis = \"service\"",
        "name = \"Log in\"",
    );
    let errs = errors(&text);
    assert_eq!(errs.len(), 1, "{errs:?}");
    assert!(
        errs[0].contains("purpose `account.login` has no `basis`"),
        "{errs:?}"
    );
}

#[test]
fn misspelt_basis_suggests_the_keyword() {
    let text = MINI.replace(r#"basis = "opt_out""#, r#"basis = "optout""#);
    let errs = errors(&text);
    assert!(
        errs[0].contains("unknown basis `optout`; did you mean `opt_out`?"),
        "{errs:?}"
    );
}

#[test]
fn recipient_without_minimum_categories_is_refused() {
    let text = MINI.replace(
        "[[recipient.allow]]\npurpose = \"marketing.partners\"\ncategories = [\"contact.email\"]\n",
        "",
    );
    let errs = errors(&text);
    assert!(
        errs.iter()
            .any(|e| e.contains("recipient `partner` has no `[[recipient.allow]]`")),
        "{errs:?}"
    );
}

#[test]
fn role_without_purposes_is_refused() {
    let text = MINI.replace(r#"purposes = ["account", "marketing"]"#, "");
    let errs = errors(&text);
    assert!(
        errs.iter().any(|e| e.contains("states no `purposes`")),
        "{errs:?}"
    );
}

#[test]
fn missing_header_is_refused() {
    let errs = errors("[[category]]\nid = \"a\"\nname = \"A\"\n");
    assert!(errs[0].contains("no `[policy]` table"), "{errs:?}");
}

#[test]
fn bad_retention_period_is_refused() {
    let text =
        format!("{MINI}\n[[retention]]\nid = \"logs\"\nname = \"Logs\"\nperiod = \"30 days\"\n");
    let errs = errors(&text);
    assert!(
        errs[0].contains("invalid retention period `30 days`"),
        "{errs:?}"
    );
}

#[test]
fn a_folder_of_files_is_one_policy() {
    let dir = std::env::temp_dir().join(format!("custos-policy-folder-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let split = MINI.find("[[service]]").unwrap();
    std::fs::write(dir.join("a.toml"), &MINI[..split]).unwrap();
    std::fs::write(
        dir.join("b.toml"),
        MINI[split..].replace("contact.name", "contact.nmae"),
    )
    .unwrap();
    let err = Policy::from_path(&dir).unwrap_err().lines();
    assert_eq!(err.len(), 1, "{err:?}");
    assert!(
        err[0].starts_with(&format!("{}:", dir.join("b.toml").display())),
        "{err:?}"
    );
    std::fs::write(dir.join("b.toml"), &MINI[split..]).unwrap();
    let p = Policy::from_path(&dir).unwrap();
    assert_eq!(p.services().len(), 1);
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn unknown_ids_at_run_time_are_errors_with_suggestions() {
    let p = crate::mini();
    let e = p.category_id("contact.emial").unwrap_err();
    assert_eq!(
        e.message,
        "unknown category `contact.emial`; did you mean `contact.email`?"
    );
    assert!(p.purpose_id("nonsense-purpose-id").is_err());
    assert!(p.accessor_id("").is_err());
}

mod robustness {
    use custos_policy::Policy;
    use proptest::prelude::*;

    use crate::MINI;

    proptest! {
        #![proptest_config(ProptestConfig { cases: 300, ..ProptestConfig::default() })]

        /// Any edit of a valid policy is either valid or reported with locations inside the
        /// file; the parser never panics.
        #[test]
        fn mutated_policies_never_panic_and_point_inside_the_file(at in 0usize..MINI.len(), cut in 0usize..40, insert in "[a-zé€\"=\\[\\]. \n]{0,12}") {
            let start = MINI.char_indices().map(|(i, _)| i).find(|&i| i >= at).unwrap_or(MINI.len());
            let end = MINI.char_indices().map(|(i, _)| i).find(|&i| i >= start + cut).unwrap_or(MINI.len());
            let text = format!("{}{}{}", &MINI[..start], insert, &MINI[end..]);
            if let Err(d) = Policy::from_str("m.toml", &text) {
                prop_assert!(!d.items.is_empty());
                let lines = text.lines().count().max(1);
                for line in d.lines() {
                    let rest = line.strip_prefix("m.toml:").unwrap();
                    let n: usize = rest.split(':').next().unwrap().trim().parse().unwrap_or(1);
                    prop_assert!(n >= 1 && n <= lines + 1, "{line}");
                }
            }
        }
    }
}

/// MINI with a `[rights]` table (and, for the agreement check, a `[[right]]`).
fn with_rights(rights: &str) -> String {
    format!("{MINI}\n[rights]\n{rights}\n")
}

#[test]
fn rights_table_compiles_to_staff_and_deadlines() {
    use custos_policy::RequestKind;
    let text = with_rights(
        "staff = [\"lawyer\"]\nrespond_days = { erase = 30, object = 10, california-disclosures = 30 }",
    );
    let p = Policy::from_str("p.toml", &text).expect("valid");
    assert!(p.is_staff(p.accessor_id("lawyer").unwrap()));
    assert!(!p.is_staff(p.accessor_id("app").unwrap()));
    assert_eq!(p.staff().collect::<Vec<_>>(), ["lawyer"]);
    assert_eq!(p.respond_days(RequestKind::Erase), Some(30));
    assert_eq!(p.respond_days(RequestKind::Object), Some(10));
    assert_eq!(p.respond_days(RequestKind::Access), None);
    let none = crate::mini();
    assert_eq!(none.staff().count(), 0);
    assert_eq!(none.respond_days(RequestKind::Erase), None);
}

#[test]
fn rights_table_refuses_unknown_kind_unknown_staff_and_absurd_days() {
    let text = with_rights(
        "staff = [\"lawyr\", \"partner\"]\nrespond_days = { erasure = 30, object = 0, access = 400 }",
    );
    let errs = errors(&text);
    let line = line_of(&text, "staff = ");
    let days = line_of(&text, "respond_days");
    let col = |at: usize, needle: &str| text.lines().nth(at - 1).unwrap().find(needle).unwrap() + 1;
    let expected = [
        format!(
            "p.toml:{line}:{}: unknown accessor `lawyr`; did you mean `lawyer`?",
            col(line, "\"lawyr\"")
        ),
        format!(
            "p.toml:{line}:{}: staff `partner` acts for a recipient outside the controller; staff are the controller's own accessors",
            col(line, "\"partner\"")
        ),
        format!(
            "p.toml:{days}:{}: `access` requests are answered within 400 days; give 1 to 365 days",
            col(days, "400")
        ),
        format!(
            "p.toml:{days}:{}: unknown request kind `erasure`; did you mean `erase`? expected one of access, export, rectify, deactivate, erase, object, california-disclosures",
            col(days, "erasure")
        ),
        format!(
            "p.toml:{days}:{}: `object` requests are answered within 0 days; give 1 to 365 days",
            col(days, "= 0,") + 2
        ),
    ];
    for e in &expected {
        assert!(errs.contains(e), "missing {e:?} in {errs:#?}");
    }
    assert_eq!(errs.len(), expected.len(), "{errs:#?}");
}

#[test]
fn a_rights_due_days_must_agree_with_the_request_deadline() {
    let right =
        "[[right]]\nid = \"erasure\"\nname = \"Erase\"\nchannels = [\"email\"]\ndue_days = 45\n";
    let text = format!("{MINI}\n{right}\n[rights]\nrespond_days = {{ erase = 30 }}\n");
    let errs = errors(&text);
    let line = line_of(&text, "id = \"erasure\"");
    assert_eq!(
        errs,
        [format!(
            "p.toml:{line}:6: right `erasure` is answered within 45 days but `[rights] respond_days` gives `erase` requests 30; make them agree, or drop `due_days` (it follows `respond_days`)"
        )]
    );
    // Agreeing, or left to follow the request deadline, is valid; the notice says 30 either way.
    for r in [
        right.replace("45", "30"),
        right.replace("due_days = 45\n", ""),
    ] {
        let text = format!("{MINI}\n{r}\n[rights]\nrespond_days = {{ erase = 30 }}\n");
        let p = Policy::from_str("p.toml", &text).expect("valid");
        let right = p.file().right.first().unwrap();
        assert_eq!(p.right_due_days(right), Some(30));
        let md = custos_policy::render::markdown(&p);
        assert!(md.contains("We answer within 30 days."), "{md}");
        assert!(
            md.contains("We answer a request for erasure of your information within 30 days"),
            "{md}"
        );
    }
}

#[test]
fn a_second_rights_table_in_another_file_is_refused() {
    let dir = std::env::temp_dir().join(format!("custos-rights-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("a.toml"), with_rights("staff = [\"lawyer\"]")).unwrap();
    std::fs::write(dir.join("b.toml"), "[rights]\nstaff = [\"app\"]\n").unwrap();
    let errs = match Policy::from_path(&dir) {
        Ok(_) => panic!("two [rights] tables accepted"),
        Err(d) => d.lines(),
    };
    std::fs::remove_dir_all(&dir).unwrap();
    assert_eq!(errs.len(), 1, "{errs:?}");
    assert!(
        errs[0].ends_with("b.toml:1:1: a second `[rights]` table; a policy has one"),
        "{errs:?}"
    );
}
