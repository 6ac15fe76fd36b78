//! A meter: a count of events and their rates per second, the mean one and three exponentially
//! weighted moving averages (EWMA) that read like the UNIX load averages `load1/5/15`.
//!
//! This is the meter of Pandora.js metrics and of Dropwizard (Coda Hale) metrics: the EWMAs are
//! ticked every 5 seconds; a tick turns the events counted since the previous tick into an
//! instant rate (`count / 5 s`); the first tick sets each average to it and later ticks move it
//! by `alpha * (instant - rate)` with `alpha = 1 - exp(-5 s / 60 s / minutes)`.
//!
//! Ticks are caught up lazily, when the meter is marked or read (Dropwizard's
//! `tickIfNecessary`), so an idle meter costs nothing. This is exact: every mark first ticks, so
//! the events not yet ticked all happened within the first pending tick interval, and every later
//! pending tick is a tick of zero events.
//!
//! Differences from Pandora 1.10.6, on purpose:
//! - Pandora ticks `ceil(age / 5 s)` times (`for (i = 0; i < age / 5000; i++)` with a fractional
//!   bound) while moving its last tick by `floor(age / 5 s)` ticks: one tick of zero events too
//!   many whenever a mark or read is not on a 5 s boundary, so a meter marked every second reads
//!   about half its rate there. This meter ticks `floor(age / 5 s)` times, as Dropwizard does, so
//!   its averages do not depend on when it is marked or read (what lets the master add the rates
//!   of processes that read at different moments).
//! - A tick is due when 5 s have passed (`age >= 5 s`), not after (`age > 5 s`): times are
//!   milliseconds here and tick intervals are half-open like panoptic's interval grid, so an event
//!   marked exactly on a tick boundary belongs to the tick that starts there.
//! - Rates are kept per second (Pandora keeps them per millisecond and multiplies by 1000 when
//!   read); the golden vectors agree to the last few bits.
//!
//! A meter lives across intervals: the caller never resets it, and reports its [`MeterStats`]
//! each interval. Across processes, stats merge by summing counts and rates ([`MeterStats::merge`]):
//! the rate of events in the cluster is the sum of the rates of events in each process.

use crate::bytes::DecodeError;

/// Milliseconds between two ticks of the moving averages.
pub const TICK_MS: f64 = 5000.0;
/// Seconds between two ticks (the instant rate of a tick is its count divided by this).
const TICK_SECONDS: f64 = 5.0;
/// `1 - exp(-5 / 60 / 1)`: the one-minute average's weight of each tick.
pub const M1_ALPHA: f64 = 0.07995558537067671;
/// `1 - exp(-5 / 60 / 5)`: the five-minute average's weight of each tick.
pub const M5_ALPHA: f64 = 0.01652854617838251;
/// `1 - exp(-5 / 60 / 15)`: the fifteen-minute average's weight of each tick.
pub const M15_ALPHA: f64 = 0.005540151995103271;

/// Pending zero ticks applied one by one (bit for bit like Pandora/Dropwizard) before the rest are
/// applied at once as `rate * (1 - alpha)^k`: a meter idle for a year (six million ticks) is read
/// in constant time, and the difference from ticking one by one is a few ulps of a rate that has
/// long decayed (an hour of ticks takes the 15-minute average down to e^-4 of its value).
const EXACT_TICKS: u32 = 720;

/// One exponentially weighted moving average of a rate, in events per second.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Ewma {
    alpha: f64,
    rate: f64,
    initialized: bool,
}

impl Ewma {
    fn new(alpha: f64) -> Ewma {
        Ewma {
            alpha,
            rate: 0.0,
            initialized: false,
        }
    }

    /// One tick that saw `count` events.
    fn tick(&mut self, count: f64) {
        let instant = count / TICK_SECONDS;
        if self.initialized {
            self.rate += self.alpha * (instant - self.rate);
        } else {
            // The first tick sets the rate: no history to average with.
            self.rate = instant;
            self.initialized = true;
        }
    }

    /// `k` ticks that saw no event (after at least one tick, so `initialized`).
    fn decay(&mut self, k: f64) {
        let mut left = k;
        let mut exact = 0;
        while left >= 1.0 && exact < EXACT_TICKS {
            self.rate += self.alpha * (0.0 - self.rate);
            left -= 1.0;
            exact += 1;
        }
        if left >= 1.0 {
            self.rate *= (1.0 - self.alpha).powf(left);
        }
    }
}

/// The meter's state in one process. Times are milliseconds from any fixed origin (panoptic
/// passes wall-clock milliseconds); a time that goes backwards ticks nothing.
#[derive(Debug, Clone, PartialEq)]
pub struct Meter {
    start_ms: f64,
    last_tick_ms: f64,
    count: f64,
    uncounted: f64,
    m1: Ewma,
    m5: Ewma,
    m15: Ewma,
}

/// What a meter reports each interval (and what travels to the master): rates are in events per
/// second.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct MeterStats {
    /// Events marked since the meter was created.
    pub count: f64,
    /// `count` divided by the seconds since the meter was created (0 before any event or time).
    pub mean_rate: f64,
    /// One-minute moving average rate.
    pub m1: f64,
    /// Five-minute moving average rate.
    pub m5: f64,
    /// Fifteen-minute moving average rate.
    pub m15: f64,
}

/// Bytes of an encoded [`MeterStats`]: five f64.
pub const METER_STATS_BYTES: usize = 40;

impl Meter {
    /// A meter created at `now_ms`, with no event (a non-finite time counts as 0).
    pub fn new(now_ms: f64) -> Meter {
        let now = if now_ms.is_finite() { now_ms } else { 0.0 };
        Meter {
            start_ms: now,
            last_tick_ms: now,
            count: 0.0,
            uncounted: 0.0,
            m1: Ewma::new(M1_ALPHA),
            m5: Ewma::new(M5_ALPHA),
            m15: Ewma::new(M15_ALPHA),
        }
    }

    /// Marks `n` events at `now_ms`. Returns false, and records nothing, when `n` is not a finite
    /// number >= 0 (a meter counts events: the caller counts such a data point as dropped), or
    /// when the count would no longer be finite.
    pub fn mark(&mut self, n: f64, now_ms: f64) -> bool {
        if !(n.is_finite() && n >= 0.0 && (self.count + n).is_finite()) {
            return false;
        }
        // Tick first, so `uncounted` only ever holds events of the current tick interval.
        self.tick_if_necessary(now_ms);
        self.count += n;
        self.uncounted += n;
        true
    }

    /// Events marked so far.
    pub fn count(&self) -> f64 {
        self.count
    }

    /// The meter's numbers at `now_ms` (catching up the ticks due by then).
    pub fn stats(&mut self, now_ms: f64) -> MeterStats {
        self.tick_if_necessary(now_ms);
        let elapsed = (now_ms - self.start_ms) / 1000.0;
        let mean_rate = self.count / elapsed;
        // 0 where undefined: no event, no time elapsed (or a clock stepped back), or a quotient
        // too large for an f64.
        let mean_rate = if self.count > 0.0 && elapsed > 0.0 && mean_rate.is_finite() {
            mean_rate
        } else {
            0.0
        };
        MeterStats {
            count: self.count,
            mean_rate,
            m1: self.m1.rate,
            m5: self.m5.rate,
            m15: self.m15.rate,
        }
    }

    /// Runs the ticks due at `now_ms`: `floor(age / 5 s)` of them, the first one carrying the
    /// events not yet ticked.
    fn tick_if_necessary(&mut self, now_ms: f64) {
        let age = now_ms - self.last_tick_ms;
        // Also no tick for a NaN or infinite time (a broken clock must not tick forever).
        if !(age.is_finite() && age >= TICK_MS) {
            return;
        }
        let ticks = (age / TICK_MS).floor();
        self.last_tick_ms += ticks * TICK_MS;
        let count = std::mem::take(&mut self.uncounted);
        for ewma in [&mut self.m1, &mut self.m5, &mut self.m15] {
            ewma.tick(count);
            ewma.decay(ticks - 1.0);
        }
    }
}

impl MeterStats {
    /// Adds another process's stats: counts and every rate are sums (the events of the union of
    /// processes come at the sum of their rates).
    pub fn merge(&mut self, other: &MeterStats) {
        self.count += other.count;
        self.mean_rate += other.mean_rate;
        self.m1 += other.m1;
        self.m5 += other.m5;
        self.m15 += other.m15;
    }

    /// Appends the stats to `out`: `count, mean_rate, m1, m5, m15` as little-endian f64
    /// ([`METER_STATS_BYTES`] bytes).
    pub fn encode(&self, out: &mut Vec<u8>) {
        for v in [self.count, self.mean_rate, self.m1, self.m5, self.m15] {
            out.extend_from_slice(&v.to_le_bytes());
        }
    }

    /// Reads stats written by [`MeterStats::encode`] from the start of `bytes`; returns them and
    /// the number of bytes read. Every number must be finite and >= 0 (what a meter can report),
    /// so hostile bytes cannot poison a merge.
    pub fn decode(bytes: &[u8]) -> Result<(MeterStats, usize), DecodeError> {
        let head = bytes
            .get(..METER_STATS_BYTES)
            .ok_or(DecodeError::Truncated)?;
        let mut v = [0.0f64; 5];
        for (slot, chunk) in v.iter_mut().zip(head.chunks_exact(8)) {
            let mut b = [0u8; 8];
            b.copy_from_slice(chunk);
            *slot = f64::from_le_bytes(b);
        }
        if !v.iter().all(|x| x.is_finite() && *x >= 0.0) {
            return Err(DecodeError::Invalid("meter stats"));
        }
        let [count, mean_rate, m1, m5, m15] = v;
        Ok((
            MeterStats {
                count,
                mean_rate,
                m1,
                m5,
                m15,
            },
            METER_STATS_BYTES,
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    // Pandora 1.10.6's EWMA (`EWMA.oneMinuteEWMA()` etc.) fed `tick(3)` then, per minute, 12
    // `tick(0)`: its `getRate()` after each of 15 minutes, printed by node at full precision. They
    // round to Dropwizard's published EWMATest vectors (checked to 8 decimals below).
    const PANDORA_M1: [f64; 16] = [
        0.6,
        0.22072766470286548,
        0.08120116994196769,
        0.029872241020718407,
        0.01098938333324053,
        0.004042768199451291,
        0.0014872513059998192,
        0.0005471291793327116,
        0.00020127757674150788,
        0.00007404588245200807,
        0.000027239957857491052,
        0.000010021020474147454,
        0.00000368652741199695,
        0.0000013561976441886425,
        4.989172314621445e-7,
        1.83541392301097e-7,
    ];
    const PANDORA_M5: [f64; 16] = [
        0.6,
        0.491238451846789,
        0.4021920276213835,
        0.3292869816564159,
        0.269597378470333,
        0.22072766470286548,
        0.1807165271473213,
        0.14795817836496392,
        0.1211379107967933,
        0.09917933293295193,
        0.08120116994196762,
        0.06648189501740033,
        0.05443077197364752,
        0.04456414692860034,
        0.0364860375751308,
        0.029872241020718386,
    ];
    const PANDORA_M15: [f64; 16] = [
        0.6,
        0.5613041910189706,
        0.5251039914257684,
        0.491238451846789,
        0.459557003018789,
        0.42991878634427316,
        0.40219202762138306,
        0.37625345116383313,
        0.3519877317060186,
        0.32928698165641523,
        0.3080502714195546,
        0.288183180653879,
        0.26959737847033227,
        0.2522102307052084,
        0.23594443252115815,
        0.22072766470286462,
    ];
    // Dropwizard metrics' EWMATest (8 decimals).
    const DROPWIZARD_M1: [f64; 16] = [
        0.6, 0.22072766, 0.08120117, 0.02987224, 0.01098938, 0.00404277, 0.00148725, 0.00054713,
        0.00020128, 0.00007405, 0.00002724, 0.00001002, 0.00000369, 0.00000136, 0.00000050,
        0.00000018,
    ];
    const DROPWIZARD_M5: [f64; 16] = [
        0.6, 0.49123845, 0.40219203, 0.32928698, 0.26959738, 0.22072766, 0.18071653, 0.14795818,
        0.12113791, 0.09917933, 0.08120117, 0.06648190, 0.05443077, 0.04456415, 0.03648604,
        0.02987224,
    ];
    const DROPWIZARD_M15: [f64; 16] = [
        0.6, 0.56130419, 0.52510399, 0.49123845, 0.45955700, 0.42991879, 0.40219203, 0.37625345,
        0.35198773, 0.32928698, 0.30805027, 0.28818318, 0.26959738, 0.25221023, 0.23594443,
        0.22072766,
    ];

    fn close(a: f64, b: f64, rel: f64) -> bool {
        (a - b).abs() <= rel * a.abs().max(b.abs())
    }

    #[test]
    fn alphas_follow_the_formula() {
        for (alpha, minutes) in [(M1_ALPHA, 1.0), (M5_ALPHA, 5.0), (M15_ALPHA, 15.0)] {
            let expected = 1.0 - (-5.0f64 / 60.0 / minutes).exp();
            assert!(close(alpha, expected, 1e-15), "{alpha} vs {expected}");
        }
    }

    /// mark(3) at t0, read at t0 + 5 s (first tick: 0.6/s), then after each further minute.
    #[test]
    fn golden_vectors_through_time() {
        let t0 = 1_700_000_000_000.0;
        let mut m = Meter::new(t0);
        assert!(m.mark(3.0, t0));
        for minute in 0..16 {
            let s = m.stats(t0 + TICK_MS + minute as f64 * 60_000.0);
            let i = minute;
            for (got, pandora, dropwizard) in [
                (s.m1, PANDORA_M1[i], DROPWIZARD_M1[i]),
                (s.m5, PANDORA_M5[i], DROPWIZARD_M5[i]),
                (s.m15, PANDORA_M15[i], DROPWIZARD_M15[i]),
            ] {
                assert!(close(got, pandora, 1e-12), "minute {i}: {got} vs {pandora}");
                assert!((got - dropwizard).abs() < 5e-9, "minute {i}: {got}");
            }
            assert_eq!(s.count, 3.0);
        }
    }

    #[test]
    fn reading_often_or_once_gives_the_same_rates() {
        // Lazy catch-up: reading at every tick or only at the end gives the same numbers.
        let mut often = Meter::new(0.0);
        let mut once = Meter::new(0.0);
        often.mark(3.0, 0.0);
        once.mark(3.0, 0.0);
        for t in 1..=36 {
            often.stats(t as f64 * TICK_MS);
        }
        assert_eq!(often.stats(180_000.0), once.stats(180_000.0));
    }

    #[test]
    fn a_tick_is_due_at_five_seconds_and_counts_whole_ticks() {
        let mut m = Meter::new(0.0);
        m.mark(3.0, 0.0);
        assert_eq!(m.stats(4999.0).m1, 0.0, "no tick before 5 s");
        assert_eq!(m.stats(5000.0).m1, 0.6, "first tick at 5 s");
        // 9.999 s after creation: still one tick (Pandora would tick twice at 5.001 s).
        let mut p = Meter::new(0.0);
        p.mark(3.0, 0.0);
        assert_eq!(p.stats(9999.0).m1, 0.6);
        // A mark exactly on the boundary goes to the tick starting there.
        let mut b = Meter::new(0.0);
        b.mark(5.0, 5000.0);
        assert_eq!(b.stats(9999.0).m1, 0.0);
        assert_eq!(b.stats(10_000.0).m1, M1_ALPHA * 1.0);
    }

    #[test]
    fn mean_rate_is_count_over_elapsed_seconds() {
        let mut m = Meter::new(1000.0);
        assert_eq!(m.stats(1000.0).mean_rate, 0.0);
        m.mark(1.0, 1000.0);
        assert_eq!(m.stats(1000.0).mean_rate, 0.0, "no time elapsed");
        m.mark(9.0, 2000.0);
        assert_eq!(m.stats(6000.0).mean_rate, 2.0);
        assert_eq!(m.stats(500.0).mean_rate, 0.0, "clock stepped back");
    }

    #[test]
    fn steady_marks_converge_to_the_rate() {
        let mut m = Meter::new(0.0);
        // 10 events per second for an hour.
        for ms in (0..3_600_000).step_by(100) {
            m.mark(1.0, ms as f64);
        }
        let s = m.stats(3_600_000.0);
        assert!(close(s.m1, 10.0, 1e-9), "{s:?}");
        assert!(close(s.m5, 10.0, 1e-9), "{s:?}");
        assert!(close(s.m15, 10.0, 1e-3), "{s:?}");
        assert!(close(s.mean_rate, 10.0, 1e-12), "{s:?}");
    }

    #[test]
    fn marks_off_the_tick_boundaries_read_the_true_rate() {
        // 10 events every second, half a second off the ticks, for 10 minutes: each catch-up is
        // 5.5 s after the last tick, where Pandora's ceil(age / 5 s) adds a tick of zero events
        // (its m1 then reads about 4.8/s). Every tick here carries 5 marks: exactly 10/s.
        let mut m = Meter::new(0.0);
        for s in 0..600 {
            m.mark(10.0, s as f64 * 1000.0 + 500.0);
        }
        let stats = m.stats(600_000.0);
        assert_eq!((stats.m1, stats.m5, stats.m15), (10.0, 10.0, 10.0));
    }

    #[test]
    fn long_idle_decays_in_constant_time() {
        let mut exact = Meter::new(0.0);
        let mut lazy = Meter::new(0.0);
        exact.mark(600.0, 0.0);
        lazy.mark(600.0, 0.0);
        // 2000 ticks, read every tick vs once (past the exact-tick budget).
        for t in 1..=2000 {
            exact.stats(t as f64 * TICK_MS);
        }
        let (a, b) = (exact.stats(1e7), lazy.stats(1e7));
        assert!(close(a.m15, b.m15, 1e-12), "{a:?} {b:?}");
        assert!(close(a.m5, b.m5, 1e-9) || a.m5 < 1e-300, "{a:?} {b:?}");
        // A year idle: still a number, near 0.
        let s = lazy.stats(365.0 * 86_400_000.0);
        assert!(s.m15 >= 0.0 && s.m15 < 1e-100, "{s:?}");
    }

    #[test]
    fn bad_marks_and_times_are_ignored() {
        let mut m = Meter::new(0.0);
        for n in [-1.0, f64::NAN, f64::INFINITY] {
            assert!(!m.mark(n, 0.0));
        }
        assert!(m.mark(0.0, 0.0));
        let mut big = Meter::new(0.0);
        assert!(big.mark(f64::MAX, 0.0));
        assert!(!big.mark(f64::MAX, 0.0), "the count would be infinite");
        assert_eq!(big.stats(1e-320).mean_rate, 0.0, "too large for an f64");
        assert!(m.mark(2.5, f64::NAN));
        let s = m.stats(f64::NAN);
        assert_eq!((s.count, s.mean_rate, s.m1), (2.5, 0.0, 0.0));
        let s = m.stats(f64::INFINITY);
        assert_eq!(s.m1, 0.0);
        assert_eq!(m.stats(5000.0).m1, 0.5);
        let mut n = Meter::new(f64::NAN);
        n.mark(1.0, 5000.0);
        assert_eq!(n.stats(5000.0).count, 1.0);
    }

    #[test]
    fn decode_rejects_what_a_meter_cannot_report() {
        let s = MeterStats {
            count: 3.0,
            mean_rate: 0.5,
            m1: 0.6,
            m5: 0.6,
            m15: 0.6,
        };
        let mut out = vec![9];
        s.encode(&mut out);
        out.push(7);
        assert_eq!(MeterStats::decode(&out[1..]), Ok((s, METER_STATS_BYTES)));
        assert_eq!(
            MeterStats::decode(&out[1..METER_STATS_BYTES]),
            Err(DecodeError::Truncated)
        );
        for bad in [-1.0, f64::NAN, f64::INFINITY] {
            let mut out = Vec::new();
            MeterStats { m5: bad, ..s }.encode(&mut out);
            assert_eq!(
                MeterStats::decode(&out),
                Err(DecodeError::Invalid("meter stats"))
            );
        }
    }

    fn run(marks: &[(u32, u16)], end: f64) -> MeterStats {
        let mut m = Meter::new(0.0);
        let mut t = 0.0;
        for &(dt, n) in marks {
            t += dt as f64;
            m.mark(n as f64, t);
        }
        m.stats(t.max(end))
    }

    proptest! {
        #[test]
        fn merge_is_the_sum(
            a in prop::collection::vec((0u32..20_000, 0u16..100), 0..50),
            b in prop::collection::vec((0u32..20_000, 0u16..100), 0..50),
        ) {
            let (sa, sb) = (run(&a, 400_000.0), run(&b, 400_000.0));
            let mut merged = sa;
            merged.merge(&sb);
            prop_assert_eq!(merged.count, sa.count + sb.count);
            for (m, x, y) in [
                (merged.mean_rate, sa.mean_rate, sb.mean_rate),
                (merged.m1, sa.m1, sb.m1),
                (merged.m5, sa.m5, sb.m5),
                (merged.m15, sa.m15, sb.m15),
            ] {
                prop_assert_eq!(m, x + y);
            }
            // And it round-trips.
            let mut out = Vec::new();
            merged.encode(&mut out);
            prop_assert_eq!(MeterStats::decode(&out), Ok((merged, METER_STATS_BYTES)));
        }

        #[test]
        fn rates_stay_within_the_busiest_tick(
            marks in prop::collection::vec((0u32..20_000, 0u16..100), 1..50),
        ) {
            // Every average is a convex mix of instant rates: between 0 and the largest one.
            let s = run(&marks, 0.0);
            let most = marks.iter().map(|m| m.1 as f64).sum::<f64>() / TICK_SECONDS;
            for r in [s.m1, s.m5, s.m15] {
                prop_assert!((0.0..=most * (1.0 + 1e-12)).contains(&r), "{} > {}", r, most);
            }
        }

        #[test]
        fn decode_never_panics(bytes in prop::collection::vec(any::<u8>(), 0..100)) {
            if let Ok((s, used)) = MeterStats::decode(&bytes) {
                prop_assert_eq!(used, METER_STATS_BYTES);
                prop_assert!(s.count >= 0.0 && s.m1.is_finite());
            }
        }
    }
}
