//! Scrubbing injected credentials out of responses. An upstream can echo what
//! it was sent (an echo service, an error message quoting the key), which would
//! hand the session the very credential the proxy keeps from it. A response to
//! a request that carried one is scanned for it — the raw value and the header
//! value it was sent as — in its headers and body, and each occurrence is
//! overwritten with `*` of the same length, so lengths (`Content-Length`) stay
//! right. Only bytes that could begin an occurrence split across two chunks
//! wait for the next chunk; nothing else is held back, so streams stay live.
//!
//! Requests that carry a credential are sent without `Accept-Encoding`, so the
//! body arrives uncompressed and can be read. Not covered: other encodings of
//! the value (say, base64 of a value the upstream chose to encode) and
//! WebSocket messages.

use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use http::HeaderMap;
use http_body::{Body, Frame, SizeHint};
use memchr::memmem;

use crate::{BoxError, ProxyBody};

/// What a response is scanned for, longest first: the header value it was sent
/// as contains the raw value, and is masked whole before the raw value is.
pub(crate) struct Needles(Vec<Vec<u8>>);

impl Needles {
    /// Scan for these values (empty ones are ignored).
    pub(crate) fn new<I: IntoIterator<Item = String>>(values: I) -> Self {
        let mut needles: Vec<Vec<u8>> = values.into_iter().filter(|v| !v.is_empty()).map(String::into_bytes).collect();
        needles.sort_by(|a, b| b.len().cmp(&a.len()).then_with(|| a.cmp(b)));
        needles.dedup();
        Self(needles)
    }

    /// Overwrite every occurrence in `buf` with `*`.
    fn mask(&self, buf: &mut [u8]) {
        for needle in &self.0 {
            let mut from = 0;
            while let Some(at) = memmem::find(&buf[from..], needle) {
                let start = from + at;
                buf[start..start + needle.len()].fill(b'*');
                from = start + needle.len();
            }
        }
    }

    /// How many bytes at the end of `buf` could be the start of an occurrence.
    fn partial_tail(&self, buf: &[u8]) -> usize {
        let longest = self.0.iter().map(Vec::len).max().unwrap_or(0);
        (1..longest.min(buf.len() + 1))
            .rev()
            .find(|&k| self.0.iter().any(|n| n.len() > k && n.starts_with(&buf[buf.len() - k..])))
            .unwrap_or(0)
    }

    /// Mask header values in place.
    pub(crate) fn scrub_headers(&self, headers: &mut HeaderMap) {
        for value in headers.values_mut() {
            let mut bytes = value.as_bytes().to_vec();
            self.mask(&mut bytes);
            if bytes != value.as_bytes()
                && let Ok(masked) = http::HeaderValue::from_bytes(&bytes)
            {
                *value = masked;
            }
        }
    }

    /// The body, scrubbed.
    pub(crate) fn scrub_body(self, inner: ProxyBody) -> ProxyBody {
        http_body_util::BodyExt::boxed(Scrubbed { inner, needles: self, carry: Vec::new(), ended: false })
    }
}

/// A body with the needles masked out.
struct Scrubbed {
    inner: ProxyBody,
    needles: Needles,
    /// Bytes that may begin an occurrence, waiting for the next chunk.
    carry: Vec<u8>,
    ended: bool,
}

impl Scrubbed {
    /// Scrub `chunk` after what was carried; returns what can be sent now.
    fn push(&mut self, chunk: &[u8]) -> Bytes {
        let mut buf = std::mem::take(&mut self.carry);
        buf.extend_from_slice(chunk);
        self.needles.mask(&mut buf);
        let keep = self.needles.partial_tail(&buf);
        self.carry = buf.split_off(buf.len() - keep);
        Bytes::from(buf)
    }
}

impl Body for Scrubbed {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        loop {
            if self.ended {
                let rest = std::mem::take(&mut self.carry);
                return Poll::Ready((!rest.is_empty()).then(|| Ok(Frame::data(Bytes::from(rest)))));
            }
            match std::task::ready!(Pin::new(&mut self.inner).poll_frame(cx)) {
                Some(Ok(frame)) => match frame.into_data() {
                    Ok(data) => {
                        let out = self.push(&data);
                        if !out.is_empty() {
                            return Poll::Ready(Some(Ok(Frame::data(out))));
                        }
                    }
                    Err(other) => return Poll::Ready(Some(Ok(other))),
                },
                Some(Err(e)) => return Poll::Ready(Some(Err(e))),
                None => self.ended = true,
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.carry.is_empty() && (self.ended || self.inner.is_end_stream())
    }

    fn size_hint(&self) -> SizeHint {
        // Masking keeps lengths; carried bytes are still to come.
        let inner = self.inner.size_hint();
        let carried = self.carry.len() as u64;
        let mut hint = SizeHint::new();
        hint.set_lower(inner.lower() + carried);
        if let Some(upper) = inner.upper() {
            hint.set_upper(upper + carried);
        }
        hint
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http_body_util::BodyExt;

    fn scrub(needles: &[&str], chunks: &[&str]) -> (String, Vec<String>) {
        let frames: Vec<Result<Frame<Bytes>, BoxError>> =
            chunks.iter().map(|c| Ok(Frame::data(Bytes::from(c.to_string())))).collect();
        let inner = http_body_util::StreamBody::new(futures_util::stream::iter(frames)).boxed();
        let body = Needles::new(needles.iter().map(|n| n.to_string())).scrub_body(inner);
        let rt = tokio::runtime::Builder::new_current_thread().build().expect("runtime");
        let frames = rt.block_on(async move {
            let mut body = body;
            let mut out = Vec::new();
            while let Some(frame) = body.frame().await {
                out.push(String::from_utf8(frame.expect("frame").into_data().expect("data").to_vec()).expect("utf-8"));
            }
            out
        });
        (frames.concat(), frames)
    }

    #[test]
    fn occurrences_are_masked_with_the_same_length() {
        let (out, _) = scrub(&["sk-secret"], &[r#"{"key":"sk-secret","again":"sk-secret"}"#]);
        assert_eq!(out, r#"{"key":"*********","again":"*********"}"#);
    }

    #[test]
    fn an_occurrence_split_across_chunks_is_masked() {
        let (out, frames) = scrub(&["sk-secret"], &["data: sk-se", "cret and more\n\n"]);
        assert_eq!(out, "data: ********* and more\n\n");
        assert_eq!(frames[0], "data: ", "only the possible start waits");
    }

    #[test]
    fn nothing_is_held_back_when_no_occurrence_can_start() {
        let (_, frames) = scrub(&["sk-secret"], &["event: a\n\n", "event: b\n\n"]);
        assert_eq!(frames, ["event: a\n\n", "event: b\n\n"], "streams stay live");
    }

    #[test]
    fn a_partial_start_at_the_very_end_is_sent_as_it_is() {
        let (out, _) = scrub(&["sk-secret"], &["ends with sk-se"]);
        assert_eq!(out, "ends with sk-se");
    }

    #[test]
    fn the_header_form_is_masked_whole_whatever_the_value_sorts_as() {
        // "AAA…" sorts before "Bearer AAA…": longest first still masks the whole header value.
        let (out, _) = scrub(&["AAA-secret", "Bearer AAA-secret"], &[r#"{"authorization":"Bearer AAA-secret"}"#]);
        assert_eq!(out, r#"{"authorization":"*****************"}"#);
    }

    #[test]
    fn every_needle_and_header_is_masked() {
        let needles = Needles::new(["raw-value".to_string(), "Basic cmF3LXZhbHVl".to_string()]);
        let mut headers = HeaderMap::new();
        headers.insert("x-echo", "Basic cmF3LXZhbHVl".parse().expect("value"));
        headers.insert("x-other", "has raw-value in it".parse().expect("value"));
        needles.scrub_headers(&mut headers);
        assert_eq!(headers["x-echo"], "******************");
        assert_eq!(headers["x-other"], "has ********* in it");
    }
}
