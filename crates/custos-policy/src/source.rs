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

/// The longest name, in bytes, a run-time lookup suggests a nearest id for, and the longest
/// the HTTP API accepts (`name_too_long`): ids are short (the built-in policy's longest has
/// 27 bytes), and a longer name is no typo of one. A lookup of a longer name still answers
/// exactly; it only costs no edit distance.
pub const MAX_NAME_LEN: usize = 128;

/// How many characters of a name given at run time an error message quotes.
pub const QUOTED_CHARS: usize = 40;

/// A name given at run time, as an error message quotes it (inside the message's own
/// backticks): at most [`QUOTED_CHARS`] characters then `…`, with control and invisible
/// formatting characters as `\u{…}` and backslashes and backticks escaped, so a quoted name
/// can neither grow a message without bound nor break out of its backticks or its line. A
/// well-formed id prints as itself.
pub fn quote(name: &str) -> Quoted<'_> {
    Quoted {
        name,
        chars: QUOTED_CHARS,
    }
}

/// See [`quote`].
#[derive(Debug, Clone, Copy)]
pub struct Quoted<'a> {
    name: &'a str,
    chars: usize,
}

impl Quoted<'_> {
    /// Quotes at most `chars` characters instead of [`QUOTED_CHARS`] (a JSON field path).
    #[must_use]
    pub fn at_most(self, chars: usize) -> Self {
        Self { chars, ..self }
    }
}

impl fmt::Display for Quoted<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        use fmt::Write as _;
        let mut chars = self.name.chars();
        for c in chars.by_ref().take(self.chars) {
            match c {
                '\\' | '`' => {
                    f.write_char('\\')?;
                    f.write_char(c)?;
                }
                c if c.is_control()
                    || matches!(
                        c,
                        '\u{200b}'..='\u{200f}'
                            | '\u{2028}'..='\u{202e}'
                            | '\u{2060}'..='\u{206f}'
                            | '\u{feff}'
                    ) =>
                {
                    write!(f, "\\u{{{:x}}}", u32::from(c))?;
                }
                c => f.write_char(c)?,
            }
        }
        if chars.next().is_some() {
            f.write_char('…')?;
        }
        Ok(())
    }
}

/// The declared id closest to `wanted`, when it is close enough to be a likely typo. A name
/// longer than [`MAX_NAME_LEN`] has none; a candidate whose length differs by more than the
/// distance allowed is not measured.
pub(crate) fn nearest<'a>(
    wanted: &str,
    candidates: impl Iterator<Item = &'a str>,
) -> Option<&'a str> {
    if wanted.len() > MAX_NAME_LEN {
        return None;
    }
    let len = wanted.chars().count();
    let limit = (len / 3).max(2);
    candidates
        .filter(|c| c.chars().count().abs_diff(len) <= limit)
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

    #[test]
    fn nearest_skips_names_longer_than_any_id() {
        let id = "a".repeat(MAX_NAME_LEN - 8);
        let near = "a".repeat(MAX_NAME_LEN);
        assert_eq!(nearest(&near, [id.as_str()].into_iter()), Some(id.as_str()));
        // Within the distance allowed, but longer than any name worth a suggestion.
        let long = "a".repeat(MAX_NAME_LEN + 2);
        assert_eq!(nearest(&long, [id.as_str()].into_iter()), None);
        // Candidates too short or too long to be within the distance are passed over.
        let ids = ["contact.email", "c", "contact.email.and.much.more"];
        assert_eq!(
            nearest("contact.emial", ids.into_iter()),
            Some("contact.email")
        );
    }

    #[test]
    fn quote_prints_an_id_as_itself() {
        assert_eq!(quote("contact.email").to_string(), "contact.email");
        assert_eq!(quote("a-b_c.9").to_string(), "a-b_c.9");
        assert_eq!(quote("").to_string(), "");
        let exact = "x".repeat(QUOTED_CHARS);
        assert_eq!(quote(&exact).to_string(), exact);
    }

    #[test]
    fn quote_keeps_a_short_prefix_of_a_long_name() {
        let long = "é".repeat(1_000_000);
        let q = quote(&long).to_string();
        assert_eq!(q, format!("{}…", "é".repeat(QUOTED_CHARS)));
        let field = quote(&long).at_most(MAX_NAME_LEN).to_string();
        assert_eq!(field.chars().count(), MAX_NAME_LEN + 1);
    }

    #[test]
    fn quote_escapes_control_characters_backticks_and_backslashes() {
        assert_eq!(
            quote("a\0b\nc\u{7f}\u{9b}").to_string(),
            "a\\u{0}b\\u{a}c\\u{7f}\\u{9b}"
        );
        assert_eq!(quote("x` y").to_string(), "x\\` y");
        assert_eq!(quote("a\\b").to_string(), "a\\\\b");
        // Invisible formatting: bidi overrides, zero-width, line separators, BOM.
        assert_eq!(
            quote("\u{202e}\u{200b}\u{2028}\u{feff}").to_string(),
            "\\u{202e}\\u{200b}\\u{2028}\\u{feff}"
        );
        // What is quoted holds no control character, no bare backtick, and is short.
        let nasty = format!("`{}", "\0`\n".repeat(100_000));
        let q = quote(&nasty).to_string();
        assert!(!q.chars().any(char::is_control), "{q}");
        assert!(!q.replace("\\`", "").contains('`'), "{q}");
        assert!(q.len() < 400, "{}", q.len());
    }
}
