//! The trace socket's frame decoder, fed what a peer sends in pieces of any size. The first
//! byte sets the piece size (1 to 256 bytes), the rest is the stream.
//!
//! Checked: no panic; the frames and the error are the same whether the stream arrives whole or
//! in pieces; the decoder never buffers more than a frame plus the last piece; the frames
//! decoded re-encode to exactly the bytes they were decoded from.
#![no_main]

use libfuzzer_sys::fuzz_target;
use panoptic_core::trace::frame::{self, Decoder, Frame, FrameError, HEADER, MAX_PAYLOAD};

/// Frames decoded from `pieces`, and the error that ended the stream (if any).
fn decode<'a>(pieces: impl Iterator<Item = &'a [u8]>) -> (Vec<Frame>, Option<FrameError>) {
    let mut d = Decoder::new();
    let mut frames = Vec::new();
    for piece in pieces {
        d.push(piece);
        assert!(d.buffered() <= HEADER + MAX_PAYLOAD + piece.len());
        loop {
            match d.next_frame() {
                Ok(Some(f)) => frames.push(f),
                Ok(None) => break,
                Err(e) => {
                    assert_eq!(
                        d.next_frame(),
                        Err(e.clone()),
                        "a failed decoder stays failed"
                    );
                    return (frames, Some(e));
                }
            }
        }
    }
    (frames, None)
}

fuzz_target!(|data: &[u8]| {
    let Some((&size, stream)) = data.split_first() else {
        return;
    };
    let whole = decode(std::iter::once(stream));
    let pieces = decode(stream.chunks(size as usize + 1));
    assert_eq!(whole, pieces, "pieces decode as the whole stream does");
    let mut encoded = Vec::new();
    for f in &whole.0 {
        encoded.extend(frame::encode(f.kind, f.payload.as_bytes()).expect("a decoded frame fits"));
    }
    assert_eq!(
        encoded,
        stream[..encoded.len()],
        "frames re-encode to their bytes"
    );
});
