//! `MeterStats::decode` and `RateStats::decode`: a meter's and a rate's interval in a wire
//! message (fixed-size numbers, each checked finite and >= 0). The same bytes go to both.
//!
//! Checked: no panic; what decodes re-encodes to the bytes read; merging decoded stats (as the
//! master does) gives numbers >= 0, never NaN. (Sums of two values near `f64::MAX` overflow to
//! +Inf, as every summed series does: no real count comes near, so that is not refused.)
#![no_main]

use libfuzzer_sys::fuzz_target;
use panoptic_core::stats::meter::MeterStats;
use panoptic_core::stats::rate::RateStats;

fuzz_target!(|data: &[u8]| {
    if let Ok((m, read)) = MeterStats::decode(data) {
        let mut out = Vec::new();
        m.encode(&mut out);
        assert_eq!(out, data[..read], "a meter re-encodes to the bytes read");
        let mut merged = m;
        merged.merge(&m);
        for v in [
            merged.count,
            merged.mean_rate,
            merged.m1,
            merged.m5,
            merged.m15,
        ] {
            assert!(v >= 0.0, "a merged meter's numbers are >= 0, got {v}");
        }
    }
    if let Ok((r, read)) = RateStats::decode(data) {
        let mut out = Vec::new();
        r.encode(&mut out);
        assert_eq!(out, data[..read], "a rate re-encodes to the bytes read");
        let mut merged = r;
        merged.merge(&r);
        assert!(merged.rate >= 0.0 && merged.increase >= 0.0);
    }
});
