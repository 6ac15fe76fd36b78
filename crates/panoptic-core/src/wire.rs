//! The binary form of a [`Snapshot`] that a cluster worker sends to the master (as base64 text in
//! one IPC message per instance per interval).
//!
//! The master keeps a dictionary per source (worker, or worker thread): a series' key is sent once,
//! as a definition, and after that only its index. So a steady snapshot costs the master no
//! allocation and no hashing of keys ([`crate::gather`] resolves indexes).
//!
//! Layout (version 7, little-endian; `str` = u32 byte length + UTF-8 bytes; `varint` = LEB128
//! of a u64, at most 10 bytes):
//! ```text
//! "PNPT" | version u8 | k f64 | pid u32 | counts: dropped f64 | invalid f64 | overflowed f64 |
//! errors f64 | footprint: series f64 | bytes f64 | epoch u64 | serial u32
//! profile: interval f64 | start f64 | scale factor f64 | persist u8 | histogram options
//!          (reservoir u8 | significant figures u8 | lowest f64 | highest f64)
//! strings: count u32, then count x str     (the definitions' strings and the JSON values)
//! forgotten: count u32, then count x index u32   (series the sender expired)
//! definitions: count u32, then per definition:
//!   index u32 | method u32 | path length u32 | path u32 x length | id u32 | untouched u8
//! entries: count u32, then per entry:
//!   index step varint | tag u8 | payload
//!   tag 0 counter: count f64, total f64
//!   tag 4 counter of whole numbers (both in 0..=2^53): count varint, total varint
//!   tag 1 summary: count f64, total f64, min f64, max f64, mean f64, m2 f64
//!   tag 2 set:     at f64, json u32
//!   tag 3 custom:  json u32
//!   tag 5 gauge:   value f64 (finite)
//!   tag 6 gauge without a number
//!   tag 7 histogram: a distribution ([`crate::stats::histogram::Distribution::encode`])
//!   tag 8 rate:    rate f64, increase f64
//!   tag 9 rate without a value
//!   tag 10 meter:  count f64, mean rate f64, m1 f64, m5 f64, m15 f64
//! ```
//! An entry's index is the previous entry's index + 1 (0 for the first) plus its step, a zigzag
//! signed number: a sender's entries mostly come in index order, so a step is one byte, and a
//! counter of `inc()` calls is about four bytes in all.
//! (`method`, `path`, `id` and `json` are indexes into the string table.) `epoch` names the
//! sender's dictionary and `serial` counts the messages sent in it: `serial` 0 starts it afresh,
//! any other is only valid right after the message before it (the master checks: a message
//! lost in between makes the sender resync, one sent twice is refused). A message first forgets the indexes of the series
//! its sender expired (their keys go), then defines keys at indexes: the next free index past the
//! dictionary's end, or one forgotten before (an expired series' index taken by a new series).
//! The profile
//! ([`crate::snapshot::Profile`]) travels in every message (43 bytes): the master checks each
//! snapshot's grid and options, whatever state its dictionaries are in.
//!
//! With `persist`, a sender reports every series each interval, untouched ones in their empty
//! state (a counter 0, a summary or a distribution without values, a rate without one). Those
//! cost nothing on the wire: a delta leaves them out, and the master puts the empty state back
//! for every series of the sender's dictionary the message lacks, as each definition's
//! `untouched` byte says ([`Untouched`]: 0 always sent, 1 counter, 2 summary, 3 distribution, 4
//! rate). Stateless on purpose: a lost message changes nothing for the next one. A `set`, a
//! gauge, a registered logger's leaf and a meter are always sent (their values are the sender's
//! to give each interval).
//!
//! Decoding never panics and never trusts a length: every count is checked against the bytes
//! left, every index against the table, every number against what the kind allows, so a garbage,
//! truncated, foreign-version or hostile message is a [`DecodeError`], never a corrupted merge.

use base64::Engine as _;

use crate::bytes::{put_f64, put_u32, put_varint, DecodeError, Reader};

use std::collections::HashMap;

use crate::snapshot::{Counts, Entry, Footprint, Profile, SeriesKey, Snapshot, Value};
use crate::stats::histogram::{Distribution, HistogramOptions};
use crate::stats::meter::MeterStats;
use crate::stats::rate::RateStats;
use crate::stats::summary::Summary;

const MAGIC: &[u8; 4] = b"PNPT";
/// The wire version this build writes and reads (7: the definitions' `untouched` byte, and
/// persisted empty states left out).
pub const VERSION: u8 = 7;
/// Largest whole number sent as a varint counter (larger ones are exact only as f64).
const MAX_WHOLE: f64 = 9_007_199_254_740_992.0; // 2^53
/// Largest encoded snapshot accepted, in base64 characters (about 48 MB of binary).
pub const MAX_TEXT: usize = 64 << 20;
/// Largest encoded snapshot accepted in binary (what [`MAX_TEXT`] holds).
pub const MAX_BYTES: usize = MAX_TEXT / 4 * 3;

struct Writer {
    out: Vec<u8>,
}

impl Writer {
    fn u8(&mut self, v: u8) {
        self.out.push(v);
    }
    fn u32(&mut self, v: u32) {
        put_u32(&mut self.out, v);
    }
    fn f64(&mut self, v: f64) {
        put_f64(&mut self.out, v);
    }
    fn len(&mut self, n: usize) {
        self.u32(u32::try_from(n).expect("a snapshot part longer than 4 GiB"));
    }
    fn varint(&mut self, v: u64) {
        put_varint(&mut self.out, v);
    }
}

fn whole(v: f64) -> bool {
    (0.0..=MAX_WHOLE).contains(&v) && v.fract() == 0.0
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

/// Which definitions a message carries: its sender's dictionary state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Dictionary {
    /// Names the sender's dictionary; a new epoch (with `serial` 0) replaces the old one.
    pub epoch: u64,
    /// How many messages the sender sent in this dictionary before this one (0: a fresh one).
    pub serial: u32,
}

/// What the master puts in the place of a series that a sender with `persist` left out of a
/// message (see the module documentation): the empty state of its kind, or nothing for a kind
/// that is always sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Untouched {
    /// Always sent (a set, gauge, registered logger or meter).
    #[default]
    Sent,
    Counter,
    Summary,
    /// A distribution of the profile's histogram options.
    Histogram,
    Rate,
}

impl Untouched {
    fn byte(self) -> u8 {
        match self {
            Untouched::Sent => 0,
            Untouched::Counter => 1,
            Untouched::Summary => 2,
            Untouched::Histogram => 3,
            Untouched::Rate => 4,
        }
    }

    fn from_byte(byte: u8) -> Result<Untouched, DecodeError> {
        Ok(match byte {
            0 => Untouched::Sent,
            1 => Untouched::Counter,
            2 => Untouched::Summary,
            3 => Untouched::Histogram,
            4 => Untouched::Rate,
            _ => return Err(DecodeError::Invalid("untouched")),
        })
    }

    /// Whether a sender with `persist` leaves `value` out of a delta: it is an empty state the
    /// master puts back exactly as decoding it would give ([`Untouched::value`]). The sender's
    /// definition of its series says which: a series' values are all of its kind.
    pub fn left_out(value: &Value) -> bool {
        match value {
            Value::Counter { count, total } => *count == 0.0 && *total == 0.0,
            // Decoding makes any summary of no values the default one.
            Value::Summary(s) => s.count == 0.0,
            Value::Histogram(d) => **d == Distribution::new(d.options(), 0),
            Value::Rate(None) => true,
            _ => false,
        }
    }

    /// The value the master puts in a series' place (None: [`Untouched::Sent`]).
    pub fn value(self, histogram: &HistogramOptions) -> Option<Value> {
        Some(match self {
            Untouched::Sent => return None,
            Untouched::Counter => Value::Counter {
                count: 0.0,
                total: 0.0,
            },
            Untouched::Summary => Value::Summary(Summary::default()),
            Untouched::Histogram => Value::Histogram(Box::new(Distribution::new(histogram, 0))),
            Untouched::Rate => Value::Rate(None),
        })
    }
}

/// How a message names its series.
#[derive(Debug, Clone, Copy)]
pub enum Keys<'a> {
    /// Self-contained: every entry's key is defined, in a fresh dictionary (serial 0).
    All { epoch: u64 },
    /// `indexes[i]` is entry i's index in the sender's dictionary; `forgotten` are indexes whose
    /// series expired, `definitions` the keys the master does not have yet, by index, and what
    /// stands for each when it is left out (with `persist`: [`Untouched`]).
    Delta {
        indexes: &'a [u32],
        definitions: &'a [(u32, &'a SeriesKey, Untouched)],
        forgotten: &'a [u32],
        dictionary: Dictionary,
    },
}

/// Encodes a snapshot as base64 text (for Node's IPC).
pub fn encode(snapshot: &Snapshot, keys: Keys<'_>) -> String {
    base64::engine::general_purpose::STANDARD.encode(encode_bytes(snapshot, keys))
}

/// Encodes a snapshot (for the native transport: [`crate::transport`]).
pub fn encode_bytes(snapshot: &Snapshot, keys: Keys<'_>) -> Vec<u8> {
    let all: Vec<(u32, &SeriesKey, Untouched)>;
    let (indexes, definitions, forgotten, dictionary) = match keys {
        Keys::All { epoch } => {
            // Self-contained: every entry is sent (nothing is left out).
            all = (snapshot.entries.iter().enumerate())
                .map(|(i, e)| (i as u32, &*e.key, Untouched::Sent))
                .collect();
            (None, &all[..], &[][..], Dictionary { epoch, serial: 0 })
        }
        Keys::Delta {
            indexes,
            definitions,
            forgotten,
            dictionary,
        } => (Some(indexes), definitions, forgotten, dictionary),
    };
    let mut table = StringTable::default();
    // Definitions and entries first (they intern their strings), the table goes before them.
    let mut body = Writer { out: Vec::new() };
    body.len(forgotten.len());
    for &index in forgotten {
        body.u32(index);
    }
    body.len(definitions.len());
    for &(index, key, untouched) in definitions {
        body.u32(index);
        body.u32(table.intern(&key.method));
        body.len(key.path.len());
        for p in key.path.iter() {
            body.u32(table.intern(p));
        }
        body.u32(table.intern(&key.id));
        body.u8(untouched.byte());
    }
    // A delta of a persisting sender leaves its untouched series out (the master puts them back).
    let left_out =
        |value: &Value| indexes.is_some() && snapshot.profile.persist && Untouched::left_out(value);
    let sent = snapshot.entries.iter().filter(|e| !left_out(&e.value));
    body.len(sent.count());
    let mut expected = 0i64;
    for (i, Entry { value, .. }) in snapshot.entries.iter().enumerate() {
        if left_out(value) {
            continue;
        }
        let index = indexes.map_or(i as u32, |x| x[i]);
        let step = index as i64 - expected;
        body.varint(((step << 1) ^ (step >> 63)) as u64);
        expected = index as i64 + 1;
        match value {
            Value::Counter { count, total } if whole(*count) && whole(*total) => {
                body.u8(4);
                body.varint(*count as u64);
                body.varint(*total as u64);
            }
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
            Value::Gauge(Some(v)) => {
                body.u8(5);
                body.f64(*v);
            }
            Value::Gauge(None) => body.u8(6),
            Value::Histogram(d) => {
                body.u8(7);
                d.encode(&mut body.out);
            }
            Value::Rate(Some(stats)) => {
                body.u8(8);
                stats.encode(&mut body.out);
            }
            Value::Rate(None) => body.u8(9),
            Value::Meter(stats) => {
                body.u8(10);
                stats.encode(&mut body.out);
            }
        }
    }
    let mut w = Writer { out: Vec::new() };
    w.out.extend_from_slice(MAGIC);
    w.u8(VERSION);
    w.f64(snapshot.k);
    w.u32(snapshot.pid);
    for v in snapshot.counts.fields() {
        w.f64(v);
    }
    w.f64(snapshot.footprint.series);
    w.f64(snapshot.footprint.bytes);
    w.out.extend_from_slice(&dictionary.epoch.to_le_bytes());
    w.u32(dictionary.serial);
    let p = &snapshot.profile;
    for v in [p.interval, p.start, p.scale_factor] {
        w.f64(v);
    }
    w.u8(p.persist as u8);
    p.histogram.encode(&mut w.out);
    w.len(table.strings.len());
    for s in &table.strings {
        w.len(s.len());
        w.out.extend_from_slice(s.as_bytes());
    }
    w.out.extend_from_slice(&body.out);
    w.out
}

/// A whole number sent as a varint (an exact f64).
fn read_whole(r: &mut Reader<'_>) -> Result<f64, DecodeError> {
    let v = r.varint()? as f64;
    check(v <= MAX_WHOLE, "whole number")?;
    Ok(v)
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

/// A decoded message: its header, the definitions it carries and its entries by index, to be
/// resolved against the sender's dictionary ([`crate::gather`]).
#[derive(Debug, Clone, PartialEq)]
pub struct Message {
    /// The interval number.
    pub k: f64,
    /// The sender's pid.
    pub pid: u32,
    /// What the sender counted in the interval.
    pub counts: Counts,
    /// What the sender's engine held.
    pub footprint: Footprint,
    /// The sender's dictionary state.
    pub dictionary: Dictionary,
    /// The sender's grid and options.
    pub profile: Profile,
    /// Dictionary indexes whose series the sender expired (to forget before the definitions).
    pub forgotten: Vec<u32>,
    /// Keys by dictionary index, and what stands for each when a message leaves it out.
    pub definitions: Vec<(u32, SeriesKey, Untouched)>,
    /// Each entry's dictionary index (an index twice is refused when merging:
    /// [`crate::snapshot::Merged::add`]).
    pub indexes: Vec<u32>,
    /// Each entry's value.
    pub values: Vec<Value>,
}

/// Decodes base64 text made by [`encode`].
pub fn decode(text: &str) -> Result<Message, DecodeError> {
    decode_bytes(&unbase64(text)?)
}

/// The bytes of base64 text made by [`encode`] (to decode with [`decode_bytes`]).
pub fn unbase64(text: &str) -> Result<Vec<u8>, DecodeError> {
    if text.len() > MAX_TEXT {
        return Err(DecodeError::Text);
    }
    base64::engine::general_purpose::STANDARD
        .decode(text)
        .map_err(|_| DecodeError::Text)
}

/// Decodes bytes made by [`encode_bytes`].
pub fn decode_bytes(bytes: &[u8]) -> Result<Message, DecodeError> {
    decode_bytes_into(bytes, Vec::new())
}

/// [`decode_bytes`], the values into `values` (emptied first): a buffer the caller reuses from
/// one message to the next (the master's intake: fresh memory each interval costs page faults).
pub fn decode_bytes_into(bytes: &[u8], mut values: Vec<Value>) -> Result<Message, DecodeError> {
    values.clear();
    let mut r = Reader::new(bytes);
    if r.take(4).map_err(|_| DecodeError::Magic)? != MAGIC {
        return Err(DecodeError::Magic);
    }
    let version = r.u8()?;
    if version != VERSION {
        return Err(DecodeError::Version {
            of: "wire",
            found: version,
            expected: VERSION,
        });
    }
    let k = r.f64()?;
    let pid = r.u32()?;
    let counts = Counts {
        dropped: r.f64()?,
        invalid: r.f64()?,
        overflowed: r.f64()?,
        errors: r.f64()?,
    };
    let footprint = Footprint {
        series: r.f64()?,
        bytes: r.f64()?,
    };
    let epoch = r.u64()?;
    let serial = r.u32()?;
    let profile = Profile {
        interval: r.f64()?,
        start: r.f64()?,
        scale_factor: r.f64()?,
        persist: match r.u8()? {
            0 => false,
            1 => true,
            _ => return Err(DecodeError::Invalid("persist")),
        },
        histogram: HistogramOptions::decode(&mut r)?,
    };
    check(k.is_finite() && k.fract() == 0.0, "interval number")?;
    let positive = |v: f64| v.is_finite() && v > 0.0;
    check(
        positive(profile.interval) && profile.start.is_finite() && positive(profile.scale_factor),
        "profile",
    )?;
    check(counts.fields().into_iter().all(count_ok), "counts")?;
    check(
        count_ok(footprint.series) && count_ok(footprint.bytes),
        "footprint",
    )?;

    let n = r.count_u32(4)?;
    let mut strings = Vec::with_capacity(n);
    for _ in 0..n {
        let len = r.u32()? as usize;
        let raw = r.take(len)?;
        strings.push(std::str::from_utf8(raw).map_err(|_| DecodeError::String)?);
    }
    let string = |i: u32| -> Result<&str, DecodeError> {
        strings.get(i as usize).copied().ok_or(DecodeError::String)
    };

    // Indexes are checked against the dictionary when it applies them (crate::gather).
    let n = r.count_u32(4)?;
    let mut forgotten = Vec::with_capacity(n);
    for _ in 0..n {
        forgotten.push(r.u32()?);
    }
    // Smallest definition: index, method, path length, id, untouched.
    let n = r.count_u32(17)?;
    let mut definitions = Vec::with_capacity(n);
    for _ in 0..n {
        let index = r.u32()?;
        let method = string(r.u32()?)?;
        check(!method.is_empty(), "empty method")?;
        let path_len = r.count_u32(4)?;
        let mut path = Vec::with_capacity(path_len);
        for _ in 0..path_len {
            path.push(string(r.u32()?)?.to_string());
        }
        let key = SeriesKey {
            method: method.into(),
            path: path.into(),
            id: string(r.u32()?)?.into(),
        };
        definitions.push((index, key, Untouched::from_byte(r.u8()?)?));
    }

    // Smallest entry: index step, tag (a gauge without a number).
    let n = r.count_u32(2)?;
    let mut indexes = Vec::with_capacity(n);
    values.reserve(n);
    let mut expected = 0i64;
    for _ in 0..n {
        let step = r.varint()?;
        let index = expected + ((step >> 1) as i64 ^ -((step & 1) as i64));
        let index = u32::try_from(index).map_err(|_| DecodeError::Invalid("index"))?;
        expected = index as i64 + 1;
        let value = match r.u8()? {
            4 => Value::Counter {
                count: read_whole(&mut r)?,
                total: read_whole(&mut r)?,
            },
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
            5 => {
                let v = r.f64()?;
                check(v.is_finite(), "gauge")?;
                Value::Gauge(Some(v))
            }
            6 => Value::Gauge(None),
            7 => {
                let (d, used) = Distribution::decode(r.rest())?;
                r.take(used)?;
                Value::Histogram(Box::new(d))
            }
            8 => {
                let (stats, used) = RateStats::decode(r.rest())?;
                r.take(used)?;
                Value::Rate(Some(stats))
            }
            9 => Value::Rate(None),
            10 => {
                let (stats, used) = MeterStats::decode(r.rest())?;
                r.take(used)?;
                Value::Meter(stats)
            }
            _ => return Err(DecodeError::Invalid("kind tag")),
        };
        indexes.push(index);
        values.push(value);
    }
    if !r.rest().is_empty() {
        return Err(DecodeError::Trailing);
    }
    Ok(Message {
        k,
        pid,
        counts,
        footprint,
        dictionary: Dictionary { epoch, serial },
        profile,
        forgotten,
        definitions,
        indexes,
        values,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::sync::Arc;

    fn sample() -> Snapshot {
        let mut s = Summary::default();
        for x in [1.5, 2.5, 10.0] {
            s.push(x);
        }
        let entries = vec![
            (
                SeriesKey::new("inc", &["http", "é"], "requests"),
                Value::Counter {
                    count: 4.0,
                    total: 9.5,
                },
            ),
            (
                SeriesKey::new("timedSample", &["http"], "latency"),
                Value::Summary(s),
            ),
            (
                SeriesKey::new("sample", &[], "empty"),
                Value::Summary(Summary::default()),
            ),
            (
                SeriesKey::new("set", &["http"], "version"),
                Value::Set {
                    json: "{\"a\":[1,\"x\"]}".into(),
                    at: 1.7e12,
                },
            ),
            (
                SeriesKey::new("set", &[], "undef"),
                Value::Set {
                    json: String::new(),
                    at: 1.0,
                },
            ),
            (
                SeriesKey::new("max", &["http"], "requests"),
                Value::Custom {
                    json: "{\"type\":\"max\"}".into(),
                },
            ),
            (
                SeriesKey::new("gauge", &[], "heap"),
                Value::Gauge(Some(-2.5e9)),
            ),
            (
                SeriesKey::new("rate", &[], "bytes"),
                Value::Rate(Some(RateStats {
                    rate: 2.5,
                    increase: 10.0,
                })),
            ),
            (SeriesKey::new("rate", &[], "none"), Value::Rate(None)),
            (
                SeriesKey::new("meter", &[], "requests"),
                Value::Meter(MeterStats {
                    count: 9.0,
                    mean_rate: 0.5,
                    m1: 0.25,
                    m5: 0.125,
                    m15: 0.0625,
                }),
            ),
            (SeriesKey::new("histogram", &["http"], "latency"), {
                let mut d = Distribution::new(&Default::default(), 1);
                [0.5, 12.0, 7.25].iter().for_each(|&v| d.record(v, 0.0));
                Value::Histogram(Box::new(d))
            }),
            (SeriesKey::new("gauge", &[], "broken"), Value::Gauge(None)),
        ];
        Snapshot {
            k: 123456.0,
            profile: Profile {
                interval: 250.0,
                start: 1_765_000_000_125.0,
                scale_factor: 1000.0,
                persist: true,
                histogram: HistogramOptions::new(
                    2,
                    0.01,
                    1e6,
                    crate::stats::histogram::Reservoir::Uniform,
                )
                .unwrap(),
            },
            pid: 4242,
            counts: Counts {
                dropped: 3.0,
                invalid: 2.0,
                overflowed: 5.0,
                errors: 1.0,
            },
            footprint: Footprint {
                series: 12.0,
                bytes: 34_567.0,
            },
            entries: entries
                .into_iter()
                .map(|(k, value)| Entry {
                    key: Arc::new(k),
                    value,
                })
                .collect(),
        }
    }

    const FRESH: Dictionary = Dictionary {
        epoch: 7,
        serial: 0,
    };

    fn self_contained(s: &Snapshot) -> String {
        encode(s, Keys::All { epoch: 7 })
    }

    fn delta(
        s: &Snapshot,
        indexes: &[u32],
        definitions: &[(u32, &SeriesKey)],
        forgotten: &[u32],
        serial: u32,
    ) -> String {
        let dictionary = Dictionary { epoch: 7, serial };
        let definitions: Vec<_> = (definitions.iter())
            .map(|&(i, k)| (i, k, Untouched::Sent))
            .collect();
        encode(
            s,
            Keys::Delta {
                indexes,
                definitions: &definitions,
                forgotten,
                dictionary,
            },
        )
    }

    #[test]
    fn self_contained_round_trip() {
        let s = sample();
        let m = decode(&self_contained(&s)).unwrap();
        assert_eq!((m.k, m.pid, m.counts), (s.k, s.pid, s.counts));
        assert_eq!(m.footprint, s.footprint);
        assert_eq!(m.dictionary, FRESH);
        let keys: Vec<(u32, &SeriesKey)> = (s.entries.iter().enumerate())
            .map(|(i, e)| (i as u32, &*e.key))
            .collect();
        let decoded: Vec<(u32, &SeriesKey)> =
            (m.definitions.iter()).map(|(i, k, _)| (*i, k)).collect();
        assert_eq!(decoded, keys);
        assert!(m.forgotten.is_empty());
        assert_eq!(m.indexes, (0..s.entries.len() as u32).collect::<Vec<_>>());
        let values: Vec<&Value> = s.entries.iter().map(|e| &e.value).collect();
        assert_eq!(m.values.iter().collect::<Vec<_>>(), values);
    }

    #[test]
    fn a_delta_carries_only_new_definitions_and_indexes() {
        let s = sample();
        let new_key = SeriesKey::new("inc", &["x"], "y");
        let indexes = [9, 3, 4, 5, 6, 7, 8, 2, 10, 11, 12, 13];
        let text = delta(&s, &indexes, &[(1, &new_key)], &[1, 14], 9);
        let m = decode(&text).unwrap();
        assert_eq!(
            m.dictionary,
            Dictionary {
                epoch: 7,
                serial: 9
            }
        );
        assert_eq!(m.forgotten, [1, 14]);
        assert_eq!(m.definitions, vec![(1, new_key, Untouched::Sent)]);
        // A persisting sender's untouched series (the summary and the rate without values) are
        // left out.
        let sent: Vec<u32> = (indexes.iter().zip(&s.entries))
            .filter(|(_, e)| !Untouched::left_out(&e.value))
            .map(|(&i, _)| i)
            .collect();
        assert_eq!(sent.len(), indexes.len() - 2);
        assert_eq!(m.indexes, sent);
        // Keys are not repeated: the steady message is much smaller than a self-contained one.
        assert!(text.len() < self_contained(&s).len());
    }

    #[test]
    fn rejects_what_it_did_not_write() {
        let good = base64::engine::general_purpose::STANDARD
            .decode(self_contained(&sample()))
            .unwrap();
        let b64 = |b: &[u8]| base64::engine::general_purpose::STANDARD.encode(b);
        assert_eq!(decode("not base64!"), Err(DecodeError::Text));
        assert_eq!(decode(""), Err(DecodeError::Magic));
        assert_eq!(decode(&b64(b"XXXX\x01")), Err(DecodeError::Magic));
        let mut v1_bytes = good.clone();
        v1_bytes[4] = 1;
        let v1 = DecodeError::Version {
            of: "wire",
            found: 1,
            expected: VERSION,
        };
        assert_eq!(decode(&b64(&v1_bytes)), Err(v1));
        for cut in [5, 20, 40, good.len() / 2, good.len() - 1] {
            assert!(decode(&b64(&good[..cut])).is_err(), "cut at {cut}");
        }
        let mut trailing = good.clone();
        trailing.push(0);
        assert_eq!(decode(&b64(&trailing)), Err(DecodeError::Trailing));
        // A huge count with few bytes behind it is refused before any allocation.
        let mut huge = good[..45].to_vec();
        huge.extend_from_slice(&u32::MAX.to_le_bytes());
        assert_eq!(decode(&b64(&huge)), Err(DecodeError::Truncated));
        let with = |value: Value| {
            let mut s = sample();
            s.entries[0].value = value;
            decode(&self_contained(&s))
        };
        assert_eq!(
            with(Value::Counter {
                count: -1.0,
                total: 1.0
            }),
            Err(DecodeError::Invalid("counter"))
        );
        assert!(with(Value::Counter {
            count: 1.0,
            total: f64::NAN
        })
        .is_err());
        assert_eq!(
            with(Value::Set {
                json: "{nope".into(),
                at: 1.0
            }),
            Err(DecodeError::Invalid("JSON text"))
        );
    }

    #[test]
    fn counters_of_whole_numbers_take_four_bytes() {
        let entry = |total: f64| Entry {
            key: Arc::new(SeriesKey::new("inc", &[], "n")),
            value: Value::Counter { count: 3.0, total },
        };
        let size = |entries: Vec<Entry>| {
            let s = Snapshot {
                entries,
                ..Snapshot::default()
            };
            let n = s.entries.len() as u32;
            let indexes: Vec<u32> = (0..n).collect();
            let text = delta(&s, &indexes, &[], &[], n);
            base64::engine::general_purpose::STANDARD
                .decode(text)
                .unwrap()
                .len()
        };
        let empty = size(Vec::new());
        assert_eq!(size((0..100).map(|_| entry(7.0)).collect()) - empty, 400);
        assert_eq!(size(vec![entry(-1.0)]) - empty, 18, "not whole: two f64");
    }

    proptest! {
        #[test]
        fn indexes_and_counters_round_trip(
            entries in prop::collection::vec((any::<u32>(), 0u64..1 << 53, prop_oneof![
                (0u64..1 << 53).prop_map(|v| v as f64),
                any::<f64>().prop_filter("finite", |v| v.is_finite()),
            ]), 0..50)
        ) {
            let s = Snapshot {
                entries: entries.iter().map(|&(_, count, total)| Entry {
                    key: Arc::new(SeriesKey::new("inc", &[], "n")),
                    value: Value::Counter { count: count as f64, total },
                }).collect(),
                ..Snapshot::default()
            };
            let indexes: Vec<u32> = entries.iter().map(|e| e.0).collect();
            let m = decode(&delta(&s, &indexes, &[], &[], 1)).unwrap();
            prop_assert_eq!(m.indexes, indexes);
            let values: Vec<Value> = s.entries.iter().map(|e| e.value.clone()).collect();
            prop_assert_eq!(m.values, values);
        }

        #[test]
        fn garbage_never_panics(bytes in prop::collection::vec(any::<u8>(), 0..300)) {
            let _ = decode(&base64::engine::general_purpose::STANDARD.encode(&bytes));
        }

        #[test]
        fn flipped_bytes_never_panic(pos in 0usize..400, byte in any::<u8>()) {
            let mut good = base64::engine::general_purpose::STANDARD.decode(self_contained(&sample())).unwrap();
            let i = pos % good.len();
            good[i] = byte;
            let _ = decode(&base64::engine::general_purpose::STANDARD.encode(&good));
        }
    }
}
