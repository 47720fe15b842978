//! Accepted connections with `TCP_NODELAY` and a kill switch.
//!
//! A `reset` fault must look like a dead upstream: no status line, no bytes,
//! just a closed socket. Handlers cannot reach the socket, so every connection
//! carries a [`KillSwitch`] (handed to requests as `ConnectInfo`); once it is
//! tripped, every read and write on that connection fails, hyper drops the
//! connection, and the socket closes with an RST.

use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use axum::extract::connect_info::Connected;
use axum::serve::{IncomingStream, Listener};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};

/// Per-connection flag; tripping it makes the connection fail all I/O.
#[derive(Debug, Clone, Default)]
pub(crate) struct KillSwitch(Arc<AtomicBool>);

impl KillSwitch {
    pub(crate) fn trip(&self) {
        self.0.store(true, Ordering::Relaxed);
    }

    fn is_tripped(&self) -> bool {
        self.0.load(Ordering::Relaxed)
    }
}

impl Connected<IncomingStream<'_, MockListener>> for KillSwitch {
    fn connect_info(stream: IncomingStream<'_, MockListener>) -> Self {
        stream.io().switch.clone()
    }
}

/// A TCP listener whose connections have `TCP_NODELAY` and a [`KillSwitch`].
#[derive(Debug)]
pub(crate) struct MockListener {
    inner: TcpListener,
}

impl MockListener {
    pub(crate) fn new(inner: TcpListener) -> Self {
        Self { inner }
    }
}

impl Listener for MockListener {
    type Io = KillableStream;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        loop {
            match self.inner.accept().await {
                Ok((tcp, addr)) => {
                    let _ = tcp.set_nodelay(true);
                    let io = KillableStream {
                        tcp,
                        switch: KillSwitch::default(),
                    };
                    return (io, addr);
                }
                Err(e) => {
                    let transient = matches!(
                        e.kind(),
                        io::ErrorKind::ConnectionAborted | io::ErrorKind::ConnectionReset
                    );
                    if !transient {
                        // e.g. out of file descriptors: back off instead of spinning.
                        tokio::time::sleep(Duration::from_millis(50)).await;
                    }
                }
            }
        }
    }

    fn local_addr(&self) -> io::Result<Self::Addr> {
        self.inner.local_addr()
    }
}

/// A TCP stream that fails all I/O once its [`KillSwitch`] is tripped.
#[derive(Debug)]
pub(crate) struct KillableStream {
    tcp: TcpStream,
    switch: KillSwitch,
}

impl KillableStream {
    fn check(&self) -> io::Result<()> {
        if self.switch.is_tripped() {
            // Zero linger turns the close into an RST, like a crashed peer.
            let _ = self.tcp.set_zero_linger();
            return Err(io::Error::new(
                io::ErrorKind::ConnectionReset,
                "mock: connection reset",
            ));
        }
        Ok(())
    }
}

impl Drop for KillableStream {
    fn drop(&mut self) {
        // hyper may drop a killed connection without touching it again.
        if self.switch.is_tripped() {
            let _ = self.tcp.set_zero_linger();
        }
    }
}

impl AsyncRead for KillableStream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        this.check()?;
        Pin::new(&mut this.tcp).poll_read(cx, buf)
    }
}

impl AsyncWrite for KillableStream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        this.check()?;
        Pin::new(&mut this.tcp).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        this.check()?;
        Pin::new(&mut this.tcp).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.tcp.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        this.check()?;
        Pin::new(&mut this.tcp).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        this.check()?;
        Pin::new(&mut this.tcp).poll_shutdown(cx)
    }
}
