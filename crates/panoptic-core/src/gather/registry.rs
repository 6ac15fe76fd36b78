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
}

/// A node of the tree of places, in [`Places`]' arena: the series whose place it is, and a list
/// of the nodes below it (first child, then siblings). Small: there is one per series (its id's
/// place), nearly always with one series and nothing below.
#[derive(Debug)]
struct Node {
    element: Box<str>,
    parent: u32,
    first_child: u32,
    next_sibling: u32,
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
}

/// The tree of places: nodes in one arena (node 0 is the root), found by parent and path element
/// through an [`Index`], so that a place with a million children grows like any other index.
#[derive(Debug)]
struct Places {
    nodes: Vec<Node>,
    children: Index,
}

impl Default for Places {
    fn default() -> Places {
        Places {
            nodes: vec![Node {
                element: "".into(),
                parent: NO_NODE,
                first_child: NO_NODE,
                next_sibling: NO_NODE,
                series: Here::None,
            }],
            children: Index::default(),
        }
    }
}

impl Places {
    /// The child of node `parent` at `element`, made when missing.
    fn child(&mut self, hasher: &RandomState, parent: u32, element: &str) -> u32 {
        let hash = hasher.hash_one((parent, element));
        let nodes = &self.nodes;
        let is = |n: u32| {
            let node = &nodes[n as usize];
            node.parent == parent && &*node.element == element
        };
        if let Some(n) = self.children.find(hash, is) {
            return n;
        }
        let n = u32::try_from(self.nodes.len()).expect("more than 2^32 places");
        let up = &mut self.nodes[parent as usize];
        let next_sibling = std::mem::replace(&mut up.first_child, n);
        self.nodes.push(Node {
            element: element.into(),
            parent,
            first_child: NO_NODE,
            next_sibling,
            series: Here::None,
        });
        self.children.insert(hash, n);
        n
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

/// Every series' key by id, shared with the deliveries that render trees from ids. Only ever
/// appended to: a key, once there, never changes.
#[derive(Debug, Clone, Default)]
pub struct Keys(Arc<RwLock<Vec<Arc<SeriesKey>>>>);

impl Keys {
    /// Calls `f` with the keys (indexed by series id).
    pub fn with<T>(&self, f: impl FnOnce(&[Arc<SeriesKey>]) -> T) -> T {
        // Append-only: a panic elsewhere cannot have left the list half-changed.
        f(&self.0.read().unwrap_or_else(|e| e.into_inner()))
    }

    fn push(&self, key: Arc<SeriesKey>) {
        self.0.write().unwrap_or_else(|e| e.into_inner()).push(key);
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
    /// Every series' key by id (the registry's own list: reading `keys` takes a lock).
    own_keys: Vec<Arc<SeriesKey>>,
    keys: Keys,
    places: Places,
    /// For each series with conflicts, the series it conflicts with.
    conflicts: HashMap<u32, Vec<u32>>,
    /// Series id -> whether it has conflicts (a quick check per entry per interval).
    conflicted: Vec<bool>,
}

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
        self.own_keys.len()
    }

    /// Whether no series has an id yet.
    pub fn is_empty(&self) -> bool {
        self.own_keys.is_empty()
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
        let id = u32::try_from(self.own_keys.len()).expect("more than 2^32 series");
        // Walk to the series' place: series placed on the way are leaves on its path, series at
        // or below its place overlap it.
        let mut found = Vec::new();
        let mut node = 0;
        for element in key.path.iter().chain(std::iter::once(&key.id)) {
            found.extend_from_slice(self.places.nodes[node as usize].series.as_slice());
            node = self.places.child(&self.hasher, node, element);
        }
        self.places.all_series(node, &mut found);
        self.places.nodes[node as usize].series.push(id);
        self.conflicted.push(!found.is_empty());
        for &other in &found {
            self.conflicts.entry(other).or_default().push(id);
            self.conflicted[other as usize] = true;
        }
        if !found.is_empty() {
            self.conflicts.insert(id, found);
        }
        self.ids.insert(hash, id);
        self.own_keys.push(key.clone());
        self.keys.push(key);
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
}
