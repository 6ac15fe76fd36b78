//! `NativeEngine`: one Panopticon instance's interval state and its clock cell.

use napi::bindgen_prelude::Float64Array;
use napi_derive::napi;
use panoptic_core::clock;
use panoptic_core::engine::{Engine, Kind};

use crate::error::{clock_error, coded, Coded, BAD_KIND};

/// Where a newly defined series lives.
#[napi(object)]
pub struct SeriesDefinition {
    /// Dense series id (for summaries: the id JS writes into the batch buffer).
    pub id: u32,
    /// For a counter, its first slot across the pages (page = slot / pageSlots).
    pub slot: Option<u32>,
}

/// One instance's native state: its interval clock cell and its current interval's aggregates.
#[napi]
pub struct NativeEngine {
    engine: Engine,
    cell: Option<usize>,
}

#[napi]
impl NativeEngine {
    /// Registers the grid `start + k * interval` with the clock thread.
    #[napi(constructor, catch_unwind)]
    pub fn new(start: f64, interval: f64, scale_factor: f64, persist: bool) -> Result<Self, Coded> {
        let cell = clock::register(start, interval).map_err(clock_error)?;
        Ok(NativeEngine {
            engine: Engine::new(interval, scale_factor, persist),
            cell: Some(cell),
        })
    }

    /// The index of this instance's cell in `clockCells()`.
    #[napi(getter)]
    pub fn cell(&self) -> Option<u32> {
        self.cell.map(|c| c as u32)
    }

    /// Adds a series: kind 0 = counter, 1 = summary.
    #[napi(catch_unwind)]
    pub fn define(&mut self, kind: u32) -> Result<SeriesDefinition, Coded> {
        let kind = Kind::from_code(kind)
            .ok_or_else(|| coded(BAD_KIND, format!("unknown series kind {kind}")))?;
        let d = self.engine.define(kind);
        Ok(SeriesDefinition {
            id: d.id,
            slot: d.slot,
        })
    }

    /// Folds the first `length` numbers of `batch` (`(series id, value)` pairs) into summaries.
    #[napi(catch_unwind)]
    pub fn push(&mut self, batch: &[f64], length: u32) {
        let end = (length as usize).min(batch.len());
        self.engine.push(&batch[..end]);
    }

    /// Reads and zeroes the counter pages, and returns the interval's records.
    #[napi(catch_unwind)]
    pub fn collect(&mut self, mut pages: Vec<&mut [f64]>) -> Float64Array {
        let mut out = Vec::new();
        self.engine.collect(&mut pages, &mut out);
        Float64Array::new(out)
    }

    /// `(series id, value)` pairs rejected since the last call (an internal error if not 0).
    #[napi]
    pub fn take_rejected(&mut self) -> f64 {
        self.engine.take_rejected() as f64
    }

    /// Frees the clock cell. Idempotent; also done when the object is garbage collected.
    #[napi]
    pub fn close(&mut self) {
        if let Some(cell) = self.cell.take() {
            clock::unregister(cell);
        }
    }
}

impl Drop for NativeEngine {
    fn drop(&mut self) {
        self.close();
    }
}
