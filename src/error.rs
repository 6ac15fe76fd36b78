//! The one place where core errors become JS errors. Every error carries a stable `code`
//! (napi-rs puts an error's status string into the JS error's `code` property).

use napi::Error;
use napi_derive::napi;
use panoptic_core::filter::FilterError;
use panoptic_core::record::clock::ClockError;

/// Stable error codes, documented in docs/warnings-and-errors.md.
pub const TOO_MANY_INSTANCES: &str = "PANOPTIC_TOO_MANY_INSTANCES";
pub const BAD_GRID: &str = "PANOPTIC_BAD_GRID";
pub const BAD_OPTIONS: &str = "PANOPTIC_BAD_OPTIONS";
/// `serve()`'s `tls.cert` or `tls.key` can not be used (not PEM, no certificate or key, a key
/// that is not the certificate's).
pub const BAD_TLS: &str = "PANOPTIC_TLS";
pub const NO_EXTERNAL_BUFFERS: &str = "PANOPTIC_NO_EXTERNAL_BUFFERS";
pub const NO_INTERVAL: &str = "PANOPTIC_NO_INTERVAL";
pub const NO_PAGE: &str = "PANOPTIC_NO_PAGE";
pub const NOT_DELIVERING: &str = "PANOPTIC_NOT_DELIVERING";
pub const TRACE_PATTERN: &str = "PANOPTIC_TRACE_PATTERN";
pub const TRACE_PROTOCOL: &str = "PANOPTIC_TRACE_PROTOCOL";
pub const TRACE_FOLDER: &str = "PANOPTIC_TRACE_FOLDER";
pub const TRACE_SOCKET: &str = "PANOPTIC_TRACE_SOCKET";
pub const TRANSPORT: &str = "PANOPTIC_TRANSPORT";

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

/// A filter expression that does not compile, as `lib/filter.js` turns it into a `SyntaxError`
/// (a core error's position does not fit in a napi error's code and message).
#[napi(object)]
pub struct FilterProblem {
    /// `filter: at position N: expected ..., found ...`.
    pub message: String,
    /// Where, in characters from 0.
    pub position: u32,
}

/// Converts a filter expression's error.
pub fn filter_problem(e: FilterError) -> FilterProblem {
    FilterProblem {
        message: e.to_string(),
        position: u32::try_from(e.position).unwrap_or(u32::MAX),
    }
}
