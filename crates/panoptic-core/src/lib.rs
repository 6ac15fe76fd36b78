//! panoptic's metric engine, free of any Node.js binding: the interval clock, the per-instance
//! interval state, the metric algorithms (summaries, HDR and sampling distributions, meters,
//! rates, metrix's histograms), snapshots (their wire form, exact merge and delivery trees), the
//! master's gathering of its workers' snapshots (merged as they arrive, by series ids from its
//! registry), and tracing. The napi binding (the root crate) only converts arguments and errors.
#![forbid(unsafe_code)]

mod background;
pub mod bytes;
pub mod export;
pub mod filter;
pub mod gather;
pub mod json;
pub mod metrix;
pub mod record;
pub mod snapshot;
#[cfg(unix)]
pub mod socket;
pub mod stats;
pub mod tags;
#[cfg(test)]
mod testing;
pub mod trace;
#[cfg(unix)]
pub mod transport;
pub mod wire;
