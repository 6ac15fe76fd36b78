//! Every series a master has heard of, each with a dense master-wide id, and which series want
//! overlapping places in the delivery tree.
//!
//! Interning once per series is what makes a steady interval cheap: a worker's message names its
//! series by index, each index maps to an id here once (when its definition arrives), and merging
//! is then an indexed add ([`crate::snapshot::Merged`]), with no hashing of keys.
//!
//! Places: a series sits at `path... / id` of a tree, so two series *conflict* when they want the
//! same place (the same path and id with two methods) or one's place is inside the other's
//! (`a / b` and `a / b / c`). Conflicts are found once, when a series is first seen; an interval
//! then only looks at the series that have any ([`Registry::settle`]): as in panopticon 0.3.0
//! without `persist`, series conflict only when both have data in the same tree.
//!
//! Expiry ([`Registry::expire`]): a series no source's dictionary holds and without data for the
//! master's `expireAfter` intervals is freed (its key, its place, its conflicts), and its id is
//! given to a new series once no delivery made before the expiry is left (a delivery renders its
//! trees from ids whenever it is read: [`Keys`] keeps the old key until the id is taken again).

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, RwLock};

use crate::snapshot::SeriesKey;

/// A node of the tree of places: the series whose place it is, and the places below it. Kept
/// small: there is one per series (its id's place), nearly always with one series and nothing
/// below.
#[derive(Debug, Default)]
struct Place {
    series: Here,
    // Boxed for its size, not its contents: 8 bytes in every leaf instead of an empty map's 48.
    #[allow(clippy::box_collection)]
    below: Option<Box<HashMap<Box<str>, Place>>>,
}

/// The series at one place: none, one (the usual case, without an allocation), or several.
#[derive(Debug, Default)]
enum Here {
    #[default]
    None,
    One(u32),
    Many(Vec<u32>),
}

impl Here {
    fn as_slice(&self) -> &[u32] {
        match self {
            Here::None => &[],
            Here::One(id) => std::slice::from_ref(id),
            Here::Many(ids) => ids,
        }
    }

    fn push(&mut self, id: u32) {
        *self = match std::mem::take(self) {
            Here::None => Here::One(id),
            Here::One(first) => Here::Many(vec![first, id]),
            Here::Many(mut ids) => {
                ids.push(id);
                Here::Many(ids)
            }
        };
    }
}

impl Place {
    fn all_series(&self, out: &mut Vec<u32>) {
        out.extend_from_slice(self.series.as_slice());
        if let Some(below) = &self.below {
            below.values().for_each(|p| p.all_series(out));
        }
    }
}

/// Every series' key by id, shared with the deliveries that render trees from ids. A key, once
/// there, changes only when its id is taken by a new series after an expiry, and that waits
/// until every delivery made before the expiry is gone: each holds the era it was made in.
#[derive(Debug, Clone, Default)]
pub struct Keys {
    list: Arc<RwLock<Vec<Arc<SeriesKey>>>>,
    era: Arc<()>,
}

impl Keys {
    /// Calls `f` with the keys (indexed by series id).
    pub fn with<T>(&self, f: impl FnOnce(&[Arc<SeriesKey>]) -> T) -> T {
        // Each write is one push or one store: a panic elsewhere cannot have left it half-changed.
        f(&self.list.read().unwrap_or_else(|e| e.into_inner()))
    }

    fn push(&self, key: Arc<SeriesKey>) {
        self.list
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .push(key);
    }

    fn set(&self, id: u32, key: Arc<SeriesKey>) {
        self.list.write().unwrap_or_else(|e| e.into_inner())[id as usize] = key;
    }
}

/// See the module documentation.
#[derive(Debug, Default)]
pub struct Registry {
    ids: HashMap<Arc<SeriesKey>, u32>,
    keys: Keys,
    count: u32,
    places: Place,
    /// For each series with conflicts, the series it conflicts with.
    conflicts: HashMap<u32, Vec<u32>>,
    /// Series id -> whether it has conflicts (a quick check per entry per interval).
    conflicted: Vec<bool>,
    /// Series id -> how many dictionaries (sources' and this process's) hold it, and the last
    /// interval it had data in (see [`Registry::expire`]).
    holders: Vec<u32>,
    last: Vec<f64>,
    /// Freed ids, each batch with the era of the deliveries that may still name them; `free`:
    /// ids no delivery names, to give to new series.
    freeing: Vec<(Arc<()>, Vec<u32>)>,
    free: Vec<u32>,
    /// Whether an id is free (not a series).
    freed: Vec<bool>,
}

impl Registry {
    /// The id of `key`, interning a copy of it when it is new.
    pub fn intern(&mut self, key: &SeriesKey) -> u32 {
        match self.ids.get(key) {
            Some(&id) => id,
            None => self.add(Arc::new(key.clone())),
        }
    }

    /// The id of `key`, if it has one.
    pub fn id(&self, key: &SeriesKey) -> Option<u32> {
        self.ids.get(key).copied()
    }

    /// How many series have an id.
    pub fn len(&self) -> usize {
        self.ids.len()
    }

    /// Whether no series has an id.
    pub fn is_empty(&self) -> bool {
        self.ids.is_empty()
    }

    /// One more dictionary holds series `id` (it cannot expire while held).
    pub fn hold(&mut self, id: u32) {
        self.holders[id as usize] += 1;
    }

    /// A dictionary that held series `id` let it go.
    pub fn release(&mut self, id: u32) {
        let n = &mut self.holders[id as usize];
        *n = n.saturating_sub(1);
    }

    /// Series `ids` have data in interval `k`.
    pub fn touch(&mut self, ids: &[u32], k: f64) {
        for &id in ids {
            let last = &mut self.last[id as usize];
            *last = last.max(k);
        }
    }

    /// Frees the series no dictionary holds that had no data for `n` intervals up to interval
    /// `k` (its key, place and conflicts); returns their ids. A freed id is given to a new series
    /// once no delivery made before this call is left.
    pub fn expire(&mut self, k: f64, n: u32) -> Vec<u32> {
        let mut gone = Vec::new();
        for id in 0..self.count {
            let i = id as usize;
            if !self.freed[i] && self.holders[i] == 0 && k - self.last[i] >= f64::from(n) {
                gone.push(id);
            }
        }
        if gone.is_empty() {
            return gone;
        }
        let keys: Vec<Arc<SeriesKey>> = self
            .keys
            .with(|keys| gone.iter().map(|&id| keys[id as usize].clone()).collect());
        for (&id, key) in gone.iter().zip(&keys) {
            self.ids.remove(&**key);
            self.freed[id as usize] = true;
            let path: Vec<&str> = (key.path.iter().map(String::as_str))
                .chain(std::iter::once(key.id.as_str()))
                .collect();
            unplace(&mut self.places, &path, id);
            if let Some(others) = self.conflicts.remove(&id) {
                for other in others {
                    if let Some(list) = self.conflicts.get_mut(&other) {
                        list.retain(|&x| x != id);
                        if list.is_empty() {
                            self.conflicts.remove(&other);
                            self.conflicted[other as usize] = false;
                        }
                    }
                }
            }
            self.conflicted[id as usize] = false;
        }
        let era = std::mem::take(&mut self.keys.era);
        self.freeing.push((era, gone.clone()));
        gone
    }

    /// An id for a new series: a freed one no delivery names any more, or the next one.
    fn next_id(&mut self) -> Option<u32> {
        let (ready, waiting) = std::mem::take(&mut self.freeing)
            .into_iter()
            .partition(|(era, _)| Arc::strong_count(era) == 1);
        self.freeing = waiting;
        let ready: Vec<(Arc<()>, Vec<u32>)> = ready;
        self.free.extend(ready.into_iter().flat_map(|(_, ids)| ids));
        self.free.pop()
    }

    /// The id of `key`, keeping the given `Arc` when it is new (no copy).
    pub fn intern_shared(&mut self, key: &Arc<SeriesKey>) -> u32 {
        match self.ids.get(&**key) {
            Some(&id) => id,
            None => self.add(key.clone()),
        }
    }

    fn add(&mut self, key: Arc<SeriesKey>) -> u32 {
        let reused = self.next_id();
        let id = match reused {
            Some(id) => id,
            None => {
                let id = self.count;
                self.count = id.checked_add(1).expect("more than 2^32 series");
                id
            }
        };
        // Walk to the series' place: series placed on the way are leaves on its path, series at
        // or below its place overlap it.
        let mut found = Vec::new();
        let mut node = &mut self.places;
        for element in key.path.iter().chain(std::iter::once(&key.id)) {
            found.extend_from_slice(node.series.as_slice());
            let below = node.below.get_or_insert_with(Box::default);
            node = below.entry(element.as_str().into()).or_default();
        }
        node.all_series(&mut found);
        node.series.push(id);
        let i = id as usize;
        if reused.is_some() {
            self.conflicted[i] = !found.is_empty();
            (self.holders[i], self.last[i], self.freed[i]) = (0, f64::NEG_INFINITY, false);
        } else {
            self.conflicted.push(!found.is_empty());
            self.holders.push(0);
            self.last.push(f64::NEG_INFINITY);
            self.freed.push(false);
        }
        for &other in &found {
            self.conflicts.entry(other).or_default().push(id);
            self.conflicted[other as usize] = true;
        }
        if !found.is_empty() {
            self.conflicts.insert(id, found);
        }
        self.ids.insert(key.clone(), id);
        if reused.is_some() {
            self.keys.set(id, key);
        } else {
            self.keys.push(key);
        }
        id
    }

    /// Every series' key by id.
    pub fn keys(&self) -> &Keys {
        &self.keys
    }

    /// Which of a tree's series (`ids`, each once) cannot have their place: the positions in
    /// `ids` to leave out, in ascending order. The series the master learned of first keeps a
    /// contested place; a series left out does not block others.
    pub fn settle(&self, ids: &[u32]) -> Vec<usize> {
        let mut contested: Vec<(u32, usize)> = ids
            .iter()
            .enumerate()
            .filter(|(_, &id)| self.conflicted[id as usize])
            .map(|(i, &id)| (id, i))
            .collect();
        if contested.is_empty() {
            return Vec::new();
        }
        contested.sort_unstable();
        let mut placed = HashSet::new();
        let mut out = Vec::new();
        for (id, i) in contested {
            if self.conflicts[&id]
                .iter()
                .any(|other| placed.contains(other))
            {
                out.push(i);
            } else {
                placed.insert(id);
            }
        }
        out.sort_unstable();
        out
    }
}

/// Removes series `id` from the place at `path` under `node`; true when `node` is left empty.
fn unplace(node: &mut Place, path: &[&str], id: u32) -> bool {
    match path.split_first() {
        None => {
            node.series = match std::mem::take(&mut node.series) {
                Here::One(x) if x == id => Here::None,
                Here::Many(mut ids) => {
                    ids.retain(|&x| x != id);
                    match ids[..] {
                        [] => Here::None,
                        [one] => Here::One(one),
                        _ => Here::Many(ids),
                    }
                }
                other => other,
            };
        }
        Some((first, rest)) => {
            if let Some(below) = &mut node.below {
                if below.get_mut(*first).is_some_and(|p| unplace(p, rest, id)) {
                    below.remove(*first);
                }
                if below.is_empty() {
                    node.below = None;
                }
            }
        }
    }
    matches!(node.series, Here::None) && node.below.is_none()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_dense_and_stable() {
        let mut r = Registry::default();
        let a = r.intern(&SeriesKey::new("inc", &["p"], "a"));
        let b = r.intern_shared(&Arc::new(SeriesKey::new("inc", &["p"], "b")));
        assert_eq!((a, b), (0, 1));
        assert_eq!(r.intern(&SeriesKey::new("inc", &["p"], "a")), 0);
        assert_eq!(
            r.intern_shared(&Arc::new(SeriesKey::new("inc", &["p"], "b"))),
            1
        );
        assert_eq!(r.keys().with(|keys| keys[1].id.clone()), "b");
    }

    fn excluded(r: &Registry, ids: &[u32]) -> Vec<u32> {
        r.settle(ids).into_iter().map(|i| ids[i]).collect()
    }

    #[test]
    fn the_first_series_keeps_its_place() {
        let mut r = Registry::default();
        let first = r.intern(&SeriesKey::new("inc", &["a"], "b"));
        let inside_a_leaf = r.intern(&SeriesKey::new("inc", &["a", "b"], "c"));
        let same_place = r.intern(&SeriesKey::new("sample", &["a"], "b"));
        let beside = r.intern(&SeriesKey::new("inc", &["a"], "x"));
        let branch_first = r.intern(&SeriesKey::new("inc", &["x", "y"], "z"));
        let on_a_branch = r.intern(&SeriesKey::new("inc", &["x"], "y"));
        let all = [
            first,
            inside_a_leaf,
            same_place,
            beside,
            branch_first,
            on_a_branch,
        ];
        assert_eq!(excluded(&r, &all), [inside_a_leaf, same_place, on_a_branch]);
        // Positions in the given order, whatever the order.
        let reversed: Vec<u32> = all.iter().rev().cloned().collect();
        assert_eq!(r.settle(&reversed), [0, 3, 4]);
        // Only series with data in the same tree conflict.
        assert!(excluded(&r, &[inside_a_leaf, beside, on_a_branch]).is_empty());
        // a/b/c was learned of before the sample at a/b.
        assert_eq!(excluded(&r, &[same_place, inside_a_leaf]), [same_place]);
        assert!(excluded(&r, &[beside]).is_empty());
    }

    #[test]
    fn a_series_left_out_does_not_block_others() {
        let mut r = Registry::default();
        let a = r.intern(&SeriesKey::new("inc", &[], "a"));
        let ab = r.intern(&SeriesKey::new("inc", &["a"], "b"));
        let abc = r.intern(&SeriesKey::new("inc", &["a", "b"], "c"));
        // a/b is left out (a is a leaf), so a/b/c only meets a, which also blocks it.
        assert_eq!(excluded(&r, &[a, ab, abc]), [ab, abc]);
        // Without a, a/b keeps its place and blocks a/b/c.
        assert_eq!(excluded(&r, &[abc, ab]), [abc]);
    }

    #[test]
    fn idle_series_no_dictionary_holds_expire_and_their_ids_wait_for_old_deliveries() {
        let mut r = Registry::default();
        let a = r.intern(&SeriesKey::new("inc", &["p"], "a"));
        let held = r.intern(&SeriesKey::new("inc", &["p"], "held"));
        let inside = r.intern(&SeriesKey::new("inc", &["p", "a"], "c"));
        r.hold(held);
        r.touch(&[a, held, inside], 1.0);
        r.touch(&[inside], 3.0);
        assert!(r.expire(2.0, 2).is_empty(), "one idle interval");
        // A delivery made before the expiry still names a's id.
        let old = r.keys().clone();
        assert_eq!(r.expire(3.0, 2), [a], "held, or with data at 3: kept");
        assert_eq!(r.len(), 2);
        assert_eq!(r.id(&SeriesKey::new("inc", &["p"], "a")), None);
        // a's place is free: c at p/a/c conflicts with nothing any more.
        assert!(excluded(&r, &[inside, held]).is_empty());
        let b = r.intern(&SeriesKey::new("inc", &["q"], "b"));
        assert_ne!(b, a, "not while an old delivery may render a's id");
        assert_eq!(old.with(|keys| keys[a as usize].id.clone()), "a");
        drop(old);
        let d = r.intern(&SeriesKey::new("inc", &["q"], "d"));
        assert_eq!(d, a, "taken once no old delivery is left");
        assert_eq!(r.keys().with(|keys| keys[d as usize].id.clone()), "d");
        // A released series expires like any other.
        r.release(held);
        r.touch(&[b, d, inside], 11.0);
        assert_eq!(r.expire(12.0, 2), [held]);
        assert_eq!(r.intern(&SeriesKey::new("inc", &["p"], "a")), held);
    }
}
