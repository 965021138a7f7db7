//! The notice: the human-readable privacy policy, rendered from the same policy file the vault
//! enforces (invariant 3, "one source of truth").
//!
//! [`document`] builds one intermediate [`Document`] — sections of paragraphs, lists and tables
//! of inline text — and [`Document::to_markdown`] and [`Document::to_html`] only print it, so
//! the two formats cannot disagree about what the policy says. [`markdown`] and [`html`] do both
//! steps.
//!
//! Generated content comes first in each section; the policy's `[[statement]]` elements follow,
//! in file order. Every element's clause ids are shown as a small tag so an auditor can trace
//! the notice back to the seed text.
//!
//! **Architecture invariant:** the HTML is one self-contained page. It loads nothing: no
//! scripts, stylesheets, fonts or images, no `src` attribute and no CSS `url(`; the only URLs
//! in it are `mailto:` and `http(s)` links a person may follow.

use crate::model::{self, PolicyFile, Str};
use crate::{Basis, Policy, PurposeInfo, RequestKind};

/// Fixed sections of a notice, in order, as `(anchor, heading)`. The anchors are the section
/// names a `[[statement]]` may name.
pub const CORE_SECTIONS: &[(&str, &str)] = &[
    ("overview", "Overview"),
    ("collection", "What we collect and why"),
    ("use", "How we use it"),
    ("choices", "Your choices"),
    ("sharing", "Sharing"),
    ("security", "Security"),
    ("cookies", "Cookies and web beacons"),
    ("children", "Children"),
    ("transfers", "Transfers"),
    ("california", "California"),
    ("changes", "Changes to this policy"),
    ("contact", "Contact"),
];

/// Renders the notice as GitHub-flavoured Markdown.
pub fn markdown(policy: &Policy) -> String {
    document(policy).to_markdown()
}

/// Renders the notice as one self-contained HTML page.
pub fn html(policy: &Policy) -> String {
    document(policy).to_html()
}

/// Builds the notice of a policy as a format-neutral document.
pub fn document(policy: &Policy) -> Document {
    Notice::new(policy).document()
}

// ---------------------------------------------------------------------------------------------
// The document model.

/// A notice, as both formats print it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Document {
    /// The title (the policy's `title`).
    pub title: String,
    /// Blocks under the title, before the table of contents.
    pub lead: Vec<Block>,
    /// Top-level sections, in order; the table of contents lists them.
    pub sections: Vec<Section>,
}

/// A section with a heading, and possibly subsections one heading level below.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Section {
    /// Stable fragment id: `choices`, `cookies`, `service-meeting-center`…
    pub anchor: String,
    /// Heading text.
    pub heading: String,
    /// Clause ids the section as a whole encodes, shown under the heading.
    pub clauses: Vec<String>,
    /// Content, before any subsection.
    pub blocks: Vec<Block>,
    /// Subsections, after the blocks.
    pub subsections: Vec<Section>,
}

/// A block of content.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Block {
    /// A paragraph.
    Paragraph(Text),
    /// A bulleted list.
    List(Vec<Text>),
    /// A table.
    Table(Table),
}

/// A table whose first column names each row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Table {
    /// Column headings.
    pub header: Vec<String>,
    /// Rows of cells, as many as `header` has columns.
    pub rows: Vec<Vec<Text>>,
}

/// A run of inline content.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Text(pub Vec<Inline>);

/// Inline content.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Inline {
    /// Plain text, whitespace collapsed.
    Text(String),
    /// Emphasised text: a label.
    Strong(String),
    /// A link a person may follow: `mailto:` or `http(s)`, never fetched by the page.
    Link {
        /// Shown text.
        text: String,
        /// Target.
        href: String,
    },
    /// A line break (postal addresses).
    Break,
    /// Clause ids, shown as a small tag.
    Clauses(Vec<String>),
}

impl Document {
    /// Removes every clause tag, for readers who do not audit.
    pub fn strip_clauses(&mut self) {
        fn blocks(bs: &mut [Block]) {
            for b in bs {
                match b {
                    Block::Paragraph(t) => t.strip_clauses(),
                    Block::List(items) => items.iter_mut().for_each(Text::strip_clauses),
                    Block::Table(t) => t.rows.iter_mut().flatten().for_each(Text::strip_clauses),
                }
            }
        }
        fn section(s: &mut Section) {
            s.clauses.clear();
            blocks(&mut s.blocks);
            s.subsections.iter_mut().for_each(section);
        }
        blocks(&mut self.lead);
        self.sections.iter_mut().for_each(section);
    }

    /// Prints the document as GitHub-flavoured Markdown.
    pub fn to_markdown(&self) -> String {
        let mut chunks: Vec<String> = Vec::new();
        chunks.push(format!("# {}", md_escape(&self.title, false)));
        chunks.extend(self.lead.iter().map(md_block));
        chunks.push("## Contents".to_string());
        chunks.push(
            self.sections
                .iter()
                .map(|s| {
                    format!(
                        "- [{}](#{})",
                        md_escape(&s.heading, false),
                        md_href(&s.anchor)
                    )
                })
                .collect::<Vec<_>>()
                .join("\n"),
        );
        for s in &self.sections {
            md_section(s, 2, &mut chunks);
        }
        let mut out = chunks.join("\n\n");
        out.push('\n');
        out
    }

    /// Prints the document as one self-contained HTML page.
    pub fn to_html(&self) -> String {
        let mut out = String::with_capacity(32 * 1024);
        out.push_str("<!doctype html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n");
        out.push_str("<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n");
        out.push_str("<title>");
        out.push_str(&html_escape(&self.title));
        out.push_str("</title>\n<style>\n");
        out.push_str(STYLE);
        out.push_str("</style>\n</head>\n<body>\n<main>\n<header>\n<h1>");
        out.push_str(&html_escape(&self.title));
        out.push_str("</h1>\n");
        for b in &self.lead {
            html_block(b, &mut out, Some("lead"));
        }
        out.push_str("</header>\n<nav aria-labelledby=\"contents\">\n<h2 id=\"contents\">Contents</h2>\n<ol>\n");
        for s in &self.sections {
            out.push_str("<li><a href=\"#");
            out.push_str(&html_escape(&s.anchor));
            out.push_str("\">");
            out.push_str(&html_escape(&s.heading));
            out.push_str("</a></li>\n");
        }
        out.push_str("</ol>\n</nav>\n");
        for s in &self.sections {
            html_section(s, 2, &mut out);
        }
        out.push_str("</main>\n</body>\n</html>\n");
        out
    }
}

impl Text {
    /// The text without markup: link texts, labels, and clause tags in brackets.
    pub fn plain(&self) -> String {
        let mut out = String::new();
        for i in &self.0 {
            match i {
                Inline::Text(s) | Inline::Strong(s) | Inline::Link { text: s, .. } => {
                    out.push_str(s)
                }
                Inline::Break => out.push('\n'),
                Inline::Clauses(c) => {
                    out.push_str(" [");
                    out.push_str(&c.join(" "));
                    out.push(']');
                }
            }
        }
        out
    }

    fn strip_clauses(&mut self) {
        self.0.retain(|i| !matches!(i, Inline::Clauses(_)));
        if let Some(Inline::Text(s)) = self.0.last_mut() {
            let n = s.trim_end().len();
            s.truncate(n);
        }
    }

    /// Text with emails and URLs turned into links.
    fn auto(s: &str) -> Self {
        let mut t = Self::default();
        t.push(s);
        t
    }

    /// Text starting with `label` in bold.
    fn headed(label: &str) -> Self {
        let mut t = Self::default();
        t.strong(label);
        t
    }

    fn labelled(label: &str, rest: &str) -> Self {
        let mut t = Self::headed(label);
        t.push(" ").push(rest);
        t
    }

    /// Text with emails and URLs turned into links, then a clause tag.
    fn tagged(s: &str, clauses: &[Str]) -> Self {
        let mut t = Self::auto(s);
        t.clauses(&strings(clauses));
        t
    }

    /// Appends text, whitespace collapsed, with emails and URLs turned into links.
    fn push(&mut self, s: &str) -> &mut Self {
        if s.starts_with(char::is_whitespace) {
            self.raw(" ");
        }
        for (i, word) in s.split_whitespace().enumerate() {
            if i > 0 {
                self.raw(" ");
            }
            let inner = word.trim_start_matches(['(', '<', '[', '"', '\'', '\u{201c}', '\u{2018}']);
            let pre = word.strip_suffix(inner).unwrap_or("");
            let core = inner.trim_end_matches([
                '.', ',', ';', ':', '!', '?', ')', '>', ']', '"', '\'', '\u{201d}', '\u{2019}',
            ]);
            let post = inner.strip_prefix(core).unwrap_or("");
            match link_target(core) {
                Some(href) => {
                    self.raw(pre);
                    self.0.push(Inline::Link {
                        text: core.to_string(),
                        href,
                    });
                    self.raw(post);
                }
                None => self.raw(word),
            }
        }
        if s.ends_with(char::is_whitespace) && !s.trim().is_empty() {
            self.raw(" ");
        }
        self
    }

    /// Appends text as is, merging with preceding text.
    fn raw(&mut self, s: &str) {
        if s.is_empty() {
            return;
        }
        if let Some(Inline::Text(last)) = self.0.last_mut() {
            last.push_str(s);
        } else {
            self.0.push(Inline::Text(s.to_string()));
        }
    }

    fn strong(&mut self, s: &str) -> &mut Self {
        self.0.push(Inline::Strong(s.trim().to_string()));
        self
    }

    fn link(&mut self, text: &str, href: String) -> &mut Self {
        self.0.push(Inline::Link {
            text: text.to_string(),
            href,
        });
        self
    }

    /// Appends a clause tag, when there are clauses.
    fn clauses(&mut self, clauses: &[String]) -> &mut Self {
        if !clauses.is_empty() {
            self.0.push(Inline::Clauses(clauses.to_vec()));
        }
        self
    }
}

/// The link a word stands for: an `http(s)` URL, a `www.` host or an email address.
fn link_target(word: &str) -> Option<String> {
    let url_char = |c: char| {
        c.is_ascii_graphic() && !matches!(c, '<' | '>' | '"' | '\\' | '`' | '{' | '}' | '|' | '^')
    };
    for scheme in ["https://", "http://"] {
        if let Some(rest) = word.strip_prefix(scheme) {
            return (rest.contains(|c: char| c.is_ascii_alphanumeric())
                && rest.chars().all(url_char))
            .then(|| word.to_string());
        }
    }
    if let Some(rest) = word.strip_prefix("www.") {
        return (rest.contains('.') && word.chars().all(url_char))
            .then(|| format!("http://{word}"));
    }
    let (local, domain) = word.split_once('@')?;
    let local_ok = !local.is_empty()
        && local
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '%' | '+' | '-'));
    let labels: Vec<&str> = domain.split('.').collect();
    let domain_ok = labels.len() >= 2
        && labels
            .iter()
            .all(|l| !l.is_empty() && l.chars().all(|c| c.is_ascii_alphanumeric() || c == '-'))
        && labels
            .last()
            .is_some_and(|tld| tld.len() >= 2 && tld.chars().all(|c| c.is_ascii_alphabetic()));
    (local_ok && domain_ok).then(|| format!("mailto:{word}"))
}

/// A statement's text as blocks: paragraphs split on blank lines; lines starting with `* ` are
/// list items, and indented lines after an item continue it.
fn statement_blocks(text: &str, clauses: &[String]) -> Vec<Block> {
    let mut blocks = Vec::new();
    let mut para: Vec<&str> = Vec::new();
    let mut items: Vec<String> = Vec::new();
    let flush_para = |para: &mut Vec<&str>, blocks: &mut Vec<Block>| {
        if !para.is_empty() {
            blocks.push(Block::Paragraph(Text::auto(&para.join(" "))));
            para.clear();
        }
    };
    let flush_items = |items: &mut Vec<String>, blocks: &mut Vec<Block>| {
        if !items.is_empty() {
            blocks.push(Block::List(items.iter().map(|i| Text::auto(i)).collect()));
            items.clear();
        }
    };
    for line in text.lines() {
        let trimmed = line.trim();
        if trimmed.is_empty() {
            flush_para(&mut para, &mut blocks);
            flush_items(&mut items, &mut blocks);
        } else if let Some(item) = line.trim_start().strip_prefix("* ") {
            flush_para(&mut para, &mut blocks);
            items.push(item.trim().to_string());
        } else if let (Some(last), true) = (items.last_mut(), line.starts_with(char::is_whitespace))
        {
            last.push(' ');
            last.push_str(trimmed);
        } else {
            flush_items(&mut items, &mut blocks);
            para.push(trimmed);
        }
    }
    flush_para(&mut para, &mut blocks);
    flush_items(&mut items, &mut blocks);
    match blocks.last_mut() {
        Some(Block::Paragraph(t)) => {
            t.clauses(clauses);
        }
        Some(Block::List(items)) => {
            if let Some(t) = items.last_mut() {
                t.clauses(clauses);
            }
        }
        Some(Block::Table(_)) => {}
        None if !clauses.is_empty() => {
            let mut t = Text::default();
            t.clauses(clauses);
            blocks.push(Block::Paragraph(t));
        }
        None => {}
    }
    blocks
}

// ---------------------------------------------------------------------------------------------
// Building the document from the policy.

struct Notice<'a> {
    p: &'a Policy,
    f: &'a PolicyFile,
    h: &'a model::Header,
}

const BASES: &[Basis] = &[
    Basis::Service,
    Basis::Contract,
    Basis::Consent,
    Basis::OptOut,
    Basis::Legal,
];

/// A heading for the basis, and what it means for the person.
fn basis_explained(b: Basis) -> (&'static str, &'static str) {
    match b {
        Basis::Service => (
            "Needed for the service you asked for.",
            "You asked us for something — an account, a meeting, an order, support — and we cannot provide it without this information.",
        ),
        Basis::Contract => (
            "Needed to perform a contract.",
            "We use this information to do what we agreed with you or with your organization, such as billing and meeting our contract obligations.",
        ),
        Basis::Consent => (
            "Only with your consent.",
            "We use this information only after you have said yes. Silence, a pre-ticked box or inactivity is never consent, and you may withdraw your consent at any time; we stop from then on.",
        ),
        Basis::OptOut => (
            "Unless you object.",
            "We may use this information until you tell us to stop. You may object at any time, as described under Your choices; we stop from then on.",
        ),
        Basis::Legal => (
            "When the law or safety requires it.",
            "We use or disclose this information only to comply with the law or legal process, to prevent fraud, or to protect the safety of people; each such use names its legal reference and is recorded.",
        ),
    }
}

/// The basis in a few words, after a purpose's name.
fn basis_short(b: Basis) -> &'static str {
    match b {
        Basis::Service => "needed for the service",
        Basis::Contract => "under a contract",
        Basis::Consent => "with your consent",
        Basis::OptOut => "unless you object",
        Basis::Legal => "when the law requires",
    }
}

fn recipient_kind_label(kind: &str) -> &'static str {
    match kind {
        "internal" => "within our company",
        "affiliate" => "a company of our corporate group",
        "processor" => "a service provider acting on our behalf and only on our instructions",
        "marketing_partner" => "a third party that uses information for its own marketing",
        "customer" => "the business customer whose service you use",
        "employer" => "your employer",
        "purchaser" => "the purchaser of your service",
        "contact" => "other users who add you as a contact",
        "public" => "anyone: the information is published",
        "authority" => "courts, regulators and law enforcement",
        _ => "a recipient",
    }
}

fn strings(clauses: &[Str]) -> Vec<String> {
    clauses.iter().map(|c| c.get_ref().clone()).collect()
}

/// `a`, `a and b`, `a, b and c`; `a; b, c; d` when a name has a comma or an "and" of its own,
/// so that a list of names cannot be misread.
fn join_and(items: &[String]) -> String {
    if items.iter().any(|i| i.contains(',') || i.contains(" and ")) {
        return items.join("; ");
    }
    match items {
        [] => String::new(),
        [one] => one.clone(),
        [init @ .., last] => format!("{} and {last}", init.join(", ")),
    }
}

fn sentence(s: &str) -> String {
    let s = s.trim();
    if s.is_empty() || s.ends_with(['.', '!', '?', ':']) {
        s.to_string()
    } else {
        format!("{s}.")
    }
}

/// `2010-04-24` as `April 24, 2010`; anything else as written.
fn long_date(date: &str) -> String {
    const MONTHS: [&str; 12] = [
        "January",
        "February",
        "March",
        "April",
        "May",
        "June",
        "July",
        "August",
        "September",
        "October",
        "November",
        "December",
    ];
    let parts = (
        date.get(0..4),
        date.get(5..7).and_then(|m| m.parse::<usize>().ok()),
        date.get(8..10).and_then(|d| d.parse::<u32>().ok()),
    );
    match parts {
        (Some(y), Some(m), Some(d)) if date.len() == 10 => {
            match m.checked_sub(1).and_then(|i| MONTHS.get(i)) {
                Some(month) => format!("{month} {d}, {y}"),
                None => date.to_string(),
            }
        }
        _ => date.to_string(),
    }
}

/// A retention period in words: `transient`, `account`, `P30D`, `P6M`, `P2Y`.
fn period_words(period: &str) -> String {
    match period {
        "transient" => return "not stored".to_string(),
        "account" => return "until the account is closed".to_string(),
        _ => {}
    }
    let parsed = period.strip_prefix('P').and_then(|rest| {
        let unit = rest.chars().last()?;
        let n: u32 = rest.strip_suffix(unit)?.parse().ok()?;
        let word = match unit {
            'D' => "day",
            'W' => "week",
            'M' => "month",
            'Y' => "year",
            _ => return None,
        };
        Some(if n == 1 {
            format!("1 {word}")
        } else {
            format!("{n} {word}s")
        })
    });
    parsed.unwrap_or_else(|| period.to_string())
}

/// `meeting-services` as `Meeting services`; a family written as a title stays as written.
fn family_heading(family: &str) -> String {
    if family.contains(|c: char| c.is_uppercase() || c == ' ') {
        return family.to_string();
    }
    let spaced = family.replace(['-', '_'], " ");
    let mut chars = spaced.chars();
    match chars.next() {
        Some(first) => first.to_uppercase().chain(chars).collect(),
        None => spaced,
    }
}

fn slug(s: &str) -> String {
    let mut out = String::new();
    for c in s.chars().flat_map(char::to_lowercase) {
        if c.is_ascii_alphanumeric() {
            out.push(c);
        } else if !out.ends_with('-') && !out.is_empty() {
            out.push('-');
        }
    }
    out.trim_end_matches('-').to_string()
}

/// Makes every anchor unique (two families may slug alike) by numbering repeats.
fn unique_anchors(sections: &mut [Section]) {
    fn walk(s: &mut Section, seen: &mut Vec<String>) {
        let base = s.anchor.clone();
        let mut n = 1;
        while seen.contains(&s.anchor) || s.anchor == "contents" {
            n += 1;
            s.anchor = format!("{base}-{n}");
        }
        seen.push(s.anchor.clone());
        for sub in &mut s.subsections {
            walk(sub, seen);
        }
    }
    let mut seen = Vec::new();
    for s in sections {
        walk(s, &mut seen);
    }
}

fn section(anchor: &str, heading: &str) -> Section {
    Section {
        anchor: anchor.to_string(),
        heading: heading.to_string(),
        clauses: Vec::new(),
        blocks: Vec::new(),
        subsections: Vec::new(),
    }
}

/// A request kind as the notice names it.
fn request_name(k: RequestKind) -> &'static str {
    match k {
        RequestKind::Access => "a copy of your information",
        RequestKind::Export => "your information in a machine-readable file",
        RequestKind::Rectify => "a correction",
        RequestKind::Deactivate => "deactivation of your account",
        RequestKind::Erase => "erasure of your information",
        RequestKind::Object => "an objection to a use of your information (such as unsubscribing)",
        RequestKind::CaliforniaDisclosures => {
            "the list of our disclosures to third parties for their direct marketing (California)"
        }
    }
}

fn para(t: Text) -> Block {
    Block::Paragraph(t)
}

fn plain(s: &str) -> Block {
    Block::Paragraph(Text::auto(s))
}

impl<'a> Notice<'a> {
    fn new(p: &'a Policy) -> Self {
        Self {
            p,
            f: p.file(),
            h: p.header(),
        }
    }

    fn document(&self) -> Document {
        let mut sections: Vec<Section> = CORE_SECTIONS
            .iter()
            .map(|(anchor, heading)| {
                let mut s = section(anchor, heading);
                self.core(&mut s);
                s.blocks.extend(self.statements(|st| {
                    st.section
                        .as_ref()
                        .is_some_and(|x| x.get_ref().as_str() == *anchor)
                }));
                s
            })
            .collect();
        sections.extend(self.service_sections());
        unique_anchors(&mut sections);
        let mut lead = Text::default();
        lead.push(&format!(
            "Revised and posted as of {}.",
            long_date(self.h.effective.get_ref())
        ));
        Document {
            title: self.h.title.clone(),
            lead: vec![para(lead)],
            sections,
        }
    }

    fn core(&self, s: &mut Section) {
        match s.anchor.as_str() {
            "overview" => self.overview(s),
            "collection" => self.collection(s),
            "use" => self.use_(s),
            "choices" => self.choices(s),
            "sharing" => self.sharing(s),
            "security" => self.security(s),
            "cookies" => self.cookies(s),
            "children" => self.children(s),
            "transfers" => self.transfers(s),
            "california" => self.california(s),
            "changes" => self.changes(s),
            "contact" => self.contact(s),
            _ => {}
        }
    }

    /// The statements a filter selects, in file order, as blocks.
    fn statements(&self, select: impl Fn(&model::Statement) -> bool) -> Vec<Block> {
        self.f
            .statement
            .iter()
            .filter(|s| select(s))
            .flat_map(|s| statement_blocks(&s.text, &strings(&s.clauses)))
            .collect()
    }

    fn category_name(&self, id: &str) -> String {
        self.p
            .category_id(id)
            .ok()
            .and_then(|c| self.p.category(c))
            .map_or_else(|| id.to_string(), |c| c.name.clone())
    }

    fn category_names(&self, ids: &[Str]) -> Vec<String> {
        ids.iter()
            .map(|c| self.category_name(c.get_ref()))
            .collect()
    }

    fn purpose(&self, id: &str) -> Option<&PurposeInfo> {
        self.p.purpose_id(id).ok().and_then(|p| self.p.purpose(p))
    }

    fn purpose_name(&self, id: &str) -> String {
        self.purpose(id)
            .map_or_else(|| id.to_string(), |p| p.name.clone())
    }

    /// `Providing meetings (needed for the service)`.
    fn purpose_with_basis(&self, id: &str) -> String {
        match self.purpose(id) {
            Some(p) => format!("{} ({})", p.name, basis_short(p.basis)),
            None => id.to_string(),
        }
    }

    fn recipient_name(&self, id: &str) -> String {
        let found = self.f.recipient.iter().find(|r| r.id.get_ref() == id);
        found.map_or_else(|| id.to_string(), |r| r.name.clone())
    }

    fn region_name(&self, id: &str) -> String {
        let found = self.f.region.iter().find(|r| r.id.get_ref() == id);
        found.map_or_else(|| id.to_string(), |r| r.name.clone())
    }

    /// `Account lifetime (until the account is closed)`, or `—` without a rule.
    fn retention_words(&self, id: Option<&Str>) -> String {
        let Some(id) = id else {
            return "—".to_string();
        };
        match self
            .f
            .retention
            .iter()
            .find(|r| r.id.get_ref() == id.get_ref())
        {
            Some(r) => {
                let words = period_words(r.period.get_ref());
                if r.name.eq_ignore_ascii_case(&words) {
                    r.name.clone()
                } else {
                    format!("{} ({words})", r.name)
                }
            }
            None => id.get_ref().clone(),
        }
    }

    fn postal_address(&self) -> Option<Text> {
        let lines = &self.f.contacts.as_ref()?.postal_address;
        if lines.is_empty() {
            return None;
        }
        let mut t = Text::default();
        for (i, line) in lines.iter().enumerate() {
            if i > 0 {
                t.0.push(Inline::Break);
            }
            t.push(line);
        }
        Some(t)
    }

    fn email(&self, which: fn(&model::Contacts) -> &Option<Str>) -> Option<String> {
        self.f
            .contacts
            .as_ref()
            .and_then(|c| which(c).as_ref())
            .map(|e| e.get_ref().clone())
    }

    fn account_url(&self) -> Option<&str> {
        self.f
            .contacts
            .as_ref()
            .and_then(|c| c.account_url.as_deref())
    }

    /// Appends `url` as a link when it is one, as text otherwise.
    fn push_url(t: &mut Text, url: &str) {
        match link_target(url) {
            Some(href) => t.link(url, href),
            None => t.push(url),
        };
    }

    fn overview(&self, s: &mut Section) {
        let h = self.h;
        s.clauses = self.p.header_clauses().to_vec();
        s.blocks.push(plain(&format!(
            "This notice explains how {} handles personal information: what we collect and why, how we use and share it, how long we keep it, and the choices you have.",
            h.controller
        )));
        let mut who = sentence(&format!(
            "The controller of your personal information — who decides how it is used — is {}",
            h.controller
        ));
        if let Some(parent) = &h.parent_company {
            who.push(' ');
            who.push_str(&sentence(&format!(
                "The parent company of {} is {parent}",
                h.controller
            )));
        }
        s.blocks.push(plain(&who));
        if let Some(scope) = &h.scope {
            s.blocks
                .push(para(Text::labelled("Scope.", &sentence(scope))));
        }
    }

    fn collection(&self, s: &mut Section) {
        s.blocks.push(plain(
            "We tell you before we collect personal information, and why. Each purpose below rests on one legal basis, which decides what you can do about it.",
        ));
        for &basis in BASES {
            let items: Vec<Text> = self
                .f
                .purpose
                .iter()
                .filter(|p| {
                    self.purpose(p.id.get_ref())
                        .is_some_and(|i| i.basis == basis)
                })
                .map(|p| {
                    let mut about: Vec<String> =
                        p.description.iter().map(|d| sentence(d)).collect();
                    if let Some(parent) = p.parent.as_ref().and_then(|x| self.purpose(x.get_ref()))
                    {
                        about.push(format!("Part of {}.", parent.name));
                    }
                    let mut t = Text::headed(&p.name);
                    if !about.is_empty() {
                        t.push(" — ").push(&about.join(" "));
                    }
                    t.clauses(&strings(&p.clauses));
                    t
                })
                .collect();
            if items.is_empty() {
                continue;
            }
            let (label, meaning) = basis_explained(basis);
            s.blocks.push(para(Text::labelled(label, meaning)));
            s.blocks.push(Block::List(items));
        }
        if !self.f.category.is_empty() {
            s.blocks.push(para(Text::labelled(
                "The information we collect.",
                "Which of it we collect from you depends on the service you use and your role in it; each service's section below says exactly what.",
            )));
            let rows = self
                .f
                .category
                .iter()
                .map(|c| {
                    let name = Text::tagged(&c.name, &c.clauses);
                    let mut about = c
                        .description
                        .as_deref()
                        .map_or_else(|| "—".to_string(), sentence);
                    // What the server enforces (C044), said where the category is.
                    if c.transport.as_ref().is_some_and(|t| t.get_ref() == "tls") {
                        let tls = "Crosses the Internet to and from us only encrypted (HTTPS).";
                        about = if about == "—" {
                            tls.to_string()
                        } else {
                            format!("{about} {tls}")
                        };
                    }
                    let kept = if c.transient && c.retention.is_none() {
                        "Not stored".to_string()
                    } else {
                        self.retention_words(c.retention.as_ref())
                    };
                    vec![name, Text::auto(&about), Text::auto(&kept)]
                })
                .collect();
            s.blocks.push(Block::Table(Table {
                header: vec!["Information".into(), "What it is".into(), "Kept".into()],
                rows,
            }));
        }
        if !self.f.retention.is_empty() {
            s.blocks.push(para(Text::labelled(
                "How long we keep it.",
                "We keep personal information only as long as the rule that applies to it says, then delete it.",
            )));
            let items = self
                .f
                .retention
                .iter()
                .map(|r| {
                    let mut t = Text::headed(&r.name);
                    let words = period_words(r.period.get_ref());
                    if !r.name.eq_ignore_ascii_case(&words) {
                        t.push(&format!(" — {words}."));
                    }
                    if let Some(d) = &r.description {
                        t.push(" ").push(&sentence(d));
                    }
                    t.clauses(&strings(&r.clauses));
                    t
                })
                .collect();
            s.blocks.push(Block::List(items));
        }
    }

    fn use_(&self, s: &mut Section) {
        s.blocks.push(plain(
            "We use personal information for the purposes we named when we collected it, and for their narrower parts. Using it for any other purpose needs that purpose's own basis — your consent, your not having objected, or the law — and a later version of this policy never widens how information collected under an earlier version may be used without your consent.",
        ));
        if self.p.purposes().is_empty() {
            return;
        }
        // What roles collect for a purpose, or for a broader purpose it refines.
        let collected_for = |id: Option<crate::PurposeId>| {
            let mut used = crate::CategorySet::EMPTY;
            for role in self.p.services().iter().flat_map(|s| &s.roles) {
                if id.is_some_and(|id| role.allowed_purposes.contains(id)) {
                    used = used.union(role.collects).union(role.optional);
                }
            }
            used
        };
        let rows = self
            .p
            .purposes()
            .iter()
            .map(|purpose| {
                let used = collected_for(self.p.purpose_id(&purpose.id).ok());
                let parent = purpose.parent.and_then(|p| self.p.purpose(p));
                let mut name = Text::auto(&purpose.name);
                name.clauses(&purpose.clauses);
                let used = match parent {
                    Some(parent)
                        if !used.is_empty()
                            && collected_for(self.p.purpose_id(&parent.id).ok()) == used =>
                    {
                        format!("Same as {}", parent.name)
                    }
                    _ if used.is_empty() => "—".to_string(),
                    _ => join_and(
                        &used
                            .iter()
                            .filter_map(|c| self.p.category(c).map(|c| c.name.clone()))
                            .collect::<Vec<_>>(),
                    ),
                };
                vec![
                    name,
                    Text::auto(basis_short(purpose.basis)),
                    Text::auto(&used),
                ]
            })
            .collect();
        s.blocks.push(Block::Table(Table {
            header: vec![
                "Purpose".into(),
                "Basis".into(),
                "Information collected for it".into(),
            ],
            rows,
        }));
    }

    fn choices(&self, s: &mut Section) {
        s.blocks.push(plain(
            "You decide about your personal information in the following ways.",
        ));
        let privacy = self.email(|c| &c.privacy_email);
        let unsubscribe = self.email(|c| &c.unsubscribe_email);
        let address = self.postal_address();
        if !self.f.right.is_empty() {
            let items = self
                .f
                .right
                .iter()
                .map(|r| {
                    let email = if r.id.get_ref() == "unsubscribe" {
                        unsubscribe.as_ref().or(privacy.as_ref())
                    } else {
                        privacy.as_ref()
                    };
                    let about = r.description.as_deref();
                    self.right(r, about, email.map(String::as_str), address.is_some())
                })
                .collect();
            s.blocks.push(Block::List(items));
        }
        let deadlines: Vec<String> = RequestKind::ALL
            .into_iter()
            .filter_map(|k| {
                self.p
                    .respond_days(k)
                    .map(|d| format!("{} within {d} days", request_name(k)))
            })
            .collect();
        if !deadlines.is_empty() {
            s.blocks.push(para(Text::labelled(
                "How long a request takes.",
                &format!(
                    "We answer a request for {}, counted from the day we receive it.",
                    join_and(&deadlines)
                ),
            )));
        }
        if let Some(email) = &unsubscribe {
            let mut t = Text::default();
            t.push("To stop promotional email, write to ");
            t.link(email, format!("mailto:{email}"));
            t.push(" with your name and email address");
            t.push(if address.is_some() {
                ", or send a letter to:"
            } else {
                "."
            });
            s.blocks.push(para(t));
            if let Some(a) = &address {
                s.blocks.push(para(a.clone()));
            }
        }
        let named = |basis: Basis| -> Vec<String> {
            self.p
                .purposes()
                .iter()
                .filter(|p| p.basis == basis)
                .map(|p| p.name.clone())
                .collect()
        };
        let consent = named(Basis::Consent);
        if !consent.is_empty() {
            s.blocks.push(para(Text::labelled(
                "Consent.",
                &format!(
                    "We ask you before we use your information for {}. Silence, a pre-ticked box or inactivity is never consent, and you may withdraw your consent at any time; we stop from then on.",
                    join_and(&consent)
                ),
            )));
        }
        let opt_out = named(Basis::OptOut);
        if !opt_out.is_empty() {
            s.blocks.push(para(Text::labelled(
                "Objecting.",
                &format!(
                    "We may use your information for {} until you object. You may object at any time; we stop from then on.",
                    join_and(&opt_out)
                ),
            )));
        }
    }

    /// A right: its name, what it is `about`, how to exercise it (`email`: where requests by
    /// email go), when we answer, and its clause tag.
    fn right(
        &self,
        r: &model::Right,
        about: Option<&str>,
        email: Option<&str>,
        has_address: bool,
    ) -> Text {
        let mut t = Text::headed(&r.name);
        t.push(" —");
        if let Some(d) = about {
            t.push(" ").push(&sentence(d));
        }
        self.push_channels(&mut t, &r.channels, email, has_address);
        if let Some(days) = self.p.right_due_days(r) {
            t.push(&format!(" We answer within {days} days."));
        }
        t.clauses(&strings(&r.clauses));
        t
    }

    /// ` How: online at URL, by email to X or by letter to the postal address below.`
    fn push_channels(
        &self,
        t: &mut Text,
        channels: &[Str],
        email: Option<&str>,
        has_address: bool,
    ) {
        let mut parts: Vec<Text> = Vec::new();
        for c in channels {
            let mut part = Text::default();
            match c.get_ref().as_str() {
                "online" => {
                    part.push("online");
                    if let Some(url) = self.account_url() {
                        part.push(" at ");
                        Self::push_url(&mut part, url);
                    }
                }
                "email" => {
                    part.push("by email");
                    if let Some(e) = email {
                        part.push(" to ");
                        part.link(e, format!("mailto:{e}"));
                    }
                }
                "postal" => {
                    part.push(if has_address {
                        "by letter to our postal address (see Contact)"
                    } else {
                        "by letter"
                    });
                }
                "link" => {
                    part.push("through the link in each message we send");
                }
                other => {
                    part.push(other);
                }
            }
            parts.push(part);
        }
        if parts.is_empty() {
            return;
        }
        t.push(" How: ");
        let n = parts.len();
        for (i, part) in parts.into_iter().enumerate() {
            if i > 0 {
                t.push(if i + 1 == n { " or " } else { ", " });
            }
            for inline in part.0 {
                match inline {
                    Inline::Text(s) => t.raw(&s),
                    other => t.0.push(other),
                }
            }
        }
        t.push(".");
    }

    fn sharing(&self, s: &mut Section) {
        if self.f.recipient.is_empty() {
            s.blocks
                .push(plain("We do not share personal information with anyone."));
            return;
        }
        s.blocks.push(plain(
            "We share personal information only with the recipients below, only for the purposes listed for each, and only the minimum information each needs for that purpose — nothing more.",
        ));
        for r in &self.f.recipient {
            let mut t = Text::headed(&r.name);
            let kind = r.kind.as_ref().map_or("", |k| k.get_ref().as_str());
            t.push(&format!(" — {}.", recipient_kind_label(kind)));
            if let Some(d) = &r.description {
                t.push(" ").push(&sentence(d));
            }
            if let Some(region) = &r.region {
                t.push(&format!(
                    " Processes information in {}.",
                    self.region_name(region.get_ref())
                ));
            }
            t.clauses(&strings(&r.clauses));
            s.blocks.push(para(t));
            let items: Vec<Text> = r
                .allow
                .iter()
                .map(|a| {
                    let mut t = Text::default();
                    t.push(&format!(
                        "For {}: {}.",
                        self.purpose_with_basis(a.purpose.get_ref()),
                        join_and(&self.category_names(&a.categories))
                    ));
                    t.clauses(&strings(&a.clauses));
                    t
                })
                .collect();
            if !items.is_empty() {
                s.blocks.push(Block::List(items));
            }
        }
    }

    fn security(&self, s: &mut Section) {
        s.blocks.push(plain(
            "We keep personal information encrypted, each person's under a key of its own; erasing your information destroys that key, so no copy of it can be read afterwards. Every use of your information is checked against this policy — who may use it, for which purpose, and which information that purpose needs — and recorded in a tamper-evident log before the information is released.",
        ));
    }

    fn cookies(&self, s: &mut Section) {
        if self.f.cookie.is_empty() {
            s.blocks.push(plain("We use no cookies or web beacons."));
            return;
        }
        s.blocks.push(plain(
            "A cookie is a small file a website keeps in your browser; a web beacon is a tiny invisible image in a page or an email that tells us it was viewed. We use the following.",
        ));
        let rows = self
            .f
            .cookie
            .iter()
            .map(|c| {
                let name = Text::tagged(&c.name, &c.clauses);
                let kind = match c.kind.get_ref().as_str() {
                    "web_beacon" => "Web beacon",
                    _ => "Cookie",
                };
                let purpose = self.purpose_name(c.purpose.get_ref());
                let required = if c.required { "Yes" } else { "No" };
                let about = c
                    .description
                    .as_deref()
                    .map_or_else(|| "—".to_string(), sentence);
                vec![
                    name,
                    Text::auto(kind),
                    Text::auto(&purpose),
                    Text::auto(&self.category_name(c.category.get_ref())),
                    Text::auto(required),
                    Text::auto(&about),
                ]
            })
            .collect();
        s.blocks.push(Block::Table(Table {
            header: vec![
                "Name".into(),
                "Type".into(),
                "Purpose".into(),
                "Information".into(),
                "Needed for the site to work".into(),
                "What it does".into(),
            ],
            rows,
        }));
    }

    fn children(&self, s: &mut Section) {
        match self.p.minimum_age() {
            Some(age) => s.blocks.push(plain(&format!(
                "Our services are not meant for anyone under {age}, and we do not knowingly collect personal information from them. We refuse a collection from someone who tells us they are under {age}, and if we learn that we hold information about someone under {age}, we delete it."
            ))),
            None => s.blocks.push(plain("This policy sets no minimum age.")),
        }
    }

    fn transfers(&self, s: &mut Section) {
        if self.f.region.is_empty() && self.f.transfer.is_empty() {
            s.blocks.push(plain(
                "This policy names no regions and no transfers between them.",
            ));
            return;
        }
        if !self.f.region.is_empty() {
            s.blocks.push(plain(
                "We and our recipients process personal information in these regions:",
            ));
            let items = self
                .f
                .region
                .iter()
                .map(|r| {
                    let mut t = Text::headed(&r.name);
                    let there: Vec<String> = self
                        .f
                        .recipient
                        .iter()
                        .filter(|x| {
                            x.region
                                .as_ref()
                                .is_some_and(|g| g.get_ref() == r.id.get_ref())
                        })
                        .map(|x| x.name.clone())
                        .collect();
                    if !there.is_empty() {
                        t.push(&format!(" — recipients there: {}.", join_and(&there)));
                    }
                    t.clauses(&strings(&r.clauses));
                    t
                })
                .collect();
            s.blocks.push(Block::List(items));
        }
        if self.f.transfer.is_empty() {
            s.blocks.push(plain(
                "We do not transfer personal information between these regions.",
            ));
            return;
        }
        s.blocks.push(plain(
            "Personal information may move between regions only as follows:",
        ));
        let items = self
            .f
            .transfer
            .iter()
            .map(|x| {
                let mut t = Text::headed(&format!("To {}", self.region_name(x.to.get_ref())));
                let purposes: Vec<String> = x
                    .purposes
                    .iter()
                    .map(|p| self.purpose_name(p.get_ref()))
                    .collect();
                if !purposes.is_empty() {
                    t.push(&format!(" — for {}", join_and(&purposes)));
                }
                let recipients: Vec<String> = x
                    .recipients
                    .iter()
                    .map(|r| self.recipient_name(r.get_ref()))
                    .collect();
                if recipients.is_empty() {
                    t.push(", to any recipient there.");
                } else {
                    t.push(&format!(", to {}.", join_and(&recipients)));
                }
                if let Some(d) = &x.description {
                    t.push(" ").push(&sentence(d));
                }
                t.clauses(&strings(&x.clauses));
                t
            })
            .collect();
        s.blocks.push(Block::List(items));
    }

    fn california(&self, s: &mut Section) {
        let privacy = self.email(|c| &c.privacy_email);
        let has_address = self.postal_address().is_some();
        match self
            .f
            .right
            .iter()
            .find(|r| r.id.get_ref() == "disclosure_list")
        {
            Some(r) => {
                let about = r.description.as_deref().unwrap_or(
                    "California residents may ask, once a year, which third parties we disclosed their personal information to for those parties' own direct marketing in the preceding year",
                );
                let t = self.right(r, Some(about), privacy.as_deref(), has_address);
                s.blocks.push(para(t));
            }
            None => s.blocks.push(plain(
                "This policy declares no rights specific to California residents.",
            )),
        }
        let partners: Vec<String> = self
            .f
            .recipient
            .iter()
            .filter(|r| {
                r.kind
                    .as_ref()
                    .is_some_and(|k| k.get_ref() == "marketing_partner")
            })
            .map(|r| r.name.clone())
            .collect();
        if partners.is_empty() {
            s.blocks.push(plain(
                "We do not disclose personal information to third parties for their own direct marketing.",
            ));
        } else {
            s.blocks.push(plain(&format!(
                "We disclose personal information to third parties for their own direct marketing only as described under Sharing, to: {}.",
                join_and(&partners)
            )));
        }
    }

    fn changes(&self, s: &mut Section) {
        s.blocks.push(plain(&format!(
            "This is version {} of this policy, effective {}. When we change it, we post the new version here. Information keeps the purposes it was collected for: a new version never widens how information collected under an earlier version may be used without your consent.",
            self.h.version.get_ref(),
            long_date(self.h.effective.get_ref())
        )));
    }

    fn contact(&self, s: &mut Section) {
        if let Some(c) = &self.f.contacts {
            s.clauses = strings(&c.clauses);
            if let Some(e) = &c.privacy_email {
                let mut t = Text::default();
                t.push("For questions about this policy or your personal information, email ");
                t.link(e.get_ref(), format!("mailto:{}", e.get_ref()));
                t.push(".");
                s.blocks.push(para(t));
            }
            if let Some(a) = self.postal_address() {
                s.blocks.push(plain(if c.privacy_email.is_some() {
                    "Or write to:"
                } else {
                    "Write to:"
                }));
                s.blocks.push(para(a));
            }
            if let Some(url) = &c.account_url {
                let mut t = Text::default();
                t.push("Registered users can view and update their account online at ");
                Self::push_url(&mut t, url);
                t.push(".");
                s.blocks.push(para(t));
            }
        }
        if s.blocks.is_empty() {
            s.blocks.push(plain(&format!(
                "This notice is published by {}.",
                self.h.controller
            )));
        }
    }

    /// One section per service family, or per service without a family (or alone in it).
    fn service_sections(&self) -> Vec<Section> {
        // Families in order of first appearance, each with its services.
        let mut groups: Vec<(Option<&str>, Vec<&model::Service>)> = Vec::new();
        for svc in &self.f.service {
            let family = svc.family.as_deref();
            match groups
                .iter_mut()
                .find(|(f, _)| family.is_some() && *f == family)
            {
                Some((_, members)) => members.push(svc),
                None => groups.push((family, vec![svc])),
            }
        }
        groups
            .into_iter()
            .map(|(family, members)| match (family, members.as_slice()) {
                (Some(family), [_, _, ..]) => self.family_section(family, &members),
                _ => self.services_section(&members),
            })
            .collect()
    }

    fn family_section(&self, family: &str, members: &[&model::Service]) -> Section {
        let mut s = section(&format!("family-{}", slug(family)), &family_heading(family));
        let names: Vec<String> = members.iter().map(|m| m.name.clone()).collect();
        s.blocks.push(plain(&format!(
            "This section describes how we handle personal information in {}.",
            join_and(&names)
        )));
        // Services that collect and keep the same things share one subsection.
        let mut same: Vec<(Vec<Block>, Vec<&model::Service>)> = Vec::new();
        for m in members {
            let roles = self.role_blocks(m);
            match same.iter_mut().find(|(r, _)| *r == roles) {
                Some((_, v)) => v.push(m),
                None => same.push((roles, vec![m])),
            }
        }
        s.subsections = same
            .into_iter()
            .map(|(_, services)| self.services_section(&services))
            .collect();
        s
    }

    /// A section for services with the same roles: their descriptions, the roles, then their
    /// statements in file order.
    fn services_section(&self, services: &[&model::Service]) -> Section {
        let names: Vec<String> = services.iter().map(|m| m.name.clone()).collect();
        let first = services.first().map_or("", |m| m.id.get_ref().as_str());
        let mut s = section(&format!("service-{first}"), &join_and(&names));
        for m in services {
            for c in &m.clauses {
                if !s.clauses.contains(c.get_ref()) {
                    s.clauses.push(c.get_ref().clone());
                }
            }
            if let Some(d) = &m.description {
                if services.len() == 1 {
                    s.blocks.push(plain(&sentence(d)));
                } else {
                    let mut t = Text::headed(&m.name);
                    t.push(" — ").push(&sentence(d));
                    s.blocks.push(para(t));
                }
            }
        }
        // What the server enforces (C074), said where the service is.
        let tls: Vec<String> = services
            .iter()
            .filter(|m| m.transport.as_ref().is_some_and(|t| t.get_ref() == "tls"))
            .map(|m| m.name.clone())
            .collect();
        if !tls.is_empty() {
            s.blocks.push(plain(&format!(
                "What you give {} is sent to us only encrypted (HTTPS).",
                join_and(&tls)
            )));
        }
        if let Some(m) = services.first() {
            s.blocks.extend(self.role_blocks(m));
        }
        let ids: Vec<&str> = services.iter().map(|m| m.id.get_ref().as_str()).collect();
        s.blocks.extend(self.statements(|st| {
            st.service
                .as_ref()
                .is_some_and(|x| ids.contains(&x.get_ref().as_str()))
        }));
        s
    }

    /// Per role: what is collected, for which purposes, and which records are kept.
    fn role_blocks(&self, svc: &model::Service) -> Vec<Block> {
        let mut blocks = Vec::new();
        for role in &svc.role {
            let mut lead = Text::headed(&role.name);
            lead.clauses(&strings(&role.clauses));
            blocks.push(para(lead));
            let optional: Vec<&str> = role.optional.iter().map(|c| c.get_ref().as_str()).collect();
            let required: Vec<String> = role
                .collects
                .iter()
                .filter(|c| !optional.contains(&c.get_ref().as_str()))
                .map(|c| self.category_name(c.get_ref()))
                .collect();
            let mut items = Vec::new();
            if !required.is_empty() {
                items.push(Text::labelled(
                    "We collect:",
                    &format!("{}.", join_and(&required)),
                ));
            }
            if !role.optional.is_empty() {
                items.push(Text::labelled(
                    "You may choose to give:",
                    &format!("{}.", join_and(&self.category_names(&role.optional))),
                ));
            }
            if !role.purposes.is_empty() {
                // Grouped by basis, in order of first mention.
                let mut groups: Vec<(Option<Basis>, Vec<String>)> = Vec::new();
                for p in &role.purposes {
                    let info = self.purpose(p.get_ref());
                    let basis = info.map(|i| i.basis);
                    let name = info.map_or_else(|| p.get_ref().clone(), |i| i.name.clone());
                    match groups.iter_mut().find(|(b, _)| *b == basis) {
                        Some((_, names)) => names.push(name),
                        None => groups.push((basis, vec![name])),
                    }
                }
                for (basis, names) in &groups {
                    let label = match basis {
                        Some(b) => format!("For ({}):", basis_short(*b)),
                        None => "For:".to_string(),
                    };
                    items.push(Text::labelled(&label, &format!("{}.", join_and(names))));
                }
            }
            if !items.is_empty() {
                blocks.push(Block::List(items));
            }
            let rows: Vec<Vec<Text>> = role
                .records
                .iter()
                .filter_map(|r| {
                    self.f
                        .collection
                        .iter()
                        .find(|c| c.id.get_ref() == r.get_ref())
                })
                .map(|c| {
                    let name = Text::tagged(&c.name, &c.clauses);
                    let fields: Vec<String> = c
                        .field
                        .iter()
                        .map(|f| {
                            let field = f.name.get_ref().replace('_', " ");
                            let category = self.category_name(f.category.get_ref());
                            let mut s = if field.eq_ignore_ascii_case(&category) {
                                category
                            } else {
                                format!("{field} ({category})")
                            };
                            if f.optional {
                                s.push_str(", if given");
                            }
                            s
                        })
                        .collect();
                    vec![
                        name,
                        Text::auto(&fields.join("; ")),
                        Text::auto(&self.retention_words(c.retention.as_ref())),
                    ]
                })
                .collect();
            if !rows.is_empty() {
                blocks.push(Block::Table(Table {
                    header: vec![
                        "Records we keep".into(),
                        "Each record holds".into(),
                        "Kept".into(),
                    ],
                    rows,
                }));
            }
        }
        blocks
    }
}

// ---------------------------------------------------------------------------------------------
// Markdown.

/// Escapes text for Markdown: every character that could start markup is backslash-escaped,
/// and at the start of a line so is anything that would start a block (list, heading).
fn md_escape(s: &str, line_start: bool) -> String {
    let mut out = String::with_capacity(s.len() + 8);
    // A leading `1.` or `1)` would start an ordered list.
    let digits = s.chars().take_while(char::is_ascii_digit).count();
    let marker =
        (line_start && digits > 0 && s.chars().nth(digits).is_some_and(|c| c == '.' || c == ')'))
            .then_some(digits);
    for (i, c) in s.char_indices() {
        let escape = match c {
            '\\' | '`' | '*' | '_' | '[' | ']' | '<' | '>' | '|' | '~' | '#' => true,
            '-' | '+' | '=' => line_start && i == 0,
            '.' | ')' => marker == Some(i),
            // Only where it would start an entity reference, so `AT&T` stays readable.
            '&' => s.get(i + 1..).is_some_and(|r| {
                let name = r
                    .chars()
                    .take_while(|c| c.is_ascii_alphanumeric() || *c == '#')
                    .count();
                name > 0 && r.chars().nth(name) == Some(';')
            }),
            _ => false,
        };
        if escape {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// Percent-encodes the characters that would end a Markdown link destination.
fn md_href(href: &str) -> String {
    let mut out = String::with_capacity(href.len());
    for c in href.chars() {
        match c {
            ' ' => out.push_str("%20"),
            '(' => out.push_str("%28"),
            ')' => out.push_str("%29"),
            '<' => out.push_str("%3C"),
            '>' => out.push_str("%3E"),
            '\\' => out.push_str("%5C"),
            _ => out.push(c),
        }
    }
    out
}

/// Inline text; `indent` continues a line after a break, and in a table a break is `<br>`.
fn md_text(t: &Text, indent: Option<&str>) -> String {
    let mut out = String::new();
    let mut line_start = true;
    for inline in &t.0 {
        match inline {
            Inline::Text(s) => out.push_str(&md_escape(s, line_start)),
            Inline::Strong(s) => {
                out.push_str("**");
                out.push_str(&md_escape(s, false));
                out.push_str("**");
            }
            Inline::Link { text, href } => {
                out.push('[');
                out.push_str(&md_escape(text, false));
                out.push_str("](");
                out.push_str(&md_href(href));
                out.push(')');
            }
            Inline::Break => {
                match indent {
                    Some(indent) => {
                        out.push_str("\\\n");
                        out.push_str(indent);
                    }
                    None => out.push_str("<br>"),
                }
                line_start = true;
                continue;
            }
            Inline::Clauses(c) => {
                if !out.is_empty() && !out.ends_with(' ') {
                    out.push(' ');
                }
                out.push_str("<sub>");
                out.push_str(&md_escape(&c.join(" "), false));
                out.push_str("</sub>");
            }
        }
        line_start = false;
    }
    out
}

fn md_block(b: &Block) -> String {
    match b {
        Block::Paragraph(t) => md_text(t, Some("")),
        Block::List(items) => items
            .iter()
            .map(|t| format!("- {}", md_text(t, Some("  "))))
            .collect::<Vec<_>>()
            .join("\n"),
        Block::Table(t) => {
            let row = |cells: Vec<String>| format!("| {} |", cells.join(" | "));
            let mut lines = vec![
                row(t.header.iter().map(|h| md_escape(h, false)).collect()),
                row(t.header.iter().map(|_| "---".to_string()).collect()),
            ];
            for r in &t.rows {
                lines.push(row(r
                    .iter()
                    .map(|c| {
                        let s = md_text(c, None);
                        if s.is_empty() { " ".to_string() } else { s }
                    })
                    .collect()));
            }
            lines.join("\n")
        }
    }
}

fn md_section(s: &Section, level: usize, chunks: &mut Vec<String>) {
    chunks.push(format!("<a id=\"{}\"></a>", html_escape(&s.anchor)));
    chunks.push(format!(
        "{} {}",
        "#".repeat(level.min(6)),
        md_escape(&s.heading, false)
    ));
    if !s.clauses.is_empty() {
        chunks.push(format!(
            "<sub>{}</sub>",
            md_escape(&s.clauses.join(" "), false)
        ));
    }
    chunks.extend(s.blocks.iter().map(md_block));
    for sub in &s.subsections {
        md_section(sub, level + 1, chunks);
    }
}

// ---------------------------------------------------------------------------------------------
// HTML.

/// Tables with more columns than this are `wide`: on a wide screen they may be wider than the
/// text, up to 64rem, so that their longest column is not squeezed to a few words a line.
const WIDE_TABLE: usize = 4;

/// Inline CSS. INVARIANT: no `url(`, no `@import`: the page fetches nothing.
///
/// Tables never scroll sideways: header cells wrap, and on a narrow screen (56rem or less)
/// each row is shown as a card — the first cell as its title, the others as `heading: value`
/// (the heading from the cell's `data-label`), the last one on a line of its own.
const STYLE: &str = r#":root{color-scheme:light dark;--fg:#1f2328;--muted:#59636e;--bg:#fff;--rule:#d1d9e0;--link:#0a58b5;--tag:#6e7781}
@media (prefers-color-scheme:dark){:root{--fg:#e6edf3;--muted:#9198a1;--bg:#0d1117;--rule:#3d444d;--link:#4493f8;--tag:#8b949e}}
*{box-sizing:border-box}
body{margin:0;background:var(--bg);color:var(--fg);font:1.0625rem/1.6 system-ui,-apple-system,"Segoe UI",Roboto,"Helvetica Neue",Arial,sans-serif;-webkit-text-size-adjust:100%;overflow-wrap:break-word}
main{max-width:46rem;margin:0 auto;padding:2.5rem 1.25rem 4rem}
h1{font-size:2rem;line-height:1.2;margin:0 0 .5rem}
h2{font-size:1.4rem;line-height:1.3;margin:2.75rem 0 .75rem;padding-top:1rem;border-top:1px solid var(--rule)}
h3{font-size:1.15rem;line-height:1.35;margin:2rem 0 .5rem}
h2,h3{scroll-margin-top:1rem}
p,ul,ol{margin:0 0 1rem}
ul,ol{padding-left:1.5rem}
li{margin:.3rem 0}
a{color:var(--link);text-underline-offset:.15em}
a:focus-visible{outline:2px solid var(--link);outline-offset:2px;border-radius:2px}
header p{color:var(--muted);margin:0}
nav h2{border-top:0;margin-top:2rem;font-size:1.1rem}
nav ol{columns:2 15rem;column-gap:2rem}
nav li{break-inside:avoid;margin:.15rem 0}
.table{overflow-x:auto;margin:0 0 1.25rem}
.table.wide{margin-inline:calc((100% - max(100%, min(100vw - 2.5rem, 64rem))) / 2)}
table{border-collapse:collapse;width:100%;font-size:.92rem;line-height:1.45}
th,td{text-align:left;vertical-align:top;padding:.45rem .6rem;border-bottom:1px solid var(--rule)}
thead th{border-bottom:2px solid var(--rule);vertical-align:bottom}
tbody th{font-weight:600}
td a,th a{overflow-wrap:anywhere}
.clauses{font:400 .68rem/1 ui-monospace,SFMono-Regular,Menlo,Consolas,monospace;color:var(--tag);letter-spacing:.02em;vertical-align:.1em}
p.clauses{margin:-.4rem 0 .9rem}
@media (max-width:56rem){
.table,.table.wide{margin-inline:0}
.table table{font-size:.875rem;line-height:1.4}
.table table,.table tbody,.table tr,.table th,.table td{display:block}
.table thead{position:absolute;width:1px;height:1px;overflow:hidden;clip-path:inset(50%)}
.table tr{padding:.55rem 0;border-bottom:1px solid var(--rule)}
.table tbody tr:first-child{border-top:2px solid var(--rule)}
.table th,.table td{padding:0;border:0}
.table td{display:inline}
.table td::before{content:attr(data-label) ": ";color:var(--muted)}
.table td+td::before{content:"\a0· " attr(data-label) ": "}
.table td:last-child{display:block;margin-top:.15rem}
.table td:last-child::before{content:attr(data-label) ": "}
}
@media print{
body{background:#fff;color:#000;font-size:11pt;line-height:1.45}
main{max-width:none;padding:0}
nav{display:none}
a{color:inherit}
a[href^="http"]::after{content:" (" attr(href) ")";font-size:.85em;word-break:break-all}
h2{border-top:0;break-after:avoid}
h3{break-after:avoid}
tr,li{break-inside:avoid}
.table{overflow:visible}
.clauses{color:#555}
}
"#;

/// Escapes text for HTML content and attribute values.
pub fn html_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 8);
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            _ => out.push(c),
        }
    }
    out
}

fn html_text(t: &Text, out: &mut String) {
    for (i, inline) in t.0.iter().enumerate() {
        match inline {
            Inline::Text(s) => out.push_str(&html_escape(s)),
            Inline::Strong(s) => {
                out.push_str("<strong>");
                out.push_str(&html_escape(s));
                out.push_str("</strong>");
            }
            Inline::Link { text, href } => {
                out.push_str("<a href=\"");
                out.push_str(&html_escape(href));
                out.push_str("\">");
                out.push_str(&html_escape(text));
                out.push_str("</a>");
            }
            Inline::Break => out.push_str("<br>"),
            Inline::Clauses(c) => {
                if i > 0 && !out.ends_with(' ') {
                    out.push(' ');
                }
                out.push_str("<span class=\"clauses\">");
                out.push_str(&html_escape(&c.join(" ")));
                out.push_str("</span>");
            }
        }
    }
}

fn html_block(b: &Block, out: &mut String, class: Option<&str>) {
    match b {
        Block::Paragraph(t) => {
            match class {
                Some(c) => {
                    out.push_str("<p class=\"");
                    out.push_str(&html_escape(c));
                    out.push_str("\">");
                }
                None => out.push_str("<p>"),
            }
            html_text(t, out);
            out.push_str("</p>\n");
        }
        Block::List(items) => {
            out.push_str("<ul>\n");
            for t in items {
                out.push_str("<li>");
                html_text(t, out);
                out.push_str("</li>\n");
            }
            out.push_str("</ul>\n");
        }
        Block::Table(t) => {
            out.push_str(if t.header.len() > WIDE_TABLE {
                "<div class=\"table wide\">\n<table>\n<thead>\n<tr>"
            } else {
                "<div class=\"table\">\n<table>\n<thead>\n<tr>"
            });
            for h in &t.header {
                out.push_str("<th scope=\"col\">");
                out.push_str(&html_escape(h));
                out.push_str("</th>");
            }
            out.push_str("</tr>\n</thead>\n<tbody>\n");
            for r in &t.rows {
                out.push_str("<tr>");
                for (i, c) in r.iter().enumerate() {
                    if i == 0 {
                        out.push_str("<th scope=\"row\">");
                    } else {
                        // The column's heading, which a narrow screen shows before the cell.
                        out.push_str("<td data-label=\"");
                        out.push_str(&html_escape(t.header.get(i).map_or("", String::as_str)));
                        out.push_str("\">");
                    }
                    html_text(c, out);
                    out.push_str(if i == 0 { "</th>" } else { "</td>" });
                }
                out.push_str("</tr>\n");
            }
            out.push_str("</tbody>\n</table>\n</div>\n");
        }
    }
}

fn html_section(s: &Section, level: usize, out: &mut String) {
    let level = level.min(6);
    let anchor = html_escape(&s.anchor);
    out.push_str(&format!(
        "<section aria-labelledby=\"{anchor}\">\n<h{level} id=\"{anchor}\">"
    ));
    out.push_str(&html_escape(&s.heading));
    out.push_str(&format!("</h{level}>\n"));
    if !s.clauses.is_empty() {
        out.push_str("<p class=\"clauses\">");
        out.push_str(&html_escape(&s.clauses.join(" ")));
        out.push_str("</p>\n");
    }
    for b in &s.blocks {
        html_block(b, out, None);
    }
    for sub in &s.subsections {
        html_section(sub, level + 1, out);
    }
    out.push_str("</section>\n");
}

#[cfg(test)]
mod tests {
    use super::*;

    const TEXT: &str = r#"
[policy]
id = "acme"
version = "2024-03-01"
effective = "2024-03-01"
title = "Acme Privacy Policy"
controller = "Acme & Sons"
parent_company = "Acme Holdings, Inc."
scope = "This policy covers the acme.example website and is applicable worldwide"
minimum_age = 13
clause_range = ["C001", "C080"]
clauses = ["C001", "C002"]

[contacts]
privacy_email = "privacy@acme.example"
unsubscribe_email = "unsubscribe@acme.example"
postal_address = ["Acme", "Attn: Legal | Department", "1 Main Street"]
account_url = "https://acme.example/account"
clauses = ["C030"]

[[retention]]
id = "account"
name = "Account lifetime"
period = "account"
description = "Deleted when you close your account"
clauses = ["C040"]

[[retention]]
id = "short"
name = "Short"
period = "P30D"

[[category]]
id = "contact.email"
name = "Email address"
identifier = true
retention = "account"
description = "Where we write to you"
clauses = ["C004"]

[[category]]
id = "contact.name"
name = "Name"
retention = "account"

[[category]]
id = "network.ip"
name = "IP address"
retention = "short"

[[category]]
id = "content.chat"
name = "Chat message"
retention = "short"

[[category]]
id = "referral.email"
name = "Friend's email address"
transient = true

[[purpose]]
id = "service"
basis = "service"
name = "Providing the service"
description = "Running the meetings you host or join"
clauses = ["C017"]

[[purpose]]
id = "service.support"
parent = "service"
basis = "service"
name = "Support"

[[purpose]]
id = "billing"
basis = "contract"
name = "Billing"

[[purpose]]
id = "marketing"
basis = "opt_out"
name = "Our newsletters"

[[purpose]]
id = "marketing.partners"
parent = "marketing"
basis = "consent"
name = "Partner offers"
description = "Offers from <partners> we choose"

[[purpose]]
id = "legal"
basis = "legal"
name = "Legal process"

[[collection]]
id = "chat_messages"
name = "Chat messages"
retention = "short"
clauses = ["C065"]
[[collection.field]]
name = "sender_email"
category = "contact.email"
[[collection.field]]
name = "body"
category = "content.chat"
optional = true

[[service]]
id = "meeting-center"
name = "Meeting Center"
family = "meeting-services"
description = "Online meetings"
clauses = ["C064"]
[[service.role]]
id = "host"
name = "Host"
collects = ["contact.email", "contact.name", "network.ip"]
optional = ["contact.name"]
purposes = ["service", "billing"]
records = ["chat_messages"]
clauses = ["C065"]

[[service]]
id = "event-center"
name = "Event Center"
family = "meeting-services"
description = "Webinars"
[[service.role]]
id = "host"
name = "Host"
collects = ["contact.email", "contact.name", "network.ip"]
optional = ["contact.name"]
purposes = ["service", "billing"]
records = ["chat_messages"]
clauses = ["C065"]

[[service]]
id = "training-center"
name = "Training Center"
family = "meeting-services"
[[service.role]]
id = "trainee"
name = "Trainee"
collects = ["contact.email"]
purposes = ["service"]

[[service]]
id = "connect"
name = "WebEx Connect"
description = "Instant messaging, see https://connect.example/about."
[[service.role]]
id = "user"
name = "User"
collects = ["contact.email", "content.chat"]
purposes = ["service", "marketing"]

[[recipient]]
id = "payments"
name = "Payment processor"
kind = "processor"
region = "us"
description = "Charges your card"
[[recipient.allow]]
purpose = "billing"
categories = ["contact.name", "contact.email"]
clauses = ["C036"]

[[recipient]]
id = "partners"
name = "Marketing partners"
kind = "marketing_partner"
[[recipient.allow]]
purpose = "marketing.partners"
categories = ["contact.email"]

[[region]]
id = "us"
name = "United States"

[[region]]
id = "eu"
name = "European Union"

[[transfer]]
to = "us"
purposes = ["billing"]
recipients = ["payments"]
description = "Card payments are processed in the US"

[[cookie]]
id = "session"
kind = "cookie"
name = "Session | login"
purpose = "service"
category = "network.ip"
required = true
description = "Keeps you signed in"
clauses = ["C045"]

[[cookie]]
id = "open"
kind = "web_beacon"
name = "Email open beacon"
purpose = "marketing"
category = "network.ip"

[[right]]
id = "access"
name = "See and correct your information"
channels = ["online", "email"]
due_days = 30
clauses = ["C029"]

[[right]]
id = "unsubscribe"
name = "Unsubscribe"
channels = ["link", "email", "postal"]

[[right]]
id = "disclosure_list"
name = "Shine the Light"
channels = ["email", "postal"]
due_days = 30

[[statement]]
id = "overview.read"
section = "overview"
text = "We encourage you to read this policy."
clauses = ["C003"]

[[statement]]
id = "use.list"
section = "use"
text = """
Some of the ways we may use your Personal Information include:
* To process your orders.
* To keep you up to date,
  provided that you can edit your preferences.

Write to privacy@acme.example about *anything*.
"""
clauses = ["C016", "C017"]

[[statement]]
id = "security.script"
section = "security"
text = "Never trust <script>alert('x')</script> & \"quotes\" | pipes."

[[statement]]
id = "changes.assent"
section = "changes"
text = "1. Your continued use signifies assent."

[[statement]]
id = "meeting.stored"
service = "event-center"
text = "Information is also stored on the computer you use."
clauses = ["C066"]

[[statement]]
id = "connect.employer"
service = "connect"
text = "If your employer subscribes, your information is available to your employer."
"#;

    fn sample() -> Policy {
        match Policy::from_str("t.toml", TEXT) {
            Ok(p) => p,
            Err(d) => panic!("{d}"),
        }
    }

    /// The policies every property test runs on: the sample and the built-in.
    fn policies() -> Vec<Policy> {
        match Policy::builtin() {
            Ok(builtin) => vec![sample(), builtin],
            Err(d) => panic!("{d}"),
        }
    }

    fn html_unescape(s: &str) -> String {
        s.replace("&lt;", "<")
            .replace("&gt;", ">")
            .replace("&quot;", "\"")
            .replace("&#39;", "'")
            .replace("&amp;", "&")
    }

    fn collapse(s: &str) -> String {
        s.split_whitespace().collect::<Vec<_>>().join(" ")
    }

    /// The text a reader sees in an HTML page: tags dropped, entities decoded.
    fn html_plain(html: &str) -> String {
        let body = html.split_once("<body>").map_or(html, |(_, b)| b);
        let mut out = String::new();
        let mut tag: Option<String> = None;
        for c in body.chars() {
            match (&mut tag, c) {
                (None, '<') => tag = Some(String::new()),
                (Some(t), '>') => {
                    // Block elements separate words; inline ones do not.
                    let name: String = t
                        .trim_start_matches('/')
                        .chars()
                        .take_while(char::is_ascii_alphanumeric)
                        .collect();
                    if !["a", "span", "strong"].contains(&name.as_str()) {
                        out.push(' ');
                    }
                    tag = None;
                }
                (Some(t), c) => t.push(c),
                (None, c) => out.push(c),
            }
        }
        collapse(&html_unescape(&out))
    }

    /// The text a reader sees in Markdown: links reduced to their text, emphasis, raw HTML and
    /// backslash escapes dropped.
    fn md_plain(md: &str) -> String {
        let mut out = String::new();
        let mut chars = md.chars().peekable();
        while let Some(c) = chars.next() {
            match c {
                '\\' => {
                    if let Some(n) = chars.next() {
                        out.push(if n == '\n' { ' ' } else { n });
                    }
                }
                '[' => {}
                '|' => out.push(' '),
                ']' if chars.peek() == Some(&'(') => {
                    for n in chars.by_ref() {
                        if n == ')' {
                            break;
                        }
                    }
                }
                '*' if chars.peek() == Some(&'*') => {
                    chars.next();
                }
                '<' => {
                    for n in chars.by_ref() {
                        if n == '>' {
                            break;
                        }
                    }
                }
                _ => out.push(c),
            }
        }
        collapse(&out)
    }

    /// The lines of a statement as a reader sees them: one per paragraph line or list item.
    fn statement_lines(text: &str) -> Vec<String> {
        text.lines()
            .map(|l| l.trim())
            .map(|l| l.strip_prefix("* ").unwrap_or(l))
            .filter(|l| !l.is_empty())
            .map(collapse)
            .collect()
    }

    fn md_headings(md: &str) -> Vec<String> {
        md.lines()
            .filter(|l| l.starts_with('#'))
            .map(|l| md_plain(l.trim_start_matches('#')))
            .collect()
    }

    fn html_headings(html: &str) -> Vec<String> {
        let mut out = Vec::new();
        let mut rest = html;
        while let Some(i) = rest.find("<h") {
            let after = rest.get(i + 2..).unwrap_or("");
            let Some(level) = after.chars().next().filter(|c| ('1'..='6').contains(c)) else {
                rest = after;
                continue;
            };
            let close = format!("</h{level}>");
            let start = after.find('>').map_or(0, |j| j + 1);
            let end = after.find(&close).unwrap();
            out.push(html_plain(&after[start..end]));
            rest = &after[end..];
        }
        out
    }

    #[test]
    fn every_statement_appears_in_both_formats() {
        for p in policies() {
            let (md, html) = (md_plain(&markdown(&p)), html_plain(&html(&p)));
            for st in &p.file().statement {
                for line in statement_lines(&st.text) {
                    assert!(
                        html.contains(&line),
                        "{}: html lacks {line:?}",
                        st.id.get_ref()
                    );
                    assert!(
                        md.contains(&line),
                        "{}: markdown lacks {line:?}",
                        st.id.get_ref()
                    );
                }
            }
        }
    }

    #[test]
    fn statements_follow_generated_content_in_file_order() {
        let p = sample();
        let md = markdown(&p);
        let at = |s: &str| md.find(s).unwrap_or_else(|| panic!("missing {s:?}\n{md}"));
        // `use.list` comes after the purposes table, and within it file order holds.
        assert!(at("| Purpose |") < at("Some of the ways"));
        assert!(at("Some of the ways") < at("\\*anything\\*"));
        assert!(at("## Security") < at("Never trust") && at("Never trust") < at("## Cookies"));
        // A service statement lands in its service's section, after the records.
        assert!(at("### Meeting Center and Event Center") < at("stored on the computer"));
        assert!(at("| Records we keep |") < at("stored on the computer"));
        assert!(at("stored on the computer") < at("### Training Center"));
        assert!(at("## WebEx Connect") < at("your employer"));
    }

    #[test]
    fn statement_text_becomes_paragraphs_and_list_items() {
        let blocks = statement_blocks(
            "Intro:\n* one\n* two\n  continued\n\nLast\nline.",
            &["C001".into()],
        );
        assert_eq!(blocks.len(), 3);
        assert_eq!(blocks[0], Block::Paragraph(Text::auto("Intro:")));
        assert_eq!(
            blocks[1],
            Block::List(vec![Text::auto("one"), Text::auto("two continued")])
        );
        let mut last = Text::auto("Last line.");
        last.clauses(&["C001".into()]);
        assert_eq!(blocks[2], Block::Paragraph(last));
    }

    #[test]
    fn html_fetches_nothing() {
        for p in policies() {
            let html = html(&p);
            for needle in [
                "src=", "<link", "@import", "url(", "<script", "<img", "<iframe",
            ] {
                assert!(
                    !html.to_lowercase().contains(needle),
                    "html contains {needle:?}"
                );
            }
            assert!(html.starts_with("<!doctype html>\n<html lang=\"en\">"));
            assert!(
                html.contains("<meta charset=\"utf-8\">") && html.contains("name=\"viewport\"")
            );
            // The only URLs are links a person may follow.
            for (i, _) in html.match_indices("href=\"") {
                let target = &html[i + 6..];
                assert!(
                    ["#", "mailto:", "http://", "https://"]
                        .iter()
                        .any(|s| target.starts_with(s)),
                    "unexpected link {}",
                    &target[..target.find('"').unwrap()]
                );
            }
        }
    }

    #[test]
    fn text_is_escaped() {
        let p = sample();
        let html = html(&p);
        assert!(html.contains("Never trust &lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt; &amp; &quot;quotes&quot; | pipes."));
        assert!(html.contains("Acme &amp; Sons"));
        assert!(html.contains("Offers from &lt;partners&gt; we choose"));
        let md = markdown(&p);
        let unescaped = md.replace("\\<", "");
        assert!(!unescaped.contains("<script") && !unescaped.contains("<partners>"));
        assert!(
            md.contains(r#"Never trust \<script\>alert('x')\</script\> & "quotes" \| pipes."#),
            "{md}"
        );
        // A statement starting like an ordered list stays a paragraph.
        assert!(md.contains("\n1\\. Your continued use"));
        // Emphasis markers in text stay literal.
        assert!(md.contains("about \\*anything\\*."));
    }

    #[test]
    fn markdown_tables_escape_pipes() {
        let md = markdown(&sample());
        let row = md.lines().find(|l| l.contains("Session")).unwrap();
        assert!(
            row.starts_with(r"| Session \| login <sub>C045</sub> | Cookie |"),
            "{row}"
        );
        // Every row of a table has as many cells as its header.
        let mut columns = None;
        for line in md.lines() {
            if !line.starts_with('|') {
                columns = None;
                continue;
            }
            let cells = line.replace(r"\|", "").matches('|').count();
            assert_eq!(*columns.get_or_insert(cells), cells, "{line}");
        }
    }

    #[test]
    fn every_service_has_a_section() {
        for p in policies() {
            let doc = document(&p);
            let (md, html) = (md_headings(&markdown(&p)), html_headings(&html(&p)));
            let mut headings: Vec<&Section> = doc.sections.iter().collect();
            headings.extend(doc.sections.iter().flat_map(|s| &s.subsections));
            for svc in p.services() {
                assert!(
                    headings.iter().any(|s| s.heading.contains(&svc.name)),
                    "no section for {}",
                    svc.id
                );
                assert!(
                    md.iter().any(|h| h.contains(&svc.name)),
                    "markdown: no section for {}",
                    svc.id
                );
                assert!(
                    html.iter().any(|h| h.contains(&svc.name)),
                    "html: no section for {}",
                    svc.id
                );
            }
        }
        let doc = document(&sample());
        let names: Vec<&str> = doc.sections.iter().map(|s| s.heading.as_str()).collect();
        assert_eq!(
            names.get(12..),
            Some(&["Meeting services", "WebEx Connect"][..])
        );
        let family = &doc.sections[12];
        assert_eq!(family.anchor, "family-meeting-services");
        let subs: Vec<&str> = family
            .subsections
            .iter()
            .map(|s| s.heading.as_str())
            .collect();
        assert_eq!(subs, ["Meeting Center and Event Center", "Training Center"]);
    }

    #[test]
    fn both_formats_have_the_same_headings() {
        for p in policies() {
            let (md, html) = (md_headings(&markdown(&p)), html_headings(&html(&p)));
            assert_eq!(md, html);
            let doc = document(&p);
            assert_eq!(md.first(), Some(&doc.title));
            let core: Vec<&str> = CORE_SECTIONS.iter().map(|(_, h)| *h).collect();
            assert_eq!(
                doc.sections
                    .get(..core.len())
                    .map(|s| s.iter().map(|s| s.heading.as_str()).collect::<Vec<_>>()),
                Some(core)
            );
        }
    }

    #[test]
    fn core_sections_are_the_statement_sections() {
        let anchors: Vec<&str> = CORE_SECTIONS.iter().map(|(a, _)| *a).collect();
        assert_eq!(anchors, crate::compile::SECTIONS);
    }

    #[test]
    fn generated_content_says_what_the_policy_says() {
        let p = sample();
        let html = html_plain(&html(&p));
        let md = md_plain(&markdown(&p));
        for text in [
            "Revised and posted as of March 1, 2024.",
            "The parent company of Acme & Sons is Acme Holdings, Inc.",
            "Only with your consent.",
            "Partner offers — Offers from <partners> we choose. Part of Our newsletters.",
            "Email address C004 Where we write to you. Account lifetime (until the account is closed)",
            "Friend's email address — Not stored",
            "Short — 30 days.",
            "Support needed for the service Same as Providing the service",
            "For Billing (under a contract): Name and Email address.",
            "Payment processor — a service provider acting on our behalf",
            "To United States — for Billing, to Payment processor.",
            "not meant for anyone under 13",
            "We collect: Email address and IP address.",
            "You may choose to give: Name.",
            "For (needed for the service): Providing the service.",
            "For (under a contract): Billing.",
            "sender email (Email address); body (Chat message), if given",
            "to: Marketing partners.",
            "Shine the Light",
            "We answer within 30 days.",
            "How: online at https://acme.example/account or by email to privacy@acme.example.",
            "How: through the link in each message we send, by email to unsubscribe@acme.example or by letter",
            "This is version 2024-03-01 of this policy",
        ] {
            assert!(html.contains(text), "html lacks {text:?}");
            assert!(md.contains(text), "markdown lacks {text:?}");
        }
        assert!(!html.contains("Inc..") && !html.contains(" — —"));
    }

    #[test]
    fn emails_and_urls_become_links() {
        let p = sample();
        let html = html(&p);
        assert!(
            html.contains("<a href=\"mailto:privacy@acme.example\">privacy@acme.example</a> about")
        );
        assert!(html.contains(
            "see <a href=\"https://connect.example/about\">https://connect.example/about</a>."
        ));
        let md = markdown(&p);
        assert!(md.contains("[unsubscribe@acme.example](mailto:unsubscribe@acme.example)"));
        assert!(
            md.contains("Acme\\\nAttn: Legal \\| Department\\\n1 Main Street"),
            "postal address keeps its lines"
        );
        assert_eq!(link_target("acme.example"), None);
        assert_eq!(link_target("a@b"), None);
        assert_eq!(
            link_target("www.cisco.com").as_deref(),
            Some("http://www.cisco.com")
        );
        assert_eq!(link_target("javascript:alert(1)"), None);
    }

    #[test]
    fn clause_tags_are_shown_and_can_be_stripped() {
        let p = sample();
        let html = html(&p);
        assert!(html.contains("<span class=\"clauses\">C036</span>"));
        assert!(html.contains("<p class=\"clauses\">C001 C002</p>"));
        assert!(markdown(&p).contains("<sub>C016 C017</sub>"));
        let mut doc = document(&p);
        doc.strip_clauses();
        assert!(!doc.to_html().contains("class=\"clauses\""));
        assert!(!doc.to_markdown().contains("<sub>"));
    }

    #[test]
    fn anchors_are_unique() {
        let mut twins = vec![section("family-a-b", "A b"), section("family-a-b", "a-b")];
        twins[1].subsections.push(section("contents", "Contents"));
        unique_anchors(&mut twins);
        assert_eq!(twins[1].anchor, "family-a-b-2");
        assert_eq!(twins[1].subsections[0].anchor, "contents-2");
        for p in &policies() {
            let doc = document(p);
            let mut anchors = vec!["contents".to_string()];
            let mut stack: Vec<&Section> = doc.sections.iter().collect();
            while let Some(s) = stack.pop() {
                assert!(
                    !anchors.contains(&s.anchor),
                    "duplicate anchor {}",
                    s.anchor
                );
                anchors.push(s.anchor.clone());
                stack.extend(&s.subsections);
            }
        }
    }

    #[test]
    fn html_tables_and_toc_are_accessible() {
        let html = html(&sample());
        assert!(html.contains("<th scope=\"col\">Information</th>"));
        assert!(html.contains("<th scope=\"row\">Email address"));
        // Each data cell names its column, for the narrow-screen layout.
        assert!(html.contains("<td data-label=\"Kept\">"));
        assert!(html.contains("<td data-label=\"Needed for the site to work\">Yes</td>"));
        assert!(!html.contains("<td>"));
        // Only the six-column cookie table may be wider than the text.
        assert_eq!(html.matches("<div class=\"table wide\">").count(), 1);
        let cookies = &html[html.find("<h2 id=\"cookies\">").unwrap()..];
        let first = cookies.find("<div class=\"table").unwrap();
        assert!(cookies[first..].starts_with("<div class=\"table wide\">\n<table>"));
        for (anchor, _) in CORE_SECTIONS {
            assert!(html.contains(&format!("<li><a href=\"#{anchor}\">")));
            assert!(html.contains(&format!("<h2 id=\"{anchor}\">")));
        }
        assert!(html.contains("<h3 id=\"service-meeting-center\">"));
    }

    #[test]
    fn helpers() {
        assert_eq!(long_date("2010-04-24"), "April 24, 2010");
        assert_eq!(long_date("2010-13-24"), "2010-13-24");
        assert_eq!(period_words("P1Y"), "1 year");
        assert_eq!(period_words("P6M"), "6 months");
        assert_eq!(family_heading("meeting-services"), "Meeting services");
        assert_eq!(family_heading("Cisco WebEx Mail"), "Cisco WebEx Mail");
        assert_eq!(
            join_and(&["a".into(), "b".into(), "c".into()]),
            "a, b and c"
        );
        assert_eq!(
            md_escape("- a_b #1 &amp; &x", true),
            r"\- a\_b \#1 \&amp; &x"
        );
    }
}
