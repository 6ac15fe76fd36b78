//! The one place where core errors become JS errors. Every error carries a stable `code`
//! (napi-rs puts an error's status string into the JS error's `code` property).

use napi::Error;
use panoptic_core::clock::ClockError;

/// Stable error codes, documented in the README.
pub const TOO_MANY_INSTANCES: &str = "PANOPTIC_TOO_MANY_INSTANCES";
pub const BAD_GRID: &str = "PANOPTIC_BAD_GRID";
pub const BAD_KIND: &str = "PANOPTIC_BAD_KIND";
pub const NO_EXTERNAL_BUFFERS: &str = "PANOPTIC_NO_EXTERNAL_BUFFERS";
pub const NO_INTERVAL: &str = "PANOPTIC_NO_INTERVAL";
pub const NO_PAGE: &str = "PANOPTIC_NO_PAGE";
pub const BAD_OPTIONS: &str = "PANOPTIC_BAD_OPTIONS";
pub const TRACE_PATTERN: &str = "PANOPTIC_TRACE_PATTERN";
pub const TRACE_PROTOCOL: &str = "PANOPTIC_TRACE_PROTOCOL";
pub const TRACE_FOLDER: &str = "PANOPTIC_TRACE_FOLDER";
pub const TRACE_SOCKET: &str = "PANOPTIC_TRACE_SOCKET";

/// A JS error with a stable code.
pub type Coded = Error<String>;

/// An error with a stable code.
pub fn coded(code: &str, message: impl Into<String>) -> Coded {
    Error::new(code.to_string(), message.into())
}

/// Converts a clock registration error.
pub fn clock_error(e: ClockError) -> Coded {
    let code = match e {
        ClockError::Full => TOO_MANY_INSTANCES,
        ClockError::BadGrid { .. } => BAD_GRID,
    };
    coded(code, e.to_string())
}
