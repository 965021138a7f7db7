//! Prometheus metrics, kept and written by `prometheus-client` in the Prometheus text format
//! (0.0.4): requests by route, method and status class, a latency histogram, decisions by
//! kind and effect, and the ledger writer's commits by size. Every label comes from a closed
//! set — route templates, methods, status classes and codes — never personal information nor
//! anything a client makes up.

use std::sync::atomic::Ordering;
use std::time::Duration;

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeLabelSet, NoLabelSet, prometheus_text};
use prometheus_client::metrics::MetricType;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

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

/// The label of a status: its class (`2xx` … `5xx`).
fn status_label(status: u16) -> &'static str {
    match status {
        100..=199 => "1xx",
        200..=299 => "2xx",
        300..=399 => "3xx",
        400..=499 => "4xx",
        _ => "5xx",
    }
}

/// Kinds of decision counted.
const KINDS: [&str; 3] = ["read", "read_records", "decide"];
/// Effects counted.
const EFFECTS: [&str; 3] = ["permit", "partial", "deny"];

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct RequestLabels {
    route: &'static str,
    method: &'static str,
    status: &'static str,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct DecisionLabels {
    kind: &'static str,
    effect: &'static str,
}

/// The server's metrics.
#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    requests: Family<RequestLabels, Counter>,
    latency: Histogram,
    decisions: Family<DecisionLabels, Counter>,
}

impl Default for Metrics {
    fn default() -> Self {
        let requests = Family::<RequestLabels, Counter>::default();
        let latency = Histogram::new(BUCKETS);
        let decisions = Family::<DecisionLabels, Counter>::default();
        // Every decision series from the start, at 0: a rate over a series that appears
        // with its first decision would miss that decision.
        for kind in KINDS {
            for effect in EFFECTS {
                let _ = decisions.get_or_create(&DecisionLabels { kind, effect });
            }
        }
        let mut registry = Registry::default();
        // Help texts without a final period: the registry adds it.
        registry.register(
            "custos_http_requests",
            "HTTP requests by route template, method and status class",
            requests.clone(),
        );
        registry.register(
            "custos_http_request_duration_seconds",
            "Time to answer a request",
            latency.clone(),
        );
        registry.register(
            "custos_decisions",
            "Policy decisions made, by kind and effect",
            decisions.clone(),
        );
        Self {
            registry,
            requests,
            latency,
            decisions,
        }
    }
}

impl Metrics {
    /// Counts a request. A method other than the common seven is counted as `other`, a route
    /// that is not one of [`crate::ROUTES`]' templates as `unmatched`, and a status by its
    /// class: the labels come from closed sets, so what a client sends cannot grow the
    /// metrics.
    pub fn request(&self, method: &str, route: &str, status: u16, took: Duration) {
        let labels = RequestLabels {
            route: route_label(route),
            method: method_label(method),
            status: status_label(status),
        };
        self.requests.get_or_create(&labels).inc();
        self.latency.observe(took.as_secs_f64());
    }

    /// Counts a decision; unknown kinds or effects are not counted.
    pub fn decision(&self, kind: &str, effect: &str) {
        let kind = KINDS.into_iter().find(|k| *k == kind);
        let effect = EFFECTS.into_iter().find(|e| *e == effect);
        if let Some((kind, effect)) = kind.zip(effect) {
            self.decisions
                .get_or_create(&DecisionLabels { kind, effect })
                .inc();
        }
    }

    /// The Prometheus text exposition (format 0.0.4,
    /// `text/plain; version=0.0.4; charset=utf-8`).
    pub fn render(&self) -> String {
        let mut out = String::new();
        // Writing to a `String` cannot fail.
        let _ = prometheus_text::encode(&mut out, &self.registry);
        out
    }
}

/// Appends the ledger writer's commits as a histogram of entries per commit: how many reads
/// and writes shared each fsync.
pub(crate) fn render_batches(out: &mut String, stats: &custos_vault::ledger::BatchStats) {
    use custos_vault::ledger::BATCH_BUCKETS;
    // The buckets before the count: a commit counted meanwhile makes `+Inf` larger than the
    // last bucket, never smaller.
    let buckets = BATCH_BUCKETS
        .iter()
        .zip(&stats.buckets)
        .map(|(bound, n)| (*bound as f64, n.load(Ordering::Relaxed)))
        .collect();
    let snapshot = BatchSizes {
        buckets,
        count: stats.commits.load(Ordering::Relaxed),
        sum: stats.entries.load(Ordering::Relaxed) as f64,
    };
    let mut registry = Registry::default();
    registry.register_collector(Box::new(snapshot));
    let _ = prometheus_text::encode(out, &registry);
}

/// The ledger writer's commits at one scrape. The vault keeps the counters; this encodes
/// them, so the writer counts without knowing about Prometheus.
#[derive(Debug)]
struct BatchSizes {
    /// Upper bound and commits of each bucket, not cumulative.
    buckets: Vec<(f64, u64)>,
    count: u64,
    sum: f64,
}

impl Collector for BatchSizes {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let mut metric = encoder.encode_descriptor(
            "custos_ledger_batch_size",
            "Ledger entries per group commit (one fsync each).",
            None,
            MetricType::Histogram,
        )?;
        metric.encode_histogram::<NoLabelSet>(self.sum, self.count, &self.buckets, None)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_come_from_closed_sets() {
        let m = Metrics::default();
        m.request("BREW", "/v1/subjects/abc", 418, Duration::from_millis(2));
        m.request("GET", "/healthz", 200, Duration::from_millis(1));
        m.decision("read", "permit");
        m.decision("made-up", "permit");
        let text = m.render();
        assert!(
            text.contains(
                r#"custos_http_requests_total{route="unmatched",method="other",status="4xx"} 1"#
            ),
            "{text}"
        );
        assert!(
            text.contains(
                r#"custos_http_requests_total{route="/healthz",method="GET",status="2xx"} 1"#
            ),
            "{text}"
        );
        assert!(
            text.contains(r#"custos_decisions_total{kind="read",effect="permit"} 1"#),
            "{text}"
        );
        assert!(
            text.contains(r#"custos_decisions_total{kind="decide",effect="deny"} 0"#),
            "{text}"
        );
        assert!(!text.contains("made-up") && !text.contains("BREW") && !text.contains("abc"));
    }
}
