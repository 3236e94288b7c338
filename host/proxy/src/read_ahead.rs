//! Reading ahead under TLS. rustls asks its transport for at most 4 KiB at a
//! time (its record reader grows by 4 KiB a read), so a large body costs a
//! read system call every 4 KiB on each TLS connection the proxy reads from —
//! the upstream's while a response streams down, the session's while a
//! request body streams up.
//!
//! [`ReadAhead`] sits between a TLS connection and its socket. Reads pass
//! straight through until one fills the caller's buffer (a sign that more is
//! waiting); from then on it reads up to [`AHEAD`] bytes at once and serves
//! the small reads that follow from memory. When the socket has nothing more
//! for now it frees that buffer and passes reads straight through again, so an
//! idle connection holds no buffer and a small request and its answer are read
//! exactly as before. Writes pass through untouched.

use std::io::IoSlice;
use std::pin::Pin;
use std::task::{Context, Poll, ready};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

/// How much is read at once while a stream is flowing.
pub const AHEAD: usize = 64 << 10;

/// A transport that reads ahead while a stream is flowing (see the module).
pub struct ReadAhead<T> {
    io: T,
    /// Read ahead while flowing; `None` when not (nothing is held).
    ahead: Option<Box<[u8]>>,
    /// What of `ahead` is still to be served.
    start: usize,
    end: usize,
}

impl<T> ReadAhead<T> {
    pub fn new(io: T) -> Self {
        Self { io, ahead: None, start: 0, end: 0 }
    }

    /// Bytes read ahead and not yet served.
    #[cfg(test)]
    fn held(&self) -> Option<usize> {
        self.ahead.as_ref().map(|_| self.end - self.start)
    }
}

impl<T: AsyncRead + Unpin> AsyncRead for ReadAhead<T> {
    fn poll_read(self: Pin<&mut Self>, cx: &mut Context<'_>, out: &mut ReadBuf<'_>) -> Poll<std::io::Result<()>> {
        let this = self.get_mut();
        if out.remaining() == 0 {
            return Poll::Ready(Ok(()));
        }
        let Some(ahead) = this.ahead.as_mut() else {
            // Not flowing: straight through, into the caller's buffer.
            let wanted = out.remaining();
            ready!(Pin::new(&mut this.io).poll_read(cx, out))?;
            if out.remaining() == 0 && wanted < AHEAD {
                this.ahead = Some(vec![0; AHEAD].into_boxed_slice());
            }
            return Poll::Ready(Ok(()));
        };
        if this.start == this.end {
            if out.remaining() >= AHEAD {
                return Pin::new(&mut this.io).poll_read(cx, out);
            }
            let mut fill = ReadBuf::new(ahead);
            match Pin::new(&mut this.io).poll_read(cx, &mut fill) {
                Poll::Pending => {
                    // The stream has paused: hold nothing while it does.
                    this.ahead = None;
                    return Poll::Pending;
                }
                Poll::Ready(Err(e)) => return Poll::Ready(Err(e)),
                Poll::Ready(Ok(())) => (this.start, this.end) = (0, fill.filled().len()),
            }
            if this.end == 0 {
                this.ahead = None;
                return Poll::Ready(Ok(())); // end of stream
            }
        }
        let n = out.remaining().min(this.end - this.start);
        out.put_slice(&ahead[this.start..this.start + n]);
        this.start += n;
        Poll::Ready(Ok(()))
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for ReadAhead<T> {
    fn poll_write(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.get_mut().io).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.get_mut().io).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.get_mut().io).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.get_mut().io).poll_shutdown(cx)
    }
}

/// The pooled upstream clients' connections carry what hyper asks of a
/// connection (whether it was negotiated as HTTP/2 is the TLS layer's answer).
impl<T: hyper_util::client::legacy::connect::Connection> hyper_util::client::legacy::connect::Connection
    for ReadAhead<T>
{
    fn connected(&self) -> hyper_util::client::legacy::connect::Connected {
        self.io.connected()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    /// Counts the reads that reach the transport.
    struct Counting<T> {
        io: T,
        reads: usize,
    }

    impl<T: AsyncRead + Unpin> AsyncRead for Counting<T> {
        fn poll_read(self: Pin<&mut Self>, cx: &mut Context<'_>, out: &mut ReadBuf<'_>) -> Poll<std::io::Result<()>> {
            let this = self.get_mut();
            this.reads += 1;
            Pin::new(&mut this.io).poll_read(cx, out)
        }
    }

    async fn read_in_4k_reads(reader: &mut ReadAhead<Counting<tokio::io::DuplexStream>>, total: usize) -> Vec<u8> {
        let mut got = Vec::new();
        let mut buf = [0u8; 4096];
        while got.len() < total {
            let n = reader.read(&mut buf).await.expect("read");
            assert!(n > 0, "ended early at {}", got.len());
            got.extend_from_slice(&buf[..n]);
        }
        got
    }

    #[tokio::test]
    async fn a_flowing_stream_is_read_in_large_reads_and_arrives_whole() {
        let (mut far, near) = tokio::io::duplex(1 << 20);
        let sent: Vec<u8> = (0..512 * 1024u32).map(|i| (i % 251) as u8).collect();
        far.write_all(&sent).await.expect("write");
        let mut reader = ReadAhead::new(Counting { io: near, reads: 0 });
        let got = read_in_4k_reads(&mut reader, sent.len()).await;
        assert_eq!(got, sent, "every byte, in order");
        // 128 reads of 4 KiB straight through; one, then 64 KiB at a time.
        assert!(reader.io.reads <= 1 + sent.len() / AHEAD + 1, "{} reads reached the transport", reader.io.reads);
    }

    #[tokio::test]
    async fn a_small_exchange_passes_straight_through_and_a_pause_frees_the_buffer() {
        let (mut far, near) = tokio::io::duplex(1 << 20);
        let mut reader = ReadAhead::new(Counting { io: near, reads: 0 });
        far.write_all(b"GET / HTTP/1.1\r\n\r\n").await.expect("write");
        let mut buf = [0u8; 4096];
        let n = reader.read(&mut buf).await.expect("read");
        assert_eq!(&buf[..n], b"GET / HTTP/1.1\r\n\r\n");
        assert_eq!(reader.held(), None, "a read that did not fill the buffer reads nothing ahead");

        far.write_all(&[7u8; 3 * 4096 + 10]).await.expect("write");
        let got = read_in_4k_reads(&mut reader, 3 * 4096 + 10).await;
        assert!(got.iter().all(|&b| b == 7));
        assert_eq!(reader.held(), Some(0), "flowing: the buffer is kept for the next read");
        // Nothing more for now: the next read waits, and frees the buffer.
        let waiting = tokio::time::timeout(std::time::Duration::from_millis(50), reader.read(&mut buf)).await;
        assert!(waiting.is_err(), "nothing was sent, so the read waits");
        assert_eq!(reader.held(), None, "a paused stream holds no buffer");

        far.write_all(b"more").await.expect("write");
        let n = reader.read(&mut buf).await.expect("read");
        assert_eq!(&buf[..n], b"more");
        drop(far);
        assert_eq!(reader.read(&mut buf).await.expect("read"), 0, "the end is passed on");
    }

    #[tokio::test]
    async fn writes_pass_through() {
        let (mut far, near) = tokio::io::duplex(1024);
        let mut io = ReadAhead::new(near);
        io.write_all(b"hello").await.expect("write");
        let mut buf = [0u8; 5];
        far.read_exact(&mut buf).await.expect("read");
        assert_eq!(&buf, b"hello");
    }
}
