//! Prometheus text metrics, hand-rolled: requests by route, method and status, a latency
//! histogram, decisions by kind and effect. Labels are route templates, methods and codes from
//! closed sets, never personal information nor anything a client makes up.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// Upper bounds of the latency buckets, in seconds.
const BUCKETS: [f64; 12] = [
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 5.0,
];

/// Methods counted by name; any other request is counted under [`OTHER_METHOD`].
const METHODS: [&str; 7] = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"];
/// The label of a method not in [`METHODS`].
const OTHER_METHOD: &str = "other";
/// The label of a request no route matched.
const UNMATCHED: &str = "unmatched";

/// The label of a method: one of a closed set, whatever the client sent, so no request can
/// grow the metrics or a log line by making up methods.
pub(crate) fn method_label(method: &str) -> &'static str {
    METHODS
        .iter()
        .find(|m| **m == method)
        .copied()
        .unwrap_or(OTHER_METHOD)
}

/// The label of a route: a template the router serves ([`crate::ROUTES`]), else
/// `unmatched`.
pub(crate) fn route_label(route: &str) -> &'static str {
    crate::ROUTES
        .iter()
        .map(|(_, path)| *path)
        .find(|path| *path == route)
        .unwrap_or(UNMATCHED)
}

/// Kinds of decision counted.
const KINDS: [&str; 3] = ["read", "read_records", "decide"];
/// Effects counted.
const EFFECTS: [&str; 3] = ["permit", "partial", "deny"];

/// The server's counters.
#[derive(Debug, Default)]
pub struct Metrics {
    /// By route, method and status; labels from closed sets (see [`Metrics::request`]).
    requests: Mutex<BTreeMap<(&'static str, &'static str, u16), u64>>,
    latency: [AtomicU64; BUCKETS.len()],
    latency_count: AtomicU64,
    latency_sum_us: AtomicU64,
    decisions: [[AtomicU64; EFFECTS.len()]; KINDS.len()],
}

impl Metrics {
    /// Counts a request. A method other than the common seven is counted as `other`, and a
    /// route that is not one of [`crate::ROUTES`]' templates as `unmatched`: the labels come
    /// from closed sets, so what a client sends cannot grow the metrics.
    pub fn request(&self, method: &str, route: &str, status: u16, took: Duration) {
        let key = (route_label(route), method_label(method), status);
        if let Ok(mut m) = self.requests.lock() {
            *m.entry(key).or_insert(0) += 1;
        }
        let secs = took.as_secs_f64();
        for (bound, counter) in BUCKETS.iter().zip(&self.latency) {
            if secs <= *bound {
                counter.fetch_add(1, Ordering::Relaxed);
            }
        }
        self.latency_count.fetch_add(1, Ordering::Relaxed);
        let us = u64::try_from(took.as_micros()).unwrap_or(u64::MAX);
        self.latency_sum_us.fetch_add(us, Ordering::Relaxed);
    }

    /// Counts a decision; unknown kinds or effects are not counted.
    pub fn decision(&self, kind: &str, effect: &str) {
        let k = KINDS.iter().position(|x| *x == kind);
        let e = EFFECTS.iter().position(|x| *x == effect);
        if let Some(c) = k
            .zip(e)
            .and_then(|(k, e)| self.decisions.get(k).and_then(|row| row.get(e)))
        {
            c.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// The Prometheus text exposition.
    pub fn render(&self) -> String {
        let mut out = String::new();
        out.push_str(
            "# HELP custos_http_requests_total HTTP requests by route, method and status.\n",
        );
        out.push_str("# TYPE custos_http_requests_total counter\n");
        if let Ok(m) = self.requests.lock() {
            for ((route, method, status), n) in m.iter() {
                let _ = writeln!(
                    out,
                    "custos_http_requests_total{{route=\"{route}\",method=\"{method}\",status=\"{status}\"}} {n}"
                );
            }
        }
        out.push_str("# HELP custos_http_request_duration_seconds Time to answer a request.\n");
        out.push_str("# TYPE custos_http_request_duration_seconds histogram\n");
        for (bound, counter) in BUCKETS.iter().zip(&self.latency) {
            let _ = writeln!(
                out,
                "custos_http_request_duration_seconds_bucket{{le=\"{bound}\"}} {}",
                counter.load(Ordering::Relaxed)
            );
        }
        let count = self.latency_count.load(Ordering::Relaxed);
        let _ = writeln!(
            out,
            "custos_http_request_duration_seconds_bucket{{le=\"+Inf\"}} {count}"
        );
        let _ = writeln!(
            out,
            "custos_http_request_duration_seconds_sum {}",
            self.latency_sum_us.load(Ordering::Relaxed) as f64 / 1e6
        );
        let _ = writeln!(out, "custos_http_request_duration_seconds_count {count}");
        out.push_str("# HELP custos_decisions_total Policy decisions made, by kind and effect.\n");
        out.push_str("# TYPE custos_decisions_total counter\n");
        for (kind, row) in KINDS.iter().zip(&self.decisions) {
            for (effect, c) in EFFECTS.iter().zip(row) {
                let _ = writeln!(
                    out,
                    "custos_decisions_total{{kind=\"{kind}\",effect=\"{effect}\"}} {}",
                    c.load(Ordering::Relaxed)
                );
            }
        }
        out
    }
}

/// Appends the ledger writer's commits as a histogram of entries per commit: how many reads
/// and writes shared each fsync.
pub(crate) fn render_batches(out: &mut String, stats: &custos_vault::ledger::BatchStats) {
    use custos_vault::ledger::BATCH_BUCKETS;
    out.push_str(
        "# HELP custos_ledger_batch_size Ledger entries per group commit (one fsync each).\n",
    );
    out.push_str("# TYPE custos_ledger_batch_size histogram\n");
    let mut cumulative = 0;
    for (bound, counter) in BATCH_BUCKETS.iter().zip(&stats.buckets) {
        cumulative += counter.load(Ordering::Relaxed);
        let _ = writeln!(
            out,
            "custos_ledger_batch_size_bucket{{le=\"{bound}\"}} {cumulative}"
        );
    }
    let commits = stats.commits.load(Ordering::Relaxed);
    let _ = writeln!(
        out,
        "custos_ledger_batch_size_bucket{{le=\"+Inf\"}} {commits}"
    );
    let _ = writeln!(
        out,
        "custos_ledger_batch_size_sum {}",
        stats.entries.load(Ordering::Relaxed)
    );
    let _ = writeln!(out, "custos_ledger_batch_size_count {commits}");
}
