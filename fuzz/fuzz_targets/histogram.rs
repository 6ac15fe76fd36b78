//! `Distribution::decode`: a histogram series' interval (HDR counts, or a uniform or decaying
//! reservoir) as it travels inside a wire message.
//!
//! Checked: no panic; what decodes re-encodes to bytes that decode, whole, to the same encoding;
//! a decoded histogram merges with itself (as the master merges two workers' parts) without
//! panicking, and the merge's result still encodes to something that decodes (unless its count
//! passed 2^53).
#![no_main]

use libfuzzer_sys::fuzz_target;
use panoptic_core::bytes::DecodeError;
use panoptic_core::stats::histogram::Distribution;

fn encode(d: &Distribution) -> Vec<u8> {
    let mut out = Vec::new();
    d.encode(&mut out);
    out
}

fuzz_target!(|data: &[u8]| {
    let Ok((d, read)) = Distribution::decode(data) else {
        return;
    };
    assert!(read <= data.len());
    let first = encode(&d);
    let (again, n) = Distribution::decode(&first).expect("a re-encoded histogram decodes");
    assert_eq!(n, first.len(), "the whole encoding is read");
    assert_eq!(encode(&again), first, "re-encoding is stable");
    let mut merged = d.clone();
    if merged.merge(&d).is_ok() {
        let bytes = encode(&merged);
        // The one refusal allowed: a count past 2^53 (two decoded counts near the limit), which
        // an f64 no longer holds exactly; no interval records that many values, and the master
        // never re-encodes a merge.
        match Distribution::decode(&bytes) {
            Ok(_) | Err(DecodeError::Invalid("count")) => {}
            Err(e) => panic!("a merged histogram's encoding decodes, got {e:?}"),
        }
    }
});
