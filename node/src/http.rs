//! The HTTP server: an accept loop with a connection cap, header, idle and write timeouts, and a shutdown deadline.
//!
//! Over the cap a new connection is answered `503 busy` at once and closed (past
//! [`MAX_REFUSING`] of those at once, closed with no answer). Each served connection runs HTTP/1.1 (hyper) on a socket that fails a read or
//! write which would wait past the idle or write timeout, so that no client can hold a connection
//! (and its slot) by sending or reading nothing. At shutdown the listener closes, every connection
//! is asked to finish its current answer, and whatever is still open at the deadline is dropped.

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use axum::Router;
use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{watch, OwnedSemaphorePermit, Semaphore};
use tokio::task::JoinSet;
use tokio::time::{Instant, Sleep};
use tracing::{debug, info, warn};

use crate::config::LimitsConfig;

/// Pause after a failed accept (out of file descriptors, say) before the next one.
pub const ACCEPT_ERROR_PAUSE: Duration = Duration::from_millis(100);
/// Most connections over the cap being answered 503 at once; beyond that they are closed with
/// no answer.
pub const MAX_REFUSING: usize = 64;
/// How long a connection over the cap gets to take its 503 and close, before it is dropped.
pub const REFUSE_LINGER: Duration = Duration::from_secs(1);
/// Most request bytes read (and dropped) from a connection over the cap while it lingers.
pub const REFUSED_DRAIN: usize = 16 * 1024;

/// The server's bounds (from `[limits]`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HttpLimits {
    /// Connections served at once; one more is answered 503 and closed.
    pub max_connections: usize,
    /// From when the node starts waiting for a request (at connect, and after each answer) until
    /// its header is complete.
    pub header_timeout: Duration,
    /// No byte read or written for this long: the connection is dropped.
    pub idle_timeout: Duration,
    /// A response write blocked this long with no progress: the connection is dropped.
    pub write_timeout: Duration,
    /// How long open connections get to finish at shutdown before they are dropped.
    pub shutdown_deadline: Duration,
}

impl HttpLimits {
    /// The server's bounds from the configuration's `[limits]`.
    pub fn from_config(limits: &LimitsConfig) -> HttpLimits {
        HttpLimits {
            max_connections: limits.http_max_connections,
            header_timeout: Duration::from_secs(limits.http_header_timeout_secs),
            idle_timeout: Duration::from_secs(limits.http_idle_timeout_secs),
            write_timeout: Duration::from_secs(limits.http_write_timeout_secs),
            shutdown_deadline: Duration::from_secs(limits.http_shutdown_secs),
        }
    }
}

/// Serves `app` on `listener` until `shutdown` resolves, then stops accepting and returns once
/// every connection has finished, or at the shutdown deadline with the rest dropped.
pub async fn serve(
    listener: TcpListener,
    app: Router,
    limits: HttpLimits,
    shutdown: impl Future<Output = ()>,
) {
    let slots = Arc::new(Semaphore::new(limits.max_connections));
    let refusing = Arc::new(Semaphore::new(MAX_REFUSING));
    let (stop_tx, stop_rx) = watch::channel(false);
    let mut conns = JoinSet::new();
    tokio::pin!(shutdown);
    loop {
        tokio::select! {
            biased;
            () = &mut shutdown => break,
            Some(done) = conns.join_next(), if !conns.is_empty() => {
                if let Err(e) = done {
                    warn!(error = %e, "HTTP connection task failed");
                }
            }
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => match slots.clone().try_acquire_owned() {
                    Ok(slot) => {
                        conns.spawn(connection(stream, app.clone(), limits, stop_rx.clone(), slot));
                    }
                    Err(_) => {
                        if let Ok(lingering) = refusing.clone().try_acquire_owned() {
                            conns.spawn(refuse(stream, limits.max_connections, lingering));
                        }
                    }
                },
                Err(e) => {
                    warn!(error = %e, "HTTP accept failed");
                    tokio::select! {
                        () = &mut shutdown => break,
                        () = tokio::time::sleep(ACCEPT_ERROR_PAUSE) => {}
                    }
                }
            }
        }
    }
    drop(listener);
    let _ = stop_tx.send(true);
    finish(conns, limits.shutdown_deadline).await;
}

/// Waits for the connections to finish their answers, dropping whatever is open at `deadline`.
async fn finish(mut conns: JoinSet<()>, deadline: Duration) {
    let all_done = async { while conns.join_next().await.is_some() {} };
    if tokio::time::timeout(deadline, all_done).await.is_err() {
        warn!(
            open = conns.len(),
            ?deadline,
            "HTTP connections still open at the shutdown deadline; dropped"
        );
        conns.shutdown().await;
    } else {
        info!("HTTP connections finished");
    }
}

/// The answer to a connection over the cap.
fn busy_answer(cap: usize) -> String {
    let body = serde_json::json!({
        "code": "busy",
        "message": format!(
            "the node is serving {cap} HTTP connections, its most ([limits] http_max_connections); try again shortly"
        ),
    })
    .to_string();
    format!(
        "HTTP/1.1 503 Service Unavailable\r\ncontent-type: application/json\r\ncontent-length: {}\r\nretry-after: 1\r\nconnection: close\r\n\r\n{body}",
        body.len()
    )
}

/// Answers a connection over the cap with 503 and closes it once the client has closed its side
/// (reading and dropping what it sent, so that closing does not reset the answer away), or after
/// [`REFUSE_LINGER`]. Past [`MAX_REFUSING`] such connections at once, closes it at once.
async fn refuse(mut stream: TcpStream, cap: usize, _lingering: OwnedSemaphorePermit) {
    let linger = async {
        stream.write_all(busy_answer(cap).as_bytes()).await?;
        stream.shutdown().await?;
        let mut buf = [0u8; 4096];
        let mut drained = 0;
        while drained < REFUSED_DRAIN {
            match stream.read(&mut buf).await? {
                0 => break,
                n => drained += n,
            }
        }
        io::Result::Ok(())
    };
    let _ = tokio::time::timeout(REFUSE_LINGER, linger).await;
    debug!("HTTP connection over the cap refused");
}

/// Serves one connection (HTTP/1.1, keep-alive) until it ends, times out or shutdown drops it.
async fn connection(
    stream: TcpStream,
    app: Router,
    limits: HttpLimits,
    mut stop: watch::Receiver<bool>,
    _slot: OwnedSemaphorePermit,
) {
    let _ = stream.set_nodelay(true);
    let io = TokioIo::new(Guarded::new(
        stream,
        limits.idle_timeout,
        limits.write_timeout,
    ));
    let mut builder = http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_timeout);
    let conn = builder.serve_connection(io, TowerToHyperService::new(app));
    tokio::pin!(conn);
    let ended = tokio::select! {
        ended = conn.as_mut() => ended,
        _ = stop.changed() => {
            // Finish the answer under way (if any) and close; the shutdown deadline bounds this.
            conn.as_mut().graceful_shutdown();
            conn.await
        }
    };
    if let Err(e) = ended {
        debug!(error = %e, "HTTP connection ended");
    }
}

/// A connection's socket with its idle and write timers: a read or write that would wait past
/// either fails with `TimedOut`, which ends the connection.
#[derive(Debug)]
struct Guarded {
    inner: TcpStream,
    idle: Duration,
    write: Duration,
    /// When a byte was last read or written.
    last_io: Instant,
    /// Since when a write has been blocked without progress.
    write_blocked: Option<Instant>,
    timer: Pin<Box<Sleep>>,
    armed: Instant,
}

impl Guarded {
    fn new(inner: TcpStream, idle: Duration, write: Duration) -> Guarded {
        let now = Instant::now();
        Guarded {
            inner,
            idle,
            write,
            last_io: now,
            write_blocked: None,
            timer: Box::pin(tokio::time::sleep_until(now + idle)),
            armed: now + idle,
        }
    }

    /// The socket would block: wait, unless a timer has run out.
    fn wait<T>(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<T>> {
        let idle_until = self.last_io + self.idle;
        let deadline = self
            .write_blocked
            .map_or(idle_until, |since| idle_until.min(since + self.write));
        if deadline != self.armed {
            self.timer.as_mut().reset(deadline);
            self.armed = deadline;
        }
        match self.timer.as_mut().poll(cx) {
            Poll::Pending => Poll::Pending,
            Poll::Ready(()) => Poll::Ready(Err(io::Error::new(
                io::ErrorKind::TimedOut,
                "the client sent and read nothing within the idle or write timeout",
            ))),
        }
    }

    fn wrote(
        &mut self,
        cx: &mut Context<'_>,
        r: Poll<io::Result<usize>>,
    ) -> Poll<io::Result<usize>> {
        match r {
            Poll::Pending => {
                self.write_blocked.get_or_insert_with(Instant::now);
                self.wait(cx)
            }
            Poll::Ready(Ok(n)) => {
                if n > 0 {
                    self.write_blocked = None;
                    self.last_io = Instant::now();
                }
                Poll::Ready(Ok(n))
            }
            failed => failed,
        }
    }
}

impl AsyncRead for Guarded {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let before = buf.filled().len();
        match Pin::new(&mut this.inner).poll_read(cx, buf) {
            Poll::Pending => this.wait(cx),
            Poll::Ready(Ok(())) => {
                if buf.filled().len() > before {
                    this.last_io = Instant::now();
                }
                Poll::Ready(Ok(()))
            }
            failed => failed,
        }
    }
}

impl AsyncWrite for Guarded {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        data: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let r = Pin::new(&mut this.inner).poll_write(cx, data);
        this.wrote(cx, r)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        data: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let r = Pin::new(&mut this.inner).poll_write_vectored(cx, data);
        this.wrote(cx, r)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_shutdown(cx)
    }
}
