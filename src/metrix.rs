//! The native state of `require('panoptic/metrix')`'s histograms: thin wrappers over the core's
//! metrix algorithms (`bucketed` and `frugal`). The JS classes (`lib/metrix/histograms.js`)
//! check every option and value first, and hand values over in batches: JS writes them into a
//! `Float64Array` it owns and passes that array (a borrowed slice, no copy) to `addBatch` when it
//! is full and before each snapshot, so a value costs a typed-array store, not a napi call.

use std::sync::{Arc, Mutex, PoisonError, Weak};

use napi_derive::napi;
use panoptic_core::metrix::bucketed::{BucketedHistogram, Layout, OptionsError, Quantiles};
use panoptic_core::metrix::frugal::FrugalHistogram;

use crate::error::{coded, Coded, BAD_OPTIONS};

/// A histogram's numbers, what the JS snapshot is built from (`None` from `snapshot()` when the
/// histogram is empty).
#[napi(object)]
pub struct MetrixSnapshot {
    /// Smallest value added.
    pub min: f64,
    /// Largest value added.
    pub max: f64,
    /// Values above the histogram's `max` (bucketed histograms only, when there are any).
    pub overflow: Option<f64>,
    /// One estimate per quantile, in the order of `keys`.
    pub values: Vec<f64>,
}

fn options_error(e: OptionsError) -> Coded {
    coded(BAD_OPTIONS, e.to_string())
}

/// The layout of `(max, error)`, shared by every live histogram with those options (as metrix
/// caches its limits): a default histogram's limits are ~4 KiB that would otherwise be repeated
/// per histogram name. Weak references, so a layout goes when its last histogram goes.
fn shared_layout(max: f64, error: f64) -> Result<Arc<Layout>, OptionsError> {
    static CACHE: Mutex<Vec<Weak<Layout>>> = Mutex::new(Vec::new());
    // A panic while the lock is held cannot leave the list inconsistent: keep using it.
    let mut cache = CACHE.lock().unwrap_or_else(PoisonError::into_inner);
    cache.retain(|w| w.strong_count() > 0);
    let same = |l: &Arc<Layout>| {
        l.max().to_bits() == max.to_bits() && l.error().to_bits() == error.to_bits()
    };
    if let Some(layout) = cache.iter().filter_map(Weak::upgrade).find(same) {
        return Ok(layout);
    }
    let layout = Arc::new(Layout::new(max, error)?);
    cache.push(Arc::downgrade(&layout));
    Ok(layout)
}

/// metrix's BucketedHistogram (`panoptic_core::metrix::bucketed`).
#[napi]
pub struct NativeBucketed {
    histogram: BucketedHistogram,
    quantiles: Quantiles,
}

#[napi]
impl NativeBucketed {
    /// A histogram of the buckets of `(max, error)` reporting `quantiles`. Fails with
    /// PANOPTIC_BAD_OPTIONS when the core refuses the options.
    #[napi(constructor, catch_unwind)]
    pub fn new(max: f64, error: f64, quantiles: Vec<f64>) -> Result<Self, Coded> {
        let layout = shared_layout(max, error).map_err(options_error)?;
        Ok(NativeBucketed {
            histogram: BucketedHistogram::new(layout),
            quantiles: Quantiles::new(&quantiles).map_err(options_error)?,
        })
    }

    /// The report keys of the quantiles (`p50`, ...), increasing, as `values` are ordered.
    #[napi(getter)]
    pub fn keys(&self) -> Vec<String> {
        self.quantiles.keys().to_vec()
    }

    /// Adds `values[..len]` in order (non-finite values are skipped; JS never sends them).
    #[napi(catch_unwind)]
    pub fn add_batch(&mut self, values: &[f64], len: u32) {
        for &x in &values[..(len as usize).min(values.len())] {
            self.histogram.add(x);
        }
    }

    /// Forgets every value.
    #[napi]
    pub fn clear(&mut self) {
        self.histogram.clear();
    }

    /// The histogram's numbers; `None` when it is empty.
    #[napi(catch_unwind)]
    pub fn snapshot(&self) -> Option<MetrixSnapshot> {
        let r = self.histogram.report(&self.quantiles)?;
        Some(MetrixSnapshot {
            min: r.min,
            max: r.max,
            overflow: r.overflow.map(|n| n as f64),
            values: r.quantiles.into_iter().map(|(_, v)| v).collect(),
        })
    }
}

/// metrix's StreamingHistogram, Frugal-2U (`panoptic_core::metrix::frugal`).
#[napi]
pub struct NativeFrugal {
    histogram: FrugalHistogram,
}

#[napi]
impl NativeFrugal {
    /// A histogram estimating `quantiles`, its coin flips drawn from SplitMix64 seeded with
    /// `seedHigh * 2^32 + seedLow` (two halves: a JS number cannot carry 64 bits).
    #[napi(constructor, catch_unwind)]
    pub fn new(quantiles: Vec<f64>, seed_high: u32, seed_low: u32) -> Result<Self, Coded> {
        let quantiles = Quantiles::new(&quantiles).map_err(options_error)?;
        let seed = u64::from(seed_high) << 32 | u64::from(seed_low);
        Ok(NativeFrugal {
            histogram: FrugalHistogram::new(quantiles, seed),
        })
    }

    /// The report keys of the quantiles (`p50`, ...), increasing, as `values` are ordered.
    #[napi(getter)]
    pub fn keys(&self) -> Vec<String> {
        self.histogram.quantiles().keys().to_vec()
    }

    /// Adds `values[..len]` in order (non-finite values are skipped; JS never sends them).
    #[napi(catch_unwind)]
    pub fn add_batch(&mut self, values: &[f64], len: u32) {
        for &x in &values[..(len as usize).min(values.len())] {
            self.histogram.add(x);
        }
    }

    /// Forgets every value (the random sequence goes on).
    #[napi]
    pub fn clear(&mut self) {
        self.histogram.clear();
    }

    /// The histogram's numbers; `None` when it is empty.
    #[napi(catch_unwind)]
    pub fn snapshot(&self) -> Option<MetrixSnapshot> {
        let s = self.histogram.snapshot()?;
        Some(MetrixSnapshot {
            min: s.min,
            max: s.max,
            overflow: None,
            values: s.estimates,
        })
    }
}
