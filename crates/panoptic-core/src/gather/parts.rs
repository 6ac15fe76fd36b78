//! What the gathering hands to a delivery: each process's or thread's part of an interval, and
//! the interval's counts and warnings (below both, so that neither depends on the other's
//! insides).

use std::collections::BTreeMap;

use crate::snapshot::{Counts, Footprint, Value};

/// One process's or thread's interval, its series named by id (a [`crate::snapshot::Snapshot`] without keys).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Part {
    pub k: f64,
    pub pid: u32,
    pub counts: Counts,
    /// What its engine held at the close of the interval.
    pub footprint: Footprint,
    pub ids: Vec<u32>,
    pub values: Vec<Value>,
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
