//! `BucketedHistogram::decode` (metrix's histogram across the cluster). The encoding starts
//! with the layout's `max` and `error`, which must be the receiver's: the layout is built from
//! those first 16 bytes, so every input that passes `Layout::new` reaches the decoder's body.
//!
//! Checked: no panic; what decodes re-encodes stably; it merges with itself and answers its
//! quantiles without panicking.
#![no_main]

use std::sync::Arc;

use libfuzzer_sys::fuzz_target;
use panoptic_core::metrix::bucketed::{BucketedHistogram, Layout, Quantiles};

fn encode(h: &BucketedHistogram) -> Vec<u8> {
    let mut out = Vec::new();
    h.encode(&mut out);
    out
}

fuzz_target!(|data: &[u8]| {
    let Some(head) = data.get(..16) else {
        return;
    };
    let max = f64::from_le_bytes(head[..8].try_into().unwrap());
    let error = f64::from_le_bytes(head[8..].try_into().unwrap());
    let Ok(layout) = Layout::new(max, error) else {
        return;
    };
    let layout = Arc::new(layout);
    let Ok((h, read)) = BucketedHistogram::decode(data, &layout) else {
        return;
    };
    assert!(read <= data.len());
    let first = encode(&h);
    let (again, n) =
        BucketedHistogram::decode(&first, &layout).expect("a re-encoded histogram decodes");
    assert_eq!(n, first.len(), "the whole encoding is read");
    assert_eq!(encode(&again), first, "re-encoding is stable");
    let quantiles = Quantiles::new(&[0.01, 0.5, 0.999]).unwrap();
    let _ = h.quantiles(&quantiles);
    let mut merged = h.clone();
    if merged.merge(&h).is_ok() {
        let _ = merged.quantiles(&quantiles);
        BucketedHistogram::decode(&encode(&merged), &layout).expect("a merge's encoding decodes");
    }
});
