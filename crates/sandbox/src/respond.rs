//! Answers both emulators build the same way (JSON, raw bytes, a proxy's HTML error page, a
//! connection dropped after the work was done) and the path clean-up applied before routing.

use std::convert::Infallible;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::{HeaderValue, Response, StatusCode, Uri, header};
use axum::response::IntoResponse;

/// A response body that fails before its first byte: hyper then aborts the connection without
/// flushing the head, so the client sees a connection error, not a status.
pub(crate) fn dropped_response() -> Response<Body> {
    let stream = futures::stream::once(async {
        Err::<Bytes, std::io::Error>(std::io::Error::new(
            std::io::ErrorKind::ConnectionAborted,
            "sandbox fault: response dropped after commit",
        ))
    });
    let mut resp = Response::new(Body::from_stream(stream));
    *resp.status_mut() = StatusCode::OK;
    resp
}

/// The HTML page a reverse proxy answers with for 502/503/504 (bodies a client cannot parse as
/// JSON, as in production).
pub(crate) fn proxy_error_page(status: StatusCode) -> Response<Body> {
    let code = status.as_u16();
    let reason = status.canonical_reason().unwrap_or("Error");
    raw_response(
        status,
        "text/html",
        format!(
            "<html>\r\n<head><title>{code} {reason}</title></head>\r\n<body>\r\n<center><h1>{code} {reason}</h1></center>\r\n<hr><center>nginx</center>\r\n</body>\r\n</html>\r\n"
        )
        .into_bytes(),
    )
}

/// A JSON response.
pub(crate) fn json_response(status: StatusCode, body: &serde_json::Value) -> Response<Body> {
    let bytes = serde_json::to_vec(body).unwrap_or_default();
    raw_response(status, "application/json", bytes)
}

/// A response with a given content type and body.
pub(crate) fn raw_response(
    status: StatusCode,
    content_type: &'static str,
    body: Vec<u8>,
) -> Response<Body> {
    let mut resp = Response::new(Body::from(body));
    *resp.status_mut() = status;
    resp.headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    resp
}

/// Sets a header from a string (values we build are always valid header text).
pub(crate) fn set_header(resp: &mut Response<Body>, name: &'static str, value: &str) {
    if let Ok(v) = HeaderValue::from_str(value) {
        resp.headers_mut().insert(name, v);
    }
}

/// Wraps an emulator's router so that empty path segments (`//`, a trailing `/`) are dropped
/// before routing: the routers match `/v1/products` for `/v1/products/` as the hand-written
/// routing did. The journal still records the path as sent (axum's `OriginalUri`).
pub(crate) fn with_clean_paths(app: Router) -> Router {
    Router::new()
        .fallback_service(app)
        .layer(axum::middleware::map_request(clean_path))
}

async fn clean_path(mut req: Request) -> Request {
    let path = req.uri().path();
    if !path.contains("//") && (path == "/" || !path.ends_with('/')) {
        return req;
    }
    let clean: String = path
        .split('/')
        .filter(|s| !s.is_empty())
        .flat_map(|s| ["/", s])
        .collect();
    let clean = if clean.is_empty() {
        "/".to_owned()
    } else {
        clean
    };
    let with_query = match req.uri().query() {
        Some(q) => format!("{clean}?{q}"),
        None => clean,
    };
    let mut parts = req.uri().clone().into_parts();
    if let Ok(pq) = with_query.parse() {
        parts.path_and_query = Some(pq);
        if let Ok(uri) = Uri::from_parts(parts) {
            *req.uri_mut() = uri;
        }
    }
    req
}

/// The fault behind an answer (the journal's `fault`), carried from the handler that decided it
/// to the layer that journals the request, in the response's extensions.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Fault(pub &'static str);

/// An answer and the fault behind it, as handlers return it.
pub(crate) struct Faulted(pub Response<Body>, pub Option<&'static str>);

impl IntoResponse for Faulted {
    fn into_response(self) -> Response<Body> {
        let Faulted(mut resp, fault) = self;
        if let Some(fault) = fault {
            resp.extensions_mut().insert(Fault(fault));
        }
        resp
    }
}

/// The fault an answer carries, if any.
pub(crate) fn fault_of(resp: &Response<Body>) -> Option<&'static str> {
    resp.extensions().get::<Fault>().map(|f| f.0)
}

/// The query string's pairs, decoded, in order (repeats kept). Never refuses a request: each
/// handler validates the parameters it reads and answers in its vendor's error shape.
pub(crate) struct QueryPairs(pub Vec<(String, String)>);

impl<S: Send + Sync> FromRequestParts<S> for QueryPairs {
    type Rejection = Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        let query = parts.uri.query().unwrap_or("");
        Ok(QueryPairs(
            url::form_urlencoded::parse(query.as_bytes())
                .map(|(k, v)| (k.into_owned(), v.into_owned()))
                .collect(),
        ))
    }
}
