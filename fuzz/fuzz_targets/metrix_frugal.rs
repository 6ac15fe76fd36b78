//! `FrugalSnapshot::decode` (metrix's frugal streaming quantiles across the cluster).
//!
//! Checked: no panic; what decodes re-encodes stably; it merges with itself without panicking
//! and the merge still decodes (estimates stay within `[min, max]`).
#![no_main]

use libfuzzer_sys::fuzz_target;
use panoptic_core::metrix::frugal::FrugalSnapshot;

fn encode(s: &FrugalSnapshot) -> Vec<u8> {
    let mut out = Vec::new();
    s.encode(&mut out);
    out
}

fuzz_target!(|data: &[u8]| {
    let Ok((s, read)) = FrugalSnapshot::decode(data) else {
        return;
    };
    assert!(read <= data.len());
    let first = encode(&s);
    let (again, n) = FrugalSnapshot::decode(&first).expect("a re-encoded snapshot decodes");
    assert_eq!(n, first.len(), "the whole encoding is read");
    assert_eq!(encode(&again), first, "re-encoding is stable");
    let mut merged = s.clone();
    if merged.merge(&s).is_ok() {
        FrugalSnapshot::decode(&encode(&merged)).expect("a merge's encoding decodes");
    }
});
