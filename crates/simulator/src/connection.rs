//! The accept loop and per-connection serving, done by hand (not `axum::serve`) so a handler can
//! kill its own TCP connection: the `reset` fault closes it with an RST and no HTTP response.

use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use axum::Router;
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper::Request;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use hyper_util::service::TowerToHyperService;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{watch, Notify};

/// How long `serve` waits for open connections to finish after shutdown is requested.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(5);

/// Lets a request handler abort the connection it arrived on (found in request extensions).
#[derive(Clone)]
pub struct ConnHandle(Arc<ConnShared>);

#[derive(Default)]
struct ConnShared {
    aborted: AtomicBool,
    notify: Notify,
}

impl ConnHandle {
    /// Drops the connection (and with it any response in progress) with a TCP reset.
    pub fn abort(&self) {
        self.0.aborted.store(true, Ordering::SeqCst);
        self.0.notify.notify_one();
    }
}

/// The TCP stream handed to hyper; on an aborted connection its drop sends an RST instead of FIN.
struct ConnIo {
    stream: TcpStream,
    shared: Arc<ConnShared>,
}

impl Drop for ConnIo {
    fn drop(&mut self) {
        if self.shared.aborted.load(Ordering::SeqCst) {
            // Zero linger makes close() send RST and discard unsent data: a real reset.
            let _ = self.stream.set_zero_linger();
        }
    }
}

impl AsyncRead for ConnIo {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().stream).poll_read(cx, buf)
    }
}

impl AsyncWrite for ConnIo {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().stream).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().stream).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.stream.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().stream).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().stream).poll_shutdown(cx)
    }
}

/// Accepts connections on `listener` and serves `router` on each (HTTP/1.1 and h2c) until
/// `shutdown` resolves; then stops accepting, lets open connections finish their current
/// requests (up to a grace period) and returns.
pub async fn accept_loop(
    listener: TcpListener,
    router: Router,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> io::Result<()> {
    let (stop_tx, stop_rx) = watch::channel(false);
    // Every connection task holds a receiver; `closed()` resolves when all are gone.
    let (alive_tx, alive_rx) = watch::channel(());
    let mut shutdown = std::pin::pin!(shutdown);
    loop {
        tokio::select! {
            () = &mut shutdown => break,
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => {
                    tokio::spawn(connection(stream, router.clone(), stop_rx.clone(), alive_rx.clone()));
                }
                Err(e) => {
                    // Typically out of file descriptors: back off instead of spinning.
                    tracing::warn!(error = %e, "simulator accept failed");
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
            },
        }
    }
    drop(listener);
    let _ = stop_tx.send(true);
    drop(alive_rx);
    let _ = tokio::time::timeout(SHUTDOWN_GRACE, alive_tx.closed()).await;
    Ok(())
}

async fn connection(
    stream: TcpStream,
    router: Router,
    mut stop: watch::Receiver<bool>,
    _alive: watch::Receiver<()>,
) {
    // Stream chunks are small and latency-sensitive.
    let _ = stream.set_nodelay(true);
    let shared = Arc::new(ConnShared::default());
    let handle = ConnHandle(shared.clone());
    let io = TokioIo::new(ConnIo {
        stream,
        shared: shared.clone(),
    });
    let router = TowerToHyperService::new(router);
    let service = service_fn(move |mut req: Request<Incoming>| {
        req.extensions_mut().insert(handle.clone());
        hyper::service::Service::call(&router, req)
    });
    let builder = auto::Builder::new(TokioExecutor::new());
    let conn = builder.serve_connection(io, service);
    let mut conn = std::pin::pin!(conn);
    let mut stopping = *stop.borrow();
    if stopping {
        conn.as_mut().graceful_shutdown();
    }
    loop {
        tokio::select! {
            result = conn.as_mut() => {
                if let Err(e) = result {
                    tracing::debug!(error = %e, "simulator connection ended with an error");
                }
                return;
            }
            // Returning drops the connection future and the stream inside it: RST.
            () = shared.notify.notified() => return,
            _ = stop.changed(), if !stopping => {
                stopping = true;
                conn.as_mut().graceful_shutdown();
            }
        }
    }
}
