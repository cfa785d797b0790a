//! Prometheus metrics of the webhook, with upstream's names, help texts and buckets
//!, plus a `_seconds` latency histogram and the process collector.
//!
//! Each server instance owns its own [`Metrics`] (and registry) rather than using a global
//! default registry, so that tests running several servers in one process stay isolated.

use std::time::{Duration, Instant};

use prometheus::{
    Encoder, Histogram, HistogramOpts, IntCounter, IntCounterVec, IntGauge, Opts, Registry,
    TextEncoder,
};
use thiserror::Error;

use crate::admission::Outcome;

/// Upstream's millisecond buckets for `vault_agent_injector_request_processing_duration_ms`.
pub const DURATION_MS_BUCKETS: &[f64] = &[
    5.0, 10.0, 25.0, 50.0, 75.0, 100.0, 250.0, 500.0, 1000.0, 2500.0, 5000.0, 7500.0, 10000.0,
];

/// Buckets of the new `_seconds` histogram: the same range as upstream's, in seconds, with a
/// finer low end because a review normally takes well under a millisecond.
pub const DURATION_SECONDS_BUCKETS: &[f64] = &[
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

/// Name of the missed-injections counter (`-missed-injection-watcher`, not upstream).
pub const MISSED_INJECTIONS: &str = "vault_agent_injector_missed_injections_by_namespace_total";

/// A metric could not be created, registered or encoded.
#[derive(Debug, Error)]
pub enum MetricsError {
    /// Building or registering a collector failed (a programming error: names are constants).
    #[error("could not set up the Prometheus metrics: {0}")]
    Setup(#[source] prometheus::Error),
    /// Encoding the text exposition failed.
    #[error("could not encode the Prometheus metrics: {0}")]
    Encode(#[source] prometheus::Error),
}

/// The webhook's collectors and the registry that serves them.
#[derive(Clone)]
pub struct Metrics {
    registry: Registry,
    queue_length: IntGauge,
    duration_ms: Histogram,
    duration_seconds: Histogram,
    injections: IntCounterVec,
    failures: IntCounterVec,
    rejected: IntCounter,
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Metrics").finish_non_exhaustive()
    }
}

impl Metrics {
    /// Creates the collectors in a fresh registry, with the process collector where the platform
    /// has one.
    pub fn new() -> Result<Self, MetricsError> {
        let registry = Registry::new();
        let queue_length = IntGauge::new(
            "vault_agent_injector_request_queue_length",
            "Count of webhook requests in the injector's queue",
        )
        .map_err(MetricsError::Setup)?;
        let duration_ms = Histogram::with_opts(
            HistogramOpts::new(
                "vault_agent_injector_request_processing_duration_ms",
                "Webhook request processing times in milliseconds",
            )
            .buckets(DURATION_MS_BUCKETS.to_vec()),
        )
        .map_err(MetricsError::Setup)?;
        let duration_seconds = Histogram::with_opts(
            HistogramOpts::new(
                "vault_agent_injector_request_processing_duration_seconds",
                "Webhook request processing times in seconds",
            )
            .buckets(DURATION_SECONDS_BUCKETS.to_vec()),
        )
        .map_err(MetricsError::Setup)?;
        let injections = IntCounterVec::new(
            Opts::new(
                "vault_agent_injector_injections_by_namespace_total",
                "Total count of Agent Sidecar injections by namespace",
            ),
            &["namespace", "injection_type"],
        )
        .map_err(MetricsError::Setup)?;
        let failures = IntCounterVec::new(
            Opts::new(
                "vault_agent_injector_failed_injections_by_namespace_total",
                "Total count of failed Agent Sidecar injections by namespace",
            ),
            &["namespace"],
        )
        .map_err(MetricsError::Setup)?;
        // Not upstream: upstream queues without bound.
        let rejected = IntCounter::new(
            "vault_agent_injector_rejected_requests_total",
            "Total count of webhook requests refused with 503 because too many were in flight",
        )
        .map_err(MetricsError::Setup)?;

        registry
            .register(Box::new(queue_length.clone()))
            .map_err(MetricsError::Setup)?;
        registry
            .register(Box::new(duration_ms.clone()))
            .map_err(MetricsError::Setup)?;
        registry
            .register(Box::new(duration_seconds.clone()))
            .map_err(MetricsError::Setup)?;
        registry
            .register(Box::new(injections.clone()))
            .map_err(MetricsError::Setup)?;
        registry
            .register(Box::new(failures.clone()))
            .map_err(MetricsError::Setup)?;
        registry
            .register(Box::new(rejected.clone()))
            .map_err(MetricsError::Setup)?;
        // Upstream serves the Go default registry, which includes `process_*`; ours is the Rust
        // equivalent (Linux only, as the crate implements it only there).
        #[cfg(target_os = "linux")]
        registry
            .register(Box::new(
                prometheus::process_collector::ProcessCollector::for_self(),
            ))
            .map_err(MetricsError::Setup)?;

        Ok(Self {
            registry,
            queue_length,
            duration_ms,
            duration_seconds,
            injections,
            failures,
            rejected,
        })
    }

    /// Marks the start of a `/mutate` request. The returned guard ends it when dropped, so the
    /// queue gauge comes back down and the duration is recorded on every path out of the handler,
    /// including early error replies and a client that disconnects mid-request.
    pub fn start_request(&self) -> RequestTimer {
        self.queue_length.inc();
        RequestTimer {
            metrics: self.clone(),
            started: Instant::now(),
        }
    }

    /// Updates the counters for one answered review : an injection only
    /// when an agent container was added, a failure for every refusal, nothing for a skip.
    pub fn record_outcome(&self, namespace: &str, outcome: &Outcome) {
        match outcome {
            Outcome::Injected(Some(kind)) => self
                .injections
                .with_label_values(&[namespace, kind.label()])
                .inc(),
            Outcome::Denied(_) => self.record_failure(namespace),
            Outcome::Injected(None) | Outcome::Skipped(_) => {}
        }
    }

    /// Counts a failed injection: a refusal, or a reply that could not be delivered.
    pub fn record_failure(&self, namespace: &str) {
        self.failures.with_label_values(&[namespace]).inc();
    }

    /// Counts a `/mutate` request refused because the in-flight limit was reached.
    pub fn record_rejection(&self) {
        self.rejected.inc();
    }

    /// Registers (once the watcher is on, so default deployments expose nothing new) and returns
    /// the counter of pods created without injection, by namespace. Not upstream.
    pub fn missed_injections(&self) -> Result<IntCounterVec, MetricsError> {
        let counter = IntCounterVec::new(
            Opts::new(
                MISSED_INJECTIONS,
                "Total count of pods annotated for injection that were created without it, by namespace",
            ),
            &["namespace"],
        )
        .map_err(MetricsError::Setup)?;
        self.registry
            .register(Box::new(counter.clone()))
            .map_err(MetricsError::Setup)?;
        Ok(counter)
    }

    /// The Prometheus text exposition of every collector in this registry.
    pub fn encode(&self) -> Result<Vec<u8>, MetricsError> {
        let mut out = Vec::new();
        TextEncoder::new()
            .encode(&self.registry.gather(), &mut out)
            .map_err(MetricsError::Encode)?;
        Ok(out)
    }

    /// The `Content-Type` of [`Metrics::encode`]'s output.
    pub fn content_type() -> &'static str {
        prometheus::TEXT_FORMAT
    }

    fn finish_request(&self, elapsed: Duration) {
        self.queue_length.dec();
        // Upstream observes `time.Since(start).Milliseconds()`: whole, truncated milliseconds.
        self.duration_ms.observe(elapsed.as_millis() as f64);
        self.duration_seconds.observe(elapsed.as_secs_f64());
    }
}

/// An in-flight `/mutate` request; see [`Metrics::start_request`].
#[must_use = "the request ends when this guard is dropped"]
pub struct RequestTimer {
    metrics: Metrics,
    started: Instant,
}

impl Drop for RequestTimer {
    fn drop(&mut self) {
        self.metrics.finish_request(self.started.elapsed());
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;
    use crate::admission::InjectionType;

    fn text(metrics: &Metrics) -> String {
        String::from_utf8(metrics.encode().unwrap()).unwrap()
    }

    #[test]
    fn exposition_has_upstream_names_and_help() {
        let metrics = Metrics::new().unwrap();
        // Vec metrics appear only once a label set exists.
        metrics.record_outcome(
            "ns",
            &Outcome::Injected(Some(InjectionType::InitAndSidecar)),
        );
        metrics.record_failure("ns");
        let text = text(&metrics);
        for line in [
            "# HELP vault_agent_injector_request_queue_length Count of webhook requests in the injector's queue",
            "# TYPE vault_agent_injector_request_queue_length gauge",
            "# HELP vault_agent_injector_request_processing_duration_ms Webhook request processing times in milliseconds",
            "# TYPE vault_agent_injector_request_processing_duration_ms histogram",
            "# HELP vault_agent_injector_injections_by_namespace_total Total count of Agent Sidecar injections by namespace",
            "# TYPE vault_agent_injector_injections_by_namespace_total counter",
            "# HELP vault_agent_injector_failed_injections_by_namespace_total Total count of failed Agent Sidecar injections by namespace",
            "# TYPE vault_agent_injector_failed_injections_by_namespace_total counter",
            "# TYPE vault_agent_injector_request_processing_duration_seconds histogram",
            "# TYPE vault_agent_injector_rejected_requests_total counter",
            "vault_agent_injector_rejected_requests_total 0",
        ] {
            assert!(text.contains(line), "missing {line:?} in\n{text}");
        }
    }

    #[test]
    fn millisecond_histogram_has_upstream_buckets() {
        let metrics = Metrics::new().unwrap();
        let text = text(&metrics);
        for le in [
            "5", "10", "25", "50", "75", "100", "250", "500", "1000", "2500", "5000", "7500",
            "10000", "+Inf",
        ] {
            let line = format!(
                "vault_agent_injector_request_processing_duration_ms_bucket{{le=\"{le}\"}} 0"
            );
            assert!(text.contains(&line), "missing {line:?}");
        }
    }

    #[test]
    fn request_timer_raises_the_queue_and_records_duration_when_dropped() {
        let metrics = Metrics::new().unwrap();
        let timer = metrics.start_request();
        assert_eq!(metrics.queue_length.get(), 1);
        drop(timer);
        assert_eq!(metrics.queue_length.get(), 0);
        assert_eq!(metrics.duration_ms.get_sample_count(), 1);
        assert_eq!(metrics.duration_seconds.get_sample_count(), 1);
    }

    #[test]
    fn only_added_agents_count_as_injections_and_refusals_as_failures() {
        let metrics = Metrics::new().unwrap();
        metrics.record_outcome(
            "a",
            &Outcome::Skipped(crate::annotations::SkipReason::NotAnnotated),
        );
        metrics.record_outcome("a", &Outcome::Injected(None));
        metrics.record_outcome("a", &Outcome::Injected(Some(InjectionType::InitOnly)));
        metrics.record_outcome("a", &Outcome::Injected(Some(InjectionType::InitOnly)));
        metrics.record_outcome("b", &Outcome::Injected(Some(InjectionType::SidecarOnly)));
        metrics.record_outcome("c", &Outcome::Denied("no".into()));

        let injections =
            |ns: &str, kind: &str| metrics.injections.with_label_values(&[ns, kind]).get();
        assert_eq!(injections("a", "init_only"), 2);
        assert_eq!(injections("a", "init_and_sidecar"), 0);
        assert_eq!(injections("b", "sidecar_only"), 1);
        assert_eq!(metrics.failures.with_label_values(&["c"]).get(), 1);
        assert_eq!(metrics.failures.with_label_values(&["a"]).get(), 0);
    }

    #[test]
    fn each_instance_has_its_own_registry() {
        let one = Metrics::new().unwrap();
        let two = Metrics::new().unwrap();
        one.record_failure("x");
        assert_eq!(two.failures.with_label_values(&["x"]).get(), 0);
    }

    /// The six `process_*` series Go's process collector gives upstream's dashboards (there is
    /// no Go runtime here, so no `go_*`), with values that describe this process.
    #[cfg(target_os = "linux")]
    #[test]
    fn the_six_process_metrics_of_upstream_are_served() {
        let metrics = Metrics::new().unwrap();
        let text = text(&metrics);
        let value = |name: &str| -> f64 {
            let line = text
                .lines()
                .find(|l| l.split(' ').next() == Some(name))
                .unwrap_or_else(|| panic!("missing {name} in\n{text}"));
            assert!(
                text.contains(&format!("# TYPE {name} ")),
                "{name} has no TYPE"
            );
            line.rsplit(' ').next().unwrap().parse().unwrap()
        };
        let cpu = value("process_cpu_seconds_total");
        let resident = value("process_resident_memory_bytes");
        let virtual_memory = value("process_virtual_memory_bytes");
        let open = value("process_open_fds");
        let max = value("process_max_fds");
        let started = value("process_start_time_seconds");
        assert!(text.contains("# TYPE process_cpu_seconds_total counter"));
        assert!(cpu >= 0.0);
        assert!(resident > 0.0 && virtual_memory >= resident, "{text}");
        assert!(open >= 3.0 && max >= open, "{text}");
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs_f64();
        assert!(started <= now + 1.0 && started > now - 86_400.0, "{text}");
    }
}
