//! The bounded queue of frames waiting to be written to one tracer.
//!
//! A traced process must never block or grow because its tracer reads slowly: `trace()` only
//! pushes here, a writer thread drains. When the queue holds [`OutQueue::capacity`] bytes, further
//! frames are dropped and counted; the count reaches the tracer as a [`kind::DROPPED`] frame at
//! the point of the stream where the gap is, as soon as there is room for it (or when the writer
//! has drained everything), so the tracer knows exactly that and how much it missed.

use std::collections::VecDeque;

use super::frame::{encode, kind};

/// Frames waiting to be written, bounded in bytes.
#[derive(Debug)]
pub struct OutQueue {
    frames: VecDeque<Vec<u8>>,
    bytes: usize,
    capacity: usize,
    dropped: u64,
}

/// A `{"dropped":n}` frame.
fn dropped_frame(n: u64) -> Vec<u8> {
    // A short ASCII payload: cannot exceed MAX_PAYLOAD.
    encode(kind::DROPPED, format!("{{\"dropped\":{n}}}").as_bytes()).unwrap_or_default()
}

impl OutQueue {
    /// An empty queue that holds at most `capacity` bytes of frames.
    pub fn new(capacity: usize) -> OutQueue {
        OutQueue {
            frames: VecDeque::new(),
            bytes: 0,
            capacity,
            dropped: 0,
        }
    }

    /// The byte bound.
    pub fn capacity(&self) -> usize {
        self.capacity
    }

    /// Bytes queued.
    pub fn bytes(&self) -> usize {
        self.bytes
    }

    /// Frames queued.
    pub fn frames(&self) -> usize {
        self.frames.len()
    }

    /// Frames dropped and not yet reported.
    pub fn dropped(&self) -> u64 {
        self.dropped
    }

    fn fits(&self, n: usize) -> bool {
        self.bytes + n <= self.capacity
    }

    fn enqueue(&mut self, frame: Vec<u8>) {
        self.bytes += frame.len();
        self.frames.push_back(frame);
    }

    /// Queues an encoded frame; `false` when it was dropped (and counted) for lack of room.
    pub fn push(&mut self, frame: Vec<u8>) -> bool {
        if self.dropped > 0 {
            let report = dropped_frame(self.dropped);
            if !self.fits(report.len() + frame.len()) {
                self.dropped += 1;
                return false;
            }
            self.enqueue(report);
            self.dropped = 0;
        } else if !self.fits(frame.len()) {
            self.dropped = 1;
            return false;
        }
        self.enqueue(frame);
        true
    }

    /// The next frame to write. When everything queued has been taken and frames were dropped
    /// since, the report of the drops.
    pub fn pop(&mut self) -> Option<Vec<u8>> {
        match self.frames.pop_front() {
            Some(f) => {
                self.bytes -= f.len();
                Some(f)
            }
            None if self.dropped > 0 => {
                let report = dropped_frame(self.dropped);
                self.dropped = 0;
                Some(report)
            }
            None => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::trace::frame::{Decoder, Frame};
    use proptest::prelude::*;

    fn frame(n: usize) -> Vec<u8> {
        encode(kind::TRACE, &vec![b'x'; n]).unwrap()
    }

    fn decode(bytes: &[u8]) -> Frame {
        let mut d = Decoder::new();
        d.push(bytes);
        d.next_frame().unwrap().unwrap()
    }

    #[test]
    fn drops_beyond_capacity_and_reports_them_in_place() {
        let mut q = OutQueue::new(50);
        assert!(q.push(frame(20))); // 26 bytes
        assert!(!q.push(frame(20))); // 52 > 50
        assert!(!q.push(frame(20)));
        assert_eq!(q.dropped(), 2);
        assert_eq!(q.pop().unwrap().len(), 26);
        // Room again: the report goes first, then the frame.
        assert!(q.push(frame(10)));
        let report = decode(&q.pop().unwrap());
        assert_eq!(
            report,
            Frame {
                kind: kind::DROPPED,
                payload: r#"{"dropped":2}"#.into()
            }
        );
        assert_eq!(decode(&q.pop().unwrap()).kind, kind::TRACE);
        assert_eq!(q.pop(), None);
        assert_eq!(q.bytes(), 0);
    }

    #[test]
    fn drops_are_reported_once_the_writer_catches_up() {
        let mut q = OutQueue::new(30);
        assert!(q.push(frame(20)));
        assert!(!q.push(frame(20)));
        assert!(q.pop().is_some());
        let report = decode(&q.pop().unwrap());
        assert_eq!(report.payload, r#"{"dropped":1}"#);
        assert_eq!(q.pop(), None);
        assert_eq!(q.dropped(), 0);
    }

    proptest! {
        #[test]
        fn never_exceeds_capacity_and_loses_no_count(
            ops in prop::collection::vec((any::<bool>(), 0usize..40), 0..200),
            capacity in 0usize..200,
        ) {
            let mut q = OutQueue::new(capacity);
            let (mut pushed, mut refused, mut delivered, mut reported) = (0u64, 0u64, 0u64, 0u64);
            let take = |f: Vec<u8>, delivered: &mut u64, reported: &mut u64| {
                let fr = decode(&f);
                if fr.kind == kind::DROPPED {
                    let n: u64 = fr.payload.trim_start_matches("{\"dropped\":").trim_end_matches('}').parse().unwrap();
                    *reported += n;
                } else {
                    *delivered += 1;
                }
            };
            for (is_push, n) in ops {
                if is_push {
                    pushed += 1;
                    if !q.push(frame(n)) { refused += 1; }
                } else if let Some(f) = q.pop() {
                    take(f, &mut delivered, &mut reported);
                }
                prop_assert!(q.bytes() <= q.capacity());
            }
            while let Some(f) = q.pop() {
                take(f, &mut delivered, &mut reported);
            }
            prop_assert_eq!(delivered + refused, pushed);
            prop_assert_eq!(reported, refused);
        }
    }
}
