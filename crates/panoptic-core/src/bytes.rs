//! Little-endian numbers and LEB128 varints: the one writer and reader behind every binary form
//! (the wire snapshot, and the encodings of distributions, metrix's histograms, meters' and
//! rates' stats). The reader never panics and never trusts a length: a count is accepted only
//! if the bytes left could hold that many items.

/// Why bytes could not be decoded: the one error of every binary form of the crate (wire
/// snapshots and the encodings the statistics write of themselves).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DecodeError {
    /// Not base64 text of an acceptable size.
    Text,
    /// Does not start with the magic bytes.
    Magic,
    /// An encoding version this build does not read: of what (`"wire"`, `"histogram"`), the
    /// version found and the one expected.
    Version {
        of: &'static str,
        found: u8,
        expected: u8,
    },
    /// Ends early.
    Truncated,
    /// Bytes left after the last item.
    Trailing,
    /// A string is not UTF-8, or an index points outside the string table.
    String,
    /// A value the encoder could not have written (what: a negative or fractional count,
    /// min > max, ...).
    Invalid(&'static str),
}

impl std::fmt::Display for DecodeError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            DecodeError::Text => write!(f, "not base64 text of an acceptable size"),
            DecodeError::Magic => write!(f, "not a panoptic snapshot"),
            DecodeError::Version {
                of,
                found,
                expected,
            } => write!(f, "{of} version {found}, expected {expected}"),
            DecodeError::Truncated => write!(f, "truncated"),
            DecodeError::Trailing => write!(f, "trailing bytes"),
            DecodeError::String => write!(f, "bad string or string index"),
            DecodeError::Invalid(what) => write!(f, "invalid value: {what}"),
        }
    }
}

impl std::error::Error for DecodeError {}

/// Appends `v` as a LEB128 varint (1 to 10 bytes).
pub(crate) fn put_varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push(v as u8 | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

/// Appends `v` as 8 little-endian bytes.
pub(crate) fn put_f64(out: &mut Vec<u8>, v: f64) {
    out.extend_from_slice(&v.to_le_bytes());
}

/// Appends `v` as 4 little-endian bytes.
pub(crate) fn put_u32(out: &mut Vec<u8>, v: u32) {
    out.extend_from_slice(&v.to_le_bytes());
}

/// Reads from the front of a byte slice.
pub(crate) struct Reader<'a> {
    bytes: &'a [u8],
    start: usize,
}

impl<'a> Reader<'a> {
    pub(crate) fn new(bytes: &'a [u8]) -> Reader<'a> {
        Reader {
            bytes,
            start: bytes.len(),
        }
    }

    /// Bytes read so far.
    pub(crate) fn used(&self) -> usize {
        self.start - self.bytes.len()
    }

    /// The bytes not read yet.
    pub(crate) fn rest(&self) -> &'a [u8] {
        self.bytes
    }

    pub(crate) fn take(&mut self, n: usize) -> Result<&'a [u8], DecodeError> {
        if self.bytes.len() < n {
            return Err(DecodeError::Truncated);
        }
        let (head, rest) = self.bytes.split_at(n);
        self.bytes = rest;
        Ok(head)
    }

    pub(crate) fn u8(&mut self) -> Result<u8, DecodeError> {
        Ok(self.take(1)?[0])
    }

    pub(crate) fn u32(&mut self) -> Result<u32, DecodeError> {
        let mut b = [0u8; 4];
        b.copy_from_slice(self.take(4)?);
        Ok(u32::from_le_bytes(b))
    }

    pub(crate) fn u64(&mut self) -> Result<u64, DecodeError> {
        let mut b = [0u8; 8];
        b.copy_from_slice(self.take(8)?);
        Ok(u64::from_le_bytes(b))
    }

    pub(crate) fn f64(&mut self) -> Result<f64, DecodeError> {
        Ok(f64::from_bits(self.u64()?))
    }

    /// A LEB128 varint of at most 64 bits.
    pub(crate) fn varint(&mut self) -> Result<u64, DecodeError> {
        let mut v = 0u64;
        for shift in (0..64).step_by(7) {
            let byte = self.u8()?;
            let bits = u64::from(byte & 0x7f);
            if shift == 63 && bits > 1 {
                break; // more than 64 bits
            }
            v |= bits << shift;
            if byte & 0x80 == 0 {
                return Ok(v);
            }
        }
        Err(DecodeError::Invalid("varint"))
    }

    /// A varint count of items that each take at least `min_size` bytes.
    pub(crate) fn count(&mut self, min_size: usize) -> Result<usize, DecodeError> {
        let n = self.varint()?;
        self.fits(n, min_size)
    }

    /// A u32 count of items that each take at least `min_size` bytes.
    pub(crate) fn count_u32(&mut self, min_size: usize) -> Result<usize, DecodeError> {
        let n = self.u32()?;
        self.fits(u64::from(n), min_size)
    }

    fn fits(&self, n: u64, min_size: usize) -> Result<usize, DecodeError> {
        if n > (self.bytes.len() / min_size.max(1)) as u64 {
            return Err(DecodeError::Truncated);
        }
        Ok(n as usize)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn varints_round_trip(v in any::<u64>()) {
            let mut out = Vec::new();
            put_varint(&mut out, v);
            let mut r = Reader::new(&out);
            prop_assert_eq!(r.varint(), Ok(v));
            prop_assert_eq!(r.used(), out.len());
        }

        #[test]
        fn garbage_never_panics(bytes in prop::collection::vec(any::<u8>(), 0..40)) {
            let mut r = Reader::new(&bytes);
            let _ = (r.varint(), r.count(3), r.count_u32(1), r.f64(), r.u8());
        }
    }

    #[test]
    fn counts_never_exceed_what_the_bytes_hold() {
        let mut out = Vec::new();
        put_varint(&mut out, 5);
        out.extend_from_slice(&[0; 10]);
        assert_eq!(Reader::new(&out).count(2), Ok(5));
        assert_eq!(Reader::new(&out).count(3), Err(DecodeError::Truncated));
        let mut eleven = vec![0xff; 10];
        eleven.push(0);
        assert_eq!(
            Reader::new(&eleven).varint(),
            Err(DecodeError::Invalid("varint"))
        );
    }
}
