//! Gives JS a `Float64Array` view of the interval clock's cells (see `panoptic_core::clock`).

use std::ptr;

use napi::bindgen_prelude::{Env, Float64ArraySlice, FromNapiValue};
use napi::sys;
use napi_derive::napi;
use panoptic_core::clock;

use crate::error::{coded, Coded, NO_EXTERNAL_BUFFERS};

/// A `Float64Array` over the clock cells: cell `i` holds the current interval number of the grid
/// registered as cell `i`. Each isolate (main thread, worker thread) gets its own view of the same
/// process-wide memory.
#[napi(catch_unwind)]
pub fn clock_cells(env: &Env) -> Result<Float64ArraySlice<'_>, Coded> {
    let cells = clock::cells();
    let bytes = std::mem::size_of_val(cells);
    let data = cells.as_ptr().cast_mut().cast::<std::ffi::c_void>();
    let mut buffer = ptr::null_mut();
    // SAFETY: the cells are a `static` array: the memory outlives every isolate, so the external
    // ArrayBuffer needs no finalizer. JS reads and writes it as plain f64; Rust only touches it
    // through `AtomicU64`, so Rust never reads a torn or stale value (JS never writes the cells).
    let status = unsafe {
        sys::napi_create_external_arraybuffer(
            env.raw(),
            data,
            bytes,
            None,
            ptr::null_mut(),
            &mut buffer,
        )
    };
    if status != sys::Status::napi_ok {
        return Err(coded(
            NO_EXTERNAL_BUFFERS,
            format!(
                "this runtime refuses external ArrayBuffers (napi status {status}); panoptic needs them for its interval clock"
            ),
        ));
    }
    let mut array = ptr::null_mut();
    // SAFETY: `buffer` is a valid ArrayBuffer of `bytes` bytes, 8-byte aligned (AtomicU64 array).
    let status = unsafe {
        sys::napi_create_typedarray(
            env.raw(),
            sys::TypedarrayType::float64_array,
            clock::CELLS,
            buffer,
            0,
            &mut array,
        )
    };
    if status != sys::Status::napi_ok {
        return Err(coded(
            NO_EXTERNAL_BUFFERS,
            format!("creating the clock view failed (napi status {status})"),
        ));
    }
    // SAFETY: `array` is the Float64Array just created in this env.
    let view = unsafe { Float64ArraySlice::from_napi_value(env.raw(), array) }
        .map_err(|e| coded(NO_EXTERNAL_BUFFERS, e.reason.clone()))?;
    // A runtime that copies external data (instead of refusing it) would give JS a frozen clock.
    if view.as_ptr() != cells.as_ptr().cast::<f64>() {
        return Err(coded(
            NO_EXTERNAL_BUFFERS,
            "this runtime copied the clock's external ArrayBuffer; panoptic needs shared memory",
        ));
    }
    Ok(view)
}

/// The current interval number of the grid `start + k * interval`, read from the same clock the
/// clock thread uses.
#[napi]
pub fn interval_index(start: f64, interval: f64) -> f64 {
    clock::index_at(clock::now_ms(), start, interval)
}
