//! panoptic's metric engine, free of any Node.js binding: the interval clock, the per-instance
//! interval state, the metric algorithms (summaries, HDR and sampling distributions, meters,
//! rates, metrix's histograms), snapshots (their wire form, exact merge and delivery trees), the
//! master's gathering of its workers' snapshots (merged as they arrive, by series ids from its
//! registry), and tracing. The napi binding (the root crate) only converts arguments and errors.

pub mod bucketed;
pub mod bytes;
pub mod clock;
pub mod engine;
pub mod export;
pub mod filter;
pub mod frugal;
pub mod gather;
mod hdr;
pub mod histogram;
pub mod intake;
pub mod json;
pub mod meter;
pub mod rate;
pub mod registry;
pub mod reservoir;
pub mod snapshot;
pub mod summary;
pub mod tags;
pub mod threads;
pub mod trace;
pub mod tree;
pub mod wire;
