//! Policy source files and diagnostics that point into them.

use std::fmt;
use std::ops::Range;

/// Index of a file in a [`Sources`] set.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct FileId(pub(crate) u16);

/// The text of every file a policy was loaded from, so diagnostics can name `path:line:column`.
#[derive(Debug, Clone, Default)]
pub struct Sources {
    files: Vec<SourceFile>,
}

#[derive(Debug, Clone)]
struct SourceFile {
    path: String,
    text: String,
    /// Byte offset of the start of each line.
    line_starts: Vec<usize>,
}

impl Sources {
    /// Adds a file and returns its id.
    pub fn add(&mut self, path: impl Into<String>, text: impl Into<String>) -> FileId {
        let text = text.into();
        let mut line_starts = vec![0];
        line_starts.extend(text.match_indices('\n').map(|(i, _)| i + 1));
        let id = FileId(u16::try_from(self.files.len()).unwrap_or(u16::MAX));
        self.files.push(SourceFile {
            path: path.into(),
            text,
            line_starts,
        });
        id
    }

    /// The path a file was loaded from.
    pub fn path(&self, file: FileId) -> &str {
        self.files
            .get(usize::from(file.0))
            .map_or("<unknown>", |f| f.path.as_str())
    }

    /// The text of a file.
    pub fn text(&self, file: FileId) -> &str {
        self.files
            .get(usize::from(file.0))
            .map_or("", |f| f.text.as_str())
    }

    /// Every file id, in load order.
    pub fn ids(&self) -> impl Iterator<Item = FileId> + '_ {
        (0..self.files.len()).map(|i| FileId(u16::try_from(i).unwrap_or(u16::MAX)))
    }

    /// 1-based line and column (in characters) of a byte offset.
    pub fn line_col(&self, file: FileId, offset: usize) -> (usize, usize) {
        let Some(f) = self.files.get(usize::from(file.0)) else {
            return (1, 1);
        };
        let line = f.line_starts.partition_point(|&s| s <= offset).max(1);
        let start = f.line_starts.get(line - 1).copied().unwrap_or(0);
        let col = f
            .text
            .get(start..offset.min(f.text.len()))
            .map_or(1, |s| s.chars().count() + 1);
        (line, col)
    }
}

/// A place in a policy source file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Location {
    /// The file the span is in.
    pub file: FileId,
    /// Byte range in that file.
    pub span: Range<usize>,
}

/// One problem found in a policy, with where it is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Diagnostic {
    /// Where the problem is; `None` for problems of the policy as a whole.
    pub location: Option<Location>,
    /// Short, lowercase, actionable; user input in backticks.
    pub message: String,
}

impl Diagnostic {
    pub(crate) fn at(location: Location, message: impl Into<String>) -> Self {
        Self {
            location: Some(location),
            message: message.into(),
        }
    }

    pub(crate) fn global(message: impl Into<String>) -> Self {
        Self {
            location: None,
            message: message.into(),
        }
    }
}

/// Every problem found in a policy, with the sources needed to print them as
/// `path:line:column: message`.
#[derive(Debug, Clone)]
pub struct Diagnostics {
    /// The files the policy was loaded from.
    pub sources: Sources,
    /// The problems, in source order.
    pub items: Vec<Diagnostic>,
}

impl Diagnostics {
    /// Each problem as `path:line:column: message`.
    pub fn lines(&self) -> Vec<String> {
        self.items
            .iter()
            .map(|d| match &d.location {
                Some(loc) => {
                    let (line, col) = self.sources.line_col(loc.file, loc.span.start);
                    format!(
                        "{}:{line}:{col}: {}",
                        self.sources.path(loc.file),
                        d.message
                    )
                }
                None => format!("{}: {}", self.primary_path(), d.message),
            })
            .collect()
    }

    fn primary_path(&self) -> &str {
        self.sources
            .ids()
            .next()
            .map_or("<policy>", |f| self.sources.path(f))
    }
}

impl fmt::Display for Diagnostics {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for line in self.lines() {
            writeln!(f, "{line}")?;
        }
        Ok(())
    }
}

impl std::error::Error for Diagnostics {}

/// The declared id closest to `wanted`, when it is close enough to be a likely typo.
pub(crate) fn nearest<'a>(
    wanted: &str,
    candidates: impl Iterator<Item = &'a str>,
) -> Option<&'a str> {
    let limit = (wanted.chars().count() / 3).max(2);
    candidates
        .map(|c| (edit_distance(wanted, c), c))
        .filter(|(d, _)| *d <= limit)
        .min_by_key(|(d, c)| (*d, *c))
        .map(|(_, c)| c)
}

/// Levenshtein distance over characters.
pub(crate) fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut row = Vec::with_capacity(b.len() + 1);
        row.push(i + 1);
        for (j, cb) in b.iter().enumerate() {
            let sub = prev.get(j).copied().unwrap_or(0) + usize::from(ca != *cb);
            let del = prev.get(j + 1).copied().unwrap_or(0) + 1;
            let ins = row.last().copied().unwrap_or(0) + 1;
            row.push(sub.min(del).min(ins));
        }
        prev = row;
    }
    prev.last().copied().unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn line_col_counts_characters_from_one() {
        let mut s = Sources::default();
        let f = s.add("p.toml", "ab\ncdé\nx");
        assert_eq!(s.line_col(f, 0), (1, 1));
        assert_eq!(s.line_col(f, 3), (2, 1));
        assert_eq!(s.line_col(f, 8), (3, 1));
        assert_eq!(s.line_col(f, 5), (2, 3));
    }

    #[test]
    fn nearest_finds_typos_only() {
        let ids = ["contact.email", "contact.name", "network.ip_address"];
        assert_eq!(
            nearest("contact.emial", ids.into_iter()),
            Some("contact.email")
        );
        assert_eq!(nearest("zzzzzz", ids.into_iter()), None);
        assert_eq!(edit_distance("kitten", "sitting"), 3);
    }
}
