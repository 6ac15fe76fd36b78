//! A running summary of a stream of numbers: count, total, min, max, mean and the sum of squared
//! deviations from the mean, updated one value at a time with Welford's method.

/// The state behind `sample` and `timedSample`.
///
/// `m2` is the sum of squared deviations from the running mean, updated with Welford's single-pass
/// recurrence (`d = x - mean; n += 1; mean += d / n; m2 += d * (x - mean)`), the same steps as
/// panopticon 0.3.0, so a single process gives the same sigma bit for bit. Unlike the sum of
/// squares, it does not lose precision when the mean is large compared with the spread.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Summary {
    /// Number of values.
    pub count: f64,
    /// Sum of the values (kept apart from `mean * count` so totals are exact sums).
    pub total: f64,
    /// Smallest value (`+inf` when empty).
    pub min: f64,
    /// Largest value (`-inf` when empty).
    pub max: f64,
    /// Running mean.
    pub mean: f64,
    /// Sum of squared deviations from the mean.
    pub m2: f64,
}

impl Default for Summary {
    fn default() -> Self {
        Summary {
            count: 0.0,
            total: 0.0,
            min: f64::INFINITY,
            max: f64::NEG_INFINITY,
            mean: 0.0,
            m2: 0.0,
        }
    }
}

impl Summary {
    /// Chan, Golub and LeVeque's pairwise combination: the count, total, min, max, mean and m2
    /// of the union of both sets of values.
    pub fn merge(&self, other: &Summary) -> Summary {
        if other.is_empty() {
            return *self;
        }
        if self.is_empty() {
            return *other;
        }
        let (a, b) = (self, other);
        let count = a.count + b.count;
        let d = b.mean - a.mean;
        Summary {
            count,
            total: a.total + b.total,
            min: a.min.min(b.min),
            max: a.max.max(b.max),
            mean: a.mean + d * (b.count / count),
            m2: a.m2 + b.m2 + d * d * (a.count * (b.count / count)),
        }
    }

    /// Adds one value.
    pub fn push(&mut self, x: f64) {
        let d = x - self.mean;
        self.count += 1.0;
        self.mean += d / self.count;
        self.m2 += d * (x - self.mean);
        self.total += x;
        self.min = self.min.min(x);
        self.max = self.max.max(x);
    }

    /// True when no value was added.
    pub fn is_empty(&self) -> bool {
        self.count == 0.0
    }

    /// `total / count`, as panopticon 0.3.0 reports it; `None` when empty.
    pub fn average(&self) -> Option<f64> {
        (!self.is_empty()).then(|| self.total / self.count)
    }

    /// The sample standard deviation (divisor n - 1); `None` for fewer than two values.
    pub fn sigma(&self) -> Option<f64> {
        (self.count > 1.0).then(|| (self.m2 / (self.count - 1.0)).sqrt())
    }

    /// The smallest value; `None` when empty.
    pub fn min(&self) -> Option<f64> {
        (!self.is_empty()).then_some(self.min)
    }

    /// The largest value; `None` when empty.
    pub fn max(&self) -> Option<f64> {
        (!self.is_empty()).then_some(self.max)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn two_pass_sigma(xs: &[f64]) -> f64 {
        let n = xs.len() as f64;
        let mean = xs.iter().sum::<f64>() / n;
        (xs.iter().map(|x| (x - mean) * (x - mean)).sum::<f64>() / (n - 1.0)).sqrt()
    }

    fn rel_err(a: f64, b: f64) -> f64 {
        if a == b {
            0.0
        } else {
            (a - b).abs() / a.abs().max(b.abs())
        }
    }

    #[test]
    fn empty_reports_nothing() {
        let s = Summary::default();
        assert!(s.is_empty());
        assert_eq!(
            (s.average(), s.sigma(), s.min(), s.max()),
            (None, None, None, None)
        );
    }

    #[test]
    fn one_value_has_no_sigma() {
        let mut s = Summary::default();
        s.push(4.5);
        assert_eq!(s.average(), Some(4.5));
        assert_eq!(s.sigma(), None);
        assert_eq!((s.min(), s.max()), (Some(4.5), Some(4.5)));
    }

    #[test]
    fn known_values() {
        let mut s = Summary::default();
        for x in [2.0, 4.0, 4.0, 4.0, 5.0, 5.0, 7.0, 9.0] {
            s.push(x);
        }
        assert_eq!(s.count, 8.0);
        assert_eq!(s.total, 40.0);
        assert_eq!(s.average(), Some(5.0));
        // Sample variance 32 / 7.
        assert!((s.sigma().unwrap() - (32.0f64 / 7.0).sqrt()).abs() < 1e-15);
        assert_eq!((s.min(), s.max()), (Some(2.0), Some(9.0)));
    }

    #[test]
    fn large_offset_keeps_precision() {
        // Values near 1e9 with a spread of a few units: the sum-of-squares formula is all
        // rounding noise here, Welford stays within rounding of the running mean.
        let mut s = Summary::default();
        let xs: Vec<f64> = (0..1000).map(|i| 1e9 + (i % 10) as f64).collect();
        for &x in &xs {
            s.push(x);
        }
        let exact = two_pass_sigma(&xs);
        assert!(rel_err(s.sigma().unwrap(), exact) < 1e-6);
        let n = xs.len() as f64;
        let (sum, sum_sq) = xs.iter().fold((0.0, 0.0), |(a, b), x| (a + x, b + x * x));
        let naive = ((sum_sq - sum * sum / n) / (n - 1.0)).abs().sqrt();
        assert!(rel_err(naive, exact) > 1e-3, "naive {naive} exact {exact}");
    }

    proptest! {
        #[test]
        fn sigma_matches_two_pass(xs in prop::collection::vec(-1e6f64..1e6, 2..400)) {
            let mut s = Summary::default();
            for &x in &xs { s.push(x); }
            let expected = two_pass_sigma(&xs);
            prop_assert!(rel_err(s.sigma().unwrap(), expected) < 1e-12 || (expected < 1e-9 && s.sigma().unwrap() < 1e-9),
                "sigma {} vs two-pass {}", s.sigma().unwrap(), expected);
            prop_assert_eq!(s.count, xs.len() as f64);
            prop_assert_eq!(s.min, xs.iter().cloned().fold(f64::INFINITY, f64::min));
            prop_assert_eq!(s.max, xs.iter().cloned().fold(f64::NEG_INFINITY, f64::max));
        }
    }
}
