//! The master's side (and a standalone process's): the snapshots of an instance's own process,
//! its cluster workers and its threads, merged as they arrive on the intake thread
//! ([`intake`]), by master-wide series ids ([`registry`]), into each interval's cluster view
//! ([`gathering`]), until the interval is delivered ([`delivery`]) and written as trees
//! ([`tree`]).

pub mod delivery;
pub mod gathering;
pub mod intake;
pub mod parts;
pub mod registry;
pub mod tree;

pub use delivery::{DeliveredPart, Delivery, Tree};
pub use gathering::{Gathering, Rejection, Source, MISMATCH, REFUSED, UNMATCHED};
pub use parts::{Meta, Warning};
