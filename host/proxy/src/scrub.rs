//! Scrubbing injected credentials out of responses. An upstream can echo what
//! it was sent (an echo service, an error message quoting the key), which would
//! hand the session the very credential the proxy keeps from it. A response to
//! a request that carried one is scanned for it — the raw value and the header
//! value it was sent as — in its headers and body, and each occurrence is
//! overwritten with `*` of the same length, so lengths (`Content-Length`) stay
//! right. Only bytes that could begin an occurrence split across two chunks
//! wait for the next chunk; nothing else is held back, so streams stay live.
//!
//! What is scanned for is every form of the injected value the proxy can
//! predict ([`Needles::for_credential`]): the raw value, the header value it
//! was sent as, the base64 of a Basic credential on its own, the value's own
//! base64, and the URL-encoded and JSON-escaped forms of each. Trailers are
//! scrubbed like headers. A WebSocket opened with a credential is sent
//! without extensions (so frames are not compressed) and every frame from
//! the upstream is scrubbed ([`relay_scrubbed_frames`]).
//!
//! Requests that carry a credential are sent without `Accept-Encoding`, so the
//! body arrives uncompressed and can be read.

use std::collections::HashMap;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use aho_corasick::AhoCorasick;
use bytes::Bytes;
use http::HeaderMap;
use http_body::{Body, Frame, SizeHint};

use crate::{BoxError, ProxyBody};

/// What a response is scanned for: every occurrence of every form is masked,
/// overlapping ones included (the header value it was sent as contains the
/// raw value; both are masked whole).
pub(crate) struct Needles {
    /// One pass over a buffer finds every form (standard semantics, so
    /// overlapping occurrences are all reported).
    matcher: AhoCorasick,
    /// The forms, for what may begin one at a chunk's end.
    forms: Vec<Vec<u8>>,
    /// The shortest and longest forms' lengths: nothing shorter can hold
    /// one, and no more than the longest less one can begin one at the end.
    shortest: usize,
    longest: usize,
}

impl Needles {
    /// Scan for these values (empty ones are ignored).
    pub(crate) fn new<I: IntoIterator<Item = String>>(values: I) -> Result<Self, String> {
        let mut forms: Vec<Vec<u8>> = values.into_iter().filter(|v| !v.is_empty()).map(String::into_bytes).collect();
        forms.sort();
        forms.dedup();
        let matcher = AhoCorasick::new(&forms).map_err(|e| format!("building the response scrubber: {e}"))?;
        let shortest = forms.iter().map(Vec::len).min().unwrap_or(0);
        let longest = forms.iter().map(Vec::len).max().unwrap_or(0);
        Ok(Self { matcher, forms, shortest, longest })
    }

    /// The needles for a credential `value` sent in a header as `sent`: every
    /// form of it the proxy can predict an upstream echoing.
    pub(crate) fn for_credential(value: &str, sent: Option<&str>) -> Result<Self, String> {
        use base64::Engine as _;
        let mut plain = vec![value.to_string()];
        if let Some(sent) = sent {
            plain.push(sent.to_string());
            if let Some(encoded) = sent.strip_prefix("Basic ") {
                plain.push(encoded.trim().to_string());
            }
        }
        plain.push(base64::engine::general_purpose::STANDARD.encode(value));
        let mut all = plain.clone();
        for p in &plain {
            all.push(form_urlencoded::byte_serialize(p.as_bytes()).collect());
            all.push(serde_json::to_string(p).unwrap_or_default().trim_matches('"').to_string());
            all.push(p.replace('/', "\\/"));
        }
        Self::new(all)
    }

    /// Whether any form occurs in `buf`.
    fn occurs_in(&self, buf: &[u8]) -> bool {
        buf.len() >= self.shortest && self.matcher.is_match(buf)
    }

    /// Overwrite every occurrence in `buf` with `*`.
    fn mask(&self, buf: &mut [u8]) {
        let found: Vec<std::ops::Range<usize>> = self.matcher.find_overlapping_iter(&*buf).map(|m| m.range()).collect();
        for range in found {
            buf[range].fill(b'*');
        }
    }

    /// How many bytes at the end of `buf` could be the start of an occurrence.
    fn partial_tail(&self, buf: &[u8]) -> usize {
        (1..self.longest.min(buf.len() + 1))
            .rev()
            .find(|&k| self.forms.iter().any(|n| n.len() > k && n.starts_with(&buf[buf.len() - k..])))
            .unwrap_or(0)
    }

    /// Mask `chunk`, read after the bytes held in `carry`, and return what
    /// can go out now; unless the stream `ends` here, bytes that could begin
    /// an occurrence split across this chunk and the next stay in `carry`.
    /// A chunk with nothing to mask and nothing carried goes out as it came
    /// (no copy).
    fn mask_stream(&self, carry: &mut Vec<u8>, chunk: Bytes, ends: bool) -> Bytes {
        if carry.is_empty() && !self.occurs_in(&chunk) {
            let keep = if ends { 0 } else { self.partial_tail(&chunk) };
            carry.extend_from_slice(&chunk[chunk.len() - keep..]);
            return chunk.slice(..chunk.len() - keep);
        }
        let mut buf = std::mem::take(carry);
        buf.extend_from_slice(&chunk);
        self.mask(&mut buf);
        if !ends {
            let keep = self.partial_tail(&buf);
            *carry = buf.split_off(buf.len() - keep);
        }
        Bytes::from(buf)
    }

    /// Mask header values in place.
    pub(crate) fn scrub_headers(&self, headers: &mut HeaderMap) {
        for value in headers.values_mut() {
            if !self.occurs_in(value.as_bytes()) {
                continue;
            }
            let mut bytes = value.as_bytes().to_vec();
            self.mask(&mut bytes);
            if let Ok(masked) = http::HeaderValue::from_bytes(&bytes) {
                *value = masked;
            }
        }
    }

    /// The body, scrubbed.
    pub(crate) fn scrub_body(self: Arc<Self>, inner: ProxyBody) -> ProxyBody {
        http_body_util::BodyExt::boxed(Scrubbed {
            inner,
            needles: self,
            carry: Vec::new(),
            trailers: None,
            ended: false,
        })
    }
}

/// The needles of each injected credential, built once per value and reused
/// by every request that carries it. One entry per service and header: a
/// new value (a rotated credential) replaces the old one.
#[derive(Default)]
pub(crate) struct NeedleCache(Mutex<HashMap<String, Vec<CachedNeedles>>>);

struct CachedNeedles {
    header: String,
    value: String,
    sent: Option<String>,
    needles: Arc<Needles>,
}

impl NeedleCache {
    /// The needles for `service`'s credential `value`, sent in `header` as `sent`.
    pub(crate) fn get(
        &self,
        service: &str,
        header: &str,
        value: &str,
        sent: Option<&str>,
    ) -> Result<Arc<Needles>, String> {
        let Ok(mut cache) = self.0.lock() else {
            return Needles::for_credential(value, sent).map(Arc::new);
        };
        let cached = cache.get(service).and_then(|entries| entries.iter().find(|e| e.header == header));
        if let Some(e) = cached
            && e.value == value
            && e.sent.as_deref() == sent
        {
            return Ok(e.needles.clone());
        }
        let needles = Arc::new(Needles::for_credential(value, sent)?);
        let fresh = CachedNeedles {
            header: header.to_string(),
            value: value.to_string(),
            sent: sent.map(String::from),
            needles: needles.clone(),
        };
        let entries = cache.entry(service.to_string()).or_default();
        match entries.iter_mut().find(|e| e.header == header) {
            Some(e) => *e = fresh,
            None => entries.push(fresh),
        }
        Ok(needles)
    }
}

/// A body with the needles masked out, trailers included.
struct Scrubbed {
    inner: ProxyBody,
    needles: Arc<Needles>,
    /// Bytes that may begin an occurrence, waiting for the next chunk.
    carry: Vec<u8>,
    /// Trailers that arrived while bytes were carried: sent after them.
    trailers: Option<HeaderMap>,
    ended: bool,
}

impl Scrubbed {
    /// Scrub `chunk` after what was carried; returns what can be sent now.
    fn push(&mut self, chunk: Bytes) -> Bytes {
        let Self { needles, carry, .. } = self;
        needles.mask_stream(carry, chunk, false)
    }
}

impl Body for Scrubbed {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        loop {
            if self.ended {
                let rest = std::mem::take(&mut self.carry);
                if !rest.is_empty() {
                    return Poll::Ready(Some(Ok(Frame::data(Bytes::from(rest)))));
                }
                return Poll::Ready(self.trailers.take().map(|t| Ok(Frame::trailers(t))));
            }
            match std::task::ready!(Pin::new(&mut self.inner).poll_frame(cx)) {
                Some(Ok(frame)) => match frame.into_data() {
                    Ok(data) => {
                        let out = self.push(data);
                        if !out.is_empty() {
                            return Poll::Ready(Some(Ok(Frame::data(out))));
                        }
                    }
                    Err(other) => match other.into_trailers() {
                        Ok(mut trailers) => {
                            self.needles.scrub_headers(&mut trailers);
                            // Trailers end the body: what was carried goes first.
                            self.trailers = Some(trailers);
                            self.ended = true;
                        }
                        Err(other) => return Poll::Ready(Some(Ok(other))),
                    },
                },
                Some(Err(e)) => return Poll::Ready(Some(Err(e))),
                None => self.ended = true,
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.carry.is_empty() && self.trailers.is_none() && (self.ended || self.inner.is_end_stream())
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

/// The largest WebSocket frame relayed from an upstream when scrubbing.
pub(crate) const MAX_WS_FRAME: u64 = 16 << 20;

/// Relay WebSocket frames from an upstream (`from`) to the client (`to`),
/// scrubbing each data frame's payload. A needle split across the fragments
/// of one message is found: a fragment's possible start of a needle waits
/// for the next fragment (it is re-framed with the new length; server frames
/// are not masked). Control frames are scrubbed in place. Returns the bytes
/// read from the upstream.
pub(crate) async fn relay_scrubbed_frames<R, W>(mut from: R, mut to: W, needles: Arc<Needles>) -> std::io::Result<u64>
where
    R: tokio::io::AsyncRead + Unpin,
    W: tokio::io::AsyncWrite + Unpin,
{
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut read = 0u64;
    let mut carry: Vec<u8> = Vec::new();
    loop {
        let mut head = [0u8; 2];
        match from.read_exact(&mut head).await {
            Ok(_) => {}
            Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => {
                to.shutdown().await.ok();
                return Ok(read);
            }
            Err(e) => return Err(e),
        }
        let (fin, opcode, masked) = (head[0] & 0x80 != 0, head[0] & 0x0f, head[1] & 0x80 != 0);
        // The payload length, and how many bytes of extended length gave it.
        let (len, extended) = match head[1] & 0x7f {
            126 => (u64::from(from.read_u16().await?), 2),
            127 => (from.read_u64().await?, 8),
            n => (u64::from(n), 0),
        };
        if len > MAX_WS_FRAME {
            return Err(std::io::Error::other(format!("a WebSocket frame of {len} bytes is over {MAX_WS_FRAME}")));
        }
        let mut key = [0u8; 4];
        if masked {
            from.read_exact(&mut key).await?;
        }
        let mut payload = vec![0u8; len as usize];
        from.read_exact(&mut payload).await?;
        read += 2 + extended + if masked { 4 } else { 0 } + len;
        if masked {
            // Servers do not mask; unmask to scan, and send it unmasked.
            payload.iter_mut().enumerate().for_each(|(i, b)| *b ^= key[i % 4]);
        }
        let out = if opcode >= 0x8 {
            needles.mask(&mut payload);
            Bytes::from(payload)
        } else {
            // A message's fragments are one stream; it ends with the final one.
            needles.mask_stream(&mut carry, Bytes::from(payload), fin)
        };
        let mut frame = vec![head[0]];
        match out.len() {
            n if n < 126 => frame.push(n as u8),
            n if n <= usize::from(u16::MAX) => {
                frame.push(126);
                frame.extend_from_slice(&(n as u16).to_be_bytes());
            }
            n => {
                frame.push(127);
                frame.extend_from_slice(&(n as u64).to_be_bytes());
            }
        }
        frame.extend_from_slice(&out);
        to.write_all(&frame).await?;
        to.flush().await?;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http_body_util::BodyExt;

    /// The frames of `frames` scrubbed for `needles`, as a client receives them.
    fn scrubbed(needles: &[&str], frames: Vec<Frame<Bytes>>) -> Vec<Frame<Bytes>> {
        let inner = http_body_util::StreamBody::new(futures_util::stream::iter(frames.into_iter().map(Ok))).boxed();
        let mut body =
            Arc::new(Needles::new(needles.iter().map(|n| n.to_string())).expect("needles")).scrub_body(inner);
        let rt = tokio::runtime::Builder::new_current_thread().build().expect("runtime");
        rt.block_on(async move {
            let mut out = Vec::new();
            while let Some(frame) = body.frame().await {
                out.push(frame.expect("frame"));
            }
            out
        })
    }

    fn scrub(needles: &[&str], chunks: &[&str]) -> (String, Vec<String>) {
        let frames = chunks.iter().map(|c| Frame::data(Bytes::from(c.to_string()))).collect();
        let frames: Vec<String> = scrubbed(needles, frames)
            .into_iter()
            .map(|f| String::from_utf8(f.into_data().expect("data").to_vec()).expect("utf-8"))
            .collect();
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
    fn overlapping_occurrences_of_different_forms_are_all_masked() {
        // "abcd" and "cdef" overlap in "abcdef": neither may survive in part.
        let (out, _) = scrub(&["abcd", "cdef"], &["x abcdef y"]);
        assert_eq!(out, "x ****** y");
    }

    #[test]
    fn a_chunk_with_nothing_to_mask_goes_out_without_a_copy() {
        let needles = Needles::new(["sk-secret".to_string()]).expect("needles");
        let chunk = Bytes::from(vec![b'a'; 4096]);
        let (mut carry, at) = (Vec::new(), chunk.as_ptr());
        let out = needles.mask_stream(&mut carry, chunk, false);
        assert_eq!((out.len(), out.as_ptr(), carry.len()), (4096, at, 0), "the same bytes, not a copy");
    }

    #[test]
    fn needles_are_built_once_per_credential_and_rebuilt_when_it_changes() {
        let cache = NeedleCache::default();
        let first = cache.get("github", "authorization", "ghp_one", Some("Bearer ghp_one")).expect("needles");
        let again = cache.get("github", "authorization", "ghp_one", Some("Bearer ghp_one")).expect("needles");
        assert!(Arc::ptr_eq(&first, &again), "reused");
        let rotated = cache.get("github", "authorization", "ghp_two", Some("Bearer ghp_two")).expect("needles");
        assert!(!Arc::ptr_eq(&first, &rotated));
        let mut buf = b"ghp_one ghp_two".to_vec();
        rotated.mask(&mut buf);
        assert_eq!(buf, b"ghp_one *******", "the new value's needles");
        let entries = cache.0.lock().expect("cache").get("github").map(Vec::len);
        assert_eq!(entries, Some(1), "the old value is not kept");
    }

    #[test]
    fn every_needle_and_header_is_masked() {
        let needles = Needles::new(["raw-value".to_string(), "Basic cmF3LXZhbHVl".to_string()]).expect("needles");
        let mut headers = HeaderMap::new();
        headers.insert("x-echo", "Basic cmF3LXZhbHVl".parse().expect("value"));
        headers.insert("x-other", "has raw-value in it".parse().expect("value"));
        needles.scrub_headers(&mut headers);
        assert_eq!(headers["x-echo"], "******************");
        assert_eq!(headers["x-other"], "has ********* in it");
    }

    #[test]
    fn every_predictable_encoding_of_a_credential_is_masked() {
        use base64::Engine as _;
        let value = "x-access-token:ghp_a/b+c=d";
        let sent = format!("Basic {}", base64::engine::general_purpose::STANDARD.encode(value));
        let needles = Needles::for_credential("ghp_a/b+c=d", Some(&sent)).expect("needles");
        let b64 = sent.trim_start_matches("Basic ");
        for echo in [
            b64.to_string(),
            form_urlencoded::byte_serialize(b64.as_bytes()).collect::<String>(),
            "ghp_a\\/b+c=d".to_string(),
            form_urlencoded::byte_serialize(b"ghp_a/b+c=d").collect::<String>(),
            base64::engine::general_purpose::STANDARD.encode("ghp_a/b+c=d"),
        ] {
            let mut buf = format!("echo: {echo} end").into_bytes();
            needles.mask(&mut buf);
            let text = String::from_utf8(buf).expect("utf-8");
            assert_eq!(text, format!("echo: {} end", "*".repeat(echo.len())), "{echo}");
        }
    }

    #[test]
    fn trailers_are_scrubbed_and_come_after_the_carried_bytes() {
        let mut trailers = HeaderMap::new();
        trailers.insert("x-echo", "Bearer sk-secret".parse().expect("value"));
        let frames = vec![Frame::data(Bytes::from("ends with sk-se")), Frame::trailers(trailers)];
        let got = scrubbed(&["sk-secret", "Bearer sk-secret"], frames);
        let data: Vec<u8> = got.iter().filter_map(|f| f.data_ref()).flat_map(|d| d.iter().copied()).collect();
        assert_eq!(data, b"ends with sk-se");
        let last = got.last().and_then(|f| f.trailers_ref()).expect("trailers last");
        assert_eq!(last["x-echo"], "****************");
    }

    #[test]
    fn websocket_frames_are_scrubbed_even_split_across_fragments() {
        // Unmasked server frames: "a sk-se" (not final) + "cret b" (continuation, final).
        let mut wire = vec![0x01, 7];
        wire.extend_from_slice(b"a sk-se");
        wire.extend_from_slice(&[0x80, 6]);
        wire.extend_from_slice(b"cret b");
        wire.extend_from_slice(&[0x81, 11]);
        wire.extend_from_slice(b"x sk-secret");
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
        let out = rt.block_on(async {
            let mut out = Vec::new();
            let needles = Arc::new(Needles::new(["sk-secret".to_string()]).expect("needles"));
            relay_scrubbed_frames(&wire[..], &mut out, needles).await.expect("relay");
            out
        });
        // Re-framed: the first fragment sends what cannot start the needle.
        let mut expected = vec![0x01, 2];
        expected.extend_from_slice(b"a ");
        expected.extend_from_slice(&[0x80, 11]);
        expected.extend_from_slice(b"********* b");
        expected.extend_from_slice(&[0x81, 11]);
        expected.extend_from_slice(b"x *********");
        assert_eq!(out, expected);
    }
}
