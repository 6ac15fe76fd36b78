//! Gives JS a `Float64Array` view of the interval clock's cells (see `panoptic_core::record::clock`).

use napi::bindgen_prelude::{Env, Float64ArraySlice};
use napi_derive::napi;
use panoptic_core::record::clock;

use crate::error::Coded;
use crate::memory::{view, Owner};

/// A `Float64Array` over the clock cells: cell `i` holds the current interval number of the grid
/// registered as cell `i`. Each isolate (main thread, worker thread) gets its own view of the same
/// process-wide, static memory.
#[napi(catch_unwind)]
pub fn clock_cells(env: &Env) -> Result<Float64ArraySlice<'_>, Coded> {
    view(env, clock::cells(), Owner::Static)
}

/// The current interval number of the grid `start + k * interval`, read from the same clock the
/// clock thread uses.
#[napi]
pub fn interval_index(start: f64, interval: f64) -> f64 {
    clock::index_at(clock::now_ms(), start, interval)
}
