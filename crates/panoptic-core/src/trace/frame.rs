//! The framing of the trace socket, in both directions.
//!
//! ```text
//! length u32 (big-endian) | version u8 | kind u8 | payload (UTF-8, `length - 2` bytes)
//! ```
//! `length` counts the version and kind bytes too, so it is at least 2. Payloads are JSON text
//! (the JS sides give them meaning); the framing only promises sizes, version and UTF-8.
//!
//! The decoder is fed whatever bytes a peer sends, in pieces of any size. It never panics, never
//! trusts a length (a frame longer than [`MAX_PAYLOAD`] is refused as soon as its 4-byte header is
//! in, before any of it is buffered), and once it has failed it stays failed: the connection is
//! then closed, since nothing after a bad frame can be trusted to be aligned.

use std::fmt;

/// The protocol version this build speaks; a frame of another version is an error.
pub const VERSION: u8 = 1;
/// Largest payload accepted or sent, in bytes (a remote script's source, a trace object's JSON).
pub const MAX_PAYLOAD: usize = 1 << 20;
/// Bytes before the payload.
pub const HEADER: usize = 6;

/// The kinds of frames. The native server reads only [`kind::HELLO`] (a connection's first frame
/// must be one), writes [`kind::ERROR`] (protocol errors) and [`kind::DROPPED`] (frames it had to
/// drop); the JS sides give every kind its meaning (`lib/trace/`).
pub mod kind {
    /// tracer -> process, first frame: `{ version, client, patterns, remote, title, host }`, the
    /// tracer and its whole subscription in one frame, so that the subscription is in effect from
    /// the moment the process learns of the tracer (there is no moment in between in which a
    /// probe could be missed); process -> tracer: who it is. Kind 2 is unused: it was a separate
    /// subscription frame, a round trip after the hello.
    pub const HELLO: u8 = 1;
    /// process -> tracer: the subscription is in place (`{ remote }`: whether remote code runs).
    pub const SUBSCRIBED: u8 = 3;
    /// process -> tracer: one trace object.
    pub const TRACE: u8 = 4;
    /// process -> tracer: `traces.emit(name, ...args)` from remote code.
    pub const EVENT: u8 = 5;
    /// process -> tracer: remote console output, `{ stream, text }`.
    pub const STDIO: u8 = 6;
    /// process -> tracer: an error (`{ code, message, ... }`).
    pub const ERROR: u8 = 7;
    /// process -> tracer: `{ dropped }` frames were dropped because the tracer read too slowly.
    pub const DROPPED: u8 = 8;
    /// tracer -> process: run the remote cleanup handlers and detach.
    pub const CLEANUP: u8 = 9;
    /// process -> tracer: cleanup done.
    pub const CLEANED: u8 = 10;
}

/// One decoded frame.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Frame {
    /// One of [`kind`]'s constants, or a kind from a later minor revision (left to the JS side).
    pub kind: u8,
    /// The payload text.
    pub payload: String,
}

/// Why bytes could not be decoded into frames, or a payload could not be framed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FrameError {
    /// The length field is below the 2 bytes of version and kind.
    TooShort(u32),
    /// The payload would exceed [`MAX_PAYLOAD`].
    TooLarge(usize),
    /// A frame of another protocol version.
    Version(u8),
    /// The payload is not UTF-8.
    Utf8,
}

impl fmt::Display for FrameError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FrameError::TooShort(n) => write!(f, "frame length {n} is below the minimum of 2"),
            FrameError::TooLarge(n) => {
                write!(
                    f,
                    "frame payload of {n} bytes exceeds the limit of {MAX_PAYLOAD} bytes"
                )
            }
            FrameError::Version(v) => write!(
                f,
                "unsupported trace protocol version {v} (this side speaks version {VERSION})"
            ),
            FrameError::Utf8 => write!(f, "frame payload is not UTF-8"),
        }
    }
}

impl std::error::Error for FrameError {}

/// Frames `payload` as `kind`. Fails only when the payload exceeds [`MAX_PAYLOAD`].
pub fn encode(kind: u8, payload: &[u8]) -> Result<Vec<u8>, FrameError> {
    if payload.len() > MAX_PAYLOAD {
        return Err(FrameError::TooLarge(payload.len()));
    }
    let mut out = Vec::with_capacity(HEADER + payload.len());
    // Cannot overflow: MAX_PAYLOAD + 2 fits in u32.
    out.extend_from_slice(&((payload.len() + 2) as u32).to_be_bytes());
    out.push(VERSION);
    out.push(kind);
    out.extend_from_slice(payload);
    Ok(out)
}

/// An incremental decoder: [`Decoder::push`] bytes as they arrive, then take frames with
/// [`Decoder::next_frame`] until it returns `Ok(None)`.
#[derive(Debug, Default)]
pub struct Decoder {
    buf: Vec<u8>,
    /// Where the next undecoded byte is in `buf` (consumed bytes are dropped lazily).
    start: usize,
    failed: Option<FrameError>,
}

impl Decoder {
    /// A decoder with nothing buffered.
    pub fn new() -> Decoder {
        Decoder::default()
    }

    /// Appends bytes received from the peer.
    pub fn push(&mut self, bytes: &[u8]) {
        if self.failed.is_some() {
            return;
        }
        if self.start > 0 {
            self.buf.drain(..self.start);
            self.start = 0;
        }
        self.buf.extend_from_slice(bytes);
    }

    /// Bytes held and not yet decoded. Never more than one header, one payload and the bytes of
    /// the last `push`.
    pub fn buffered(&self) -> usize {
        self.buf.len() - self.start
    }

    /// The next complete frame, `Ok(None)` when more bytes are needed, or the error that ends the
    /// stream (returned again on every later call).
    pub fn next_frame(&mut self) -> Result<Option<Frame>, FrameError> {
        if let Some(e) = &self.failed {
            return Err(e.clone());
        }
        match self.decode_one() {
            Err(e) => {
                self.buf = Vec::new();
                self.start = 0;
                self.failed = Some(e.clone());
                Err(e)
            }
            ok => ok,
        }
    }

    fn decode_one(&mut self) -> Result<Option<Frame>, FrameError> {
        let rest = &self.buf[self.start..];
        if rest.len() < 4 {
            return Ok(None);
        }
        let length = u32::from_be_bytes([rest[0], rest[1], rest[2], rest[3]]);
        if length < 2 {
            return Err(FrameError::TooShort(length));
        }
        let payload_len = length as usize - 2;
        if payload_len > MAX_PAYLOAD {
            return Err(FrameError::TooLarge(payload_len));
        }
        // The version is checked as soon as it is in, not when the whole frame is.
        if rest.len() > 4 && rest[4] != VERSION {
            return Err(FrameError::Version(rest[4]));
        }
        if rest.len() < HEADER + payload_len {
            return Ok(None);
        }
        let kind = rest[5];
        let payload = std::str::from_utf8(&rest[HEADER..HEADER + payload_len])
            .map_err(|_| FrameError::Utf8)?
            .to_owned();
        self.start += HEADER + payload_len;
        Ok(Some(Frame { kind, payload }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn decode_all(chunks: &[&[u8]]) -> (Vec<Frame>, Option<FrameError>) {
        let mut d = Decoder::new();
        let mut frames = Vec::new();
        for c in chunks {
            d.push(c);
            loop {
                match d.next_frame() {
                    Ok(Some(f)) => frames.push(f),
                    Ok(None) => break,
                    Err(e) => return (frames, Some(e)),
                }
            }
        }
        (frames, None)
    }

    #[test]
    fn round_trip_byte_by_byte() {
        let mut bytes = encode(kind::HELLO, br#"{"version":1}"#).unwrap();
        bytes.extend(encode(kind::TRACE, "é".as_bytes()).unwrap());
        bytes.extend(encode(kind::CLEANUP, b"").unwrap());
        let chunks: Vec<&[u8]> = bytes.chunks(1).collect();
        let (frames, err) = decode_all(&chunks);
        assert_eq!(err, None);
        assert_eq!(
            frames,
            vec![
                Frame {
                    kind: kind::HELLO,
                    payload: r#"{"version":1}"#.into()
                },
                Frame {
                    kind: kind::TRACE,
                    payload: "é".into()
                },
                Frame {
                    kind: kind::CLEANUP,
                    payload: String::new()
                },
            ]
        );
    }

    #[test]
    fn a_huge_length_is_refused_from_the_header_alone() {
        let (frames, err) = decode_all(&[&[0xff, 0xff, 0xff, 0xff]]);
        assert!(frames.is_empty());
        assert_eq!(err, Some(FrameError::TooLarge(0xffff_fffd)));
        let just_over = ((MAX_PAYLOAD + 3) as u32).to_be_bytes();
        assert_eq!(
            decode_all(&[&just_over]).1,
            Some(FrameError::TooLarge(MAX_PAYLOAD + 1))
        );
    }

    #[test]
    fn http_garbage_is_an_error_not_a_wait() {
        // "GET " read as a length is ~1.2 GB: refused at once rather than waited for.
        let (_, err) = decode_all(&[b"GET / HTTP/1.1\r\nHost: x\r\n\r\n"]);
        assert!(matches!(err, Some(FrameError::TooLarge(_))));
    }

    #[test]
    fn short_length_version_and_utf8_errors() {
        assert_eq!(
            decode_all(&[&[0, 0, 0, 1]]).1,
            Some(FrameError::TooShort(1))
        );
        assert_eq!(
            decode_all(&[&[0, 0, 0, 2, 9]]).1,
            Some(FrameError::Version(9))
        );
        assert_eq!(
            decode_all(&[&[0, 0, 0, 3, VERSION, 4, 0xff]]).1,
            Some(FrameError::Utf8)
        );
    }

    #[test]
    fn an_error_is_sticky() {
        let mut d = Decoder::new();
        d.push(&[0, 0, 0, 0]);
        assert_eq!(d.next_frame(), Err(FrameError::TooShort(0)));
        d.push(&encode(kind::HELLO, b"{}").unwrap());
        assert_eq!(d.next_frame(), Err(FrameError::TooShort(0)));
        assert_eq!(d.buffered(), 0);
    }

    #[test]
    fn encode_refuses_oversized_payloads() {
        assert!(encode(kind::TRACE, &vec![b'x'; MAX_PAYLOAD]).is_ok());
        assert_eq!(
            encode(kind::TRACE, &vec![b'x'; MAX_PAYLOAD + 1]),
            Err(FrameError::TooLarge(MAX_PAYLOAD + 1))
        );
    }

    #[test]
    fn messages_name_the_problem() {
        assert_eq!(
            FrameError::Version(7).to_string(),
            "unsupported trace protocol version 7 (this side speaks version 1)"
        );
        assert!(FrameError::TooLarge(5).to_string().contains("5 bytes"));
    }

    proptest! {
        #[test]
        fn frames_survive_any_chunking(
            frames in prop::collection::vec((any::<u8>(), ".{0,64}"), 0..8),
            cuts in prop::collection::vec(0usize..600, 0..10),
        ) {
            let mut bytes = Vec::new();
            for (k, p) in &frames {
                bytes.extend(encode(*k, p.as_bytes()).unwrap());
            }
            let mut cuts: Vec<usize> = cuts.into_iter().map(|c| c.min(bytes.len())).collect();
            cuts.sort_unstable();
            let mut chunks = Vec::new();
            let mut at = 0;
            for c in cuts {
                chunks.push(&bytes[at..c]);
                at = c;
            }
            chunks.push(&bytes[at..]);
            let (got, err) = decode_all(&chunks);
            prop_assert_eq!(err, None);
            let want: Vec<Frame> = frames.into_iter().map(|(kind, payload)| Frame { kind, payload }).collect();
            prop_assert_eq!(got, want);
        }

        #[test]
        fn garbage_never_panics_and_stays_bounded(
            chunks in prop::collection::vec(prop::collection::vec(any::<u8>(), 0..200), 0..20),
        ) {
            let mut d = Decoder::new();
            for c in &chunks {
                d.push(c);
                while let Ok(Some(_)) = d.next_frame() {}
                // Never more than a header, a (bounded) payload and the last push.
                prop_assert!(d.buffered() <= HEADER + MAX_PAYLOAD + c.len());
            }
        }

        #[test]
        fn a_flipped_byte_never_panics(pos in 0usize..64, byte in any::<u8>()) {
            let mut bytes = encode(kind::HELLO, br#"{"patterns":["request:*"],"remote":null}"#).unwrap();
            let i = pos % bytes.len();
            bytes[i] = byte;
            let _ = decode_all(&[&bytes]);
        }
    }
}
