//! `custos policy …`.

use crate::{custos, root, stderr, stdout};

fn webex() -> String {
    root()
        .join("policies/webex-2010/policy.toml")
        .display()
        .to_string()
}

#[test]
fn check_accepts_the_webex_policy_file_and_the_builtin() {
    let o = custos(&["policy", "check", &webex()]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stdout(&o).starts_with("ok: policy `webex-2010` version `2010-04-24`"));
    assert!(custos(&["policy", "check"]).status.success());
}

#[test]
fn check_names_line_column_and_nearest_id_of_a_misspelt_category() {
    let text = std::fs::read_to_string(webex()).unwrap();
    let at = text.find("collects = [").unwrap();
    let rel = text[at..].find("\"contact.email\"").unwrap();
    let bad = format!(
        "{}\"contact.emial\"{}",
        &text[..at + rel],
        &text[at + rel + "\"contact.email\"".len()..]
    );
    let line = text[..at + rel].lines().count();
    let dir = std::env::temp_dir().join(format!("custos-cli-check-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("policy.toml");
    std::fs::write(&path, bad).unwrap();
    let o = custos(&["policy", "check", path.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(1));
    let err = stderr(&o);
    let first = err.lines().next().unwrap();
    assert!(
        first.starts_with(&format!("{}:{line}:", path.display())),
        "{err}"
    );
    assert!(
        first.ends_with("unknown category `contact.emial`; did you mean `contact.email`?"),
        "{err}"
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn trace_lists_all_80_clauses_with_counts() {
    let o = custos(&["policy", "trace", &webex()]);
    assert!(o.status.success(), "{}", stderr(&o));
    let out = stdout(&o);
    for i in 1..=80 {
        assert!(out.contains(&format!("C{i:03}  ")), "C{i:03} missing");
    }
    let last = out.lines().last().unwrap();
    assert!(
        last.starts_with("80 clauses: ")
            && last.contains("enforced")
            && last.contains("notice-only"),
        "{last}"
    );
}

/// A copy of the WebEx policy folder with `find` replaced by `replace` in policy.toml.
fn weakened_copy(name: &str, find: &str, replace: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("custos-cli-{name}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let src = root().join("policies/webex-2010");
    let text = std::fs::read_to_string(src.join("policy.toml")).unwrap();
    assert!(text.contains(find));
    std::fs::write(dir.join("policy.toml"), text.replacen(find, replace, 1)).unwrap();
    std::fs::copy(src.join("trace.toml"), dir.join("trace.toml")).unwrap();
    dir
}

#[test]
fn trace_shows_the_kept_part_and_fails_when_a_check_fails() {
    let o = custos(&["policy", "trace"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stdout(&o).contains("      kept: Sharing with marketing partners needs"));
    assert!(stdout(&o).contains("      not kept: "));
    // A twelve-year-old admitted: C053's checks fail, each named with its trace line.
    let dir = weakened_copy("trace-age", "minimum_age = 13", "minimum_age = 12");
    let o = custos(&["policy", "trace", dir.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(1), "{}", stdout(&o));
    let err = stderr(&o);
    assert!(
        err.lines().any(
            |l| l.starts_with(&format!("{}:", dir.join("trace.toml").display()))
                && l.contains(": C053: check failed: minimum_age 13")
        ),
        "{err}"
    );
}

#[test]
fn trace_mutate_kills_every_weakening_of_a_clause_and_reports_a_survivor() {
    let o = custos(&["policy", "trace", "--mutate", "--clause", "C053"]);
    assert!(o.status.success(), "{}{}", stdout(&o), stderr(&o));
    let out = stdout(&o);
    assert!(out.starts_with("clause  checks  mutants  killed"), "{out}");
    let row = out.lines().nth(1).unwrap();
    assert!(row.starts_with("C053"), "{row}");
    assert!(out.contains(" 0 survived"), "{out}");
    // The same clause with its checks removed from the trace: the weakenings survive.
    let dir = weakened_copy("trace-mutate", "minimum_age = 13", "minimum_age = 13");
    let trace = std::fs::read_to_string(dir.join("trace.toml")).unwrap();
    let start = trace.find("id = \"C053\"").unwrap();
    let end = start + trace[start..].find("\n[[clause]]\n").unwrap();
    let block: String = trace[start..end]
        .split("\n[[clause.check]]\n")
        .next()
        .unwrap()
        .to_string();
    let cut = format!("{}{block}{}", &trace[..start], &trace[end..]);
    std::fs::write(dir.join("trace.toml"), cut).unwrap();
    let o = custos(&[
        "policy",
        "trace",
        dir.to_str().unwrap(),
        "--mutate",
        "--clause",
        "C053",
    ]);
    assert_eq!(o.status.code(), Some(1), "{}", stdout(&o));
    assert!(
        stdout(&o).contains("    SURVIVED  policy: minimum_age 13 -> 12"),
        "{}",
        stdout(&o)
    );
    assert!(stderr(&o).contains("the mutation gate failed"));
}

#[test]
fn explain_support_reading_a_registration_email_is_permitted() {
    let o = custos(&[
        "policy",
        "explain",
        &webex(),
        "--accessor",
        "support",
        "--purpose",
        "support",
        "--category",
        "contact.email",
        "--collected-by",
        "website/account-holder",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stdout(&o).starts_with("effect: permit\n"), "{}", stdout(&o));
}

#[test]
fn explain_marketing_partner_without_consent_is_denied_citing_c036_c042() {
    let args = [
        "policy",
        "explain",
        "--accessor",
        "marketing",
        "--purpose",
        "marketing.partners",
        "--category",
        "contact.email",
        "--collected-by",
        "website/account-holder",
        "--recipient",
        "marketing-partner",
        "--json",
    ];
    let o = custos(&args);
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["effect"], "deny");
    assert_eq!(v["withheld"]["contact.email"]["reason"], "consent_missing");
    let clauses: Vec<&str> = v["clauses"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c.as_str().unwrap())
        .collect();
    assert!(
        clauses.contains(&"C036") && clauses.contains(&"C042"),
        "{clauses:?}"
    );
    let mut with_consent = args.to_vec();
    with_consent.extend(["--consent", "marketing.partners"]);
    let v: serde_json::Value = serde_json::from_slice(&custos(&with_consent).stdout).unwrap();
    assert_eq!(v["effect"], "permit");
    assert_eq!(v["disclosure_to"], "marketing-partner");
}

#[test]
fn explain_payment_processor_extra_categories_are_withheld() {
    let o = custos(&[
        "policy",
        "explain",
        "--accessor",
        "payment-processor",
        "--purpose",
        "order.payment",
        "--category",
        "payment.card_number",
        "--category",
        "contact.name",
        "--category",
        "contact.email",
        "--collected-by",
        "website/customer",
        "--json",
    ]);
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["effect"], "partial");
    assert_eq!(
        v["permitted"],
        serde_json::json!(["contact.name", "payment.card_number"])
    );
    assert_eq!(
        v["withheld"]["contact.email"]["reason"],
        "exceeds_minimum_necessary"
    );
}

#[test]
fn explain_unknown_ids_are_errors_with_suggestions() {
    let o = custos(&[
        "policy",
        "explain",
        "--accessor",
        "suport",
        "--purpose",
        "support",
        "--category",
        "contact.email",
    ]);
    assert_eq!(o.status.code(), Some(2));
    assert_eq!(
        stderr(&o).trim(),
        "error: --accessor: unknown accessor `suport`; did you mean `support`?"
    );
}

#[test]
fn render_produces_markdown_and_self_contained_html() {
    let md = custos(&["policy", "render"]);
    assert!(md.status.success());
    assert!(stdout(&md).starts_with("# "));
    let html = custos(&["policy", "render", "--format", "html"]);
    let page = stdout(&html);
    assert!(
        page.starts_with("<!doctype html>") || page.starts_with("<!DOCTYPE html>"),
        "{}",
        &page[..40]
    );
    for external in ["src=", "<link", "@import", "url("] {
        assert!(!page.contains(external), "html notice contains {external}");
    }
}

#[test]
fn diff_flags_a_weakened_basis_as_material() {
    let text = std::fs::read_to_string(webex()).unwrap();
    let at = text.find("id = \"marketing.partners\"").unwrap();
    let basis = at + text[at..].find("basis = \"consent\"").unwrap();
    let new = format!(
        "{}basis = \"opt_out\"{}",
        &text[..basis],
        &text[basis + "basis = \"consent\"".len()..]
    );
    let dir = std::env::temp_dir().join(format!("custos-cli-diff-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("policy-v2.toml");
    std::fs::write(&path, new).unwrap();
    let o = custos(&["policy", "diff", &webex(), path.to_str().unwrap(), "--json"]);
    assert_eq!(o.status.code(), Some(3), "{}", stderr(&o));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["material"], true);
    assert!(
        v["changes"]
            .as_array()
            .unwrap()
            .iter()
            .any(|c| c["kind"] == "basis_weakened" && c["element"] == "purpose:marketing.partners")
    );
    let same = custos(&["policy", "diff", &webex(), &webex()]);
    assert_eq!(same.status.code(), Some(0));
    std::fs::remove_dir_all(&dir).unwrap();
}

/// Issue 12, item 6: `custos policy check` warns, on stderr and with exit status 0, of every
/// element no decision reads (`path:line:column: warning: …`); `--deny-warnings` makes them
/// fatal.
#[test]
fn check_warns_of_notice_only_elements_and_still_exits_0() {
    let o = custos(&["policy", "check"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(
        stdout(&o).starts_with("ok: policy `webex-2010`"),
        "{}",
        stdout(&o)
    );
    let err = stderr(&o);
    let warnings: Vec<&str> = err.lines().collect();
    // 2 regions, 3 transfers, 5 rights; cookies are read (the consent banner), and so are
    // the unsubscribe right's channels (the mailings' footer).
    assert_eq!(warnings.len(), 10, "{err}");
    assert!(
        warnings.iter().all(|w| w.starts_with("builtin:webex-2010:")
            && w.contains(": warning: ")
            && w.ends_with(
                "is notice-only: no decision reads it yet; it is rendered in the notice"
            )),
        "{err}"
    );
    assert!(!err.contains("cookie `"), "{err}");
    for kind in [
        "transfer to `us`",
        "region `worldwide`",
        "right `objection`",
    ] {
        assert!(err.contains(kind), "{kind}: {err}");
    }
    // The file on disk: the same warnings, at its own lines.
    let o = custos(&["policy", "check", &webex()]);
    assert!(o.status.success());
    let text = std::fs::read_to_string(webex()).unwrap();
    let line = text.lines().position(|l| l == "id = \"us\"").unwrap() + 1;
    assert!(
        stderr(&o)
            .lines()
            .next()
            .unwrap()
            .starts_with(&format!("{}:{line}:6: warning: region `us`", webex())),
        "{}",
        stderr(&o)
    );
    let o = custos(&["policy", "check", "--deny-warnings"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        stderr(&o).ends_with("error: 10 warnings and --deny-warnings\n"),
        "{}",
        stderr(&o)
    );
}
