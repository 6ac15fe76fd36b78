//! `Distribution::decode`: a histogram series' interval (HDR counts, or a uniform or decaying
//! reservoir) as it travels inside a wire message.
//!
//! Checked: no panic; what decodes re-encodes to bytes that decode, whole, to the same encoding;
//! a decoded histogram merges with itself (as the master merges two workers' parts) without
//! panicking.
#![no_main]

use libfuzzer_sys::fuzz_target;
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
    // A merge must not panic. Its encoding is not checked: at extreme values (counts near
    // 2^53, sums near f64::MAX) the merge of two valid histograms is one the decoder refuses
    // (FUZZING.md, "Noted"); the master never re-encodes a merge.
    let mut merged = d.clone();
    let _ = merged.merge(&d);
});
