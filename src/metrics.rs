//! Prometheus metrics: HTTP requests and latency by route, GraphQL errors by code.

use std::time::Duration;

use prometheus::{Encoder, HistogramOpts, HistogramVec, IntCounterVec, Opts, Registry, TextEncoder};

use crate::error::ErrorCode;

/// The server's metrics. Cheap to clone.
#[derive(Clone)]
pub struct Metrics {
    registry: Registry,
    requests: IntCounterVec,
    latency: HistogramVec,
    graphql_errors: IntCounterVec,
}

impl Metrics {
    pub fn new() -> Metrics {
        let registry = Registry::new();
        let requests = IntCounterVec::new(
            Opts::new("agensium_http_requests_total", "HTTP requests by method, route and status"),
            &["method", "route", "status"],
        )
        .expect("valid metric");
        let latency = HistogramVec::new(
            HistogramOpts::new("agensium_http_request_duration_seconds", "HTTP request latency by route")
                .buckets(vec![0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0]),
            &["method", "route"],
        )
        .expect("valid metric");
        let graphql_errors = IntCounterVec::new(
            Opts::new("agensium_graphql_errors_total", "GraphQL errors by code"),
            &["code"],
        )
        .expect("valid metric");
        for collector in [
            Box::new(requests.clone()) as Box<dyn prometheus::core::Collector>,
            Box::new(latency.clone()),
            Box::new(graphql_errors.clone()),
        ] {
            registry.register(collector).expect("metric registered once");
        }
        // Every code appears from the start, at zero, so dashboards see the full set.
        for code in ErrorCode::ALL {
            graphql_errors.with_label_values(&[code.as_str()]);
        }
        Metrics { registry, requests, latency, graphql_errors }
    }

    /// Records one HTTP request. `route` must come from a fixed set (not the raw path).
    pub fn http_request(&self, method: &str, route: &str, status: u16, elapsed: Duration) {
        self.requests.with_label_values(&[method, route, &status.to_string()]).inc();
        self.latency.with_label_values(&[method, route]).observe(elapsed.as_secs_f64());
    }

    pub fn graphql_error(&self, code: ErrorCode) {
        self.graphql_errors.with_label_values(&[code.as_str()]).inc();
    }

    /// The Prometheus text exposition of every metric.
    pub fn render(&self) -> String {
        let mut buf = Vec::new();
        // Encoding into a Vec cannot fail for well-formed metrics.
        let _ = TextEncoder::new().encode(&self.registry.gather(), &mut buf);
        String::from_utf8(buf).unwrap_or_default()
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics::new()
    }
}
