//! 敷衍作答: careless-answer measures over the completion-time histogram.
//!
//! The median of completion times needs every time, but times in whole seconds form a
//! histogram that is bounded (one entry per distinct second) and merges by addition, so
//! the median of a million ballots, or of parts made on many machines, is exact. A ballot
//! is too fast when it took fewer seconds than half that median (as 民主评议 rules publish it); the flag for
//! straight-lining is decided per ballot while reading (see [`crate::ingest`]).

use std::collections::BTreeMap;

use crate::aggregate::{wide_sum, MAX_COUNT};

/// The median of a histogram of whole seconds → count (the mean of the two middle values
/// when the count is even); `None` when it is empty.
pub fn median(hist: &BTreeMap<u64, u64>) -> Option<f64> {
    // Counted wide: histograms of several parts may together hold more than 2⁶⁴ ballots.
    let n = wide_sum(hist.values());
    if n == 0 {
        return None;
    }
    // 0-based ranks of the two middle values.
    let (lo_rank, hi_rank) = ((n - 1) / 2, n / 2);
    let (mut lo, mut hi) = (None, None);
    let mut seen = 0u128;
    for (&s, &c) in hist {
        let next = seen + u128::from(c);
        if lo.is_none() && lo_rank < next {
            lo = Some(s);
        }
        if hi.is_none() && hi_rank < next {
            hi = Some(s);
            break;
        }
        seen = next;
    }
    Some((lo? as f64 + hi? as f64) / 2.0)
}

/// How many ballots took fewer than `threshold` seconds (at most [`MAX_COUNT`], which
/// a checked state never exceeds).
pub fn count_below(hist: &BTreeMap<u64, u64>, threshold: f64) -> u64 {
    let below = wide_sum(
        hist.iter()
            .take_while(|(s, _)| (**s as f64) < threshold)
            .map(|(_, c)| c),
    );
    u64::try_from(below).unwrap_or(MAX_COUNT)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hist(pairs: &[(u64, u64)]) -> BTreeMap<u64, u64> {
        pairs.iter().copied().collect()
    }

    #[test]
    fn median_of_a_histogram() {
        // 10, 20, 20, 300 → middle values 20 and 20.
        assert_eq!(median(&hist(&[(10, 1), (20, 2), (300, 1)])), Some(20.0));
        // 10, 20, 30 → 20.
        assert_eq!(median(&hist(&[(10, 1), (20, 1), (30, 1)])), Some(20.0));
        // 10, 20, 30, 40 → (20 + 30) / 2 = 25.
        assert_eq!(
            median(&hist(&[(10, 1), (20, 1), (30, 1), (40, 1)])),
            Some(25.0)
        );
        assert_eq!(median(&BTreeMap::new()), None);
    }

    #[test]
    fn too_fast_is_strictly_below() {
        // Median 25 → threshold 12.5: the 10-second ballot only.
        let h = hist(&[(10, 1), (20, 1), (30, 1), (40, 1)]);
        assert_eq!(count_below(&h, median(&h).unwrap() / 2.0), 1);
        assert_eq!(count_below(&h, 10.0), 0);
    }
}
