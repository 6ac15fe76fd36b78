//! panoptic's metric engine, free of any Node.js binding: the interval clock, the per-instance
//! interval state, and the summaries behind panopticon's loggers. The napi binding (the root crate)
//! only converts arguments and errors.

pub mod clock;
pub mod engine;
pub mod summary;
