//! The HTTP layer on poem: routes, middleware (request id, metrics, CORS, panics), and
//! the GraphQL-over-HTTP and WebSocket endpoints. Only this module and `app` import poem.

mod download;
mod graphql;
mod health;
mod playground;
mod upload;
mod ws;

use std::net::IpAddr;
use std::time::Instant;

use poem::http::{HeaderValue, Method};
use poem::middleware::{CatchPanic, Cors};
use poem::{Endpoint, EndpointExt, IntoResponse, Middleware, Request, Response, Route, get};
use tracing::Instrument;

use crate::app::AppState;
use crate::config::CorsOrigins;

/// Every route of the server, with its middleware.
pub fn routes(state: AppState) -> impl Endpoint + 'static {
    let cors = match &state.config.cors_origins {
        CorsOrigins::Any => Cors::new(),
        CorsOrigins::List(origins) => Cors::new().allow_origins(origins.iter().map(String::as_str)),
    }
    .allow_methods([Method::GET, Method::POST, Method::OPTIONS])
    // (Apollo's clients add its two to uploads and operations, and browsers' tracing —
    // OpenTelemetry, Sentry — the last four: a preflight refusing them fails the request in
    // the browser.)
    .allow_headers([
        "authorization",
        "content-type",
        "accept",
        "x-request-id",
        "apollo-require-preflight",
        "x-apollo-operation-name",
        // (What Apollo Client sends once it is given a name and a version.)
        "apollographql-client-name",
        "apollographql-client-version",
        "traceparent",
        "tracestate",
        "baggage",
        "sentry-trace",
    ])
    .expose_headers(["x-request-id"])
    .max_age(3600);

    let metrics = state.metrics.clone();
    let state_trust = state.config.trust_proxy_headers;
    let api = state.config.role.runs_api();
    let route = if api {
        Route::new()
            .at("/graphql", get(graphql::get).post(graphql::post))
            .at("/", get(playground::page))
            .at("/playground", get(playground::page))
            .at("/playground/assets/:file", get(playground::asset))
            .at("/downloads/:token", get(download::download))
    } else {
        // A worker-only process answers health checks and metrics; clients use the API.
        Route::new()
    };
    route
        .at("/healthz", get(health::healthz))
        .at("/readyz", get(health::readyz))
        .at("/metrics", get(health::metrics))
        .data(state)
        // Inside CORS: with an `Origin`, poem's CORS turns an inner error into its plain
        // response itself, so the errors shape is given here (and again in `observe`, for
        // CORS's own refusals).
        .catch_all_error(|error| async move { refusal(error) })
        .with(cors)
        .with(SameOrigin { trust_proxy_headers: state_trust })
        .with(CatchPanic::new().with_handler(on_panic))
        .with(Observe { metrics })
}

fn on_panic(_: Box<dyn std::any::Any + Send + 'static>) -> Response {
    tracing::error!("a handler panicked");
    graphql::error_response(
        poem::http::StatusCode::INTERNAL_SERVER_ERROR,
        crate::error::ErrorCode::Internal,
        "internal error",
    )
}

/// Middleware: browsers send `Origin` on same-origin POSTs and WebSocket upgrades too (the
/// playground does); poem's CORS would refuse them unless the server's own origin were in
/// `FRONTEND_URL`. A request whose origin is this server's is not a cross-origin request,
/// so its `Origin` is dropped before CORS looks at it.
struct SameOrigin {
    trust_proxy_headers: bool,
}

impl<E: Endpoint> Middleware<E> for SameOrigin {
    type Output = SameOriginEndpoint<E>;

    fn transform(&self, ep: E) -> Self::Output {
        SameOriginEndpoint { inner: ep, trust_proxy_headers: self.trust_proxy_headers }
    }
}

struct SameOriginEndpoint<E> {
    inner: E,
    trust_proxy_headers: bool,
}

impl<E: Endpoint> Endpoint for SameOriginEndpoint<E> {
    type Output = E::Output;

    async fn call(&self, mut req: Request) -> poem::Result<Self::Output> {
        let host = self
            .trust_proxy_headers
            .then(|| req.header("x-forwarded-host"))
            .flatten()
            .or_else(|| req.header("host"))
            .map(str::to_owned);
        let same = match (req.header("origin"), host) {
            (Some(origin), Some(host)) => {
                origin.strip_prefix("http://").or_else(|| origin.strip_prefix("https://"))
                    == Some(host.as_str())
            }
            _ => false,
        };
        if same {
            req.headers_mut().remove("origin");
        }
        self.inner.call(req).await
    }
}

/// Middleware: request id, a tracing span, and metrics for every request.
struct Observe {
    metrics: crate::metrics::Metrics,
}

impl<E: Endpoint> Middleware<E> for Observe {
    type Output = ObserveEndpoint<E>;

    fn transform(&self, ep: E) -> Self::Output {
        ObserveEndpoint { inner: ep, metrics: self.metrics.clone() }
    }
}

struct ObserveEndpoint<E> {
    inner: E,
    metrics: crate::metrics::Metrics,
}

impl<E: Endpoint> Endpoint for ObserveEndpoint<E> {
    type Output = Response;

    async fn call(&self, req: Request) -> poem::Result<Response> {
        Ok(observe(&self.inner, req, &self.metrics).await)
    }
}

/// The request id: a well-formed incoming `X-Request-Id` (from a proxy), or a new one.
#[derive(Debug, Clone)]
pub struct RequestIdHeader(pub String);

/// Routes as metric labels: a fixed set, never the raw path.
fn route_label(path: &str) -> &'static str {
    match path {
        "/graphql" => "/graphql",
        "/" | "/playground" => "/playground",
        p if p.starts_with("/playground/assets/") => "/playground/assets",
        p if p.starts_with("/downloads/") => "/downloads",
        "/healthz" => "/healthz",
        "/readyz" => "/readyz",
        "/metrics" => "/metrics",
        _ => "other",
    }
}

async fn observe<E: Endpoint>(ep: &E, mut req: Request, metrics: &crate::metrics::Metrics) -> Response {
    let started = Instant::now();
    let request_id = req
        .header("x-request-id")
        .filter(|id| {
            !id.is_empty()
                && id.len() <= 64
                && id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        })
        .map(str::to_owned)
        .unwrap_or_else(|| uuid::Uuid::now_v7().simple().to_string());
    req.extensions_mut().insert(RequestIdHeader(request_id.clone()));
    let method = match *req.method() {
        Method::GET => "GET",
        Method::POST => "POST",
        Method::OPTIONS => "OPTIONS",
        Method::HEAD => "HEAD",
        _ => "OTHER",
    };
    let route = route_label(req.uri().path());
    let span = tracing::info_span!("request", request_id = %request_id, method = %method, route = %route);
    let mut response = match ep.call(req).instrument(span.clone()).await {
        Ok(r) => r.into_response(),
        Err(e) => refusal(e),
    };
    if let Ok(value) = HeaderValue::from_str(&request_id) {
        response.headers_mut().insert("x-request-id", value);
    }
    let status = response.status().as_u16();
    let elapsed = started.elapsed();
    metrics.http_request(method, route, status, elapsed);
    span.in_scope(|| {
        tracing::debug!(status, elapsed_ms = elapsed.as_secs_f64() * 1000.0, "request served");
    });
    response
}

/// A refusal poem makes itself (no such route, a method the route does not take, an origin
/// CORS does not allow) in the shape and codes of every other refusal. Its headers (`Allow`,
/// CORS) are kept.
fn refusal(error: poem::Error) -> Response {
    use crate::error::ErrorCode;
    let status = error.status();
    let code = match status.as_u16() {
        401 => ErrorCode::Unauthenticated,
        403 => ErrorCode::Forbidden,
        404 => ErrorCode::NotFound,
        405 => ErrorCode::MethodNotAllowed,
        406 => ErrorCode::NotAcceptable,
        413 => ErrorCode::PayloadTooLarge,
        415 => ErrorCode::UnsupportedMediaType,
        429 => ErrorCode::RateLimited,
        500.. => ErrorCode::Internal,
        _ => ErrorCode::BadRequest,
    };
    let message = match code {
        ErrorCode::Internal => {
            tracing::error!(error = %error, "request failed");
            "internal error".to_owned()
        }
        _ => error.to_string(),
    };
    let original = error.into_response();
    let mut response = graphql::error_response(status, code, &message);
    for (name, value) in original.headers() {
        if name != poem::http::header::CONTENT_TYPE && name != poem::http::header::CONTENT_LENGTH {
            response.headers_mut().insert(name.clone(), value.clone());
        }
    }
    response
}

/// A request body's bytes, failing with `TimedOut` when nothing arrives for `idle`: a client
/// that stops sending mid-body (its headers complete) would otherwise hold the request, and a
/// task, open for ever.
fn body_stream(
    body: poem::Body,
    idle: std::time::Duration,
) -> impl futures_util::Stream<Item = std::io::Result<bytes::Bytes>> + Send + 'static {
    use futures_util::StreamExt;
    let stream = body.into_bytes_stream().boxed();
    futures_util::stream::unfold(Some(stream), move |stream| async move {
        let mut stream = stream?;
        match tokio::time::timeout(idle, stream.next()).await {
            Ok(Some(item)) => Some((item, Some(stream))),
            Ok(None) => None,
            Err(_) => Some((
                Err(std::io::Error::new(
                    std::io::ErrorKind::TimedOut,
                    format!("no part of the body arrived for {} s (IDLE_TIMEOUT)", idle.as_secs_f64()),
                )),
                None,
            )),
        }
    })
}

/// The client's address: the proxy's `X-Forwarded-For` entry when proxy headers are
/// trusted, else the peer address.
fn client_addr(req: &Request, trust_proxy_headers: bool) -> Option<IpAddr> {
    if trust_proxy_headers
        && let Some(forwarded) = req.header("x-forwarded-for")
        && let Some(last) = forwarded.rsplit(',').next()
        && let Ok(ip) = last.trim().parse()
    {
        return Some(ip);
    }
    req.remote_addr().as_socket_addr().map(|a| a.ip())
}

fn request_id(req: &Request) -> String {
    req.extensions().get::<RequestIdHeader>().map(|r| r.0.clone()).unwrap_or_default()
}
