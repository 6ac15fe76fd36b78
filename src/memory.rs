//! `Float64Array` views of native memory: the clock cells, and each engine's counter pages and
//! batch buffer. JS writes them with plain stores; Rust reads them through atomics.

use std::ffi::c_void;
use std::ptr;
use std::sync::atomic::AtomicU64;
use std::sync::Arc;

use napi::bindgen_prelude::{Env, Float64ArraySlice, FromNapiValue};
use napi::sys;
use panoptic_core::record::engine::Cells;

use crate::error::{coded, Coded, NO_EXTERNAL_BUFFERS};

/// What keeps the viewed memory alive: nothing for static memory, else a reference to the cells
/// that the ArrayBuffer's finalizer drops.
pub enum Owner {
    Static,
    Shared(Arc<Cells>),
}

unsafe extern "C" fn release(_env: sys::napi_env, _data: *mut c_void, hint: *mut c_void) {
    // SAFETY: `hint` is the `Box<Arc<Cells>>` leaked in `view`, finalized exactly once by Node.
    drop(unsafe { Box::from_raw(hint.cast::<Arc<Cells>>()) });
}

/// A `Float64Array` over `memory` (no copy). Fails with PANOPTIC_NO_EXTERNAL_BUFFERS where the
/// runtime refuses or copies external memory: a copy would silently cut JS off from the engine.
pub fn view<'env>(
    env: &'env Env,
    memory: &[AtomicU64],
    owner: Owner,
) -> Result<Float64ArraySlice<'env>, Coded> {
    let data = memory.as_ptr().cast_mut().cast::<c_void>();
    let bytes = std::mem::size_of_val(memory);
    let (finalize, hint): (sys::napi_finalize, *mut c_void) = match owner {
        Owner::Static => (None, ptr::null_mut()),
        Owner::Shared(cells) => (Some(release), Box::into_raw(Box::new(cells)).cast()),
    };
    let mut buffer = ptr::null_mut();
    // SAFETY: `data` points to `bytes` bytes that stay valid until the finalizer drops `hint`'s
    // Arc (or forever, for static memory). The memory is 8-byte aligned (AtomicU64).
    let status = unsafe {
        sys::napi_create_external_arraybuffer(env.raw(), data, bytes, finalize, hint, &mut buffer)
    };
    if status != sys::Status::napi_ok {
        if finalize.is_some() {
            // SAFETY: Node did not take the hint: it is still ours to free.
            unsafe { release(env.raw(), data, hint) };
        }
        return Err(coded(
            NO_EXTERNAL_BUFFERS,
            format!("this runtime refuses external ArrayBuffers (napi status {status}); panoptic needs them to share memory with JS"),
        ));
    }
    let mut array = ptr::null_mut();
    // SAFETY: `buffer` is a valid ArrayBuffer holding `memory.len()` f64.
    let status = unsafe {
        sys::napi_create_typedarray(
            env.raw(),
            sys::TypedarrayType::float64_array,
            memory.len(),
            buffer,
            0,
            &mut array,
        )
    };
    if status != sys::Status::napi_ok {
        return Err(coded(
            NO_EXTERNAL_BUFFERS,
            format!("creating a view of native memory failed (napi status {status})"),
        ));
    }
    // SAFETY: `array` is the Float64Array just created in this env.
    let view = unsafe { Float64ArraySlice::from_napi_value(env.raw(), array) }
        .map_err(|e| coded(NO_EXTERNAL_BUFFERS, e.reason.clone()))?;
    if view.as_ptr() != memory.as_ptr().cast::<f64>() {
        return Err(coded(
            NO_EXTERNAL_BUFFERS,
            "this runtime copied an external ArrayBuffer; panoptic needs shared memory",
        ));
    }
    Ok(view)
}
