//! The right of access and portability (issue 13, item 4): everything the vault holds about
//! a person, in one document — each value with the purposes it was collected for, the notice
//! shown, the service and role and the time; the records of every collection; the consent
//! and objection events; and every ledger entry about the person (who used which categories,
//! for which purpose, when), each with its sequence number and, for the entries in the
//! ledger's tree, an RFC 9162 inclusion proof against a signed checkpoint the export carries,
//! so the person can check, without trusting the operator, that the entries about them are
//! in the log everyone else sees.
//!
//! **Who may export:** the person, for a subject of their session ([`Requester::Person`]),
//! and the operator at the console ([`Requester::Operator`], the CLI, acting on a request).
//! No accessor key exports: a service reads through the decision, for a purpose.
//!
//! **Invariant (audit before data):** the export's own ledger entry (`export`, effect
//! `permit`) is durable before any value is decrypted; a refused export is ledgered too
//! (effect `deny`, the reason). An erased subject, or one under the minimum age, is answered
//! as one never held.

use custos_policy::RequestKind;
use custos_tlog::Hash;

use super::{Requester, SubjectId, TreeHead, Vault};
use crate::crypto::DataKey;
use crate::error::{Error, Result};
use crate::ledger::LedgerEntry;
use crate::ledger::tree;
use crate::store::{ConsentRow, now_ms};

/// The ledger action of an export.
pub const EXPORT: &str = "export";
/// The ledger action of a person's look at the ledger entries about them.
pub const READ_LEDGER: &str = "read_ledger";
/// One value, as exported.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExportedValue {
    /// The category's id.
    pub category: String,
    /// The value.
    pub value: String,
    /// The purposes it was collected for.
    pub purposes: Vec<String>,
    /// The notice version shown at its latest collection.
    pub notice: String,
    /// The service that collected it.
    pub service: String,
    /// The person's role in that service.
    pub role: String,
    /// When it was collected (or last corrected), ms since the epoch.
    pub time_ms: i64,
}

/// One record, as exported.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExportedRecord {
    /// The record collection's id.
    pub collection: String,
    /// The record's id.
    pub id: String,
    /// The record.
    pub value: String,
    /// The purposes it is kept for.
    pub purposes: Vec<String>,
    /// The notice version in force when it was appended.
    pub notice: String,
    /// When it was appended, ms since the epoch.
    pub time_ms: i64,
    /// When it is deleted, ms since the epoch; `None`: with the account.
    pub retain_until_ms: Option<i64>,
}

/// A ledger entry about the person, with its inclusion proof when the entry is in the tree
/// the export's checkpoint signs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExportedEntry {
    /// The entry.
    pub entry: LedgerEntry,
    /// The audit path of leaf `seq - 1` in the checkpoint's tree (RFC 9162 §2.1.3), from the
    /// leaf's sibling up; `None` for an entry past the checkpoint (made after the tree was
    /// last grown, the export's own entry among them).
    pub proof: Option<Vec<Hash>>,
}

/// Everything the vault holds about a subject.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Export {
    /// When it was made, ms since the epoch.
    pub generated_ms: i64,
    /// The policy in force: id and version.
    pub policy: (String, String),
    /// The subject.
    pub subject: SubjectId,
    /// `active` or `deactivated`.
    pub status: &'static str,
    /// What is known of the age: `unknown` or `at_least_minimum`.
    pub age: &'static str,
    /// The business customers the person belongs to.
    pub tenants: Vec<String>,
    /// When the vault first held the person, ms since the epoch.
    pub created_ms: i64,
    /// The values, by category.
    pub values: Vec<ExportedValue>,
    /// The records, by collection, oldest first.
    pub records: Vec<ExportedRecord>,
    /// Consent and objection events, oldest first.
    pub consents: Vec<ConsentRow>,
    /// The ledger entries about the subject, oldest first.
    pub ledger: Vec<ExportedEntry>,
    /// The signed checkpoint the proofs lead to.
    pub checkpoint: TreeHead,
    /// The sequence number of the export's own ledger entry.
    pub export_seq: u64,
}

impl Vault {
    /// Exports everything held about `subject` to `by` (see the module's documentation).
    pub fn export(&self, by: Requester<'_>, subject: &SubjectId) -> Result<Export> {
        let row = self.requested_subject(by, EXPORT, subject)?;
        let mut d = self.draft(by.actor(), EXPORT, subject.as_str());
        d.effect = "permit".into();
        let request = self.online_request(by, RequestKind::Export, subject)?;
        d.reasons = super::rights::with_request("right_of_access", request.as_ref());
        // INVARIANT: audit before data — durable before anything is decrypted.
        let export_seq = self.record(d)?;
        let dek = self.data_key(subject)?;
        let mut values = Vec::new();
        for v in self.store.values(&subject.0)? {
            let plain = dek.open_value(&subject.0, &v.category, &v.ciphertext)?;
            values.push(ExportedValue {
                value: text(plain)?,
                category: v.category,
                purposes: v.purposes,
                notice: v.notice,
                service: v.service,
                role: v.role,
                time_ms: v.time_ms,
            });
        }
        let records = self.export_records(subject, &dek)?;
        let consents = self.store.consents(&subject.0)?;
        if let Some(r) = &request {
            self.store.put_request(r)?;
        }
        let checkpoint = self.ledger_checkpoint()?;
        let ledger = self.entries_about(subject, checkpoint.size)?;
        Ok(Export {
            generated_ms: now_ms(),
            policy: (
                self.policy.id().to_string(),
                self.policy.version().to_string(),
            ),
            subject: subject.clone(),
            status: row.status.as_str(),
            age: row.age.as_str(),
            tenants: row.tenants,
            created_ms: row.created_ms,
            values,
            records,
            consents,
            ledger,
            checkpoint,
            export_seq,
        })
    }

    /// The ledger entries about `subject`, each with its inclusion proof in the tree of a
    /// checkpoint signed now, for `by` (the person's `GET /v1/me/ledger`): the export's
    /// ledger part, without values. Ledgered (`read_ledger`), refusals as for an export.
    pub fn ledger_about(
        &self,
        by: Requester<'_>,
        subject: &SubjectId,
    ) -> Result<(Vec<ExportedEntry>, TreeHead)> {
        self.requested_subject(by, READ_LEDGER, subject)?;
        let mut d = self.draft(by.actor(), READ_LEDGER, subject.as_str());
        d.effect = "permit".into();
        d.reasons = "right_of_access".into();
        self.record(d)?;
        let checkpoint = self.ledger_checkpoint()?;
        let entries = self.entries_about(subject, checkpoint.size)?;
        Ok((entries, checkpoint))
    }

    /// Every record still held, collection by collection, page by page.
    fn export_records(&self, subject: &SubjectId, dek: &DataKey) -> Result<Vec<ExportedRecord>> {
        let now = now_ms();
        let mut out = Vec::new();
        for c in self.policy.collections() {
            let mut after: Option<String> = None;
            loop {
                let page = self.store.records(
                    &subject.0,
                    &c.id,
                    after.as_deref(),
                    super::MAX_RECORDS_PAGE,
                )?;
                let full = page.len() as u64 == super::MAX_RECORDS_PAGE;
                after = page.last().map(|r| r.id.clone());
                for r in page {
                    // A record past its retention deadline is no longer held, purged or not.
                    if r.retain_until_ms.is_some_and(|t| t <= now) {
                        continue;
                    }
                    let plain = dek.open_record(&subject.0, &r.collection, &r.id, &r.ciphertext)?;
                    out.push(ExportedRecord {
                        value: text(plain)?,
                        collection: r.collection,
                        id: r.id,
                        purposes: r.purposes,
                        notice: r.notice,
                        time_ms: r.time_ms,
                        retain_until_ms: r.retain_until_ms,
                    });
                }
                if !full {
                    break;
                }
            }
        }
        Ok(out)
    }

    /// The ledger entries about `subject`, with the inclusion proofs of those in the tree of
    /// `size` entries (all their paths read in one pass over the tiles). The blocks read are
    /// those the subject index names (`Store::scan_ledger_about`).
    pub(crate) fn entries_about(
        &self,
        subject: &SubjectId,
        size: u64,
    ) -> Result<Vec<ExportedEntry>> {
        let id = subject.as_str().as_bytes();
        let mut found = Vec::new();
        self.store.scan_ledger_about(subject.as_str(), &mut |r| {
            if r.subject == id {
                found.push(r.to_entry());
            }
            true
        })?;
        let seqs: Vec<u64> = found.iter().map(|e| e.seq).collect();
        let proofs = proofs(&*self.store, &seqs, size, &self.leaf_tiles)?;
        Ok(found
            .into_iter()
            .zip(proofs)
            .map(|(entry, proof)| ExportedEntry { entry, proof })
            .collect())
    }
}

fn text(plain: Vec<u8>) -> Result<String> {
    String::from_utf8(plain).map_err(|_| Error::Crypto("decrypted value is not text"))
}

/// The inclusion proofs of `seqs` in the tree of `size` entries, in one read of the tiles:
/// `None` for a seq past the tree.
pub(crate) fn proofs(
    store: &dyn crate::Store,
    seqs: &[u64],
    size: u64,
    cache: &tree::LeafTileCache,
) -> Result<Vec<Option<Vec<Hash>>>> {
    let mut ranges = Vec::new();
    let mut lens = Vec::new();
    for &seq in seqs {
        if seq == 0 || seq > size {
            lens.push(None);
            continue;
        }
        let path = custos_tlog::inclusion_path(seq - 1, size)
            .map_err(|e| Error::Storage(e.to_string()))?;
        lens.push(Some(path.len()));
        ranges.extend(path);
    }
    let mut hashes = tree::hashes_in_cached(store, &ranges, cache)?.into_iter();
    Ok(lens
        .into_iter()
        .map(|n| n.map(|n| hashes.by_ref().take(n).collect()))
        .collect())
}
