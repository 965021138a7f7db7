//! The clause trace of the built-in policy is complete, and every test it names exists.

use std::path::{Path, PathBuf};

use custos_policy::{BUILTIN_WEBEX_2010_TRACE, render, trace};

use crate::builtin;

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// How many tests named `name` the workspace's crates define: `#[test]` and `#[tokio::test]`
/// functions, and the vault's conformance cases (`pub fn name(h: Harness)`), which its
/// `conformance!` macro runs against every backend (an unlisted case would be dead code,
/// which clippy refuses).
fn test_definitions(files: &[(PathBuf, String)], name: &str) -> usize {
    let needle = format!("fn {name}(");
    let cases = [
        format!("pub fn {name}(h: Harness)"),
        format!("pub fn {name}(mut h: Harness)"),
    ];
    files
        .iter()
        .map(|(_, text)| {
            let lines: Vec<&str> = text.lines().collect();
            lines
                .iter()
                .enumerate()
                .filter(|(i, l)| {
                    let l = l.trim_start();
                    let attribute = i.checked_sub(1).map_or("", |j| lines[j].trim());
                    let is_test = attribute == "#[test]" || attribute.starts_with("#[tokio::test");
                    ((l.starts_with(&needle) || l.starts_with(&format!("async {needle}")))
                        && is_test)
                        || cases.iter().any(|c| l.starts_with(c.as_str()))
                })
                .count()
        })
        .sum()
}

#[test]
fn builtin_trace_covers_every_clause() {
    let p = builtin();
    let t =
        trace::load(&p, "trace.toml", BUILTIN_WEBEX_2010_TRACE).unwrap_or_else(|d| panic!("{d}"));
    assert_eq!(t.clauses.len(), 80);
    assert_eq!(t.clauses.first().unwrap().id, "C001");
    assert_eq!(t.clauses.last().unwrap().id, "C080");
    let (enforced, planned, notice) = t.counts();
    assert_eq!(enforced + planned + notice, 80);
}

#[test]
fn every_test_the_trace_names_exists_once() {
    let p = builtin();
    let t = trace::load(&p, "trace.toml", BUILTIN_WEBEX_2010_TRACE).unwrap();
    let crates = Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap();
    let mut paths = Vec::new();
    rust_files(crates, &mut paths);
    let files: Vec<(PathBuf, String)> = paths
        .into_iter()
        .map(|p| (p.clone(), std::fs::read_to_string(p).unwrap()))
        .collect();
    let mut missing = Vec::new();
    for (clause, test) in t.tests() {
        let n = test_definitions(&files, test);
        if n != 1 {
            missing.push(format!("{clause}: `{test}` defined {n} times"));
        }
    }
    assert!(
        missing.is_empty(),
        "trace names tests that do not exist exactly once:\n{}",
        missing.join("\n")
    );
}

#[test]
fn a_clause_missing_from_the_trace_is_an_error() {
    let p = builtin();
    let start = BUILTIN_WEBEX_2010_TRACE.find("id = \"C045\"").unwrap();
    let end = start
        + BUILTIN_WEBEX_2010_TRACE[start..]
            .find("[[clause]]")
            .unwrap();
    let text = format!(
        "{}{}",
        &BUILTIN_WEBEX_2010_TRACE[..start - "[[clause]]\n".len()],
        &BUILTIN_WEBEX_2010_TRACE[end..]
    );
    let e = trace::load(&p, "trace.toml", &text).unwrap_err().lines();
    assert!(
        e.iter()
            .any(|l| l.contains("clauses missing from the trace: C045")),
        "{e:?}"
    );
}

#[test]
fn an_enforced_clause_without_tests_or_elements_is_an_error() {
    let p = builtin();
    let text = BUILTIN_WEBEX_2010_TRACE.replace(
        "id = \"C045\"\nstatus = \"notice-only\"",
        "id = \"C045\"\nstatus = \"enforced\"",
    );
    let e = trace::load(&p, "trace.toml", &text).unwrap_err().lines();
    assert!(
        e.iter()
            .any(|l| l.contains("enforced clause `C045` names no `tests`")),
        "{e:?}"
    );
    let text = BUILTIN_WEBEX_2010_TRACE.replace(
        "capability = \"rights-requests\"",
        "capability = \"someday\"",
    );
    let e = trace::load(&p, "trace.toml", &text).unwrap_err().lines();
    assert!(
        e.iter().any(|l| l.contains("unknown capability `someday`")),
        "{e:?}"
    );
}

#[test]
fn the_notice_carries_every_notice_only_clause() {
    let p = builtin();
    let t = trace::load(&p, "trace.toml", BUILTIN_WEBEX_2010_TRACE).unwrap();
    let md = render::markdown(&p);
    for c in t
        .clauses
        .iter()
        .filter(|c| matches!(c.status, trace::Status::NoticeOnly { .. }))
    {
        let statements: Vec<_> = p
            .file()
            .statement
            .iter()
            .filter(|s| s.clauses.iter().any(|x| x.get_ref() == &c.id))
            .collect();
        assert!(
            !statements.is_empty(),
            "notice-only {} has no statement",
            c.id
        );
        assert!(md.contains(&c.id), "notice does not tag {}", c.id);
    }
    // The postal address for unsubscribe letters comes from [contacts].
    assert!(md.contains("3979 Freedom Circle"));
}
