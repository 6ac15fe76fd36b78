//! `NativeEngine`: one Panopticon instance's native state: its interval clock cell, its open
//! interval, and (on a master) the snapshots gathered for delivery.

use napi_derive::napi;
use panoptic_core::clock;
use panoptic_core::engine::{Engine, JsValue, Kind};
use panoptic_core::gather::{Gathering, Rejection};
use panoptic_core::snapshot::{SeriesKey, Snapshot};
use panoptic_core::tree::{render, Format};
use panoptic_core::wire::encode;

use crate::error::{clock_error, coded, Coded, BAD_KIND, NO_INTERVAL};

/// Where a newly defined series lives.
#[napi(object)]
pub struct SeriesDefinition {
    /// Dense series id (for summaries: the id JS writes into the batch buffer).
    pub id: u32,
    /// For a counter, its first slot across the pages (page = slot / pageSlots).
    pub slot: Option<u32>,
}

/// One instance's native state.
#[napi]
pub struct NativeEngine {
    engine: Engine,
    gathering: Gathering,
    closed: Option<Snapshot>,
    cell: Option<usize>,
    start: f64,
    interval: f64,
    scale_factor: f64,
}

#[napi]
impl NativeEngine {
    /// Registers the grid `start + k * interval` with the clock thread.
    #[napi(constructor, catch_unwind)]
    pub fn new(start: f64, interval: f64, scale_factor: f64, persist: bool) -> Result<Self, Coded> {
        let cell = clock::register(start, interval).map_err(clock_error)?;
        Ok(NativeEngine {
            engine: Engine::new(persist),
            gathering: Gathering::default(),
            closed: None,
            cell: Some(cell),
            start,
            interval,
            scale_factor,
        })
    }

    /// The index of this instance's cell in `clockCells()`.
    #[napi(getter)]
    pub fn cell(&self) -> Option<u32> {
        self.cell.map(|c| c as u32)
    }

    /// Adds a series: kind 0 counter, 1 summary, 2 set, 3 registered logger.
    #[napi(catch_unwind)]
    pub fn define(
        &mut self,
        kind: u32,
        method: String,
        path: Vec<String>,
        id: String,
    ) -> Result<SeriesDefinition, Coded> {
        let kind = Kind::from_code(kind)
            .ok_or_else(|| coded(BAD_KIND, format!("unknown series kind {kind}")))?;
        let d = self.engine.define(kind, SeriesKey { method, path, id });
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

    /// Closes interval `k`: reads and zeroes the counter pages and takes the JS series' values
    /// (parallel arrays: series id, JSON text, write time). The snapshot is then shipped, kept or
    /// rendered with the methods below.
    #[napi(catch_unwind)]
    #[allow(clippy::too_many_arguments)]
    pub fn close_interval(
        &mut self,
        k: f64,
        mut pages: Vec<&mut [f64]>,
        js_ids: Vec<u32>,
        js_json: Vec<String>,
        js_at: Vec<f64>,
        dropped: f64,
        errors: f64,
    ) {
        let js = js_ids
            .into_iter()
            .zip(js_json)
            .zip(js_at)
            .map(|((id, json), at)| JsValue { id, json, at })
            .collect();
        self.closed = Some(self.engine.close(k, &mut pages, js, dropped, errors));
    }

    /// The closed interval's tree as JSON text (for 'sample' listeners).
    #[napi(catch_unwind)]
    pub fn closed_tree(&self) -> Result<String, Coded> {
        let closed = self.closed()?;
        let mut out = Vec::new();
        render(&closed.entries, true, &self.format(closed.k), &mut out);
        Ok(String::from_utf8(out).expect("the tree writer writes UTF-8"))
    }

    /// A cluster worker: the closed interval as base64 text for the master.
    #[napi(catch_unwind)]
    pub fn ship(&mut self) -> Result<String, Coded> {
        let text = encode(self.closed()?);
        self.closed = None;
        Ok(text)
    }

    /// A master or standalone process: keeps the closed interval until its delivery.
    #[napi(catch_unwind)]
    pub fn keep(&mut self) -> Result<(), Coded> {
        self.closed()?;
        if let Some(snapshot) = self.closed.take() {
            self.gathering.keep_local(snapshot);
        }
        Ok(())
    }

    /// Takes a worker's snapshot while this process is in interval `current`: 0 kept, 1 late
    /// (counted in `late`), 2 rejected (counted in `decodeErrors`). Never throws.
    #[napi(catch_unwind)]
    pub fn receive(&mut self, worker: u32, text: String, current: f64) -> u32 {
        match self.gathering.receive(worker, &text, current) {
            Ok(()) => 0,
            Err(Rejection::Late) => 1,
            Err(Rejection::Decode(_)) => 2,
        }
    }

    /// Counts a panoptic message that could not be routed to any instance.
    #[napi]
    pub fn note_decode_error(&mut self) {
        self.gathering.note_decode_error();
    }

    /// Delivers interval `k` and forgets everything up to it. JSON text:
    /// `{ master: tree | null, workers: { id: tree }, cluster: tree, custom: [{ method, path, id,
    /// leaves }], collisions: [description], meta: { workers: { id: pid }, late, decodeErrors,
    /// dropped, errors } }`.
    #[napi(catch_unwind)]
    pub fn deliver(&mut self, k: f64) -> String {
        let format = self.format(k);
        self.gathering.deliver(k, &format)
    }

    /// Frees the clock cell. Idempotent; also done when the object is garbage collected.
    #[napi]
    pub fn release(&mut self) {
        if let Some(cell) = self.cell.take() {
            clock::unregister(cell);
        }
    }
}

impl NativeEngine {
    fn closed(&self) -> Result<&Snapshot, Coded> {
        self.closed
            .as_ref()
            .ok_or_else(|| coded(NO_INTERVAL, "no closed interval: call closeInterval first"))
    }

    fn format(&self, k: f64) -> Format {
        Format {
            interval: self.interval,
            scale_factor: self.scale_factor,
            time_stamp: self.start + (k + 1.0) * self.interval,
        }
    }
}

impl Drop for NativeEngine {
    fn drop(&mut self) {
        self.release();
    }
}
