//! Reading a policy from text, a file or a folder of files.

use std::path::Path;

use crate::model::{Header, PolicyFile};
use crate::source::{Diagnostic, Diagnostics, FileId, Location, Sources};

/// The WebEx privacy policy of April 2010, built into Custos as its default.
pub const BUILTIN_WEBEX_2010: &str = include_str!("../../../policies/webex-2010/policy.toml");
/// The clause trace of the built-in policy.
pub const BUILTIN_WEBEX_2010_TRACE: &str = include_str!("../../../policies/webex-2010/trace.toml");
/// The name under which the built-in policy is reported in diagnostics.
pub const BUILTIN_NAME: &str = "builtin:webex-2010";

/// Every table of every file, in load order, each element tagged with the file it came from.
#[derive(Debug, Clone, Default)]
pub(crate) struct Merged {
    pub(crate) header: Option<(FileId, Header)>,
    pub(crate) file: PolicyFile,
    /// For each list in `file`, the file of each element, in the same order.
    pub(crate) origin: Origins,
}

/// The file each element of a merged list came from.
#[derive(Debug, Clone, Default)]
pub(crate) struct Origins {
    pub(crate) category: Vec<FileId>,
    pub(crate) purpose: Vec<FileId>,
    pub(crate) accessor: Vec<FileId>,
    pub(crate) service: Vec<FileId>,
    pub(crate) collection: Vec<FileId>,
    pub(crate) recipient: Vec<FileId>,
    pub(crate) retention: Vec<FileId>,
    pub(crate) cookie: Vec<FileId>,
    pub(crate) region: Vec<FileId>,
    pub(crate) transfer: Vec<FileId>,
    pub(crate) right: Vec<FileId>,
    pub(crate) statement: Vec<FileId>,
    pub(crate) contacts: Option<FileId>,
    pub(crate) rights: Option<FileId>,
}

/// Reads the files of a policy: `path` is a `.toml` file, or a folder whose `*.toml` files
/// (except `trace.toml`) are read in name order.
pub(crate) fn read_path(path: &Path) -> Result<Sources, Diagnostics> {
    let mut sources = Sources::default();
    let io_error = |p: &Path, e: std::io::Error| {
        let mut s = Sources::default();
        s.add(p.display().to_string(), "");
        Diagnostics {
            sources: s,
            items: vec![Diagnostic::global(format!("cannot read policy: {e}"))],
        }
    };
    if path.is_dir() {
        let mut files: Vec<_> = std::fs::read_dir(path)
            .map_err(|e| io_error(path, e))?
            .filter_map(Result::ok)
            .map(|e| e.path())
            .filter(|p| {
                p.extension().is_some_and(|e| e == "toml")
                    && p.file_name().is_some_and(|n| n != "trace.toml")
            })
            .collect();
        files.sort();
        if files.is_empty() {
            let mut s = Sources::default();
            s.add(path.display().to_string(), "");
            return Err(Diagnostics {
                sources: s,
                items: vec![Diagnostic::global(
                    "no `.toml` files in this folder; a policy folder holds one or more policy files",
                )],
            });
        }
        for f in files {
            let text = std::fs::read_to_string(&f).map_err(|e| io_error(&f, e))?;
            sources.add(f.display().to_string(), text);
        }
    } else {
        let text = std::fs::read_to_string(path).map_err(|e| io_error(path, e))?;
        sources.add(path.display().to_string(), text);
    }
    Ok(sources)
}

/// Parses every file and concatenates their tables.
pub(crate) fn merge(sources: &Sources) -> Result<Merged, Vec<Diagnostic>> {
    let mut merged = Merged::default();
    let mut errors = Vec::new();
    for file in sources.ids() {
        let parsed: PolicyFile = match toml::from_str(sources.text(file)) {
            Ok(p) => p,
            Err(e) => {
                let span = e.span().unwrap_or(0..0);
                let mut message = toml_message(e.message());
                if message == "duplicate key" {
                    let key = sources.text(file).get(span.clone()).unwrap_or("").trim();
                    message =
                        format!("duplicate key `{key}`; a key or table appears once in a file");
                }
                errors.push(Diagnostic::at(Location { file, span }, message));
                continue;
            }
        };
        let text = sources.text(file);
        let at = Tables {
            contacts: text.find("[contacts]").unwrap_or(0),
            rights: text.find("[rights]").unwrap_or(0),
        };
        append(&mut merged, file, parsed, &at, &mut errors);
    }
    if merged.header.is_none() && errors.is_empty() {
        errors.push(Diagnostic::global(
            "no `[policy]` table; add one with `id`, `version`, `effective`, `title` and `controller`",
        ));
    }
    if errors.is_empty() {
        Ok(merged)
    } else {
        Err(errors)
    }
}

/// toml's messages are full sentences over several lines; keep them to one line.
fn toml_message(message: &str) -> String {
    let one_line = message.trim().replace('\n', " ");
    let mut m = one_line.trim_end_matches('.').to_string();
    if let Some(first) = m.get(..1) {
        let lower = first.to_lowercase();
        m.replace_range(..1, &lower);
    }
    m
}

/// Where a file's single tables start, to point at a second one.
struct Tables {
    contacts: usize,
    rights: usize,
}

fn append(m: &mut Merged, file: FileId, p: PolicyFile, at: &Tables, errors: &mut Vec<Diagnostic>) {
    if let Some(h) = p.policy {
        if let Some((first, _)) = &m.header {
            errors.push(Diagnostic::at(
                Location {
                    file,
                    span: h.id.span(),
                },
                format!(
                    "a second `[policy]` table; a policy has one header (the first is in file #{})",
                    first.0 + 1
                ),
            ));
        } else {
            m.header = Some((file, h.clone()));
            m.file.policy = Some(h);
        }
    }
    if let Some(c) = p.contacts {
        if m.file.contacts.is_some() {
            errors.push(Diagnostic::at(
                Location {
                    file,
                    span: at.contacts..at.contacts,
                },
                "a second `[contacts]` table; a policy has one",
            ));
        } else {
            m.file.contacts = Some(c);
            m.origin.contacts = Some(file);
        }
    }
    if let Some(r) = p.rights {
        if m.file.rights.is_some() {
            errors.push(Diagnostic::at(
                Location {
                    file,
                    span: at.rights..at.rights,
                },
                "a second `[rights]` table; a policy has one",
            ));
        } else {
            m.file.rights = Some(r);
            m.origin.rights = Some(file);
        }
    }
    macro_rules! extend {
        ($($list:ident),*) => {$(
            m.origin.$list.extend(std::iter::repeat_n(file, p.$list.len()));
            m.file.$list.extend(p.$list);
        )*};
    }
    extend!(
        category, purpose, accessor, service, collection, recipient, retention, cookie, region,
        transfer, right, statement
    );
}
