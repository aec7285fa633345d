//! The question funnel's figures as the store keeps them: per question id and version, how often
//! it was shown, answered, skipped and refused (an invalid submission), and a histogram of the
//! time from shown to answered ([`FunnelCounts`]). No user data: no subject, e-mail or answer.
//!
//! The proxy counts in memory (`metrics::funnel`) and adds its deltas to the store in batches
//! ([`super::ProfileStore::add_funnel`]); the backends add them atomically, so the stored totals
//! survive restarts and add up across replicas. The figures derived for the admin JSON and the
//! dashboard (completion rate, median time to answer) are computed here, once, for both.

use serde::{Deserialize, Serialize};

/// Upper bounds (seconds, inclusive) of the answer-time histogram's buckets; a last bucket
/// (`+Inf`) takes the rest. From a quick click to a question left open half an hour.
pub const ANSWER_SECONDS_BOUNDS: [f64; 11] = [
    1.0, 2.0, 5.0, 10.0, 15.0, 30.0, 60.0, 120.0, 300.0, 600.0, 1800.0,
];
/// Buckets of the histogram: one per bound and `+Inf`.
pub const ANSWER_BUCKETS: usize = ANSWER_SECONDS_BOUNDS.len() + 1;

/// The figures of one question version (totals, or a delta to add to them).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct FunnelCounts {
    /// The question was put in front of a user (see docs/funnel.md for what counts).
    pub shown: u64,
    /// An answer to it was stored.
    pub answered: u64,
    /// A skip of it was stored.
    pub skipped: u64,
    /// A submission refused by validation, counted per question with an error.
    pub invalid: u64,
    /// Answers whose time since shown is known, by bucket of [`ANSWER_SECONDS_BOUNDS`] (not
    /// cumulative; the last is `+Inf`).
    pub answer_buckets: [u64; ANSWER_BUCKETS],
    /// How many answers were timed (the sum of `answer_buckets`).
    pub answer_count: u64,
    /// The sum of their times, in milliseconds.
    pub answer_millis_sum: u64,
}

/// One row of the stored totals: a question id and version with its figures.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FunnelRow {
    pub question: String,
    pub version: u32,
    pub counts: FunnelCounts,
}

/// The bucket of [`ANSWER_SECONDS_BOUNDS`] a time falls in.
pub fn answer_bucket(millis: u64) -> usize {
    let seconds = millis as f64 / 1000.0;
    ANSWER_SECONDS_BOUNDS
        .iter()
        .position(|bound| seconds <= *bound)
        .unwrap_or(ANSWER_BUCKETS - 1)
}

impl FunnelCounts {
    /// Adds `other` to these figures (saturating: a counter never wraps).
    pub fn add(&mut self, other: &FunnelCounts) {
        self.shown = self.shown.saturating_add(other.shown);
        self.answered = self.answered.saturating_add(other.answered);
        self.skipped = self.skipped.saturating_add(other.skipped);
        self.invalid = self.invalid.saturating_add(other.invalid);
        for (mine, theirs) in self.answer_buckets.iter_mut().zip(other.answer_buckets) {
            *mine = mine.saturating_add(theirs);
        }
        self.answer_count = self.answer_count.saturating_add(other.answer_count);
        self.answer_millis_sum = self
            .answer_millis_sum
            .saturating_add(other.answer_millis_sum);
    }

    /// What these figures have beyond `earlier` (a snapshot taken before them).
    pub fn since(&self, earlier: &FunnelCounts) -> FunnelCounts {
        let mut delta = FunnelCounts {
            shown: self.shown.saturating_sub(earlier.shown),
            answered: self.answered.saturating_sub(earlier.answered),
            skipped: self.skipped.saturating_sub(earlier.skipped),
            invalid: self.invalid.saturating_sub(earlier.invalid),
            answer_count: self.answer_count.saturating_sub(earlier.answer_count),
            answer_millis_sum: self
                .answer_millis_sum
                .saturating_sub(earlier.answer_millis_sum),
            ..FunnelCounts::default()
        };
        for (i, bucket) in delta.answer_buckets.iter_mut().enumerate() {
            *bucket = self.answer_buckets[i].saturating_sub(earlier.answer_buckets[i]);
        }
        delta
    }

    /// Nothing to add.
    pub fn is_zero(&self) -> bool {
        *self == FunnelCounts::default()
    }

    /// Answered per shown (`None` before it was ever shown). It may exceed 1 when answers
    /// arrive through a path that shows nothing (a JSON API client posting without
    /// `api/pending`).
    pub fn completion_rate(&self) -> Option<f64> {
        (self.shown > 0).then(|| self.answered as f64 / self.shown as f64)
    }

    /// The median time from shown to answered, in seconds, estimated from the histogram: the
    /// bucket holding the middle answer, interpolated linearly within it (as Prometheus'
    /// `histogram_quantile` does). In the `+Inf` bucket it is that bucket's lower bound.
    /// `None` without timed answers.
    pub fn median_answer_seconds(&self) -> Option<f64> {
        let total: u64 = self.answer_buckets.iter().sum();
        if total == 0 {
            return None;
        }
        let rank = total as f64 / 2.0;
        let mut below = 0u64;
        for (i, count) in self.answer_buckets.iter().enumerate() {
            let upto = below + count;
            if *count > 0 && upto as f64 >= rank {
                let lower = if i == 0 {
                    0.0
                } else {
                    ANSWER_SECONDS_BOUNDS[i - 1]
                };
                let Some(upper) = ANSWER_SECONDS_BOUNDS.get(i) else {
                    return Some(lower);
                };
                let within = (rank - below as f64) / *count as f64;
                return Some(lower + (upper - lower) * within);
            }
            below = upto;
        }
        None
    }

    /// Adds one timed answer of `millis`.
    pub fn time_answer(&mut self, millis: u64) {
        self.answer_buckets[answer_bucket(millis)] += 1;
        self.answer_count += 1;
        self.answer_millis_sum = self.answer_millis_sum.saturating_add(millis);
    }
}

/// Adds `delta` rows to `totals` (both sorted or not; the result is sorted by question, then
/// version).
pub fn merge_rows(totals: &mut Vec<FunnelRow>, delta: &[FunnelRow]) {
    for row in delta {
        match totals
            .iter_mut()
            .find(|t| t.question == row.question && t.version == row.version)
        {
            Some(total) => total.counts.add(&row.counts),
            None => totals.push(row.clone()),
        }
    }
    totals.sort_by(|a, b| (&a.question, a.version).cmp(&(&b.question, b.version)));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_fall_in_the_bucket_of_their_upper_bound() {
        assert_eq!(answer_bucket(0), 0);
        assert_eq!(answer_bucket(1000), 0, "bounds are inclusive");
        assert_eq!(answer_bucket(1001), 1);
        assert_eq!(answer_bucket(29_000), 5);
        assert_eq!(answer_bucket(1_800_001), ANSWER_BUCKETS - 1);
    }

    #[test]
    fn the_median_is_interpolated_within_its_bucket() {
        let mut counts = FunnelCounts::default();
        assert_eq!(counts.median_answer_seconds(), None);
        // Four answers in (2, 5] s: the median is halfway, 3.5 s.
        for _ in 0..4 {
            counts.time_answer(4_000);
        }
        assert_eq!(counts.median_answer_seconds(), Some(3.5));
        // Four more in [0, 1] s: the middle (rank 4) is the top of the first bucket.
        for _ in 0..4 {
            counts.time_answer(500);
        }
        assert_eq!(counts.median_answer_seconds(), Some(1.0));
        let mut slow = FunnelCounts::default();
        slow.time_answer(4_000_000);
        assert_eq!(slow.median_answer_seconds(), Some(1800.0));
    }

    #[test]
    fn deltas_add_up_and_the_rate_is_answered_per_shown() {
        let mut a = FunnelCounts {
            shown: 10,
            answered: 4,
            ..FunnelCounts::default()
        };
        a.time_answer(1500);
        let snapshot = a.clone();
        a.shown += 3;
        a.invalid += 1;
        a.time_answer(700);
        let delta = a.since(&snapshot);
        assert_eq!((delta.shown, delta.invalid, delta.answer_count), (3, 1, 1));
        assert_eq!(delta.answer_buckets[0], 1);
        assert_eq!(delta.answer_millis_sum, 700);
        let mut total = snapshot.clone();
        total.add(&delta);
        assert_eq!(total, a);
        assert_eq!(a.completion_rate(), Some(4.0 / 13.0));
        assert_eq!(FunnelCounts::default().completion_rate(), None);
    }
}
