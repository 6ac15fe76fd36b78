//! The napi binding of panoptic: thin wrappers over `panoptic-core`. No metric logic lives here;
//! `index.js` and `lib/` build the Panopticon API on top of these.

mod clock;
mod delivery;
mod engine;
mod error;
mod export;
mod filter;
mod loop_delay;
// The binding's one unsafe module: external ArrayBuffers over engine-owned memory (its SAFETY
// comments say why each block is sound).
#[allow(unsafe_code)]
mod memory;
mod metrix;
mod trace;
mod transport;

pub use clock::*;
pub use delivery::*;
pub use engine::*;
pub use export::*;
pub use filter::*;
pub use loop_delay::*;
pub use metrix::*;
pub use trace::*;
pub use transport::*;

use napi_derive::napi;
use panoptic_core::record::engine::{BATCH_LENGTH, PAGE_SLOTS, RUN_HEADER};

/// Sizes shared by the native engine and the JS recorders.
#[napi(object)]
pub struct Layout {
    /// `f64` slots in one counter page.
    pub page_slots: u32,
    /// Length in `f64` of the batch buffer of runs of values (its view has one more cell, NaN).
    pub batch_length: u32,
    /// The first cell of a run's header in the batch (-Infinity); the second is the series id.
    pub run_header: f64,
}

/// The sizes the JS side must use when it writes into native-read memory.
#[napi]
pub fn layout() -> Layout {
    Layout {
        page_slots: PAGE_SLOTS as u32,
        batch_length: BATCH_LENGTH as u32,
        run_header: RUN_HEADER,
    }
}
