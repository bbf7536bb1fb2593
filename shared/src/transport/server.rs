//! The local HTTP server (`make serve`, `conformance-server`): the same routes as a Function
//! URL, served by axum on 127.0.0.1.

use super::http::{HttpApp, HttpRequest, too_large};
use axum::body::Body;
use axum::extract::{Request, State};
use axum::response::Response;
use http_body_util::{BodyExt, Limited};
use std::net::SocketAddr;
use std::sync::Arc;

async fn handle(State(app): State<Arc<HttpApp>>, req: Request) -> Response {
    let (parts, body) = req.into_parts();
    // Refuse early when the declared length is already too large.
    let declared = parts
        .headers
        .get(http::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok());
    let body = if declared.is_some_and(|n| n > app.body_limit) {
        return too_large(app.body_limit).map(Body::from);
    } else {
        match Limited::new(body, app.body_limit).collect().await {
            Ok(b) => b.to_bytes(),
            Err(_) => return too_large(app.body_limit).map(Body::from),
        }
    };
    let req = HttpRequest::from_parts(parts, body, None, None);
    app.handle(req).await.map(Body::from)
}

/// The axum router for `app`: every method and path goes to [`HttpApp::handle`].
pub fn router(app: Arc<HttpApp>) -> axum::Router {
    axum::Router::new().fallback(handle).with_state(app)
}

/// Bind `addr` and serve until Ctrl-C / SIGTERM.
pub async fn serve(app: Arc<HttpApp>, addr: SocketAddr) -> std::io::Result<()> {
    let listener = tokio::net::TcpListener::bind(addr).await?;
    let local = listener.local_addr()?;
    tracing::info!(address = %local, "serving POST /function, GET / and GET /healthCheck");
    // One line on stdout so scripts and tests can find the port when PORT=0.
    {
        use std::io::Write;
        let mut out = std::io::stdout().lock();
        let _ = writeln!(out, "listening on http://{local}");
        let _ = out.flush();
    }
    axum::serve(listener, router(app))
        .with_graceful_shutdown(shutdown_signal())
        .await
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! { _ = ctrl_c => {}, _ = term => {} }
    tracing::info!("shutting down");
}
