//! Serves a router over HTTP/1.1 with hyper's connection builder, so slow
//! or idle clients cannot starve the others:
//!
//! - a client has `web.header_read_timeout_secs` to send its first byte and
//!   then its request headers (hyper's header-read timeout, on tokio's
//!   timer); otherwise the connection is closed;
//! - at most `web.max_connections` connections are open at once; further
//!   clients wait in the kernel's accept backlog until one closes, so the
//!   process never runs out of file descriptors;
//! - every request carries the peer address ([`ConnectInfo`]) for per-IP
//!   limits and logs;
//! - on shutdown the listener closes, requests in progress finish (at most
//!   [`DRAIN`]), idle keep-alive connections are closed.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::ConnectInfo;
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tower::ServiceExt;

/// Longest wait for requests in progress at shutdown.
pub const DRAIN: Duration = Duration::from_secs(10);

/// Connection limits of one listener.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Open connections at most.
    pub max_connections: usize,
    /// Time to send the first byte, then the request headers.
    pub header_read_timeout: Duration,
}

/// Serves `router` on `listener` until `shutdown` completes.
///
/// # Errors
/// Never in practice: accept errors (such as running out of file
/// descriptors) are logged and retried, as a server must keep going.
pub async fn serve(
    listener: TcpListener,
    router: Router,
    limits: Limits,
    shutdown: impl Future<Output = ()> + Send,
) -> std::io::Result<()> {
    let permits = Arc::new(Semaphore::new(limits.max_connections.max(1)));
    let graceful = GracefulShutdown::new();
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_read_timeout);
    tokio::pin!(shutdown);
    loop {
        let permit = tokio::select! {
            () = &mut shutdown => break,
            permit = permits.clone().acquire_owned() => match permit {
                Ok(permit) => permit,
                Err(_) => break,
            },
        };
        let (stream, peer) = tokio::select! {
            () = &mut shutdown => break,
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(e) => {
                    // EMFILE and friends: back off a little instead of
                    // spinning; connections that close free descriptors.
                    tracing::warn!("HTTP accept failed: {e}");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
        };
        let _ = stream.set_nodelay(true);
        metrics::gauge!("switchboard_http_connections").increment(1.0);
        let service = router
            .clone()
            .map_request(move |mut request: hyper::Request<Incoming>| {
                request.extensions_mut().insert(ConnectInfo(peer));
                request
            });
        let header_timeout = limits.header_read_timeout;
        let builder = builder.clone();
        let watcher = graceful.watcher();
        tokio::spawn(async move {
            // hyper's header timer runs once a request has begun; a client
            // that sends nothing at all is held to the same time here.
            if tokio::time::timeout(header_timeout, stream.readable())
                .await
                .is_ok()
            {
                let connection = builder
                    .serve_connection(TokioIo::new(stream), TowerToHyperService::new(service));
                if let Err(e) = watcher.watch(connection).await {
                    tracing::debug!(%peer, "HTTP connection ended: {e}");
                }
            }
            metrics::gauge!("switchboard_http_connections").decrement(1.0);
            drop(permit);
        });
    }
    drop(listener);
    if tokio::time::timeout(DRAIN, graceful.shutdown())
        .await
        .is_err()
    {
        tracing::warn!("HTTP: requests still running after {DRAIN:?} were cut at shutdown");
    }
    Ok(())
}
