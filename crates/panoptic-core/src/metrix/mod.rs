//! metrix 2.0's histograms, in Rust: the bucketed histogram of its Aggregator and the frugal
//! quantile estimates (the JS side is `lib/metrix/`, the binding `src/metrix.rs`).

pub mod bucketed;
pub mod frugal;
