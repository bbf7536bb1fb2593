//! The machine's limit for an HTTP JSON service: a bare hyper HTTP/1 server that answers every
//! request with the request's own bytes (`200`, `application/json`), on the same tokio runtime
//! shape as ours. No parse, no routing, no auth: what is left is the kernel, hyper and the load
//! generator on these cores. `make bench` measures our server against it in the same run.
//!
//! With `ECHO_READ=json` it first reads each body with serde_json (`IgnoredAny`: checked, nothing
//! kept; a body that is not JSON gets a `400`): the limit for any server that reads its request's
//! JSON once, which `make bench` reports beside the bare echo.
//!
//! Listens on `HOST` (127.0.0.1 by default) and `PORT` (0: any free port), and prints
//! `listening on http://ADDR` once bound.

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use std::convert::Infallible;

async fn echo(
    req: Request<Incoming>,
    read_json: bool,
) -> Result<Response<Full<Bytes>>, Infallible> {
    let body = match req.into_body().collect().await {
        Ok(b) => b.to_bytes(),
        Err(_) => Bytes::new(),
    };
    if read_json && serde_json::from_slice::<serde::de::IgnoredAny>(&body).is_err() {
        let mut res = Response::new(Full::new(Bytes::from_static(b"{}")));
        *res.status_mut() = hyper::StatusCode::BAD_REQUEST;
        return Ok(res);
    }
    let mut res = Response::new(Full::new(body));
    res.headers_mut().insert(
        hyper::header::CONTENT_TYPE,
        hyper::header::HeaderValue::from_static("application/json"),
    );
    Ok(res)
}

#[tokio::main]
async fn main() -> std::io::Result<()> {
    let host = std::env::var("HOST").unwrap_or_else(|_| "127.0.0.1".into());
    let port = std::env::var("PORT").unwrap_or_else(|_| "0".into());
    let read_json = std::env::var("ECHO_READ").is_ok_and(|v| v == "json");
    let listener = tokio::net::TcpListener::bind(format!("{host}:{port}")).await?;
    println!("listening on http://{}", listener.local_addr()?);
    loop {
        let (stream, _) = listener.accept().await?;
        let _ = stream.set_nodelay(true);
        tokio::spawn(async move {
            let _ = http1::Builder::new()
                .serve_connection(
                    TokioIo::new(stream),
                    service_fn(move |r| echo(r, read_json)),
                )
                .await;
        });
    }
}
