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
//! Expiry ([`Registry::sweep`]): a series no source's dictionary holds and without data for the
//! master's `expireAfter` intervals is freed (its key, its place, its conflicts), a slice at a
//! time after a delivery, and its id is given to a new series once no delivery made before the
//! expiry is left (a delivery renders its trees from ids whenever it is read: [`Keys`] keeps the
//! old key until the id is taken again).

use std::collections::hash_map::RandomState;
use std::collections::{HashMap, HashSet};
use std::hash::BuildHasher;
use std::sync::{Arc, RwLock};

use hashbrown::HashTable;

use crate::snapshot::SeriesKey;

/// How many tables an [`Index`] is split into.
const SHARDS: usize = 32;

/// A hash index of small integers (series ids, place numbers) whose keys live elsewhere: each
/// entry holds its key's hash beside the integer, and the index is split into [`SHARDS`] tables
/// by hash. So growing never hashes a key again nor reads one (a `HashMap` of a million
/// `Arc<SeriesKey>` took 2.6 s to grow, key by key, while a delivery waited for the lock), and a
/// growth moves one shard's entries: a thirty-second of them, in a millisecond or two at two
/// million series.
#[derive(Debug)]
struct Index {
    shards: Vec<HashTable<(u64, u32)>>,
}

impl Default for Index {
    fn default() -> Index {
        Index {
            shards: (0..SHARDS).map(|_| HashTable::new()).collect(),
        }
    }
}

impl Index {
    /// The shard of `hash`: bits the tables do not use themselves (they place an entry by its
    /// low bits and tag it with its top seven).
    fn shard(hash: u64) -> usize {
        (hash >> 40) as usize % SHARDS
    }

    /// The entry with `hash` for which `is` holds.
    fn find(&self, hash: u64, is: impl Fn(u32) -> bool) -> Option<u32> {
        self.shards[Index::shard(hash)]
            .find(hash, |&(h, n)| h == hash && is(n))
            .map(|&(_, n)| n)
    }

    fn insert(&mut self, hash: u64, n: u32) {
        self.shards[Index::shard(hash)].insert_unique(hash, (hash, n), |&(h, _)| h);
    }

    /// Removes entry `n` of `hash` (if there).
    fn remove(&mut self, hash: u64, n: u32) {
        let shard = &mut self.shards[Index::shard(hash)];
        if let Ok(entry) = shard.find_entry(hash, |&(h, m)| h == hash && m == n) {
            entry.remove();
        }
    }

    fn len(&self) -> usize {
        self.shards.iter().map(HashTable::len).sum()
    }
}

/// A node of the tree of places, in [`Places`]' arena: the series whose place it is, and a list
/// of the nodes below it (first child, then siblings both ways, so a node leaves the list at
/// once). Small: there is one per series (its id's place), nearly always with one series and
/// nothing below.
#[derive(Debug)]
struct Node {
    element: Box<str>,
    parent: u32,
    first_child: u32,
    next_sibling: u32,
    previous_sibling: u32,
    series: Here,
}

/// No node (a link to nothing).
const NO_NODE: u32 = u32::MAX;

/// The series at one place: none, one (the usual case, without an allocation), or several.
#[derive(Debug, Default)]
enum Here {
    #[default]
    None,
    One(u32),
    // Boxed for its size: 16 bytes in every node instead of 32.
    #[allow(clippy::box_collection)]
    Many(Box<Vec<u32>>),
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
            Here::One(first) => Here::Many(Box::new(vec![first, id])),
            Here::Many(mut ids) => {
                ids.push(id);
                Here::Many(ids)
            }
        };
    }

    fn remove(&mut self, id: u32) {
        *self = match std::mem::take(self) {
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
}

/// The tree of places: nodes in one arena (node 0 is the root), found by parent and path element
/// through an [`Index`], so that a place with a million children grows like any other index.
/// Nodes left without series nor children are freed (expiry) and their slots reused.
#[derive(Debug)]
struct Places {
    nodes: Vec<Node>,
    children: Index,
    free: Vec<u32>,
}

impl Default for Places {
    fn default() -> Places {
        Places {
            nodes: vec![Node {
                element: "".into(),
                parent: NO_NODE,
                first_child: NO_NODE,
                next_sibling: NO_NODE,
                previous_sibling: NO_NODE,
                series: Here::None,
            }],
            children: Index::default(),
            free: Vec::new(),
        }
    }
}

impl Places {
    /// The child of node `parent` at `element`, if there is one.
    fn find(&self, hasher: &RandomState, parent: u32, element: &str) -> Option<u32> {
        let hash = hasher.hash_one((parent, element));
        let nodes = &self.nodes;
        self.children.find(hash, |n| {
            let node = &nodes[n as usize];
            node.parent == parent && &*node.element == element
        })
    }

    /// The child of node `parent` at `element`, made when missing.
    fn child(&mut self, hasher: &RandomState, parent: u32, element: &str) -> u32 {
        if let Some(n) = self.find(hasher, parent, element) {
            return n;
        }
        let next_sibling = self.nodes[parent as usize].first_child;
        let node = Node {
            element: element.into(),
            parent,
            first_child: NO_NODE,
            next_sibling,
            previous_sibling: NO_NODE,
            series: Here::None,
        };
        let n = match self.free.pop() {
            Some(n) => {
                self.nodes[n as usize] = node;
                n
            }
            None => {
                self.nodes.push(node);
                u32::try_from(self.nodes.len() - 1).expect("more than 2^32 places")
            }
        };
        if next_sibling != NO_NODE {
            self.nodes[next_sibling as usize].previous_sibling = n;
        }
        self.nodes[parent as usize].first_child = n;
        self.children.insert(hasher.hash_one((parent, element)), n);
        n
    }

    /// Takes series `id` from its place (node `node`), and frees the nodes this leaves empty.
    fn remove(&mut self, hasher: &RandomState, mut node: u32, id: u32) {
        self.nodes[node as usize].series.remove(id);
        while node != 0 {
            let n = &self.nodes[node as usize];
            if !matches!(n.series, Here::None) || n.first_child != NO_NODE {
                return;
            }
            let (parent, previous, next) = (n.parent, n.previous_sibling, n.next_sibling);
            let hash = hasher.hash_one((parent, &*n.element));
            self.children.remove(hash, node);
            if previous == NO_NODE {
                self.nodes[parent as usize].first_child = next;
            } else {
                self.nodes[previous as usize].next_sibling = next;
            }
            if next != NO_NODE {
                self.nodes[next as usize].previous_sibling = previous;
            }
            self.nodes[node as usize].element = "".into();
            self.free.push(node);
            node = parent;
        }
    }

    /// Every series at or below node `n`, added to `out`.
    fn all_series(&self, n: u32, out: &mut Vec<u32>) {
        let mut stack = vec![n];
        while let Some(n) = stack.pop() {
            let node = &self.nodes[n as usize];
            out.extend_from_slice(node.series.as_slice());
            let mut child = node.first_child;
            while child != NO_NODE {
                stack.push(child);
                child = self.nodes[child as usize].next_sibling;
            }
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
    /// Keys come from workers: SipHash with a random key, so that no worker can choose keys that
    /// collide (a faster fixed hash would let one make every lookup a linear scan).
    hasher: RandomState,
    /// Series id by key hash; the keys themselves are in `own_keys`.
    ids: Index,
    /// Every id's key (the registry's own list: reading `keys` takes a lock); a freed id keeps
    /// its last key until it is given again.
    own_keys: Vec<Arc<SeriesKey>>,
    keys: Keys,
    places: Places,
    /// For each series with conflicts, the series it conflicts with.
    conflicts: HashMap<u32, Vec<u32>>,
    /// Series id -> whether it has conflicts (a quick check per entry per interval).
    conflicted: Vec<bool>,
    /// Series id -> how many dictionaries (sources' and this process's) hold it, and the last
    /// interval it had data in (see [`Registry::sweep`]).
    holders: Vec<u32>,
    last: Vec<f64>,
    /// Freed ids, each batch with the era of the deliveries that may still name them; `free`:
    /// ids no delivery names, to give to new series.
    freeing: Vec<(Arc<()>, Vec<u32>)>,
    free: Vec<u32>,
    /// Whether an id is free (not a series).
    freed: Vec<bool>,
    /// Series id -> the node of its place (expiry takes it from there without walking its path).
    place_of: Vec<u32>,
    /// Series id -> its key's hash: expiry takes it out of `ids` without hashing the key again
    /// (SipHash of 100,000 keys per interval under a storm of new series).
    hashes: Vec<u64>,
    /// The pass of expiry under way, and the ids freed by passes that ended (see
    /// [`Registry::sweep`]).
    sweep: Option<Sweep>,
    expired: Vec<u32>,
}

/// A pass of expiry: series idle for `n` intervals up to interval `k` go; ids from `next` on
/// are still to be looked at; `gone`: the ids freed so far.
#[derive(Debug)]
struct Sweep {
    k: f64,
    n: u32,
    next: usize,
    gone: Vec<u32>,
}

/// What freeing a series costs in a slice of expiry, in series looked at (see
/// [`Registry::sweep`]): a look is a few nanoseconds, a free about a microsecond.
const FREE_COST: usize = 64;

impl Registry {
    /// The id of `key`, interning a copy of it when it is new.
    pub fn intern(&mut self, key: &SeriesKey) -> u32 {
        let hash = self.hasher.hash_one(key);
        match self.find(hash, key) {
            Some(id) => id,
            None => self.add(hash, Arc::new(key.clone())),
        }
    }

    /// The id of `key`, if it has one.
    pub fn id(&self, key: &SeriesKey) -> Option<u32> {
        self.find(self.hasher.hash_one(key), key)
    }

    /// How many series have an id.
    pub fn len(&self) -> usize {
        self.ids.len()
    }

    /// Whether no series has an id.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
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

    /// Starts a pass over every series that frees those no dictionary holds that had no data
    /// for `n` intervals up to interval `k` (its key, place and conflicts), a slice at a time
    /// ([`Registry::sweep`]); a pass under way goes on with the later `k`. A freed id is given to
    /// a new series once no delivery made before the end of its pass is left.
    pub fn start_expiry(&mut self, k: f64, n: u32) {
        match &mut self.sweep {
            Some(sweep) => (sweep.k, sweep.n) = (k, n),
            None => {
                self.sweep = Some(Sweep {
                    k,
                    n,
                    next: 0,
                    gone: Vec::new(),
                })
            }
        }
    }

    /// Whether a pass of expiry is under way.
    pub fn sweeping(&self) -> bool {
        self.sweep.is_some()
    }

    /// Goes on with the pass of expiry for about `budget` units of work (a series looked at is
    /// one, a series freed 64: `FREE_COST`); false once no pass is under way. At the end of a
    /// pass its series are named by [`Registry::take_expired`]. In slices so that the lock
    /// around the registry is never held long: freeing 100,000 series (hashing each key again,
    /// leaving its place) takes tens of milliseconds, looking at a million a few.
    pub fn sweep(&mut self, budget: usize) -> bool {
        let Some(mut sweep) = self.sweep.take() else {
            return false;
        };
        let end = self.own_keys.len();
        let mut spent = 0;
        while sweep.next < end && spent < budget {
            let i = sweep.next;
            sweep.next += 1;
            spent += 1;
            if !self.freed[i]
                && self.holders[i] == 0
                && sweep.k - self.last[i] >= f64::from(sweep.n)
            {
                self.free_series(i as u32);
                sweep.gone.push(i as u32);
                spent += FREE_COST;
            }
        }
        if sweep.next < end {
            self.sweep = Some(sweep);
            return true;
        }
        if !sweep.gone.is_empty() {
            // Deliveries made until now may render these ids: each holds the era taken here.
            let era = std::mem::take(&mut self.keys.era);
            self.expired.extend_from_slice(&sweep.gone);
            self.freeing.push((era, sweep.gone));
        }
        false
    }

    /// How many freed series wait for deliveries made before they were freed: their keys and
    /// slots are kept (and their ids not given again) until those deliveries are dropped.
    pub fn pinned(&self) -> usize {
        let waiting = (self.freeing.iter())
            .filter(|(era, _)| Arc::strong_count(era) > 1)
            .map(|(_, ids)| ids.len());
        waiting.sum::<usize>() + self.sweep.as_ref().map_or(0, |sweep| sweep.gone.len())
    }

    /// The series freed by the passes of expiry that ended since the last call.
    pub fn take_expired(&mut self) -> Vec<u32> {
        std::mem::take(&mut self.expired)
    }

    /// A whole pass of expiry at once ([`Registry::start_expiry`], [`Registry::sweep`]); returns
    /// the ids freed.
    #[cfg(test)]
    pub fn expire(&mut self, k: f64, n: u32) -> Vec<u32> {
        self.start_expiry(k, n);
        while self.sweep(usize::MAX) {}
        self.take_expired()
    }

    /// Frees series `id`: its key leaves the index, its place and its conflicts go.
    fn free_series(&mut self, id: u32) {
        let i = id as usize;
        self.ids.remove(self.hashes[i], id);
        self.freed[i] = true;
        self.places.remove(&self.hasher, self.place_of[i], id);
        // Most series have no conflicts: no lookup then.
        if !std::mem::take(&mut self.conflicted[i]) {
            return;
        }
        for other in self.conflicts.remove(&id).unwrap_or_default() {
            if let Some(list) = self.conflicts.get_mut(&other) {
                list.retain(|&x| x != id);
                if list.is_empty() {
                    self.conflicts.remove(&other);
                    self.conflicted[other as usize] = false;
                }
            }
        }
    }

    /// An id for a new series: a freed one no delivery names any more, or the next one.
    fn next_id(&mut self) -> Option<u32> {
        if self.free.is_empty() && !self.freeing.is_empty() {
            // Only when the ready ids ran out: a flood of new series asks for one per series.
            let (ready, waiting): (Vec<_>, Vec<_>) = std::mem::take(&mut self.freeing)
                .into_iter()
                .partition(|(era, _)| Arc::strong_count(era) == 1);
            self.freeing = waiting;
            self.free.extend(ready.into_iter().flat_map(|(_, ids)| ids));
        }
        self.free.pop()
    }

    /// The id of `key`, keeping the given `Arc` when it is new (no copy).
    pub fn intern_shared(&mut self, key: &Arc<SeriesKey>) -> u32 {
        let hash = self.hasher.hash_one(&**key);
        match self.find(hash, key) {
            Some(id) => id,
            None => self.add(hash, key.clone()),
        }
    }

    fn find(&self, hash: u64, key: &SeriesKey) -> Option<u32> {
        let keys = &self.own_keys;
        self.ids.find(hash, |id| *keys[id as usize] == *key)
    }

    fn add(&mut self, hash: u64, key: Arc<SeriesKey>) -> u32 {
        let reused = self.next_id();
        let id = match reused {
            Some(id) => id,
            None => u32::try_from(self.own_keys.len()).expect("more than 2^32 series"),
        };
        // Walk to the series' place: series placed on the way are leaves on its path, series at
        // or below its place overlap it.
        let mut found = Vec::new();
        let mut node = 0;
        for element in key.path.iter().map(String::as_str).chain([key.id.as_str()]) {
            found.extend_from_slice(self.places.nodes[node as usize].series.as_slice());
            node = self.places.child(&self.hasher, node, element);
        }
        self.places.all_series(node, &mut found);
        self.places.nodes[node as usize].series.push(id);
        let i = id as usize;
        if reused.is_some() {
            self.conflicted[i] = !found.is_empty();
            (self.holders[i], self.last[i], self.freed[i]) = (0, f64::NEG_INFINITY, false);
            self.place_of[i] = node;
            self.hashes[i] = hash;
            self.own_keys[i] = key.clone();
            self.keys.set(id, key);
        } else {
            self.conflicted.push(!found.is_empty());
            self.holders.push(0);
            self.last.push(f64::NEG_INFINITY);
            self.freed.push(false);
            self.place_of.push(node);
            self.hashes.push(hash);
            self.own_keys.push(key.clone());
            self.keys.push(key);
        }
        for &other in &found {
            self.conflicts.entry(other).or_default().push(id);
            self.conflicted[other as usize] = true;
        }
        if !found.is_empty() {
            self.conflicts.insert(id, found);
        }
        self.ids.insert(hash, id);
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

    #[test]
    fn a_pass_of_expiry_goes_a_slice_at_a_time_and_sees_what_changes_meanwhile() {
        let mut r = Registry::default();
        let ids: Vec<u32> = (0..6)
            .map(|i| r.intern(&SeriesKey::new("inc", &["p"], &format!("s{i}"))))
            .collect();
        r.touch(&ids, 1.0);
        r.start_expiry(5.0, 2);
        assert!(r.sweeping());
        // A slice frees one series at most.
        assert!(r.sweep(FREE_COST + 1));
        assert_eq!(r.len(), 5);
        // Meanwhile s4 has data again and s5 is held: the pass leaves them.
        r.touch(&ids[4..5], 5.0);
        r.hold(ids[5]);
        // A delivery made during the pass.
        let old = r.keys().clone();
        let mut slices = 1;
        while r.sweep(FREE_COST + 1) {
            slices += 1;
            assert!(r.take_expired().is_empty(), "named once the pass ends");
        }
        assert!(slices >= 4);
        assert!(!r.sweeping());
        assert_eq!(r.take_expired(), ids[..4]);
        assert_eq!(r.len(), 2);
        // The freed ids wait for the deliveries made before the pass ended.
        assert_eq!(r.pinned(), 4);
        let e = r.intern(&SeriesKey::new("inc", &["q"], "e"));
        assert!(!ids[..4].contains(&e));
        drop(old);
        assert_eq!(r.pinned(), 0);
        let f = r.intern(&SeriesKey::new("inc", &["q"], "f"));
        assert!(ids[..4].contains(&f));
    }

    #[test]
    fn places_left_empty_are_freed_and_their_siblings_stay_linked() {
        let mut r = Registry::default();
        let ids: Vec<u32> = ["a", "b", "c"]
            .iter()
            .map(|id| r.intern(&SeriesKey::new("inc", &["x", "y"], id)))
            .collect();
        let nodes = r.places.nodes.len();
        // b, the middle one of x/y's children, goes: its node is freed, a and c still listed.
        r.touch(&[ids[0], ids[2]], 5.0);
        assert_eq!(r.expire(5.0, 1), [ids[1]]);
        assert_eq!(r.places.free.len(), 1);
        let mut below = Vec::new();
        r.places.all_series(0, &mut below);
        below.sort_unstable();
        assert_eq!(below, [ids[0], ids[2]]);
        // A series whose place is x/y itself conflicts with both (found through the list).
        let on_path = r.intern(&SeriesKey::new("inc", &["x"], "y"));
        assert_eq!(excluded(&r, &[ids[0], ids[2], on_path]), [on_path]);
        // All go: every node but the root is freed, and a new series reuses them.
        assert_eq!(r.expire(20.0, 1).len(), 3);
        assert_eq!(r.places.free.len(), nodes - 1);
        r.intern(&SeriesKey::new("inc", &["z"], "w"));
        assert_eq!(r.places.nodes.len(), nodes);
        assert_eq!(r.len(), 1);
    }
}
