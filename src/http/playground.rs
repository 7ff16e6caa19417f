//! The GraphiQL playground, served from assets embedded in the binary: it works with no
//! internet access and loads nothing from a CDN.

use poem::http::{StatusCode, header};
use poem::web::Path;
use poem::{Response, handler};

/// The page and its assets: (name, content type, bytes).
const ASSETS: &[(&str, &str, &[u8])] = &[
    ("playground.js", "text/javascript; charset=utf-8", include_bytes!("../../playground/playground.js")),
    (
        "graphiql.min.js",
        "text/javascript; charset=utf-8",
        include_bytes!("../../playground/vendor/graphiql.min.js"),
    ),
    (
        "graphiql.min.css",
        "text/css; charset=utf-8",
        include_bytes!("../../playground/vendor/graphiql.min.css"),
    ),
    (
        "graphql-ws.min.js",
        "text/javascript; charset=utf-8",
        include_bytes!("../../playground/vendor/graphql-ws.min.js"),
    ),
    (
        "react.production.min.js",
        "text/javascript; charset=utf-8",
        include_bytes!("../../playground/vendor/react.production.min.js"),
    ),
    (
        "react-dom.production.min.js",
        "text/javascript; charset=utf-8",
        include_bytes!("../../playground/vendor/react-dom.production.min.js"),
    ),
];

const INDEX: &str = include_str!("../../playground/index.html");

/// Everything the page needs comes from this server.
const CSP: &str = "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; \
                   font-src 'self' data:; img-src 'self' data:; connect-src 'self' ws: wss:; \
                   frame-ancestors 'none'; base-uri 'none'; form-action 'none'";

#[handler]
pub(super) fn page() -> Response {
    Response::builder()
        .content_type("text/html; charset=utf-8")
        .header(header::CONTENT_SECURITY_POLICY, CSP)
        .header(header::X_CONTENT_TYPE_OPTIONS, "nosniff")
        .header(header::CACHE_CONTROL, "no-cache")
        .body(INDEX)
}

#[handler]
pub(super) fn asset(Path(file): Path<String>) -> Response {
    match ASSETS.iter().find(|(name, _, _)| *name == file) {
        Some((_, content_type, bytes)) => Response::builder()
            .content_type(*content_type)
            .header(header::X_CONTENT_TYPE_OPTIONS, "nosniff")
            .header(header::CACHE_CONTROL, "public, max-age=3600")
            .body(*bytes),
        None => super::graphql::error_response(
            StatusCode::NOT_FOUND,
            crate::error::ErrorCode::NotFound,
            "no such asset",
        ),
    }
}
