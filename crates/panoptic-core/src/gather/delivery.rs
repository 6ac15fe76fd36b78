//! One delivered interval ([`Delivery`]): every part and their merge, rendered as trees when
//! someone asks for them.

use std::collections::BTreeMap;
use std::sync::Arc;

use super::parts::{Meta, Part, Values};
use super::registry::Keys;
use super::tree::{render_kept, Format};
use crate::snapshot::{Merged, SeriesKey, Value};

/// One delivered interval: every part and their merge, rendered as trees on request. Cloning
/// shares it (the JS delivery object and the exports read the same one).
#[derive(Debug, Clone)]
pub struct Delivery(Arc<Contents>);

/// What a delivery holds (made by [`super::Gathering::deliver`]).
#[derive(Debug)]
pub(crate) struct Contents {
    pub format: Format,
    pub keys: Keys,
    pub local: Option<Part>,
    pub workers: BTreeMap<u32, Part>,
    pub threads: BTreeMap<String, Part>,
    pub merged: Merged,
    pub meta: Meta,
    /// The first few series left out of a part's tree because another took their place.
    pub collisions: Vec<String>,
    /// Series ids the registry freed when this delivery was made (see
    /// [`super::registry::Registry::expire`]): the exports forget them.
    pub expired: Vec<u32>,
}

/// One part of a delivery (see [`Delivery::parts`]).
#[derive(Debug)]
pub struct DeliveredPart<'a> {
    /// Whose part it is (never [`Tree::Cluster`]).
    pub from: Tree,
    pub pid: u32,
    /// What its engine held at the close of the interval.
    pub footprint: crate::snapshot::Footprint,
    /// Series ids.
    pub ids: &'a [u32],
    values: &'a Values,
}

impl<'a> DeliveredPart<'a> {
    /// The values of [`DeliveredPart::ids`] (a worker's are decoded when first read: see
    /// [`Values`]; read them only when needed).
    pub fn values(&self) -> &'a [Value] {
        self.values.get()
    }

    /// Whether any is a meter's (without decoding them: see [`Values`]).
    pub fn has_meters(&self) -> bool {
        self.values.has_meters()
    }
}

/// Which tree of a delivery (and, but for `Cluster`, which process or thread a part is from).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Tree {
    /// The master's (or standalone process's) own data.
    Master,
    /// A cluster worker's main thread.
    Worker(u32),
    /// A worker thread, by label.
    Thread(String),
    /// The exact merge of every part (custom leaves left out: the JS side merges them).
    Cluster,
}

impl Delivery {
    pub(crate) fn new(contents: Contents) -> Delivery {
        Delivery(Arc::new(contents))
    }

    /// What the JS side needs to build the delivery object, as JSON text: `{ master: bool,
    /// workers: [id], threads: [label], custom: [{ method, path, id, leaves }], collisions:
    /// [description], meta }`. `collisions` names (some of) the series left out of a tree
    /// because another series took their place ([`super::registry::Registry::settle`]).
    pub fn outline(&self) -> String {
        let mut out = Vec::with_capacity(256);
        out.extend_from_slice(b"{\"master\":");
        write_json(&self.0.local.is_some(), &mut out);
        out.extend_from_slice(b",\"workers\":");
        write_json(&self.0.workers.keys().collect::<Vec<_>>(), &mut out);
        out.extend_from_slice(b",\"threads\":");
        write_json(&self.0.threads.keys().collect::<Vec<_>>(), &mut out);
        out.extend_from_slice(b",\"custom\":[");
        let mut custom: Vec<_> = self.0.merged.custom.iter().collect();
        custom.sort_by_key(|(i, _)| **i);
        for (n, (i, leaves)) in custom.into_iter().enumerate() {
            if n > 0 {
                out.push(b',');
            }
            self.0.keys.with(|keys| {
                let key = &keys[self.0.merged.ids[*i] as usize];
                out.extend_from_slice(b"{\"method\":");
                write_json(&*key.method, &mut out);
                out.extend_from_slice(b",\"path\":");
                write_json(&*key.path, &mut out);
                out.extend_from_slice(b",\"id\":");
                write_json(key.id.as_str(), &mut out);
            });
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
        write_json(&self.0.collisions, &mut out);
        out.extend_from_slice(b",\"meta\":");
        let m = &self.0.meta;
        let meta = serde_json::json!({
            "workers": m.workers,
            "late": m.late,
            "decodeErrors": m.decode_errors,
            "mismatched": m.mismatched,
            "unmatched": m.unmatched,
            "refused": m.refused,
            "dropped": m.counts.dropped,
            "invalid": m.counts.invalid,
            "overflowed": m.counts.overflowed,
            "errors": m.counts.errors,
        });
        write_json(&meta, &mut out);
        out.extend_from_slice(b",\"warnings\":");
        let warnings: Vec<_> = m
            .warnings
            .iter()
            .map(|w| serde_json::json!({ "code": w.code, "message": w.message }))
            .collect();
        write_json(&warnings, &mut out);
        out.push(b'}');
        String::from_utf8(out).expect("serde_json writes UTF-8")
    }

    /// The counts of the delivery.
    pub fn meta(&self) -> &Meta {
        &self.0.meta
    }

    /// One tree as JSON text, or `None` when the delivery has no such part.
    pub fn tree(&self, which: &Tree) -> Option<String> {
        self.tree_kept(which, None)
    }

    /// [`Delivery::tree`] without the leaves whose series `keep` refuses (and the objects they
    /// leave empty).
    pub fn tree_kept(
        &self,
        which: &Tree,
        keep: Option<&dyn Fn(&SeriesKey) -> bool>,
    ) -> Option<String> {
        fn part(p: Option<&Part>) -> Option<(&Vec<u32>, &[Value], bool)> {
            p.map(|p| (&p.ids, p.values.get(), true))
        }
        let (ids, values, custom) = match which {
            Tree::Master => part(self.0.local.as_ref())?,
            Tree::Worker(id) => part(self.0.workers.get(id))?,
            Tree::Thread(label) => part(self.0.threads.get(label))?,
            Tree::Cluster => (&self.0.merged.ids, &self.0.merged.values[..], false),
        };
        let mut out = Vec::with_capacity(64 * ids.len() + 2);
        self.0.keys.with(|keys| {
            let pairs = ids.iter().map(|&id| &*keys[id as usize]).zip(values);
            render_kept(pairs, custom, &self.0.format, keep, &mut out);
        });
        Some(String::from_utf8(out).expect("the tree writer writes UTF-8"))
    }

    /// The delivery's parts: each process's or thread's series ids and values.
    pub fn parts(&self) -> impl Iterator<Item = DeliveredPart<'_>> {
        let c = &*self.0;
        let local = c.local.iter().map(|p| (Tree::Master, p));
        let workers = c.workers.iter().map(|(id, p)| (Tree::Worker(*id), p));
        let threads = c.threads.iter().map(|(l, p)| (Tree::Thread(l.clone()), p));
        local
            .chain(workers)
            .chain(threads)
            .map(|(from, p)| DeliveredPart {
                from,
                pid: p.pid,
                footprint: p.footprint,
                ids: &p.ids,
                values: &p.values,
            })
    }

    /// The merged series: ids and values.
    pub fn merged(&self) -> (&[u32], &[Value]) {
        (&self.0.merged.ids, &self.0.merged.values)
    }

    /// Series ids that expired when this delivery was made: what the exports hold of them goes
    /// (an id may name a new series in a later delivery).
    pub fn expired(&self) -> &[u32] {
        &self.0.expired
    }

    /// The keys of the series ids.
    pub fn keys(&self) -> &Keys {
        &self.0.keys
    }

    /// How the trees are written (interval, scale factor, end of the interval).
    pub fn format(&self) -> &Format {
        &self.0.format
    }

    /// About how many bytes the delivery holds (for the JS garbage collector's accounting).
    pub fn size(&self) -> usize {
        let parts = self.0.local.iter().chain(self.0.workers.values());
        let parts = parts.chain(self.0.threads.values());
        let parts: usize = parts
            .map(|p| p.ids.len() * size_of::<u32>() + p.values.size())
            .sum();
        parts + self.0.merged.ids.len() * (size_of::<u32>() + size_of::<Value>())
    }
}

fn write_json<T: serde::Serialize + ?Sized>(value: &T, out: &mut Vec<u8>) {
    serde_json::to_writer(out, value).expect("writing to a Vec cannot fail");
}
