//! Prometheus metrics, in a registry this struct owns (no global registry), rendered on the
//! admin listener only.

use std::sync::{Arc, OnceLock};
use std::time::Duration;

use prometheus::{
    Encoder, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGauge, Opts, Registry,
    TextEncoder,
};

#[derive(Clone)]
pub struct Metrics(Arc<Inner>);

struct Inner {
    registry: Registry,
    requests: IntCounterVec,
    auth_decisions: IntCounterVec,
    auth_seconds: HistogramVec,
    upstream_seconds: HistogramVec,
    cache_lookups: IntCounterVec,
    login_failures: IntCounter,
    throttled: IntCounter,
    open_connections: IntGauge,
    rejected_connections: IntCounter,
    /// Labelled series the request path touches on every request, resolved once: looking a
    /// series up by its labels hashes them each time.
    hot: HotSeries,
}

const METHODS: [&str; 4] = ["jwt", "api_key", "session", "none"];
const RESULTS: [&str; 4] = ["ok", "rejected", "absent", "cross_site"];
const CACHES: [&str; 3] = ["user", "api_key", "session"];
const OUTCOMES: [&str; 3] = ["ok", "error", "timeout"];
const ROUTES: [&str; 6] = ["proxy", "accounts", "health", "docs", "ui", "jwks"];

#[derive(Default)]
struct HotSeries {
    decisions: [OnceLock<IntCounter>; 16],
    auth_seconds: [OnceLock<prometheus::Histogram>; 4],
    cache: [OnceLock<IntCounter>; 6],
    upstream: [OnceLock<prometheus::Histogram>; 3],
    /// Status 200, per route: by far the most common series.
    ok_requests: [OnceLock<IntCounter>; 6],
}

fn position(options: &[&str], value: &str) -> Option<usize> {
    options.iter().position(|o| *o == value)
}

/// Auth runs in microseconds on a cache hit and milliseconds on a miss; upstreams in
/// milliseconds to seconds.
const AUTH_BUCKETS: &[f64] = &[1e-6, 5e-6, 2e-5, 1e-4, 5e-4, 2e-3, 1e-2, 5e-2, 0.25];
const UPSTREAM_BUCKETS: &[f64] = &[5e-4, 1e-3, 5e-3, 1e-2, 5e-2, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0];

impl Metrics {
    pub fn new() -> Metrics {
        let registry = Registry::new();
        let counter_vec = |name: &str, help: &str, labels: &[&str]| {
            let c = IntCounterVec::new(Opts::new(name, help), labels).expect("static metric");
            registry
                .register(Box::new(c.clone()))
                .expect("unique metric");
            c
        };
        let histogram_vec = |name: &str, help: &str, labels: &[&str], buckets: &[f64]| {
            let opts = HistogramOpts::new(name, help).buckets(buckets.to_vec());
            let h = HistogramVec::new(opts, labels).expect("static metric");
            registry
                .register(Box::new(h.clone()))
                .expect("unique metric");
            h
        };
        let counter = |name: &str, help: &str| {
            let c = IntCounter::new(name, help).expect("static metric");
            registry
                .register(Box::new(c.clone()))
                .expect("unique metric");
            c
        };
        let inner = Inner {
            requests: counter_vec(
                "portcullis_requests_total",
                "Requests answered, by route class and HTTP status.",
                &["route", "status"],
            ),
            auth_decisions: counter_vec(
                "portcullis_auth_decisions_total",
                "Credential checks, by method (jwt, api_key, session, none) and result.",
                &["method", "result"],
            ),
            auth_seconds: histogram_vec(
                "portcullis_auth_duration_seconds",
                "Time to authenticate a presented credential.",
                &["method"],
                AUTH_BUCKETS,
            ),
            upstream_seconds: histogram_vec(
                "portcullis_upstream_duration_seconds",
                "Time from forwarding a request to the upstream's response head.",
                &["outcome"],
                UPSTREAM_BUCKETS,
            ),
            cache_lookups: counter_vec(
                "portcullis_cache_lookups_total",
                "Hot-path cache lookups, by cache and hit or miss.",
                &["cache", "result"],
            ),
            login_failures: counter(
                "portcullis_login_failures_total",
                "Logins refused for wrong credentials.",
            ),
            throttled: counter(
                "portcullis_throttled_requests_total",
                "Logins refused by the rate limit (429).",
            ),
            open_connections: {
                let g = IntGauge::new("portcullis_open_connections", "Client connections open.")
                    .expect("static metric");
                registry
                    .register(Box::new(g.clone()))
                    .expect("unique metric");
                g
            },
            rejected_connections: counter(
                "portcullis_rejected_connections_total",
                "Connections closed at once because server.max_connections was reached.",
            ),
            hot: HotSeries::default(),
            registry,
        };
        let build_info = IntCounterVec::new(
            Opts::new("portcullis_build_info", "Build information; always 1."),
            &["version"],
        )
        .expect("static metric");
        inner
            .registry
            .register(Box::new(build_info.clone()))
            .expect("unique metric");
        build_info
            .with_label_values(&[env!("CARGO_PKG_VERSION")])
            .inc();
        Metrics(Arc::new(inner))
    }

    pub fn request(&self, route: &str, status: http::StatusCode) {
        let inner = &self.0;
        match position(&ROUTES, route).filter(|_| status == http::StatusCode::OK) {
            Some(i) => inner.hot.ok_requests[i]
                .get_or_init(|| inner.requests.with_label_values(&[route, "200"]))
                .inc(),
            None => inner
                .requests
                .with_label_values(&[route, status.as_str()])
                .inc(),
        }
    }

    pub fn auth_decision(&self, method: &str, result: &str, took: Option<Duration>) {
        let inner = &self.0;
        match (position(&METHODS, method), position(&RESULTS, result)) {
            (Some(m), Some(r)) => inner.hot.decisions[m * RESULTS.len() + r]
                .get_or_init(|| inner.auth_decisions.with_label_values(&[method, result]))
                .inc(),
            _ => inner
                .auth_decisions
                .with_label_values(&[method, result])
                .inc(),
        }
        if let (Some(took), Some(m)) = (took, position(&METHODS, method)) {
            let histogram = inner.hot.auth_seconds[m]
                .get_or_init(|| inner.auth_seconds.with_label_values(&[method]));
            histogram.observe(took.as_secs_f64());
        }
    }

    pub fn upstream(&self, outcome: &str, took: Duration) {
        let inner = &self.0;
        if let Some(o) = position(&OUTCOMES, outcome) {
            let histogram = inner.hot.upstream[o]
                .get_or_init(|| inner.upstream_seconds.with_label_values(&[outcome]));
            histogram.observe(took.as_secs_f64());
        }
    }

    pub fn cache_lookup(&self, cache: &str, hit: bool) {
        let inner = &self.0;
        let result = if hit { "hit" } else { "miss" };
        match position(&CACHES, cache) {
            Some(c) => inner.hot.cache[c * 2 + usize::from(!hit)]
                .get_or_init(|| inner.cache_lookups.with_label_values(&[cache, result]))
                .inc(),
            None => inner
                .cache_lookups
                .with_label_values(&[cache, result])
                .inc(),
        }
    }

    pub fn login_failed(&self) {
        self.0.login_failures.inc();
    }

    pub fn throttled(&self) {
        self.0.throttled.inc();
    }

    pub fn connection_opened(&self) {
        self.0.open_connections.inc();
    }

    pub fn connection_closed(&self) {
        self.0.open_connections.dec();
    }

    pub fn connection_rejected(&self) {
        self.0.rejected_connections.inc();
    }

    /// The Prometheus text exposition of every metric.
    pub fn render(&self) -> String {
        let mut out = Vec::new();
        let _ = TextEncoder::new().encode(&self.0.registry.gather(), &mut out);
        String::from_utf8(out).unwrap_or_default()
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics::new()
    }
}
