//! The export document (issue 13, item 4): what `GET /v1/me/export` and
//! `custos subjects export` give — everything the vault holds about a person, as JSON of a
//! versioned schema ([`SCHEMA`], documented in `docs/export.md` and in the OpenAPI
//! document) or as a readable HTML page with the same content. No script, no style sheet or
//! image from anywhere: the page is one self-contained document.

use custos_policy::render::html_escape as esc;
use custos_vault::tlog::hash_to_base64;
use custos_vault::vault::TreeHead;
use custos_vault::{Export, ExportedEntry, format_date_time};
use serde::Serialize;
use utoipa::ToSchema;

/// The schema's name and version: a reader checks it before anything else.
pub const SCHEMA: &str = "custos-export/1";

/// Everything the vault holds about a person.
#[derive(Debug, Serialize, ToSchema)]
pub struct ExportDocument {
    /// `custos-export/1`.
    #[schema(pattern = "^custos-export/1$")]
    pub schema: &'static str,
    /// When it was made, UTC.
    #[schema(format = DateTime)]
    pub generated: String,
    /// The policy in force when it was made.
    pub policy: PolicyRef,
    /// The person, as the vault knows them.
    pub subject: SubjectDoc,
    /// Every value held, with what it was collected for.
    pub values: Vec<ValueDoc>,
    /// Every record held, collection by collection, oldest first.
    pub records: Vec<RecordDoc>,
    /// Consents and objections, oldest first.
    pub consents: Vec<ConsentDoc>,
    /// Every ledger entry about the person, and how to check them.
    pub ledger: LedgerDoc,
}

/// A policy and its version.
#[derive(Debug, Serialize, ToSchema)]
pub struct PolicyRef {
    /// Its id.
    pub id: String,
    /// Its version (the notice version).
    pub version: String,
}

/// The person.
#[derive(Debug, Serialize, ToSchema)]
pub struct SubjectDoc {
    /// The subject id (a UUIDv7).
    #[schema(format = Uuid)]
    pub id: String,
    /// `active` or `deactivated`.
    pub status: &'static str,
    /// What is known of the age: `unknown` or `at_least_minimum`.
    pub age: &'static str,
    /// The business customers the person belongs to.
    pub tenants: Vec<String>,
    /// When the vault first held the person, UTC.
    #[schema(format = DateTime)]
    pub created: String,
}

/// A value.
#[derive(Debug, Serialize, ToSchema)]
pub struct ValueDoc {
    /// The category.
    pub category: String,
    /// The value.
    pub value: String,
    /// The purposes it was collected for.
    pub purposes: Vec<String>,
    /// The notice version the person was shown.
    pub notice: String,
    /// The service that collected it.
    pub service: String,
    /// The person's role in that service.
    pub role: String,
    /// When it was collected or last corrected, UTC.
    #[schema(format = DateTime)]
    pub collected: String,
}

/// A record.
#[derive(Debug, Serialize, ToSchema)]
pub struct RecordDoc {
    /// The record collection.
    pub collection: String,
    /// The record's id.
    pub id: String,
    /// The record.
    pub value: String,
    /// The purposes it is kept for.
    pub purposes: Vec<String>,
    /// The notice version in force when it was kept.
    pub notice: String,
    /// When it was kept, UTC.
    #[schema(format = DateTime)]
    pub time: String,
    /// When it will be deleted, UTC; absent: with the account.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(format = DateTime, nullable = false)]
    pub retain_until: Option<String>,
}

/// A consent or an objection.
#[derive(Debug, Serialize, ToSchema)]
pub struct ConsentDoc {
    /// The purpose.
    pub purpose: String,
    /// `consent` or `objection`.
    pub kind: String,
    /// Given (true) or withdrawn (false).
    pub given: bool,
    /// The notice version shown.
    pub notice: String,
    /// How it was given.
    pub method: String,
    /// When, UTC.
    #[schema(format = DateTime)]
    pub time: String,
}

/// The ledger entries about the person and what proves them.
#[derive(Debug, Serialize, ToSchema)]
pub struct LedgerDoc {
    /// The signed checkpoint (C2SP tlog-checkpoint in a signed note) the proofs lead to:
    /// keep it, and compare it with the one the server publishes at
    /// `GET /v1/ledger/checkpoint` (or a witness's copy).
    pub checkpoint: String,
    /// The checkpoint's tree size.
    pub size: u64,
    /// The checkpoint's root hash, base64.
    pub root: String,
    /// The signed-note verifier key of the checkpoint.
    pub verifier_key: String,
    /// The sequence number of this export's own entry (0 in `GET /v1/me/ledger`).
    pub export_seq: u64,
    /// The entries, oldest first.
    pub entries: Vec<EntryDoc>,
}

/// A ledger entry about the person.
#[derive(Debug, Serialize, ToSchema)]
pub struct EntryDoc {
    /// Its position in the ledger, from 1.
    pub seq: u64,
    /// When, UTC.
    #[schema(format = DateTime)]
    pub time: String,
    /// Who acted: an accessor of the policy, `person` (you), `operator`.
    pub actor: String,
    /// What: `collect`, `read`, `append_records`, `export`, `correct`, `erase`, …
    pub action: String,
    /// For which purpose, if any.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub purpose: String,
    /// To whom onwards, if anyone.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub recipient: String,
    /// Which categories (or record collection).
    pub categories: Vec<String>,
    /// `permit`, `partial`, `deny`, `done`, `refused`, …
    pub effect: String,
    /// Why: reason codes.
    pub reasons: Vec<String>,
    /// The entry's chained hash (hex): the leaf input of the tree.
    pub hash: String,
    /// Its inclusion proof in the checkpoint's tree (base64 hashes, from the leaf's sibling
    /// up; RFC 9162 §2.1.3); absent for an entry made after the checkpoint.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    pub proof: Option<Vec<String>>,
}

fn list(s: &str) -> Vec<String> {
    s.split(',')
        .filter(|x| !x.is_empty())
        .map(str::to_string)
        .collect()
}

impl LedgerDoc {
    /// The entries about a person, proven against `head` (signed by `verifier_key`);
    /// `export_seq` is the export's own entry (0 outside an export).
    pub fn new(
        entries: Vec<ExportedEntry>,
        head: TreeHead,
        verifier_key: String,
        export_seq: u64,
    ) -> Self {
        let entries = entries
            .into_iter()
            .map(|x| {
                let d = x.entry.draft;
                EntryDoc {
                    seq: x.entry.seq,
                    time: format_date_time(d.time_ms),
                    actor: d.actor,
                    action: d.action,
                    purpose: d.purpose,
                    recipient: d.recipient,
                    categories: list(&d.categories),
                    effect: d.effect,
                    reasons: list(&d.reasons),
                    hash: x.entry.hash,
                    proof: x.proof.map(|p| p.iter().map(hash_to_base64).collect()),
                }
            })
            .collect();
        Self {
            checkpoint: head.note,
            size: head.size,
            root: hash_to_base64(&head.root),
            verifier_key,
            export_seq,
            entries,
        }
    }
}

impl ExportDocument {
    /// The document of an export, with the verifier key of its checkpoint.
    pub fn new(e: Export, verifier_key: String) -> Self {
        Self {
            schema: SCHEMA,
            generated: format_date_time(e.generated_ms),
            policy: PolicyRef {
                id: e.policy.0,
                version: e.policy.1,
            },
            subject: SubjectDoc {
                id: e.subject.to_string(),
                status: e.status,
                age: e.age,
                tenants: e.tenants,
                created: format_date_time(e.created_ms),
            },
            values: e
                .values
                .into_iter()
                .map(|v| ValueDoc {
                    category: v.category,
                    value: v.value,
                    purposes: v.purposes,
                    notice: v.notice,
                    service: v.service,
                    role: v.role,
                    collected: format_date_time(v.time_ms),
                })
                .collect(),
            records: e
                .records
                .into_iter()
                .map(|r| RecordDoc {
                    collection: r.collection,
                    id: r.id,
                    value: r.value,
                    purposes: r.purposes,
                    notice: r.notice,
                    time: format_date_time(r.time_ms),
                    retain_until: r.retain_until_ms.map(format_date_time),
                })
                .collect(),
            consents: e
                .consents
                .into_iter()
                .map(|c| ConsentDoc {
                    purpose: c.purpose,
                    kind: c.kind,
                    given: c.given,
                    notice: c.notice,
                    method: c.method,
                    time: format_date_time(c.time_ms),
                })
                .collect(),
            ledger: LedgerDoc::new(e.ledger, e.checkpoint, verifier_key, e.export_seq),
        }
    }

    /// The readable page: the same content as the JSON, as one self-contained HTML document.
    pub fn to_html(&self) -> String {
        let mut h = String::with_capacity(4096);
        h.push_str("<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">");
        h.push_str("<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">");
        h.push_str("<title>Your data</title><style>body{font:16px/1.5 system-ui,sans-serif;max-width:60rem;margin:2rem auto;padding:0 1rem}table{border-collapse:collapse;width:100%;margin-bottom:2rem}th,td{border:1px solid #ccc;padding:.3rem .5rem;text-align:left;vertical-align:top}th{background:#f3f3f3}code{font-size:.85em;word-break:break-all}</style></head><body>\n");
        h.push_str("<h1>Your data</h1>\n<p>Everything this vault holds about you, made ");
        h.push_str(&esc(&self.generated));
        h.push_str(" under policy <code>");
        h.push_str(&esc(&self.policy.id));
        h.push_str("</code> version ");
        h.push_str(&esc(&self.policy.version));
        h.push_str(". Subject <code>");
        h.push_str(&esc(&self.subject.id));
        h.push_str("</code>, ");
        h.push_str(self.subject.status);
        h.push_str(", held since ");
        h.push_str(&esc(&self.subject.created));
        h.push_str(".</p>\n<h2>Values</h2>\n");
        table(
            &mut h,
            &[
                "Category",
                "Value",
                "Purposes",
                "Service (role)",
                "Notice",
                "Collected",
            ],
            self.values.iter().map(|v| {
                vec![
                    v.category.clone(),
                    v.value.clone(),
                    v.purposes.join(", "),
                    format!("{} ({})", v.service, v.role),
                    v.notice.clone(),
                    v.collected.clone(),
                ]
            }),
        );
        h.push_str("<h2>Records</h2>\n");
        table(
            &mut h,
            &["Collection", "Record", "Purposes", "Kept", "Deleted"],
            self.records.iter().map(|r| {
                vec![
                    r.collection.clone(),
                    r.value.clone(),
                    r.purposes.join(", "),
                    r.time.clone(),
                    r.retain_until
                        .clone()
                        .unwrap_or_else(|| "with the account".into()),
                ]
            }),
        );
        h.push_str("<h2>Consents and objections</h2>\n");
        table(
            &mut h,
            &["Purpose", "Kind", "Given", "Method", "When"],
            self.consents.iter().map(|c| {
                vec![
                    c.purpose.clone(),
                    c.kind.clone(),
                    if c.given { "yes" } else { "withdrawn" }.into(),
                    c.method.clone(),
                    c.time.clone(),
                ]
            }),
        );
        h.push_str("<h2>Who used your data</h2>\n<p>Each use is an entry of the vault's tamper-evident ledger. Entry numbers can be checked with <code>custos audit verify</code>; the JSON export carries, for each, a proof that it is in the ledger of the signed checkpoint below.</p>\n");
        table(
            &mut h,
            &[
                "#",
                "When",
                "Who",
                "What",
                "Purpose",
                "Categories",
                "Outcome",
            ],
            self.ledger.entries.iter().map(|e| {
                vec![
                    e.seq.to_string(),
                    e.time.clone(),
                    e.actor.clone(),
                    e.action.clone(),
                    e.purpose.clone(),
                    e.categories.join(", "),
                    if e.reasons.is_empty() {
                        e.effect.clone()
                    } else {
                        format!("{} ({})", e.effect, e.reasons.join(", "))
                    },
                ]
            }),
        );
        h.push_str("<h2>Checkpoint</h2>\n<pre><code>");
        h.push_str(&esc(&self.ledger.checkpoint));
        h.push_str("</code></pre>\n</body></html>\n");
        h
    }
}

fn table(h: &mut String, head: &[&str], rows: impl Iterator<Item = Vec<String>>) {
    h.push_str("<table><thead><tr>");
    for c in head {
        h.push_str("<th>");
        h.push_str(c);
        h.push_str("</th>");
    }
    h.push_str("</tr></thead><tbody>\n");
    let mut any = false;
    for row in rows {
        any = true;
        h.push_str("<tr>");
        for c in row {
            h.push_str("<td>");
            h.push_str(&esc(&c));
            h.push_str("</td>");
        }
        h.push_str("</tr>\n");
    }
    if !any {
        h.push_str("<tr><td colspan=\"");
        h.push_str(&head.len().to_string());
        h.push_str("\">None.</td></tr>\n");
    }
    h.push_str("</tbody></table>\n");
}
