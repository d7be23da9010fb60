//! The HTTP listener: accepts connections and serves each with hyper's
//! HTTP/1.1 behind a guard, so that a request hyper would refuse bodiless
//! still gets a problem document.
//!
//! hyper answers a request target over 64 KiB (or a head over its read
//! buffer) itself, with an empty 414 (431), and no setting moves that limit.
//! The guard sits between the socket and hyper and runs every byte through
//! a [`Framer`]: a request line longer than [`MAX_REQUEST_LINE`] never
//! reaches hyper. Requests before it on the connection (keep-alive,
//! pipelined) are answered as usual; then the connection is shut down
//! gracefully, the guard writes a complete `414` with the API's
//! `uri_too_long` problem, closes its side and reads what the client still
//! sends for a moment (a lingering close, RFC 9112 §9.6), so the client's
//! unread remainder does not reset the connection before it reads the
//! answer.
//!
//! With `--tls-cert/--tls-key` every accepted connection goes through a
//! rustls handshake first (HTTP/1.1 over TLS, nothing else); the guard
//! then follows the decrypted bytes the same way.

use std::io;
use std::pin::{pin, Pin};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};
use std::task::{ready, Context, Poll};
use std::time::Duration;

use axum::Router;
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncRead, AsyncReadExt as _, AsyncWrite, AsyncWriteExt as _, ReadBuf};
use tokio::net::TcpListener;
use tokio::sync::{watch, Notify};
use tokio_rustls::TlsAcceptor;
use tower::ServiceExt as _;

use super::framing::{Framer, Overlong, MAX_REQUEST_LINE};
use crate::api::{ApiError, MAX_URI_BYTES};

/// How long writing the refusal may take.
const REFUSAL_WRITE: Duration = Duration::from_secs(10);
/// How long a TLS handshake may take.
const HANDSHAKE: Duration = Duration::from_secs(10);
/// A lingering close ends after this long without data from the client…
const LINGER_QUIET: Duration = Duration::from_secs(2);
/// …or after this long in all.
const LINGER_TOTAL: Duration = Duration::from_secs(10);

/// Serves `router` on `listener` (over TLS when `tls` is given) until
/// `shutdown` turns true, then waits for the open connections to finish
/// their requests.
pub(super) async fn serve(
    listener: TcpListener,
    router: Router,
    tls: Option<TlsAcceptor>,
    mut shutdown: watch::Receiver<bool>,
) {
    // Every connection task holds a receiver; `closed` waits for them all.
    let (open_tx, open_rx) = watch::channel(());
    loop {
        let stream = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => stream,
                Err(e) if is_connection_error(&e) => continue,
                Err(e) => {
                    // Out of file descriptors and the like: wait for some
                    // to be freed rather than spin.
                    tracing::error!(error = %e, "accepting a connection failed");
                    tokio::time::sleep(Duration::from_secs(1)).await;
                    continue;
                }
            },
            () = stopped(&mut shutdown) => break,
        };
        let router = router.clone();
        let shutdown = shutdown.clone();
        let open = open_rx.clone();
        let tls = tls.clone();
        tokio::spawn(async move {
            match tls {
                None => serve_connection(stream, router, shutdown).await,
                Some(acceptor) => {
                    match tokio::time::timeout(HANDSHAKE, acceptor.accept(stream)).await {
                        Ok(Ok(stream)) => serve_connection(stream, router, shutdown).await,
                        Ok(Err(e)) => tracing::debug!(error = %e, "TLS handshake failed"),
                        Err(_) => tracing::debug!("TLS handshake timed out"),
                    }
                }
            }
            drop(open);
        });
    }
    drop(listener);
    drop(open_rx);
    open_tx.closed().await;
}

/// Waits until `shutdown` turns true (or its sender is gone).
async fn stopped(shutdown: &mut watch::Receiver<bool>) {
    let _ = shutdown.wait_for(|stop| *stop).await;
}

fn is_connection_error(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::ConnectionRefused
            | io::ErrorKind::ConnectionAborted
            | io::ErrorKind::ConnectionReset
    )
}

/// What the guard and the connection task share.
#[derive(Default)]
struct Tally {
    /// Requests hyper handed to the router.
    served: AtomicUsize,
    /// The guard's refusal, once it made one.
    overlong: OnceLock<Overlong>,
    /// Either of the above changed.
    changed: Notify,
}

impl Tally {
    /// A request line was refused and hyper has taken on every request
    /// before it: time to let hyper finish them and close.
    fn should_close(&self) -> bool {
        self.overlong
            .get()
            .is_some_and(|o| self.served.load(Ordering::SeqCst) >= o.requests_before)
    }
}

/// A connection's byte stream: plain TCP, or TLS over it.
trait Stream: AsyncRead + AsyncWrite + Unpin + Send {}

impl<S: AsyncRead + AsyncWrite + Unpin + Send> Stream for S {}

async fn serve_connection<S: Stream>(
    mut stream: S,
    router: Router,
    mut shutdown: watch::Receiver<bool>,
) {
    let tally = Arc::new(Tally::default());
    {
        let guard = Guard {
            stream: &mut stream,
            framer: Framer::default(),
            held: Vec::new(),
            cleared: 0,
            eof: false,
            tally: tally.clone(),
        };
        let counted = tally.clone();
        let service = hyper::service::service_fn(move |req: hyper::Request<Incoming>| {
            counted.served.fetch_add(1, Ordering::SeqCst);
            counted.changed.notify_one();
            router.clone().oneshot(req)
        });
        let mut conn = pin!(http1::Builder::new().serve_connection(TokioIo::new(guard), service));
        let mut closing = false;
        loop {
            tokio::select! {
                res = conn.as_mut() => {
                    if let Err(e) = res {
                        tracing::debug!(error = %e, "connection ended with an error");
                    }
                    break;
                }
                () = stopped(&mut shutdown), if !closing => {
                    closing = true;
                    conn.as_mut().graceful_shutdown();
                }
                () = tally.changed.notified(), if !closing => {
                    if tally.should_close() {
                        closing = true;
                        conn.as_mut().graceful_shutdown();
                    }
                }
            }
        }
    }
    if tally.overlong.get().is_some() {
        refuse(stream).await;
    }
}

/// Answers the refused request line, closes and lingers.
async fn refuse<S: Stream>(mut stream: S) {
    let (status, body) = ApiError::UriTooLong(format!(
        "the request line is over {MAX_REQUEST_LINE} bytes; \
         at most {MAX_URI_BYTES} are accepted in the request target"
    ))
    .problem();
    let head = format!(
        "HTTP/1.1 {} {}\r\ncontent-type: application/problem+json\r\n\
         content-length: {}\r\nconnection: close\r\n\r\n",
        status.as_u16(),
        status.canonical_reason().unwrap_or(""),
        body.len()
    );
    let written = tokio::time::timeout(REFUSAL_WRITE, async {
        stream.write_all(head.as_bytes()).await?;
        stream.write_all(&body).await?;
        stream.shutdown().await
    })
    .await;
    if !matches!(written, Ok(Ok(()))) {
        return;
    }
    let _ = tokio::time::timeout(LINGER_TOTAL, async {
        let mut sink = [0u8; 8192];
        while let Ok(Ok(n)) = tokio::time::timeout(LINGER_QUIET, stream.read(&mut sink)).await {
            if n == 0 {
                break;
            }
        }
    })
    .await;
}

/// The socket as hyper sees it: reads pass through the framer, writes go
/// straight to the socket.
struct Guard<'a, S> {
    stream: &'a mut S,
    framer: Framer,
    /// Bytes read but not yet handed to hyper; the first `cleared` may be.
    held: Vec<u8>,
    cleared: usize,
    /// The client closed its side.
    eof: bool,
    tally: Arc<Tally>,
}

impl<S> Guard<'_, S> {
    fn note(&self, overlong: Option<Overlong>) {
        if let Some(o) = overlong {
            let _ = self.tally.overlong.set(o);
            self.tally.changed.notify_one();
        }
    }
}

impl<S: Stream> AsyncRead for Guard<'_, S> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        loop {
            if this.cleared > 0 {
                let n = this.cleared.min(buf.remaining());
                buf.put_slice(&this.held[..n]);
                this.held.drain(..n);
                this.cleared -= n;
                return Poll::Ready(Ok(()));
            }
            if this.tally.overlong.get().is_some() {
                // Nothing after the refused line goes to hyper; the
                // connection task closes it once hyper is done.
                return Poll::Pending;
            }
            if this.eof {
                return Poll::Ready(Ok(()));
            }
            if this.held.is_empty() {
                // Read straight into hyper's buffer and take back what the
                // framer holds.
                let start = buf.filled().len();
                ready!(Pin::new(&mut *this.stream).poll_read(cx, buf))?;
                let read = &buf.filled()[start..];
                if read.is_empty() {
                    this.eof = true;
                    return Poll::Ready(Ok(()));
                }
                let scan = this.framer.feed(read);
                if scan.cleared < read.len() {
                    this.held.extend_from_slice(&read[scan.cleared..]);
                    buf.set_filled(start + scan.cleared);
                }
                this.note(scan.overlong);
                if scan.cleared > 0 {
                    return Poll::Ready(Ok(()));
                }
            } else {
                let mut chunk = [0u8; 8192];
                let mut more = ReadBuf::new(&mut chunk);
                ready!(Pin::new(&mut *this.stream).poll_read(cx, &mut more))?;
                let read = more.filled();
                if read.is_empty() {
                    this.eof = true;
                    this.cleared = this.framer.release();
                    continue;
                }
                let scan = this.framer.feed(read);
                this.held.extend_from_slice(read);
                this.cleared += scan.cleared;
                this.note(scan.overlong);
            }
        }
    }
}

impl<S: Stream> AsyncWrite for Guard<'_, S> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut *self.get_mut().stream).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut *self.get_mut().stream).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.stream.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut *self.get_mut().stream).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if this.tally.overlong.get().is_some() {
            // The refusal still has to be written: keep the socket open.
            return Pin::new(&mut *this.stream).poll_flush(cx);
        }
        Pin::new(&mut *this.stream).poll_shutdown(cx)
    }
}
