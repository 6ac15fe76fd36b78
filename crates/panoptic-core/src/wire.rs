//! The binary form of a [`Snapshot`] that a cluster worker sends to the master (as base64 text in
//! one IPC message per instance per interval).
//!
//! Layout (version 1, little-endian; `str` = u32 byte length + UTF-8 bytes):
//! ```text
//! "PNPT" | version u8 | k f64 | pid u32 | dropped f64 | errors f64
//! strings: count u32, then count x str           (every distinct method, path element, id, JSON)
//! entries: count u32, then per entry:
//!   method u32 | path length u32 | path u32 x length | id u32 | tag u8 | payload
//!   tag 0 counter: count f64, total f64
//!   tag 1 summary: count f64, total f64, min f64, max f64, mean f64, m2 f64
//!   tag 2 set:     at f64, json u32
//!   tag 3 custom:  json u32
//! ```
//! (u32 fields after the header are indexes into the string table.) Decoding never panics and
//! never trusts a length: every count is checked against the bytes left, every index against the
//! table, every number against what the kind allows, so a garbage, truncated, foreign-version or
//! hostile message is an [`DecodeError`], never a corrupted merge.

use std::collections::HashMap;
use std::sync::Arc;

use base64::Engine as _;

use crate::snapshot::{Entry, SeriesKey, Snapshot, Value};
use crate::summary::Summary;

const MAGIC: &[u8; 4] = b"PNPT";
/// The wire version this build writes and reads.
pub const VERSION: u8 = 1;
/// Largest encoded snapshot accepted, in base64 characters (about 48 MB of binary).
pub const MAX_TEXT: usize = 64 << 20;

/// Why a message could not be decoded.
#[derive(Debug, Clone, PartialEq)]
pub enum DecodeError {
    /// Not base64, or longer than [`MAX_TEXT`].
    Text,
    /// Does not start with the magic bytes.
    Magic,
    /// Another wire version.
    Version(u8),
    /// Ends early.
    Truncated,
    /// Bytes left after the last entry.
    Trailing,
    /// A string is not UTF-8, or an index points outside the string table.
    String,
    /// A number a kind cannot have (negative or fractional count, min > max, ...).
    Invalid(&'static str),
}

impl std::fmt::Display for DecodeError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            DecodeError::Text => write!(f, "not base64 text of an acceptable size"),
            DecodeError::Magic => write!(f, "not a panoptic snapshot"),
            DecodeError::Version(v) => write!(f, "wire version {v}, expected {VERSION}"),
            DecodeError::Truncated => write!(f, "truncated"),
            DecodeError::Trailing => write!(f, "trailing bytes"),
            DecodeError::String => write!(f, "bad string or string index"),
            DecodeError::Invalid(what) => write!(f, "invalid value: {what}"),
        }
    }
}

impl std::error::Error for DecodeError {}

struct Writer {
    out: Vec<u8>,
}

impl Writer {
    fn u8(&mut self, v: u8) {
        self.out.push(v);
    }
    fn u32(&mut self, v: u32) {
        self.out.extend_from_slice(&v.to_le_bytes());
    }
    fn f64(&mut self, v: f64) {
        self.out.extend_from_slice(&v.to_le_bytes());
    }
    fn len(&mut self, n: usize) {
        self.u32(u32::try_from(n).expect("a snapshot part longer than 4 GiB"));
    }
}

/// Distinct strings of one snapshot, borrowed from it, in first-use order.
#[derive(Default)]
struct StringTable<'a> {
    strings: Vec<&'a str>,
    index: HashMap<&'a str, u32>,
}

impl<'a> StringTable<'a> {
    fn intern(&mut self, s: &'a str) -> u32 {
        *self.index.entry(s).or_insert_with(|| {
            self.strings.push(s);
            (self.strings.len() - 1) as u32
        })
    }
}

/// Encodes a snapshot as base64 text.
pub fn encode(snapshot: &Snapshot) -> String {
    // The entries are written first (interning their strings), the table goes before them.
    let mut table = StringTable::default();
    let mut body = Writer { out: Vec::new() };
    body.len(snapshot.entries.len());
    for Entry { key, value } in &snapshot.entries {
        body.u32(table.intern(&key.method));
        body.len(key.path.len());
        for p in &key.path {
            body.u32(table.intern(p));
        }
        body.u32(table.intern(&key.id));
        match value {
            Value::Counter { count, total } => {
                body.u8(0);
                body.f64(*count);
                body.f64(*total);
            }
            Value::Summary(s) => {
                body.u8(1);
                for v in [s.count, s.total, s.min, s.max, s.mean, s.m2] {
                    body.f64(v);
                }
            }
            Value::Set { json, at } => {
                body.u8(2);
                body.f64(*at);
                body.u32(table.intern(json));
            }
            Value::Custom { json } => {
                body.u8(3);
                body.u32(table.intern(json));
            }
        }
    }
    let mut w = Writer { out: Vec::new() };
    w.out.extend_from_slice(MAGIC);
    w.u8(VERSION);
    w.f64(snapshot.k);
    w.u32(snapshot.pid);
    w.f64(snapshot.dropped);
    w.f64(snapshot.errors);
    w.len(table.strings.len());
    for s in &table.strings {
        w.len(s.len());
        w.out.extend_from_slice(s.as_bytes());
    }
    w.out.extend_from_slice(&body.out);
    base64::engine::general_purpose::STANDARD.encode(&w.out)
}

struct Reader<'a> {
    bytes: &'a [u8],
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], DecodeError> {
        if self.bytes.len() < n {
            return Err(DecodeError::Truncated);
        }
        let (head, rest) = self.bytes.split_at(n);
        self.bytes = rest;
        Ok(head)
    }
    fn u8(&mut self) -> Result<u8, DecodeError> {
        Ok(self.take(1)?[0])
    }
    fn u32(&mut self) -> Result<u32, DecodeError> {
        Ok(u32::from_le_bytes(self.take(4)?.try_into().unwrap()))
    }
    fn f64(&mut self) -> Result<f64, DecodeError> {
        Ok(f64::from_le_bytes(self.take(8)?.try_into().unwrap()))
    }
    /// A count of items that each take at least `min_size` bytes: never more than could fit.
    fn count(&mut self, min_size: usize) -> Result<usize, DecodeError> {
        let n = self.u32()? as usize;
        if n.saturating_mul(min_size) > self.bytes.len() {
            return Err(DecodeError::Truncated);
        }
        Ok(n)
    }
}

fn count_ok(v: f64) -> bool {
    v.is_finite() && v >= 0.0 && v.fract() == 0.0
}

fn check(ok: bool, what: &'static str) -> Result<(), DecodeError> {
    if ok {
        Ok(())
    } else {
        Err(DecodeError::Invalid(what))
    }
}

fn check_json(text: &str) -> Result<(), DecodeError> {
    if text.is_empty() || serde_json::from_str::<serde::de::IgnoredAny>(text).is_ok() {
        Ok(())
    } else {
        Err(DecodeError::Invalid("JSON text"))
    }
}

/// Decodes base64 text made by [`encode`].
pub fn decode(text: &str) -> Result<Snapshot, DecodeError> {
    if text.len() > MAX_TEXT {
        return Err(DecodeError::Text);
    }
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(text)
        .map_err(|_| DecodeError::Text)?;
    let mut r = Reader { bytes: &bytes };
    if r.take(4).map_err(|_| DecodeError::Magic)? != MAGIC {
        return Err(DecodeError::Magic);
    }
    let version = r.u8()?;
    if version != VERSION {
        return Err(DecodeError::Version(version));
    }
    let k = r.f64()?;
    let pid = r.u32()?;
    let dropped = r.f64()?;
    let errors = r.f64()?;
    check(k.is_finite() && k.fract() == 0.0, "interval number")?;
    check(count_ok(dropped) && count_ok(errors), "dropped or errors")?;

    let n = r.count(4)?;
    let mut strings = Vec::with_capacity(n);
    for _ in 0..n {
        let len = r.u32()? as usize;
        let raw = r.take(len)?;
        strings.push(std::str::from_utf8(raw).map_err(|_| DecodeError::String)?);
    }
    let string = |i: u32| -> Result<&str, DecodeError> {
        strings.get(i as usize).copied().ok_or(DecodeError::String)
    };

    // Smallest entry: method, path length, id, tag, custom json index.
    let n = r.count(17)?;
    let mut entries = Vec::with_capacity(n);
    let mut keys: HashMap<SeriesKey, Arc<SeriesKey>> = HashMap::new();
    for _ in 0..n {
        let method = string(r.u32()?)?;
        let path_len = r.count(4)?;
        let mut path = Vec::with_capacity(path_len);
        for _ in 0..path_len {
            path.push(string(r.u32()?)?.to_string());
        }
        let key = SeriesKey {
            method: method.to_string(),
            path,
            id: string(r.u32()?)?.to_string(),
        };
        check(!key.method.is_empty(), "empty method")?;
        if keys.contains_key(&key) {
            return Err(DecodeError::Invalid("a series twice"));
        }
        let key = keys
            .entry(key.clone())
            .or_insert_with(|| Arc::new(key))
            .clone();
        let value = match r.u8()? {
            0 => {
                let (count, total) = (r.f64()?, r.f64()?);
                check(count_ok(count) && total.is_finite(), "counter")?;
                Value::Counter { count, total }
            }
            1 => {
                let s = Summary {
                    count: r.f64()?,
                    total: r.f64()?,
                    min: r.f64()?,
                    max: r.f64()?,
                    mean: r.f64()?,
                    m2: r.f64()?,
                };
                check(count_ok(s.count), "summary count")?;
                if s.count > 0.0 {
                    check(
                        [s.total, s.min, s.max, s.mean, s.m2]
                            .iter()
                            .all(|v| v.is_finite())
                            && s.min <= s.max
                            && s.m2 >= 0.0,
                        "summary",
                    )?;
                }
                Value::Summary(if s.count > 0.0 { s } else { Summary::default() })
            }
            2 => {
                let at = r.f64()?;
                let json = string(r.u32()?)?;
                check(at.is_finite(), "set time")?;
                check_json(json)?;
                Value::Set {
                    json: json.to_string(),
                    at,
                }
            }
            3 => {
                let json = string(r.u32()?)?;
                check_json(json)?;
                Value::Custom {
                    json: json.to_string(),
                }
            }
            _ => return Err(DecodeError::Invalid("kind tag")),
        };
        entries.push(Entry { key, value });
    }
    if !r.bytes.is_empty() {
        return Err(DecodeError::Trailing);
    }
    Ok(Snapshot {
        k,
        pid,
        dropped,
        errors,
        entries,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn sample() -> Snapshot {
        let key = |m: &str, p: &[&str], id: &str| {
            Arc::new(SeriesKey {
                method: m.into(),
                path: p.iter().map(|s| s.to_string()).collect(),
                id: id.into(),
            })
        };
        let mut s = Summary::default();
        for x in [1.5, 2.5, 10.0] {
            s.push(x);
        }
        Snapshot {
            k: 123456.0,
            pid: 4242,
            dropped: 3.0,
            errors: 1.0,
            entries: vec![
                Entry {
                    key: key("inc", &["http", "é"], "requests"),
                    value: Value::Counter {
                        count: 4.0,
                        total: 9.5,
                    },
                },
                Entry {
                    key: key("timedSample", &["http"], "latency"),
                    value: Value::Summary(s),
                },
                Entry {
                    key: key("sample", &[], "empty"),
                    value: Value::Summary(Summary::default()),
                },
                Entry {
                    key: key("set", &["http"], "version"),
                    value: Value::Set {
                        json: "{\"a\":[1,\"x\"]}".into(),
                        at: 1.7e12,
                    },
                },
                Entry {
                    key: key("set", &[], "undef"),
                    value: Value::Set {
                        json: String::new(),
                        at: 1.0,
                    },
                },
                Entry {
                    key: key("max", &["http"], "requests"),
                    value: Value::Custom {
                        json: "{\"type\":\"max\"}".into(),
                    },
                },
            ],
        }
    }

    #[test]
    fn round_trip() {
        let s = sample();
        assert_eq!(decode(&encode(&s)).unwrap(), s);
    }

    #[test]
    fn rejects_what_it_did_not_write() {
        let good = base64::engine::general_purpose::STANDARD
            .decode(encode(&sample()))
            .unwrap();
        let b64 = |b: &[u8]| base64::engine::general_purpose::STANDARD.encode(b);
        assert_eq!(decode("not base64!"), Err(DecodeError::Text));
        assert_eq!(decode(""), Err(DecodeError::Magic));
        assert_eq!(decode(&b64(b"XXXX\x01")), Err(DecodeError::Magic));
        let mut v2 = good.clone();
        v2[4] = 2;
        assert_eq!(decode(&b64(&v2)), Err(DecodeError::Version(2)));
        for cut in [5, 20, 40, good.len() / 2, good.len() - 1] {
            assert!(decode(&b64(&good[..cut])).is_err(), "cut at {cut}");
        }
        let mut trailing = good.clone();
        trailing.push(0);
        assert_eq!(decode(&b64(&trailing)), Err(DecodeError::Trailing));
        // A huge count with few bytes behind it is refused before any allocation.
        let mut huge = good[..33].to_vec();
        huge.extend_from_slice(&u32::MAX.to_le_bytes());
        assert_eq!(decode(&b64(&huge)), Err(DecodeError::Truncated));
        // A negative count.
        let mut neg = sample();
        neg.entries[0].value = Value::Counter {
            count: -1.0,
            total: 1.0,
        };
        assert_eq!(decode(&encode(&neg)), Err(DecodeError::Invalid("counter")));
        let mut nan = sample();
        nan.entries[0].value = Value::Counter {
            count: 1.0,
            total: f64::NAN,
        };
        assert!(decode(&encode(&nan)).is_err());
        let mut twice = sample();
        twice.entries.push(twice.entries[0].clone());
        assert_eq!(
            decode(&encode(&twice)),
            Err(DecodeError::Invalid("a series twice"))
        );
        let mut bad_json = sample();
        bad_json.entries[3].value = Value::Set {
            json: "{nope".into(),
            at: 1.0,
        };
        assert_eq!(
            decode(&encode(&bad_json)),
            Err(DecodeError::Invalid("JSON text"))
        );
    }

    proptest! {
        #[test]
        fn garbage_never_panics(bytes in prop::collection::vec(any::<u8>(), 0..300)) {
            let _ = decode(&base64::engine::general_purpose::STANDARD.encode(&bytes));
        }

        #[test]
        fn flipped_bytes_never_panic(pos in 0usize..400, byte in any::<u8>()) {
            let mut good = base64::engine::general_purpose::STANDARD.decode(encode(&sample())).unwrap();
            let i = pos % good.len();
            good[i] = byte;
            let _ = decode(&base64::engine::general_purpose::STANDARD.encode(&good));
        }
    }
}
