//! The files behind the dataset's attachment URLs (`/attachments/…`), served like a CDN: no
//! rate limit, cost 0 in the journal, not counted by churn, with the declared size, so a client
//! can HEAD or download them; public unless [`crate::AttachmentSetup`] puts them behind the token
//! or signs them (then the ticket detail carries signed URLs, made per response).

use axum::Router;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, Method, Response, StatusCode, Uri};
use axum::middleware::Next;
use axum::routing::get;
use serde_json::Value;

use super::answers::{error, unauthenticated};
use super::app::App;
use super::auth::TokenCheck;
use super::gate::check_token;
use crate::respond::{Faulted, fault_of, raw_response, set_header};
use crate::state::Server;
use crate::state::{Shared, entry_for};

/// `GET` (and `HEAD`) `/attachments/…`.
pub(super) fn routes() -> Router<App> {
    Router::new().route("/attachments/{*file}", get(attachment))
}

/// The files' own layer: latency and the journal (cost 0), nothing metered.
pub(super) async fn journal(State(app): State<App>, req: Request, next: Next) -> Response<Body> {
    let mut journal = entry_for(Server::Desk360, &req, 0);
    app.shared.delay().await;
    let resp = next.run(req).await;
    journal.status = resp.status().as_u16();
    journal.fault = fault_of(&resp).map(str::to_owned);
    app.shared.record(journal);
    resp
}

/// How one attachment file is served ([`crate::AttachmentSetup`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Access {
    /// Like a public CDN object: anyone with the URL.
    Public,
    /// Only with `Authorization: Bearer <the account's valid token>`.
    BehindToken,
    /// Only through a signed URL (`?expires=<epoch>&signature=<hex>`) that has not expired.
    Signed,
}

/// The class of the file at `path`: one draw per file from (seed, path), so the same file is
/// always served the same way and the shares hold over many files. The classes are exclusive:
/// a draw below `behind_token_share` is behind the token, the next `signed_share` signed.
fn access(shared: &Shared, path: &str) -> Access {
    let setup = &shared.config.attachments;
    if setup.behind_token_share <= 0.0 && setup.signed_share <= 0.0 {
        return Access::Public;
    }
    let u = (crate::data::stable_hash(shared.config.seed, 0xacce55, path) >> 11) as f64
        / (1u64 << 53) as f64;
    if u < setup.behind_token_share {
        Access::BehindToken
    } else if u < setup.behind_token_share + setup.signed_share {
        Access::Signed
    } else {
        Access::Public
    }
}

/// The signature of a signed attachment URL: SHA-256 over the sandbox's secret (from the
/// seed), the path and the expiry, in lowercase hex.
fn signature(shared: &Shared, path: &str, expires: u64) -> String {
    use sha2::Digest;
    let secret = format!("sandbox-signing-{:x}", shared.config.seed);
    let digest = sha2::Sha256::digest(format!("{secret}\n{path}\n{expires}").as_bytes());
    digest.iter().map(|b| format!("{b:02x}")).collect()
}

fn now_epoch() -> f64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or_default()
}

/// Rewrites the URLs of the signed files of a ticket detail: `?expires=<epoch>&signature=<hex>`,
/// valid `signed_ttl` from NOW — the moment the detail is served, like a presigned S3 URL made
/// per response (the files of page 004's examples live on `desk-360.s3.amazonaws.com`). A
/// client that keeps a URL longer than that must fetch the detail again.
pub(super) fn sign_detail(shared: &Shared, detail: &Value) -> Option<Value> {
    if shared.config.attachments.signed_share <= 0.0 {
        return None;
    }
    let expires = (now_epoch() + shared.config.attachments.signed_ttl.as_secs_f64()).ceil() as u64;
    let mut out = detail.clone();
    let mut changed = false;
    let messages = out.get_mut("messages").and_then(Value::as_array_mut)?;
    for m in messages {
        let Some(groups) = m.get_mut("attachments").and_then(Value::as_object_mut) else {
            continue;
        };
        for files in groups.values_mut().filter_map(Value::as_array_mut) {
            for f in files {
                let Some(url) = f.get("url").and_then(Value::as_str) else {
                    continue;
                };
                let Some(at) = url.find("/attachments/") else {
                    continue;
                };
                let path = url[at..].split(['?', '#']).next().unwrap_or_default();
                if access(shared, path) == Access::Signed {
                    let signed = format!(
                        "{url}?expires={expires}&signature={}",
                        signature(shared, path, expires)
                    );
                    f["url"] = Value::String(signed);
                    changed = true;
                }
            }
        }
    }
    changed.then_some(out)
}

/// The answer of S3 to a presigned URL that is wrong or expired (403 with an XML body): signed
/// attachment URLs behave like the S3 objects page 004's file URLs point at.
fn access_denied(message: &str) -> Response<Body> {
    raw_response(
        StatusCode::FORBIDDEN,
        "application/xml",
        format!(
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error><Code>AccessDenied</Code><Message>{message}</Message></Error>"
        )
        .into_bytes(),
    )
}

/// Serves an attachment file (GET or HEAD): 404 when unknown, 401 / 403 when its class refuses
/// the request, else the deterministic bytes in 64 KiB chunks with the declared length.
async fn attachment(
    State(app): State<App>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
) -> Faulted {
    let shared = &app.shared;
    let ds = shared.dataset();
    let Some((path, size)) = ds.attachment_path(uri.path()) else {
        return Faulted(
            error(
                StatusCode::NOT_FOUND,
                "not_found_exception",
                "No such attachment.",
            ),
            None,
        );
    };
    match access(shared, path) {
        Access::Public => {}
        // The files behind the token answer like every Desk360 endpoint without it.
        Access::BehindToken => match check_token(&app, &headers) {
            TokenCheck::Valid => {}
            TokenCheck::Expired => return Faulted(unauthenticated(), Some("token_expired")),
            TokenCheck::Invalid => return Faulted(unauthenticated(), None),
        },
        Access::Signed => {
            let mut expires = None;
            let mut sig = None;
            for (k, v) in url::form_urlencoded::parse(uri.query().unwrap_or("").as_bytes()) {
                match k.as_ref() {
                    "expires" => expires = v.parse::<u64>().ok(),
                    "signature" => sig = Some(v.into_owned()),
                    _ => {}
                }
            }
            let Some((expires, sig)) = expires.zip(sig) else {
                return Faulted(
                    access_denied(
                        "Query-string authentication requires the Signature and Expires parameters",
                    ),
                    None,
                );
            };
            if sig != signature(shared, path, expires) {
                return Faulted(
                    access_denied(
                        "The request signature we calculated does not match the signature you provided.",
                    ),
                    None,
                );
            }
            if now_epoch() >= expires as f64 {
                return Faulted(access_denied("Request has expired"), Some("url_expired"));
            }
        }
    }
    let body = if method == Method::HEAD {
        Body::empty()
    } else {
        let chunks = crate::data::file_chunks(shared.config.seed, path, size);
        Body::from_stream(futures::stream::iter(
            chunks.map(|c| Ok::<_, std::io::Error>(axum::body::Bytes::from(c))),
        ))
    };
    let mut resp = Response::new(body);
    set_header(&mut resp, "content-type", "application/octet-stream");
    set_header(&mut resp, "content-length", &size.to_string());
    Faulted(resp, None)
}
