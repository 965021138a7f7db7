//! Retention: what the policy no longer allows to be kept is deleted, and the deletion
//! ledgered. Records carry their deadline from their collection's retention; values expire
//! by their category's retention, counted from when they were last collected. `account`
//! retention lasts as long as the subject (erasure deletes it); `transient` is never stored.
//! People's sign-in codes go once they neither sign in nor count towards their address's
//! limit, sessions once they expire or are signed out, the outbox's rows of finished mail
//! after [`FINISHED_MAIL_KEPT`].

use custos_policy::PeriodKind;

use super::mail::FINISHED_MAIL_KEPT;
use super::people::{CODE_TTL, CODE_WINDOW};
use super::{MS_PER_DAY, Vault};
use crate::error::Result;
use crate::store::now_ms;

/// What one retention sweep deleted.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Sweep {
    /// Records past their deadline.
    pub records: u64,
    /// Values past their category's retention, by category (only those with any).
    pub values: Vec<(String, u64)>,
    /// People's sign-in codes past their expiry and their address's limit window.
    pub codes: u64,
    /// People's sessions expired or signed out.
    pub sessions: u64,
    /// Rows of the outbox's messages sent or given up more than [`FINISHED_MAIL_KEPT`] ago.
    pub mail: u64,
}

impl Sweep {
    /// Values deleted, over every category.
    pub fn value_count(&self) -> u64 {
        self.values.iter().map(|(_, n)| n).sum()
    }
}

impl Vault {
    /// Deletes every record past its retention deadline, every value held longer than its
    /// category's retention allows, every sign-in code older than its expiry and its
    /// address's limit window ([`CODE_TTL`], [`CODE_WINDOW`]) and every session expired or
    /// signed out, and every outbox row of a message finished more than
    /// [`FINISHED_MAIL_KEPT`] ago, in one pass; ledgers one `purge_expired` entry
    /// (`categories`: the categories whose values went; `reasons`:
    /// `records:N,values:M,codes:C,sessions:S,mail:K`) with no subject. Safe to run from several processes at once:
    /// each deletes what is due when it runs.
    pub fn purge_expired(&self, actor: &str) -> Result<Sweep> {
        let now = now_ms();
        let expiries: Vec<(String, i64)> = self
            .policy
            .categories()
            .iter()
            .filter_map(|c| match c.retention {
                Some(PeriodKind::Days(days)) => {
                    Some((c.id.clone(), now - i64::from(days) * MS_PER_DAY))
                }
                _ => None,
            })
            .collect();
        let counts = self.store.delete_expired_values(&expiries)?;
        let records = self.store.delete_expired_records(now)?;
        let code_age = i64::try_from(CODE_TTL.max(CODE_WINDOW).as_millis()).unwrap_or(i64::MAX);
        let (codes, sessions) = self
            .store
            .delete_expired_sign_ins(now.saturating_sub(code_age), now)?;
        let kept = i64::try_from(FINISHED_MAIL_KEPT.as_millis()).unwrap_or(i64::MAX);
        let mail = self.store.delete_finished_mail(now.saturating_sub(kept))?;
        let sweep = Sweep {
            records,
            values: expiries
                .into_iter()
                .zip(counts)
                .filter(|(_, n)| *n > 0)
                .map(|((c, _), n)| (c, n))
                .collect(),
            codes,
            sessions,
            mail,
        };
        let mut d = self.draft(actor, "purge_expired", "");
        d.effect = "done".into();
        d.categories = sweep
            .values
            .iter()
            .map(|(c, _)| c.as_str())
            .collect::<Vec<_>>()
            .join(",");
        d.reasons = format!(
            "records:{},values:{},codes:{},sessions:{},mail:{}",
            sweep.records,
            sweep.value_count(),
            sweep.codes,
            sweep.sessions,
            sweep.mail
        );
        self.record(d)?;
        Ok(sweep)
    }
}
