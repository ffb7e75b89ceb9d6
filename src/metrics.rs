//! Prometheus metrics (prometheus-client), served as OpenMetrics text on `/metrics`.
//!
//! Labels are bounded: controller names, results, Redfish operation names and failure reasons.
//! No per-object labels (host names would grow without bound and leak inventory).

use std::time::{Duration, Instant};

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ReconcileLabels {
    pub controller: String,
    /// `success` or `error`.
    pub result: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ControllerLabels {
    pub controller: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ErrorLabels {
    pub controller: String,
    /// A CamelCase reason, as in the host's conditions.
    pub reason: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RedfishLabels {
    /// `inventory`, `check`, `power_off`, `clear_boot_override`, ...
    pub operation: String,
    /// `success`, or the failure reason (`BMCUnreachable`, `AuthenticationFailed`, ...).
    pub outcome: String,
}

type HistogramFamily = Family<ControllerLabels, Histogram, fn() -> Histogram>;

fn duration_histogram() -> Histogram {
    // 5 ms .. ~80 s: a reconcile is a few API calls plus, at worst, a slow BMC.
    Histogram::new(exponential_buckets(0.005, 2.0, 15))
}

/// Every series the manager exports.
pub struct Metrics {
    registry: Registry,
    reconciles: Family<ReconcileLabels, Counter>,
    reconcile_errors: Family<ErrorLabels, Counter>,
    reconcile_duration: HistogramFamily,
    redfish_operations: Family<RedfishLabels, Counter>,
    redfish_requests: Family<RedfishLabels, Counter>,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    pub fn new() -> Self {
        let mut registry = Registry::with_prefix("beskar7");
        let reconciles = Family::<ReconcileLabels, Counter>::default();
        registry.register(
            "reconcile",
            "Reconciles by controller and result",
            reconciles.clone(),
        );
        let reconcile_errors = Family::<ErrorLabels, Counter>::default();
        registry.register(
            "reconcile_errors",
            "Reconciles that ended with an error or an Error state, by reason",
            reconcile_errors.clone(),
        );
        let reconcile_duration: HistogramFamily =
            Family::new_with_constructor(duration_histogram as fn() -> Histogram);
        registry.register(
            "reconcile_duration_seconds",
            "How long reconciles took",
            reconcile_duration.clone(),
        );
        let redfish_operations = Family::<RedfishLabels, Counter>::default();
        registry.register(
            "redfish_operations",
            "Redfish operations (one inventory, check, power change, ...) by outcome",
            redfish_operations.clone(),
        );
        let redfish_requests = Family::<RedfishLabels, Counter>::default();
        registry.register(
            "redfish_requests",
            "HTTP requests sent to BMCs, by the operation they belonged to and its outcome",
            redfish_requests.clone(),
        );
        Self {
            registry,
            reconciles,
            reconcile_errors,
            reconcile_duration,
            redfish_operations,
            redfish_requests,
        }
    }

    /// Starts timing one reconcile; the guard records the duration when dropped.
    pub fn reconcile_started(&self, controller: &str) -> ReconcileTimer<'_> {
        ReconcileTimer {
            metrics: self,
            controller: controller.to_owned(),
            start: Instant::now(),
        }
    }

    pub fn reconcile_finished(&self, controller: &str, ok: bool) {
        self.reconciles
            .get_or_create(&ReconcileLabels {
                controller: controller.to_owned(),
                result: if ok { "success" } else { "error" }.to_owned(),
            })
            .inc();
    }

    pub fn reconcile_error(&self, controller: &str, reason: &str) {
        self.reconcile_errors
            .get_or_create(&ErrorLabels {
                controller: controller.to_owned(),
                reason: reason.to_owned(),
            })
            .inc();
    }

    /// One Redfish operation and the HTTP requests it took.
    pub fn redfish(&self, operation: &str, outcome: &str, requests: u64) {
        let labels = RedfishLabels {
            operation: operation.to_owned(),
            outcome: outcome.to_owned(),
        };
        self.redfish_operations.get_or_create(&labels).inc();
        self.redfish_requests
            .get_or_create(&labels)
            .inc_by(requests);
    }

    /// The OpenMetrics text exposition.
    pub fn encode(&self) -> String {
        let mut out = String::new();
        // Writing into a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut out, &self.registry);
        out
    }
}

/// Records a reconcile's duration when dropped (also when the reconcile future is cancelled).
pub struct ReconcileTimer<'a> {
    metrics: &'a Metrics,
    controller: String,
    start: Instant,
}

impl ReconcileTimer<'_> {
    pub fn elapsed(&self) -> Duration {
        self.start.elapsed()
    }
}

impl Drop for ReconcileTimer<'_> {
    fn drop(&mut self) {
        self.metrics
            .reconcile_duration
            .get_or_create(&ControllerLabels {
                controller: std::mem::take(&mut self.controller),
            })
            .observe(self.start.elapsed().as_secs_f64());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn series_are_named_and_labelled_without_objects() {
        let m = Metrics::new();
        m.reconcile_finished("physicalhost", true);
        m.reconcile_error("physicalhost", "BMCUnreachable");
        m.redfish("inventory", "success", 7);
        drop(m.reconcile_started("physicalhost"));
        let text = m.encode();
        for needle in [
            r#"beskar7_reconcile_total{controller="physicalhost",result="success"} 1"#,
            r#"beskar7_reconcile_errors_total{controller="physicalhost",reason="BMCUnreachable"} 1"#,
            r#"beskar7_redfish_operations_total{operation="inventory",outcome="success"} 1"#,
            r#"beskar7_redfish_requests_total{operation="inventory",outcome="success"} 7"#,
            r#"beskar7_reconcile_duration_seconds_count{controller="physicalhost"} 1"#,
        ] {
            assert!(text.contains(needle), "{needle} missing from\n{text}");
        }
    }
}
