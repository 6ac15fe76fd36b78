//! `wire::decode`: a snapshot message as a worker sends it. The fuzzer's bytes are the binary
//! form; they are base64-encoded first (as the IPC carries them), so mutations land on the
//! format rather than on the base64 alphabet (whose check is one library call).
//!
//! Checked: no panic on any input, and a decoded message re-encodes to a message that decodes
//! and re-encodes to the same bytes (what the master accepts, a worker could have sent).
#![no_main]

use std::sync::Arc;

use base64::Engine as _;
use libfuzzer_sys::fuzz_target;
use panoptic_core::snapshot::{Entry, SeriesKey, Snapshot};
use panoptic_core::wire::{self, Keys, Message};

/// The message as `wire::encode` would write it (its entries' keys are the indexes it carries).
fn encode(m: &Message) -> String {
    let key = Arc::new(SeriesKey::new("", &[], ""));
    let snapshot = Snapshot {
        k: m.k,
        profile: m.profile,
        pid: m.pid,
        counts: m.counts,
        footprint: m.footprint,
        entries: (m.values.iter())
            .map(|value| Entry {
                key: key.clone(),
                value: value.clone(),
            })
            .collect(),
    };
    let definitions: Vec<(u32, &SeriesKey, wire::Untouched)> =
        m.definitions.iter().map(|(i, k, u)| (*i, k, *u)).collect();
    wire::encode(
        &snapshot,
        Keys::Delta {
            indexes: &m.indexes,
            definitions: &definitions,
            forgotten: &m.forgotten,
            dictionary: m.dictionary,
        },
    )
}

fuzz_target!(|data: &[u8]| {
    let text = base64::engine::general_purpose::STANDARD.encode(data);
    let Ok(message) = wire::decode(&text) else {
        return;
    };
    assert_eq!(message.indexes.len(), message.values.len());
    let first = encode(&message);
    let again = wire::decode(&first).expect("a re-encoded message decodes");
    assert_eq!(encode(&again), first, "re-encoding is stable");
});
