//! The master's side of an instance: its own closed intervals and the snapshots of its workers
//! and threads, held per interval until that interval is delivered, then merged into one delivery.
//!
//! Bounded memory: a snapshot is accepted only for an interval not yet delivered and not beyond
//! the one after the master's current interval, and at most once per worker or thread;
//! delivering interval k drops everything up to k. So at most about two intervals' worth of
//! snapshots are held.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use crate::snapshot::{Entry, Merged, SeriesKey, Snapshot};
use crate::tree::{render, Format};
use crate::wire::{decode, DecodeError, Message};

/// Why a worker's message was not kept.
#[derive(Debug, Clone, PartialEq)]
pub enum Rejection {
    /// Its interval was already delivered (or skipped): counted in `late`.
    Late,
    /// Undecodable, too far ahead, or a second snapshot of one worker for one interval: counted in
    /// `decodeErrors`.
    Decode(DecodeError),
    /// It extends a dictionary this master does not have (it started after the sender, or lost
    /// track): counted in `late`; the sender must send its definitions again.
    Resync,
}

#[derive(Debug, Default)]
struct Pending {
    local: Option<Snapshot>,
    workers: BTreeMap<u32, Snapshot>,
    threads: BTreeMap<String, Snapshot>,
}

/// Where a snapshot came from.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Source {
    /// A cluster worker's main thread, by worker id.
    Worker(u32),
    /// A worker thread, labelled `<process>:<threadId>` (process: `master` or a worker id).
    Thread(String),
}

/// A source's series keys by the index it sends (see [`crate::wire`]).
#[derive(Debug)]
struct SourceKeys {
    epoch: u64,
    keys: Vec<Arc<SeriesKey>>,
}

/// See the module documentation.
#[derive(Debug, Default)]
pub struct Gathering {
    pending: BTreeMap<i64, Pending>,
    dictionaries: HashMap<Source, SourceKeys>,
    delivered: Option<f64>,
    late: u64,
    decode_errors: u64,
}

/// How many collided series a delivery names (the count is always complete).
const NAMED_COLLISIONS: usize = 10;

impl Gathering {
    /// Keeps this process's own snapshot of its interval.
    pub fn keep_local(&mut self, snapshot: Snapshot) {
        let k = snapshot.k as i64;
        self.pending.entry(k).or_default().local = Some(snapshot);
    }

    /// Takes a message (base64 text of a snapshot) from a worker's main thread or one of its
    /// threads, while the master is in interval `current`.
    pub fn receive(&mut self, source: Source, text: &str, current: f64) -> Result<(), Rejection> {
        let result = decode(text)
            .map_err(Rejection::Decode)
            .and_then(|message| self.resolve(&source, message))
            .and_then(|snapshot| self.accept(source, snapshot, current));
        self.count(&result);
        result
    }

    /// Applies a message's definitions to its source's dictionary (whatever becomes of its data:
    /// the sender counts them as known) and turns its entries' indexes into keys.
    fn resolve(&mut self, source: &Source, message: Message) -> Result<Snapshot, Rejection> {
        let Message {
            k,
            pid,
            dropped,
            errors,
            dictionary,
            definitions,
            entries,
        } = message;
        let dict = self
            .dictionaries
            .entry(source.clone())
            .or_insert_with(|| SourceKeys {
                epoch: dictionary.epoch,
                keys: Vec::new(),
            });
        if dictionary.base == 0 {
            dict.epoch = dictionary.epoch;
            dict.keys.clear();
        } else if dict.epoch != dictionary.epoch || dict.keys.len() != dictionary.base as usize {
            return Err(Rejection::Resync);
        }
        dict.keys.extend(definitions.into_iter().map(Arc::new));
        let entries = entries
            .into_iter()
            .map(|(index, value)| {
                let key = dict
                    .keys
                    .get(index as usize)
                    .cloned()
                    .ok_or(Rejection::Decode(DecodeError::Invalid(
                        "an index not in the dictionary",
                    )))?;
                Ok(Entry { key, value })
            })
            .collect::<Result<Vec<_>, Rejection>>()?;
        Ok(Snapshot {
            k,
            pid,
            dropped,
            errors,
            entries,
        })
    }

    /// Forgets the dictionaries of a worker that exited (and of its threads).
    pub fn forget_worker(&mut self, worker: u32) {
        let prefix = format!("{worker}:");
        self.dictionaries.retain(|source, _| match source {
            Source::Worker(id) => *id != worker,
            Source::Thread(label) => !label.starts_with(&prefix),
        });
    }

    /// Takes a snapshot posted by a thread of this process (no decoding: shared memory).
    pub fn receive_thread(
        &mut self,
        label: String,
        snapshot: Snapshot,
        current: f64,
    ) -> Result<(), Rejection> {
        let result = self.accept(Source::Thread(label), snapshot, current);
        self.count(&result);
        result
    }

    /// Counts snapshots lost before they reached this instance (a full thread inbox) as late.
    pub fn note_late(&mut self, n: u64) {
        self.late += n;
    }

    fn count(&mut self, result: &Result<(), Rejection>) {
        match result {
            Err(Rejection::Late | Rejection::Resync) => self.late += 1,
            Err(Rejection::Decode(_)) => self.decode_errors += 1,
            Ok(()) => {}
        }
    }

    fn accept(
        &mut self,
        source: Source,
        snapshot: Snapshot,
        current: f64,
    ) -> Result<(), Rejection> {
        if self.delivered.is_some_and(|d| snapshot.k <= d) {
            return Err(Rejection::Late);
        }
        if snapshot.k > current + 1.0 {
            return Err(Rejection::Decode(DecodeError::Invalid(
                "an interval in the future",
            )));
        }
        let pending = self.pending.entry(snapshot.k as i64).or_default();
        // A second snapshot of one source for one interval: a misbehaving peer; the first stays.
        let second =
            || Rejection::Decode(DecodeError::Invalid("a second snapshot of one interval"));
        match source {
            Source::Worker(id) => match pending.workers.entry(id) {
                std::collections::btree_map::Entry::Occupied(_) => return Err(second()),
                std::collections::btree_map::Entry::Vacant(v) => v.insert(snapshot),
            },
            Source::Thread(label) => match pending.threads.entry(label) {
                std::collections::btree_map::Entry::Occupied(_) => return Err(second()),
                std::collections::btree_map::Entry::Vacant(v) => v.insert(snapshot),
            },
        };
        Ok(())
    }

    /// Counts a message that was marked as panoptic's but could not even be routed.
    pub fn note_decode_error(&mut self) {
        self.decode_errors += 1;
    }

    /// Delivers interval `k` as JSON text (described in the binding's `deliver`), and forgets
    /// every interval up to `k`. Snapshots of earlier intervals that were never delivered count
    /// as late.
    pub fn deliver(&mut self, k: f64, format: &Format) -> String {
        let later = self.pending.split_off(&(k as i64 + 1));
        let mut done = std::mem::replace(&mut self.pending, later);
        let this = done.remove(&(k as i64)).unwrap_or_default();
        self.late += done
            .values()
            .map(|p| (p.workers.len() + p.threads.len()) as u64)
            .sum::<u64>();
        self.delivered = Some(self.delivered.map_or(k, |d| d.max(k)));

        let mut a = Assembly {
            out: Vec::with_capacity(1024),
            merged: Merged::default(),
            collisions: 0,
            named: Vec::new(),
            dropped: 0.0,
            errors: 0.0,
            format,
        };
        a.out.extend_from_slice(b"{\"master\":");
        match &this.local {
            Some(local) => a.add(local),
            None => a.out.extend_from_slice(b"null"),
        }
        a.out.extend_from_slice(b",\"workers\":");
        a.add_all(this.workers.iter().map(|(id, s)| (id.to_string(), s)));
        a.out.extend_from_slice(b",\"threads\":");
        a.add_all(this.threads.iter().map(|(label, s)| (label.clone(), s)));
        let Assembly {
            mut out,
            merged,
            collisions,
            named,
            dropped,
            errors,
            ..
        } = a;
        out.extend_from_slice(b",\"cluster\":");
        render(&merged.entries, false, format, &mut out);
        out.extend_from_slice(b",\"custom\":[");
        let mut custom: Vec<_> = merged.custom.iter().collect();
        custom.sort_by_key(|(i, _)| **i);
        for (n, (i, leaves)) in custom.into_iter().enumerate() {
            if n > 0 {
                out.push(b',');
            }
            let key = &merged.entries[*i].key;
            out.extend_from_slice(b"{\"method\":");
            write_json(&key.method, &mut out);
            out.extend_from_slice(b",\"path\":");
            write_json(&key.path, &mut out);
            out.extend_from_slice(b",\"id\":");
            write_json(&key.id, &mut out);
            out.extend_from_slice(b",\"leaves\":[");
            let leaves: Vec<&str> = leaves
                .iter()
                .map(String::as_str)
                .filter(|l| !l.is_empty())
                .collect();
            out.extend_from_slice(leaves.join(",").as_bytes());
            out.extend_from_slice(b"]}");
        }
        out.extend_from_slice(b"],\"collisions\":");
        write_json(&named, &mut out);
        let pids: BTreeMap<String, u32> = this
            .workers
            .iter()
            .map(|(id, s)| (id.to_string(), s.pid))
            .collect();
        out.extend_from_slice(b",\"meta\":{\"workers\":");
        write_json(&pids, &mut out);
        let late = std::mem::take(&mut self.late);
        let decode_errors = std::mem::take(&mut self.decode_errors);
        out.extend_from_slice(
            format!(
                ",\"late\":{late},\"decodeErrors\":{decode_errors},\"dropped\":{dropped},\"errors\":{}}}}}",
                errors + collisions as f64
            )
            .as_bytes(),
        );
        String::from_utf8(out).expect("the tree writer writes UTF-8")
    }
}

/// A delivery being written: the trees so far, their merge, and the counts they add up to.
struct Assembly<'f> {
    out: Vec<u8>,
    merged: Merged,
    collisions: usize,
    named: Vec<String>,
    dropped: f64,
    errors: f64,
    format: &'f Format,
}

impl Assembly<'_> {
    /// Writes one process's (or thread's) tree, and merges it into the cluster view.
    fn add(&mut self, snapshot: &Snapshot) {
        for entry in render(&snapshot.entries, true, self.format, &mut self.out) {
            self.collisions += 1;
            if self.named.len() < NAMED_COLLISIONS {
                self.named.push(format!(
                    "\"{}\" at path {:?} id {:?}",
                    entry.key.method, entry.key.path, entry.key.id
                ));
            }
        }
        snapshot.merge_into(&mut self.merged);
        self.dropped += snapshot.dropped;
        self.errors += snapshot.errors;
    }

    /// Writes `{ label: tree, ... }`.
    fn add_all<'s>(&mut self, snapshots: impl Iterator<Item = (String, &'s Snapshot)>) {
        self.out.push(b'{');
        for (i, (label, snapshot)) in snapshots.enumerate() {
            if i > 0 {
                self.out.push(b',');
            }
            write_json(&label, &mut self.out);
            self.out.push(b':');
            self.add(snapshot);
        }
        self.out.push(b'}');
    }
}

fn write_json<T: serde::Serialize + ?Sized>(value: &T, out: &mut Vec<u8>) {
    serde_json::to_writer(out, value).expect("writing to a Vec cannot fail");
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::snapshot::{Entry, SeriesKey, Value};
    use crate::summary::Summary;
    use crate::wire::{encode, Dictionary, Keys};
    use std::sync::Arc;

    const FORMAT: Format = Format {
        interval: 100.0,
        scale_factor: 1.0,
        time_stamp: 500.0,
    };

    fn snap(k: f64, pid: u32, entries: Vec<(&str, &str, Value)>) -> Snapshot {
        Snapshot {
            k,
            pid,
            dropped: 1.0,
            errors: 0.0,
            entries: entries
                .into_iter()
                .map(|(method, id, value)| Entry {
                    key: Arc::new(SeriesKey {
                        method: method.into(),
                        path: vec!["p".into()],
                        id: id.into(),
                    }),
                    value,
                })
                .collect(),
        }
    }

    fn counter(total: f64) -> Value {
        Value::Counter { count: 1.0, total }
    }

    fn summary(xs: &[f64]) -> Value {
        let mut s = Summary::default();
        xs.iter().for_each(|&x| s.push(x));
        Value::Summary(s)
    }

    /// A self-contained message (every key defined).
    fn enc(s: &Snapshot) -> String {
        encode(s, Keys::All { epoch: 1 })
    }

    fn delta(
        s: &Snapshot,
        indexes: &[u32],
        definitions: &[&SeriesKey],
        epoch: u64,
        base: u32,
    ) -> String {
        let dictionary = Dictionary { epoch, base };
        encode(
            s,
            Keys::Delta {
                indexes,
                definitions,
                dictionary,
            },
        )
    }

    fn parse(text: &str) -> serde_json::Value {
        serde_json::from_str(text).unwrap()
    }

    #[test]
    fn merges_master_and_workers_of_one_interval() {
        let mut g = Gathering::default();
        g.keep_local(snap(
            4.0,
            10,
            vec![
                ("inc", "c", counter(2.0)),
                ("sample", "s", summary(&[1.0, 2.0])),
            ],
        ));
        let w1 = snap(
            4.0,
            11,
            vec![
                ("inc", "c", counter(3.0)),
                ("sample", "s", summary(&[3.0, 10.0])),
            ],
        );
        let w2 = snap(
            4.0,
            12,
            vec![(
                "max",
                "m",
                Value::Custom {
                    json: "{\"v\":1}".into(),
                },
            )],
        );
        assert_eq!(g.receive(Source::Worker(1), &enc(&w1), 4.0), Ok(()));
        assert_eq!(g.receive(Source::Worker(2), &enc(&w2), 4.0), Ok(()));
        let d = parse(&g.deliver(4.0, &FORMAT));
        assert_eq!(d["master"]["p"]["c"]["value"]["val"], 0.02);
        assert_eq!(d["workers"]["1"]["p"]["c"]["value"]["val"], 0.03);
        assert_eq!(d["workers"]["2"]["p"]["m"]["v"], 1);
        assert_eq!(d["cluster"]["p"]["c"]["value"]["val"], 0.05);
        let s = &d["cluster"]["p"]["s"]["value"];
        assert_eq!(
            (s["min"].as_f64(), s["max"].as_f64()),
            (Some(1.0), Some(10.0))
        );
        assert_eq!(s["average"], 4.0);
        assert!(
            d["cluster"]["p"].get("m").is_none(),
            "custom leaves merge in JS"
        );
        assert_eq!(d["custom"][0]["leaves"], serde_json::json!([{ "v": 1 }]));
        assert_eq!(
            d["meta"],
            serde_json::json!({ "workers": { "1": 11, "2": 12 }, "late": 0, "decodeErrors": 0, "dropped": 3, "errors": 0 })
        );
    }

    #[test]
    fn threads_appear_once_under_their_label_and_in_the_cluster() {
        let mut g = Gathering::default();
        g.keep_local(snap(2.0, 10, vec![("inc", "c", counter(1.0))]));
        let t = snap(2.0, 10, vec![("inc", "c", counter(4.0))]);
        assert_eq!(g.receive_thread("master:3".into(), t.clone(), 2.0), Ok(()));
        assert!(g.receive_thread("master:3".into(), t.clone(), 2.0).is_err());
        assert_eq!(
            g.receive(Source::Thread("1:2".into()), &enc(&t), 2.0),
            Ok(())
        );
        g.note_late(2);
        let d = parse(&g.deliver(2.0, &FORMAT));
        assert_eq!(d["master"]["p"]["c"]["value"]["val"], 0.01);
        assert_eq!(d["threads"]["master:3"]["p"]["c"]["value"]["val"], 0.04);
        assert_eq!(d["threads"]["1:2"]["p"]["c"]["value"]["val"], 0.04);
        assert_eq!(d["cluster"]["p"]["c"]["value"]["val"], 0.09);
        assert_eq!(d["meta"]["late"], 2);
        assert_eq!(d["meta"]["decodeErrors"], 1);
    }

    #[test]
    fn late_future_duplicate_and_garbage_are_counted_not_merged() {
        let mut g = Gathering::default();
        g.keep_local(snap(4.0, 10, vec![]));
        assert_eq!(
            g.receive(Source::Worker(1), "garbage", 4.0),
            Err(Rejection::Decode(DecodeError::Text))
        );
        assert!(matches!(
            g.receive(Source::Worker(1), &enc(&snap(9.0, 11, vec![])), 4.0),
            Err(Rejection::Decode(_))
        ));
        assert_eq!(
            g.receive(
                Source::Worker(1),
                &enc(&snap(5.0, 11, vec![("inc", "c", counter(7.0))])),
                4.0
            ),
            Ok(())
        );
        assert!(matches!(
            g.receive(Source::Worker(1), &enc(&snap(5.0, 11, vec![])), 4.0),
            Err(Rejection::Decode(_))
        ));
        g.note_decode_error();
        let d = parse(&g.deliver(4.0, &FORMAT));
        assert_eq!(d["meta"]["decodeErrors"], 4);
        assert_eq!(d["workers"], serde_json::json!({}));
        // Interval 4 is delivered: a batch for it is late, and never lands in interval 5.
        assert_eq!(
            g.receive(
                Source::Worker(2),
                &enc(&snap(4.0, 12, vec![("inc", "c", counter(1.0))])),
                5.0
            ),
            Err(Rejection::Late)
        );
        let d5 = parse(&g.deliver(5.0, &FORMAT));
        assert_eq!(d5["master"], serde_json::Value::Null);
        assert_eq!(d5["cluster"]["p"]["c"]["value"]["val"], 0.07);
        assert_eq!(d5["meta"]["late"], 1);
        assert_eq!(
            d5["meta"]["decodeErrors"], 0,
            "counts reset after each delivery"
        );
    }

    #[test]
    fn skipped_intervals_count_as_late_and_are_freed() {
        let mut g = Gathering::default();
        g.receive(Source::Worker(1), &enc(&snap(3.0, 11, vec![])), 4.0)
            .unwrap();
        g.receive(Source::Worker(2), &enc(&snap(4.0, 12, vec![])), 4.0)
            .unwrap();
        let d = parse(&g.deliver(4.0, &FORMAT));
        assert_eq!(d["meta"]["late"], 1);
        assert_eq!(d["meta"]["workers"], serde_json::json!({ "2": 12 }));
        assert!(g.pending.is_empty());
    }

    #[test]
    fn collisions_are_counted_and_named() {
        let mut g = Gathering::default();
        let mut s = snap(1.0, 10, vec![("inc", "c", counter(1.0))]);
        s.entries.push(Entry {
            key: Arc::new(SeriesKey {
                method: "sample".into(),
                path: vec!["p".into()],
                id: "c".into(),
            }),
            value: summary(&[1.0]),
        });
        g.keep_local(s);
        let d = parse(&g.deliver(1.0, &FORMAT));
        assert_eq!(d["meta"]["errors"], 1);
        assert_eq!(d["collisions"][0], "\"sample\" at path [\"p\"] id \"c\"");
    }

    #[test]
    fn dictionaries_turn_indexes_into_keys_and_ask_for_a_resync_when_lost() {
        let mut g = Gathering::default();
        let s = snap(
            1.0,
            11,
            vec![("inc", "a", counter(1.0)), ("inc", "b", counter(2.0))],
        );
        let keys: Vec<&SeriesKey> = s.entries.iter().map(|e| &*e.key).collect();
        // The first message defines both keys; the next ones send indexes only.
        let first = delta(&s, &[0, 1], &keys, 9, 0);
        assert_eq!(g.receive(Source::Worker(1), &first, 1.0), Ok(()));
        let mut s2 = s.clone();
        s2.k = 2.0;
        s2.entries.reverse();
        let steady = delta(&s2, &[1, 0], &[], 9, 2);
        assert_eq!(g.receive(Source::Worker(1), &steady, 2.0), Ok(()));
        let d = parse(&g.deliver(2.0, &FORMAT));
        assert_eq!(d["workers"]["1"]["p"]["b"]["value"]["val"], 0.02);
        assert_eq!(d["meta"]["late"], 1, "interval 1 was never delivered");
        // Another worker, or a dictionary this master never saw: a resync, counted as late.
        let mut s3 = s.clone();
        s3.k = 3.0;
        assert_eq!(
            g.receive(Source::Worker(2), &delta(&s3, &[0, 1], &[], 9, 2), 3.0),
            Err(Rejection::Resync)
        );
        assert_eq!(
            g.receive(Source::Worker(1), &delta(&s3, &[0, 1], &[], 5, 2), 3.0),
            Err(Rejection::Resync)
        );
        // An index beyond the dictionary from a known source: malformed.
        assert!(matches!(
            g.receive(Source::Worker(1), &delta(&s3, &[0, 7], &[], 9, 2), 3.0),
            Err(Rejection::Decode(_))
        ));
        g.forget_worker(1);
        assert_eq!(
            g.receive(Source::Worker(1), &delta(&s3, &[0, 1], &[], 9, 2), 3.0),
            Err(Rejection::Resync),
            "forgotten"
        );
        let d3 = parse(&g.deliver(3.0, &FORMAT));
        assert_eq!(d3["meta"]["late"], 3);
        assert_eq!(d3["meta"]["decodeErrors"], 1);
    }
}
