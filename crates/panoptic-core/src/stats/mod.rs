//! The statistics panoptic keeps per series, as pure algorithms: exact summaries, HDR and sampling
//! distributions, meters with moving-average rates, rates of cumulative counters. Each merges
//! exactly (or as well as its kind allows) and encodes itself ([`crate::bytes`]).

mod hdr;
pub mod histogram;
pub mod meter;
pub mod rate;
pub mod reservoir;
pub mod summary;
