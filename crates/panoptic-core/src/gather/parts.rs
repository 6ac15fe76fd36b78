//! What the gathering hands to a delivery: each process's or thread's part of an interval, and
//! the interval's counts and warnings (below both, so that neither depends on the other's
//! insides).

use std::collections::BTreeMap;
use std::sync::OnceLock;

use crate::snapshot::{Counts, Footprint, Value};
use crate::wire::Untouched;

/// One process's or thread's interval, its series named by id (a [`crate::snapshot::Snapshot`] without keys).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Part {
    pub k: f64,
    pub pid: u32,
    pub counts: Counts,
    /// What its engine held at the close of the interval.
    pub footprint: Footprint,
    pub ids: Vec<u32>,
    pub values: Values,
}

/// A part's values, `ids` in order: decoded, or kept as the worker's message and decoded again
/// when first read.
///
/// A worker's part is merged into the cluster view when it arrives, and after that only a reader
/// of its own tree (`data.workers`, a per-process export) needs its values. Decoded, a part is
/// about 56 bytes per series, allocated afresh every interval and freed when the JS garbage
/// collector drops the delivery, several deliveries at a time: the allocator gives that memory
/// back to the system and the next interval faults it in again (page faults were most of the
/// intake thread's time at 8 workers x 15,000 series), and a master holds several intervals'
/// parts at 56 bytes a series each. As the message, a steady counter is about 4 bytes.
#[derive(Debug, Clone, Default)]
pub struct Values {
    decoded: OnceLock<Vec<Value>>,
    /// The message the values are decoded from (when not decoded yet), how many values, and
    /// whether any is a meter's.
    message: Option<(Message, usize, bool)>,
}

/// A part's values as sent.
#[derive(Debug, Clone)]
struct Message {
    bytes: Vec<u8>,
    /// For each value: the message's next one ([`Untouched::Sent`]), or the empty state put
    /// back for a series a persisting sender left out; empty: every value is the message's.
    plan: Vec<Untouched>,
}

impl Values {
    /// Values as they are.
    pub fn decoded(values: Vec<Value>) -> Values {
        Values {
            decoded: OnceLock::from(values),
            message: None,
        }
    }

    /// `values`, kept as the message they were decoded from (wire bytes that decode without
    /// error: [`crate::wire::decode_bytes`]) and `plan` (for each value, the message's next one or the empty state put back for a series a persisting sender left out: [`Untouched`]), decoded again
    /// when first read.
    pub fn encoded(bytes: Vec<u8>, plan: Vec<Untouched>, values: &[Value]) -> Values {
        let meters = values.iter().any(|v| matches!(v, Value::Meter(_)));
        Values {
            decoded: OnceLock::new(),
            message: Some((Message { bytes, plan }, values.len(), meters)),
        }
    }

    /// Whether any value is a meter's (without decoding them).
    pub fn has_meters(&self) -> bool {
        match (self.decoded.get(), &self.message) {
            (None, Some((_, _, meters))) => *meters,
            _ => self.get().iter().any(|v| matches!(v, Value::Meter(_))),
        }
    }

    /// The values (decoded now if they were not).
    pub fn get(&self) -> &[Value] {
        self.decoded.get_or_init(|| {
            let Some((message, ..)) = &self.message else {
                return Vec::new();
            };
            // The message decoded once already, before it was kept: it decodes the same way.
            let Ok(decoded) = crate::wire::decode_bytes(&message.bytes) else {
                return Vec::new();
            };
            if message.plan.is_empty() {
                return decoded.values;
            }
            let histogram = &decoded.profile.histogram;
            let mut sent = decoded.values.into_iter();
            let value = |untouched: &Untouched| match untouched.value(histogram) {
                Some(value) => Some(value),
                None => sent.next(),
            };
            message.plan.iter().map_while(value).collect()
        })
    }

    /// The values, to change them.
    pub fn get_mut(&mut self) -> &mut Vec<Value> {
        self.get();
        self.message = None;
        self.decoded.get_mut().expect("decoded just above")
    }

    /// The values, decoded (a buffer to reuse).
    pub fn take(self) -> Vec<Value> {
        self.get();
        self.decoded.into_inner().unwrap_or_default()
    }

    /// How many values.
    pub fn len(&self) -> usize {
        match (self.decoded.get(), &self.message) {
            (Some(values), _) => values.len(),
            (None, Some((_, len, _))) => *len,
            (None, None) => 0,
        }
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// About how many bytes they hold (undecoded: the message's).
    pub fn size(&self) -> usize {
        match (self.decoded.get(), &self.message) {
            (Some(values), _) => values.len() * std::mem::size_of::<Value>(),
            (None, Some((message, ..))) => message.bytes.len() + message.plan.len(),
            (None, None) => 0,
        }
    }
}

impl PartialEq for Values {
    fn eq(&self, other: &Values) -> bool {
        self.get() == other.get()
    }
}

/// Something a user must hear about (the JS side emits it as a `'warning'` with this code).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Warning {
    pub code: &'static str,
    pub message: String,
}

/// A delivery's counts (see `meta` in docs/delivery.md; the JS side adds the master's pid).
#[derive(Debug, Clone, PartialEq)]
pub struct Meta {
    /// Worker id -> pid, for every worker whose snapshot is in the delivery.
    pub workers: BTreeMap<String, u32>,
    pub late: u64,
    pub decode_errors: u64,
    /// Snapshots left out for another grid or options ([`super::Rejection::Mismatch`]).
    pub mismatched: u64,
    /// Messages for an instance this process does not have ([`super::Gathering::note_unmatched`]).
    pub unmatched: u64,
    /// Connections to the native transport refused: not a worker of this master
    /// ([`super::Gathering::note_refused`]).
    pub refused: u64,
    /// Warnings first seen since the last delivery.
    pub warnings: Vec<Warning>,
    /// The sum of every part's counts.
    pub counts: Counts,
}
