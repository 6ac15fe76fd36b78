//! OTLP/JSON: the protobuf JSON mapping with OTLP's exceptions, from the generated messages'
//! serde form.
//!
//! `opentelemetry-proto`'s serde already writes what OTLP/JSON asks for: lowerCamelCase field
//! names, 64-bit integers as decimal strings (`"timeUnixNano": "1700000001000000000"`,
//! `"intValue": "12"`), enums as integers, oneofs as their member's field
//! (`"asDouble": 1.5`). What differs from the mapping, fixed here:
//! - unset optional fields and messages (`sum`, `min`, `max`, `negative`) come out as `null`,
//!   which the mapping allows but strict readers of older OTLP versions do not: left out;
//! - empty repeated fields (`exemplars`, and `metadata` / `entityRefs`, fields newer than many
//!   receivers, whose JSON readers refuse names they do not know): left out, as the mapping's
//!   default-value rule allows.
//!
//! The encoder never puts a NaN or an infinity in a double (the mapping would want them as
//! strings; serde_json writes `null`): such points are flagged "no recorded value" instead.

use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest;
use serde_json::Value as Json;

/// The request as OTLP/JSON text.
pub fn to_vec(request: &ExportMetricsServiceRequest) -> Vec<u8> {
    // Serialising generated messages into a Value cannot fail (string keys, no maps of
    // non-string keys); an empty object stands for the impossible failure.
    let mut value =
        serde_json::to_value(request).unwrap_or_else(|_| Json::Object(Default::default()));
    prune(&mut value);
    serde_json::to_vec(&value).unwrap_or_default()
}

/// Leaves out `null`s and empty arrays, at every depth.
fn prune(value: &mut Json) {
    match value {
        Json::Object(map) => {
            map.retain(|_, v| !(v.is_null() || v.as_array().is_some_and(Vec::is_empty)));
            map.values_mut().for_each(prune);
        }
        Json::Array(items) => items.iter_mut().for_each(prune),
        _ => {}
    }
}

/// `partialSuccess` of an OTLP/JSON answer: rejected points (a string or a number) and the
/// message.
pub(super) fn partial_success(body: &[u8]) -> Option<(i64, String)> {
    let answer: Json = serde_json::from_slice(body).ok()?;
    let partial = answer.get("partialSuccess")?;
    let rejected = match partial.get("rejectedDataPoints") {
        Some(Json::String(text)) => text.parse().ok()?,
        Some(Json::Number(n)) => n.as_i64()?,
        _ => 0,
    };
    let message = (partial.get("errorMessage").and_then(Json::as_str))
        .unwrap_or_default()
        .to_string();
    Some((rejected, message))
}
