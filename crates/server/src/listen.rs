//! Accepting connections and keeping them from being held hostage. At most
//! `max_connections` are open at once (more wait in the kernel's listen queue); each is
//! served by hyper (HTTP/1.1, or HTTP/2 with prior knowledge) and watched: a request head
//! must arrive complete within `header_read_timeout_secs` of its first byte (or of the
//! connection's start), and a connection with no request in flight and no bytes moving
//! for `idle_timeout_secs` is closed. Request bodies have their own timeout in the
//! handler. hyper's own header timeout is not used because it also runs while a
//! keep-alive connection waits for its next request, which is idle time, not a stall.

use hyper_util::rt::{TokioExecutor, TokioIo};
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpListener;
use tower::ServiceExt;
use tsunagu_interaction::Limits;

use crate::unparsed::HeadLimits;

/// Who is on the other end of a connection; every request carries it as an extension.
#[derive(Debug, Clone)]
pub struct Peer {
    pub addr: std::net::SocketAddr,
    /// RFC 8705 `x5t#S256` of the TLS client certificate, when one was presented.
    pub tls_thumbprint: Option<String>,
}

/// Serves `app` on `listener` until Ctrl-C or SIGTERM, then lets requests in flight
/// finish (for up to 30 s).
pub async fn serve(listener: TcpListener, app: axum::Router, limits: &Limits) -> std::io::Result<()> {
    serve_tls(listener, app, limits, None).await
}

/// [`serve`], speaking TLS when `tls` is given: the handshake must finish within
/// `header_read_timeout_secs`, like a request head.
pub async fn serve_tls(
    listener: TcpListener,
    app: axum::Router,
    limits: &Limits,
    tls: Option<tsunagu_tls::TlsAcceptor>,
) -> std::io::Result<()> {
    let slots = Arc::new(tokio::sync::Semaphore::new(limits.max_connections.max(1)));
    let timeouts = Timeouts {
        header: Duration::from_secs(limits.header_read_timeout_secs.max(1)),
        idle: Duration::from_secs(limits.idle_timeout_secs.max(1)),
        head: HeadLimits {
            max_header_bytes: limits.max_header_bytes.max(8192),
            max_header_fields: limits.max_header_fields.max(1),
        },
    };
    let mut builder = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new());
    builder.http1().max_buf_size(limits.max_header_bytes.max(8192)).max_headers(limits.max_header_fields.max(1));
    builder.http2().max_header_list_size(limits.max_header_bytes.min(u32::MAX as usize) as u32);
    let builder = Arc::new(builder);
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let shutdown = shutdown_signal();
    tokio::pin!(shutdown);
    loop {
        let permit = tokio::select! {
            p = slots.clone().acquire_owned() => p.expect("the semaphore is never closed"),
            _ = &mut shutdown => break,
        };
        let (stream, addr) = tokio::select! {
            r = listener.accept() => match r {
                Ok(c) => c,
                // Out of file descriptors and the like: wait a little rather than spin.
                Err(e) => {
                    tracing::warn!("accept failed: {e}");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            _ = &mut shutdown => break,
        };
        let _ = stream.set_nodelay(true);
        let app = app.clone();
        let builder = builder.clone();
        let mut stop = stop_rx.clone();
        let tls = tls.clone();
        tokio::spawn(async move {
            match tls {
                None => {
                    let peer = Peer { addr, tls_thumbprint: None };
                    serve_connection(stream, peer, app, &builder, timeouts, &mut stop).await
                }
                Some(acceptor) => match acceptor.accept_within(stream, timeouts.header).await {
                    Ok((tls_stream, tls_thumbprint)) => {
                        let peer = Peer { addr, tls_thumbprint };
                        serve_connection(tls_stream, peer, app, &builder, timeouts, &mut stop).await
                    }
                    Err(e) => tracing::debug!("TLS handshake with {addr} failed: {e}"),
                },
            }
            drop(permit);
        });
    }
    let _ = stop_tx.send(true);
    // Connections finish their requests; every one holds a slot until it is done.
    let all = limits.max_connections.max(1) as u32;
    let _ = tokio::time::timeout(Duration::from_secs(30), slots.acquire_many(all)).await;
    Ok(())
}

type ConnBuilder = hyper_util::server::conn::auto::Builder<TokioExecutor>;

/// Serves the requests of one connection until it ends, stalls or the server stops.
async fn serve_connection<S>(
    stream: S,
    peer: Peer,
    app: axum::Router,
    builder: &ConnBuilder,
    timeouts: Timeouts,
    stop: &mut tokio::sync::watch::Receiver<bool>,
) where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let activity = Arc::new(Activity::new());
    let io = TokioIo::new(Watched { inner: stream, activity: activity.clone(), head: timeouts.head, redressed: None });
    let service = {
        let activity = activity.clone();
        hyper::service::service_fn(move |mut req: hyper::Request<hyper::body::Incoming>| {
            let app = app.clone();
            req.extensions_mut().insert(peer.clone());
            // Ends the request when the future completes or is dropped (an HTTP/2
            // stream reset drops it), so the connection's timeouts apply again.
            let in_flight = InFlight::start(activity.clone());
            async move {
                let _in_flight = in_flight;
                app.oneshot(req.map(axum::body::Body::new)).await
            }
        })
    };
    let conn = builder.serve_connection(io, service);
    tokio::pin!(conn);
    let mut stopping = false;
    loop {
        tokio::select! {
            _ = conn.as_mut() => break,
            _ = activity.stalled(timeouts) => break,
            _ = stop.changed(), if !stopping => {
                stopping = true;
                conn.as_mut().graceful_shutdown();
            }
        }
    }
}

#[derive(Clone, Copy)]
struct Timeouts {
    header: Duration,
    idle: Duration,
    /// Named in the answer to a head past them (`unparsed`).
    head: HeadLimits,
}

/// What a connection is doing, shared by its I/O wrapper, its service and its watchdog.
/// Times are milliseconds since `start`; 0 in `head_started` means "not reading a head".
struct Activity {
    start: Instant,
    in_flight: AtomicUsize,
    last_io: AtomicU64,
    head_started: AtomicU64,
}

impl Activity {
    fn new() -> Self {
        // A new connection is reading its first head from the start.
        Activity {
            start: Instant::now(),
            in_flight: AtomicUsize::new(0),
            last_io: AtomicU64::new(0),
            head_started: AtomicU64::new(1),
        }
    }

    fn now(&self) -> u64 {
        self.start.elapsed().as_millis() as u64 + 1
    }

    fn bytes_read(&self) {
        let now = self.now();
        self.last_io.store(now, Ordering::Relaxed);
        if self.in_flight.load(Ordering::Relaxed) == 0 {
            let _ = self.head_started.compare_exchange(0, now, Ordering::Relaxed, Ordering::Relaxed);
        }
    }

    fn bytes_written(&self) {
        self.last_io.store(self.now(), Ordering::Relaxed);
    }

    fn request_started(&self) {
        self.in_flight.fetch_add(1, Ordering::Relaxed);
        self.head_started.store(0, Ordering::Relaxed);
        self.last_io.store(self.now(), Ordering::Relaxed);
    }

    fn request_ended(&self) {
        self.in_flight.fetch_sub(1, Ordering::Relaxed);
        self.last_io.store(self.now(), Ordering::Relaxed);
    }

    /// Completes when the connection has stalled: a head not finished in time, or idle
    /// too long.
    async fn stalled(&self, t: Timeouts) {
        loop {
            let now = self.now();
            let deadline = if self.in_flight.load(Ordering::Relaxed) > 0 {
                None
            } else {
                match self.head_started.load(Ordering::Relaxed) {
                    0 => Some(self.last_io.load(Ordering::Relaxed) + t.idle.as_millis() as u64),
                    started => Some(started + t.header.as_millis() as u64),
                }
            };
            match deadline {
                Some(d) if now >= d => return,
                Some(d) => tokio::time::sleep(Duration::from_millis(d - now)).await,
                // Request bodies and processing have limits of their own; look again later.
                None => tokio::time::sleep(t.header.min(t.idle)).await,
            }
        }
    }
}

/// One request in flight on a connection, from its head to its response (or its drop).
struct InFlight(Arc<Activity>);

impl InFlight {
    fn start(activity: Arc<Activity>) -> InFlight {
        activity.request_started();
        InFlight(activity)
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.request_ended();
    }
}

/// The connection's stream (TCP or TLS), reporting every byte moved to its [`Activity`],
/// and writing an OperationOutcome where hyper answers a head it could not parse with an
/// empty body (`unparsed`).
struct Watched<S> {
    inner: S,
    activity: Arc<Activity>,
    head: HeadLimits,
    redressed: Option<Redressed>,
}

/// The answer written in place of hyper's: its bytes, how many are written, and how many
/// of hyper's it stands for (reported written once all of it is).
struct Redressed {
    bytes: Vec<u8>,
    written: usize,
    replaces: usize,
}

impl<S: AsyncWrite + Unpin> Watched<S> {
    /// Writes the redressed answer on; hyper sees its own bytes written once it all is
    /// (until then it offers them again).
    fn poll_redressed(&mut self, cx: &mut Context<'_>) -> Poll<std::io::Result<usize>> {
        let Some(r) = self.redressed.as_mut() else { return Poll::Ready(Ok(0)) };
        while r.written < r.bytes.len() {
            match Pin::new(&mut self.inner).poll_write(cx, &r.bytes[r.written..]) {
                Poll::Ready(Ok(0)) => return Poll::Ready(Err(std::io::ErrorKind::WriteZero.into())),
                Poll::Ready(Ok(n)) => {
                    r.written += n;
                    self.activity.bytes_written();
                }
                other => return other,
            }
        }
        let replaces = r.replaces;
        self.redressed = None;
        Poll::Ready(Ok(replaces))
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for Watched<S> {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<std::io::Result<()>> {
        let before = buf.filled().len();
        let r = Pin::new(&mut self.inner).poll_read(cx, buf);
        if matches!(r, Poll::Ready(Ok(()))) && buf.filled().len() > before {
            self.activity.bytes_read();
        }
        r
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Watched<S> {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, data: &[u8]) -> Poll<std::io::Result<usize>> {
        if self.redressed.is_none() && data.len() <= crate::unparsed::LONGEST {
            if let Some(bytes) = crate::unparsed::redress(data, self.head) {
                self.redressed = Some(Redressed { bytes, written: 0, replaces: data.len() });
            }
        }
        if self.redressed.is_some() {
            return self.poll_redressed(cx);
        }
        let r = Pin::new(&mut self.inner).poll_write(cx, data);
        if matches!(r, Poll::Ready(Ok(n)) if n > 0) {
            self.activity.bytes_written();
        }
        r
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        // hyper's answer to an unparsable head is a short head alone: look at it whole.
        let total: usize = bufs.iter().map(|b| b.len()).sum();
        let first = bufs.iter().find(|b| !b.is_empty()).map_or(&[][..], |b| &b[..]);
        if self.redressed.is_none() && total <= crate::unparsed::LONGEST && first.starts_with(b"HTTP/1.1 4") {
            let data = bufs.iter().flat_map(|b| b.iter().copied()).collect::<Vec<u8>>();
            if let Some(bytes) = crate::unparsed::redress(&data, self.head) {
                self.redressed = Some(Redressed { bytes, written: 0, replaces: total });
            }
        }
        if self.redressed.is_some() {
            return self.poll_redressed(cx);
        }
        let r = Pin::new(&mut self.inner).poll_write_vectored(cx, bufs);
        if matches!(r, Poll::Ready(Ok(n)) if n > 0) {
            self.activity.bytes_written();
        }
        r
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        if let Ok(mut s) = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            s.recv().await;
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! { _ = ctrl_c => {}, _ = term => {} }
}
