//! The server stack's routes, shared by the local server and Lambda Function URLs.
//!
//! `POST /function` (authenticated), `GET /` and `GET /healthCheck` (open), the job and run
//! routes, and whatever the startup module mounts ([`Mount`]: the incoming webhooks'
//! `POST /incoming/{endpoint}`).
//! Everything else is a JSON 404. `/function` bodies are parsed before authentication, as in
//! the reference server, so malformed or unsupported bodies get 400/413/415 even without a
//! token; every answer is JSON (except the incoming endpoints' 204 for a duplicate).

use super::system_token::{Presented, SystemTokens, presented_token};
use crate::dispatch::{CallRequest, Extension, Stack};
use crate::protocol::error::{WireError, http_body};
use crate::protocol::{Envelope, JsonText};
use bytes::Bytes;
use http::{HeaderMap, HeaderValue, Method, Response, StatusCode, header};
use serde_json::Value;
use std::borrow::Cow;
use std::io::Read;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

/// Request body limit of the reference server (and of `make serve`): 50 MB.
pub const LOCAL_BODY_LIMIT: usize = 50 * 1024 * 1024;
/// Lambda's synchronous payload limit: bodies above it cannot reach a Function URL.
pub const LAMBDA_BODY_LIMIT: usize = 6 * 1024 * 1024;

const JSON_UTF8: &str = "application/json; charset=utf-8";

/// The server-stack application: the extension plus HTTP settings.
#[derive(Clone)]
pub struct HttpApp {
    pub extension: Extension,
    /// The system tokens (shared by the clones: one re-read serves them all).
    pub tokens: Arc<SystemTokens>,
    pub body_limit: usize,
    /// Routes mounted beside integrator.io's (the incoming webhooks), by path prefix.
    pub mounts: Vec<Arc<dyn Mount>>,
}

/// Routes served beside `POST /function`, mounted by the startup module: the transport
/// answers `POST <prefix><name>` with the mount, without knowing what it is (the incoming
/// webhooks mount here).
#[async_trait::async_trait]
pub trait Mount: Send + Sync + 'static {
    /// The path prefix this mount answers (e.g. `/incoming/`).
    fn prefix(&self) -> &str;
    /// Answer `POST <prefix><name>`.
    async fn handle(&self, name: &str, req: HttpRequest) -> Response<Bytes>;
}

/// One HTTP request, transport-neutral.
#[derive(Debug)]
pub struct HttpRequest {
    pub method: Method,
    pub path: String,
    pub query: Option<String>,
    pub headers: HeaderMap,
    pub body: Bytes,
    /// Lambda's deadline when served from a Function URL.
    pub deadline: Option<Instant>,
    pub request_id: Option<String>,
}

impl HttpRequest {
    /// From a request head and its collected body (local server and Function URL alike).
    pub fn from_parts(
        parts: http::request::Parts,
        body: Bytes,
        deadline: Option<Instant>,
        request_id: Option<String>,
    ) -> Self {
        Self {
            method: parts.method,
            path: parts.uri.path().to_owned(),
            query: parts.uri.query().map(str::to_owned),
            headers: parts.headers,
            body,
            deadline,
            request_id,
        }
    }
}

/// Build a JSON response with the reference server's content type.
pub fn json_response(status: StatusCode, body: impl Into<Bytes>) -> Response<Bytes> {
    let mut r = Response::new(body.into());
    *r.status_mut() = status;
    r.headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(JSON_UTF8));
    r
}

/// A JSON response whose body is an answer's text, in its pieces (see [`JsonText`]).
pub fn text_response(status: StatusCode, body: JsonText) -> Response<JsonText> {
    json_response(status, Bytes::new()).map(|_| body)
}

/// A JSON error answer `{"errors":[{"code","message"}]}` with `status`.
pub fn error_response(
    status: StatusCode,
    code: &'static str,
    message: impl Into<Cow<'static, str>>,
) -> Response<Bytes> {
    let e = WireError {
        code: code.into(),
        message: message.into(),
        order: crate::protocol::KeyOrder::CodeFirst,
    };
    json_response(status, http_body(&[e]))
}

/// A 413 for a body over `limit`.
pub fn too_large(limit: usize) -> Response<Bytes> {
    error_response(
        StatusCode::PAYLOAD_TOO_LARGE,
        "request_too_large",
        format!("The request body exceeds the limit of {limit} bytes."),
    )
}

fn unauthorized() -> Response<Bytes> {
    let mut r = json_response(
        StatusCode::UNAUTHORIZED,
        http_body(&[WireError::unauthorized()]),
    );
    r.headers_mut().insert(
        header::WWW_AUTHENTICATE,
        HeaderValue::from_static("invalid system token"),
    );
    r
}

static REQUEST_COUNTER: AtomicU64 = AtomicU64::new(0);

/// A request id like the reference's `_reqId`: milliseconds since the epoch plus a counter.
pub fn new_request_id() -> String {
    let ms = crate::time::EpochMillis::now().0;
    format!(
        "{ms}{:04}",
        REQUEST_COUNTER.fetch_add(1, Ordering::Relaxed) % 10_000
    )
}

/// An early answer (400/413/415), boxed to keep `Result`s small.
type Rejection = Box<Response<Bytes>>;

fn reject(
    status: StatusCode,
    code: &'static str,
    message: impl Into<Cow<'static, str>>,
) -> Rejection {
    Box::new(error_response(status, code, message))
}

/// What `Content-Type` says about the body.
enum BodyKind {
    /// `application/json` with a UTF-8 (or absent) charset: parse it.
    Json,
    /// Some other type: leave the envelope empty, like body-parser does.
    Ignored,
}

fn body_kind(headers: &HeaderMap) -> Result<BodyKind, Rejection> {
    let Some(ct) = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
    else {
        return Ok(BodyKind::Ignored);
    };
    let mut parts = ct.split(';');
    let mime = parts.next().unwrap_or("").trim();
    if !mime.eq_ignore_ascii_case("application/json") {
        return Ok(BodyKind::Ignored);
    }
    for p in parts {
        if let Some((k, v)) = p.split_once('=')
            && k.trim().eq_ignore_ascii_case("charset")
        {
            let cs = v.trim().trim_matches('"').to_ascii_lowercase();
            if !cs.starts_with("utf-") {
                return Err(reject(
                    StatusCode::UNSUPPORTED_MEDIA_TYPE,
                    "unsupported_charset",
                    format!(
                        "Unsupported charset \"{}\": send JSON as UTF-8.",
                        cs.to_uppercase()
                    ),
                ));
            }
            if cs != "utf-8" {
                return Err(reject(
                    StatusCode::UNSUPPORTED_MEDIA_TYPE,
                    "unsupported_charset",
                    format!(
                        "Unsupported charset \"{}\": only UTF-8 is accepted.",
                        cs.to_uppercase()
                    ),
                ));
            }
        }
    }
    Ok(BodyKind::Json)
}

/// The most a compressed body may inflate (decoded bytes per encoded byte). gzip's own limit is
/// about 1,032; real JSON compresses 5–20×; a body past this is a compression bomb.
pub const MAX_DECODE_RATIO: usize = 100;

/// Undo `Content-Encoding` (gzip, deflate, identity), bounded by `limit` and by
/// [`MAX_DECODE_RATIO`] times the encoded size, whichever is less; decoding stops there.
fn decode_body(headers: &HeaderMap, body: Bytes, limit: usize) -> Result<Bytes, Rejection> {
    let enc = headers
        .get(header::CONTENT_ENCODING)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("identity");
    let enc = enc.trim().to_ascii_lowercase();
    let mut out = Vec::new();
    let by_ratio = body.len().saturating_mul(MAX_DECODE_RATIO);
    let cap = limit.min(by_ratio);
    let take = u64::try_from(cap).unwrap_or(u64::MAX).saturating_add(1);
    let read = match enc.as_str() {
        "identity" | "" => return Ok(body),
        "gzip" | "x-gzip" => flate2::read::GzDecoder::new(&body[..])
            .take(take)
            .read_to_end(&mut out),
        "deflate" => flate2::read::ZlibDecoder::new(&body[..])
            .take(take)
            .read_to_end(&mut out),
        other => {
            return Err(reject(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "unsupported_encoding",
                format!("Unsupported content encoding \"{other}\"."),
            ));
        }
    };
    match read {
        Ok(n) if n > limit => Err(Box::new(too_large(limit))),
        Ok(n) if n > cap => Err(reject(
            StatusCode::PAYLOAD_TOO_LARGE,
            "request_too_large",
            format!("The request body inflates more than {MAX_DECODE_RATIO} times when decoded."),
        )),
        Ok(_) => Ok(Bytes::from(out)),
        Err(e) => Err(reject(
            StatusCode::BAD_REQUEST,
            "invalid_body",
            format!("The request body could not be decoded: {e}"),
        )),
    }
}

/// Parse a JSON body the way body-parser's strict mode does: empty means `{}`, only objects and
/// arrays are accepted at the top level.
fn parse_json(body: &[u8]) -> Result<Value, Rejection> {
    let first = body
        .iter()
        .find(|b| !matches!(b, b' ' | b'\t' | b'\n' | b'\r'));
    match first {
        None => return Ok(Value::Object(Default::default())),
        Some(b'{' | b'[') => {}
        Some(_) => {
            return Err(reject(
                StatusCode::BAD_REQUEST,
                "invalid_json",
                "The request body must be a JSON object or array.",
            ));
        }
    }
    crate::protocol::json::from_slice(body).map_err(|e| {
        reject(
            StatusCode::BAD_REQUEST,
            "invalid_json",
            format!("The request body is not valid JSON: {e}"),
        )
    })
}

/// The envelope of a `POST /function` body, its options kept as text, and the body's
/// `access_token`. The same bodies fail as in [`parse_json`], with the same errors.
fn parse_envelope(body: Bytes) -> Result<(Envelope, Option<Value>), Rejection> {
    let first = body
        .iter()
        .find(|b| !matches!(b, b' ' | b'\t' | b'\n' | b'\r'));
    match first {
        None => return Ok((Envelope::default(), None)),
        Some(b'{' | b'[') => {}
        Some(_) => return parse_json(&body).map(|_| (Envelope::default(), None)),
    }
    Envelope::from_json(body).map_err(|e| {
        reject(
            StatusCode::BAD_REQUEST,
            "invalid_json",
            format!("The request body is not valid JSON: {e}"),
        )
    })
}

/// The run id of `/runs/{id}{suffix}`.
fn run_path<'a>(path: &'a str, suffix: &str) -> Option<&'a str> {
    path.strip_prefix("/runs/")?
        .strip_suffix(suffix)
        .filter(|id| !id.is_empty() && !id.contains('/'))
}

impl HttpApp {
    pub fn new(
        extension: Extension,
        tokens: impl Into<SystemTokens>,
        body_limit: usize,
    ) -> Arc<Self> {
        Arc::new(Self {
            extension,
            tokens: Arc::new(tokens.into()),
            body_limit,
            mounts: Vec::new(),
        })
    }

    /// The same app, also serving `POST <prefix><name>` with `mount`.
    pub fn with_mount(self: Arc<Self>, mount: Arc<dyn Mount>) -> Arc<Self> {
        let mut app = Arc::unwrap_or_clone(self);
        app.mounts.push(mount);
        Arc::new(app)
    }

    /// Route and answer one request.
    pub async fn handle(&self, req: HttpRequest) -> Response<JsonText> {
        match (&req.method, req.path.as_str()) {
            (&Method::POST, "/function") => self.function(req).await,
            _ => self.other(req).await.map(JsonText::from),
        }
    }

    /// Every route but `POST /function`.
    async fn other(&self, req: HttpRequest) -> Response<Bytes> {
        match (&req.method, req.path.as_str()) {
            (&Method::POST, p) if self.mount_for(p).is_some() => self.mounted(req).await,
            (&Method::POST, "/jobs") => self.utility(req, "scheduleInvocation", None).await,
            (&Method::POST, "/jobs/cancel") => self.utility(req, "cancelInvocation", None).await,
            (&Method::POST, "/jobs/tick") => self.utility(req, "tick", None).await,
            (&Method::POST, "/runs") => self.utility(req, "startRun", None).await,
            (&Method::POST, p) if run_path(p, "/continue").is_some() => {
                let id = run_path(p, "/continue").map(str::to_owned);
                self.utility(req, "continueRun", id).await
            }
            (&Method::GET, p) if run_path(p, "").is_some() => {
                let id = run_path(p, "").map(str::to_owned);
                self.utility(req, "runStatus", id).await
            }
            (&Method::GET, "/" | "/healthCheck") => {
                json_response(StatusCode::OK, r#"{"success":true}"#)
            }
            (m, p) => error_response(
                StatusCode::NOT_FOUND,
                "not_found",
                format!("Cannot {m} {p}"),
            ),
        }
    }

    /// The job and run routes: the body (JSON object, optional) is the options of the utility
    /// `function` (`runId` taken from the path when given); bearer token required.
    async fn utility(
        &self,
        req: HttpRequest,
        function: &str,
        run_id: Option<String>,
    ) -> Response<Bytes> {
        if req.body.len() > self.body_limit {
            return too_large(self.body_limit);
        }
        if !self
            .accepts(presented_token(&req.headers, None, req.query.as_deref()))
            .await
        {
            return unauthorized();
        }
        let mut options = match decode_body(&req.headers, req.body, self.body_limit)
            .and_then(|raw| parse_json(&raw))
        {
            Ok(Value::Object(o)) => o,
            Ok(_) => {
                return error_response(
                    StatusCode::BAD_REQUEST,
                    "invalid_json",
                    "The request body must be a JSON object.",
                );
            }
            Err(r) => return *r,
        };
        if let Some(id) = run_id {
            options.insert("runId".into(), Value::String(id));
        }
        let envelope = serde_json::json!({"diy": true, "function": function, "options": options});
        let call = CallRequest {
            envelope: Envelope::from_body(envelope),
            stack: Stack::Http,
            request_id: req.request_id.unwrap_or_else(new_request_id),
            trace_id: None,
            deadline: req.deadline,
        };
        match self.extension.call(call).await {
            Ok(reply) => json_response(StatusCode::OK, reply.into_http().into_bytes()),
            Err(errors) => json_response(StatusCode::UNPROCESSABLE_ENTITY, http_body(&errors)),
        }
    }

    /// Is the presented token one of ours?
    async fn accepts(&self, presented: Presented) -> bool {
        match presented {
            Presented::Token(t) => self.tokens.accepts(&t).await,
            Presented::Invalid | Presented::Missing => false,
        }
    }

    fn mount_for(&self, path: &str) -> Option<&Arc<dyn Mount>> {
        self.mounts.iter().find(|m| path.starts_with(m.prefix()))
    }

    async fn mounted(&self, req: HttpRequest) -> Response<Bytes> {
        let Some(mount) = self.mount_for(&req.path) else {
            return error_response(
                StatusCode::NOT_FOUND,
                "not_found",
                format!("Cannot POST {}", req.path),
            );
        };
        if req.body.len() > self.body_limit {
            return too_large(self.body_limit);
        }
        let name = req
            .path
            .strip_prefix(mount.prefix())
            .unwrap_or_default()
            .to_owned();
        mount.handle(&name, req).await
    }

    async fn function(&self, req: HttpRequest) -> Response<JsonText> {
        match self.function_call(req).await {
            Ok(text) => text_response(StatusCode::OK, text),
            Err(r) => r.map(JsonText::from),
        }
    }

    /// `POST /function`: the answer's text, or the error response.
    async fn function_call(&self, req: HttpRequest) -> Result<JsonText, Response<Bytes>> {
        if req.body.len() > self.body_limit {
            return Err(too_large(self.body_limit));
        }
        // A token in the Authorization header does not depend on the body (see
        // `presented_token`): a wrong one is refused before the body is decoded or parsed, so an
        // unauthenticated caller cannot make us inflate or parse anything.
        if req.headers.contains_key(header::AUTHORIZATION)
            && !self
                .accepts(presented_token(&req.headers, None, None))
                .await
        {
            return Err(unauthorized());
        }
        // 1. Body next (400/413/415 before a token in the body or query is checked, as the
        //    reference does).
        let body = match body_kind(&req.headers) {
            Err(r) => return Err(*r),
            Ok(BodyKind::Ignored) => None,
            Ok(BodyKind::Json) => {
                let raw = match decode_body(&req.headers, req.body, self.body_limit) {
                    Ok(b) => b,
                    Err(r) => return Err(*r),
                };
                match parse_envelope(raw) {
                    Ok(v) => Some(v),
                    Err(r) => return Err(*r),
                }
            }
        };
        let (envelope, body_token) = body.unwrap_or_default();
        // 2. Authentication.
        if !self
            .accepts(presented_token(
                &req.headers,
                body_token.as_ref(),
                req.query.as_deref(),
            ))
            .await
        {
            return Err(unauthorized());
        }
        // 3. Dispatch.
        let trace_id = req
            .headers
            .get("traceid")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        let call = CallRequest {
            envelope,
            stack: Stack::Http,
            request_id: req.request_id.unwrap_or_else(new_request_id),
            trace_id,
            deadline: req.deadline,
        };
        match self.extension.call(call).await {
            Ok(reply) => Ok(reply.into_http()),
            Err(errors) => Err(json_response(
                StatusCode::UNPROCESSABLE_ENTITY,
                http_body(&errors),
            )),
        }
    }
}
