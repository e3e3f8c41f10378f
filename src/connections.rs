//! The listener's guards against clients that hold connections without using them.
//!
//! A connection must deliver each request's head (up to the blank line) within the head
//! timeout of its first byte being awaited: after connecting, and after every byte the
//! server writes (a keep-alive connection waiting for its next request, or a stream whose
//! client has gone quiet). So a client trickling one header line at a time (slowloris), or
//! idling on a keep-alive connection, is closed, while a handler that takes its time or a
//! stream that keeps writing is not. At most `max_connections` are open at once; further
//! clients wait in the kernel's backlog.

use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio::time::{Instant, Sleep};

/// How connections are guarded.
#[derive(Debug, Clone)]
pub struct ConnectionConfig {
    /// How long a client has to send a request's head, and how long an idle keep-alive
    /// connection stays open.
    pub head_timeout: Duration,
    /// Connections open at once.
    pub max_connections: usize,
}

impl Default for ConnectionConfig {
    fn default() -> Self {
        Self { head_timeout: Duration::from_secs(30), max_connections: 4096 }
    }
}

/// A TCP listener whose connections are [`Guarded`].
pub struct GuardedListener {
    listener: TcpListener,
    config: ConnectionConfig,
    open: Arc<Semaphore>,
}

impl GuardedListener {
    /// Guards the connections `listener` accepts.
    pub fn new(listener: TcpListener, config: ConnectionConfig) -> Self {
        let open = Arc::new(Semaphore::new(config.max_connections.max(1)));
        Self { listener, config, open }
    }
}

impl axum::serve::Listener for GuardedListener {
    type Io = Guarded;
    type Addr = std::net::SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        // Wait for a free place before accepting: the kernel's backlog holds the rest.
        let permit = self.open.clone().acquire_owned().await.expect("the semaphore is never closed");
        let (stream, addr) = axum::serve::Listener::accept(&mut self.listener).await;
        let _ = stream.set_nodelay(true);
        (Guarded::new(stream, self.config.head_timeout, permit), addr)
    }

    fn local_addr(&self) -> io::Result<Self::Addr> {
        self.listener.local_addr()
    }
}

/// One accepted connection with its head timeout and its place among the open ones.
pub struct Guarded {
    stream: TcpStream,
    timeout: Duration,
    /// Waiting for a request head (until its blank line), since `since`.
    awaiting_head: bool,
    since: Instant,
    /// The last bytes read, to find a blank line split across reads.
    tail: [u8; 3],
    timer: Option<Pin<Box<Sleep>>>,
    _place: OwnedSemaphorePermit,
}

impl Guarded {
    fn new(stream: TcpStream, timeout: Duration, place: OwnedSemaphorePermit) -> Self {
        Self { stream, timeout, awaiting_head: true, since: Instant::now(), tail: [0; 3], timer: None, _place: place }
    }

    fn saw(&mut self, bytes: &[u8]) {
        if !self.awaiting_head || bytes.is_empty() {
            return;
        }
        let mut window = Vec::with_capacity(3 + bytes.len());
        window.extend_from_slice(&self.tail);
        window.extend_from_slice(bytes);
        if window.windows(4).any(|w| w == b"\r\n\r\n") || window.windows(2).any(|w| w == b"\n\n") {
            self.awaiting_head = false;
            self.timer = None;
        }
        let keep = window.len() - 3;
        self.tail.copy_from_slice(&window[keep..]);
    }
}

impl AsyncRead for Guarded {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        let this = &mut *self;
        let before = buf.filled().len();
        match Pin::new(&mut this.stream).poll_read(cx, buf) {
            Poll::Ready(Ok(())) => {
                if this.awaiting_head {
                    let read = buf.filled()[before..].to_vec();
                    this.saw(&read);
                }
                Poll::Ready(Ok(()))
            }
            Poll::Ready(Err(error)) => Poll::Ready(Err(error)),
            Poll::Pending if this.awaiting_head => {
                let deadline = this.since + this.timeout;
                let timer = this.timer.get_or_insert_with(|| Box::pin(tokio::time::sleep_until(deadline)));
                if timer.deadline() != deadline {
                    timer.as_mut().reset(deadline);
                }
                match timer.as_mut().poll(cx) {
                    Poll::Ready(()) => Poll::Ready(Err(io::Error::new(
                        io::ErrorKind::TimedOut,
                        "no complete request head within the head timeout",
                    ))),
                    Poll::Pending => Poll::Pending,
                }
            }
            Poll::Pending => Poll::Pending,
        }
    }
}

impl AsyncWrite for Guarded {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, data: &[u8]) -> Poll<io::Result<usize>> {
        let this = &mut *self;
        let written = Pin::new(&mut this.stream).poll_write(cx, data);
        if let Poll::Ready(Ok(n)) = written
            && n > 0
        {
            // An answer went out: the client's next request head is awaited from now.
            this.awaiting_head = true;
            this.since = Instant::now();
            this.tail = [0; 3];
        }
        written
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let this = &mut *self;
        let written = Pin::new(&mut this.stream).poll_write_vectored(cx, bufs);
        if let Poll::Ready(Ok(n)) = written
            && n > 0
        {
            this.awaiting_head = true;
            this.since = Instant::now();
            this.tail = [0; 3];
        }
        written
    }

    fn is_write_vectored(&self) -> bool {
        self.stream.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_shutdown(cx)
    }
}
