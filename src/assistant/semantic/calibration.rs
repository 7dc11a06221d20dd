//! The covered/not-covered decision with embeddings on, calibrated for one
//! knowledge base.
//!
//! BM25 alone is calibrated when the index changes
//! ([`crate::kb::calibrate`]): generic off-topic questions (negatives) and
//! questions made from the articles (positives) are scored against the
//! knowledge base. With embeddings, the same questions are also embedded and
//! their nearest passage's similarity is kept. A question's *joint
//! relevance* is then the mean of two shares: of the negatives whose best
//! BM25 score is below its own, and of the negatives whose nearest passage
//! is less similar than its own. The threshold on that mean is calibrated
//! on the negatives' own joint relevance, with the operator's
//! `assistant.refusal_target` as the share of them to refuse, and lowered
//! where it would refuse more than a quarter of the positives, exactly as
//! for BM25 alone. So the embeddings count as evidence without opening a
//! second way in for off-topic questions (a fixed cosine threshold does:
//! what a cosine of 0.5 means depends on the model and the knowledge base).

use std::sync::Arc;

use crate::kb::calibrate::Calibration;

/// Joint BM25 + embedding calibration of one knowledge base.
#[derive(Debug, Clone)]
pub struct Joint {
    bm25: Arc<Calibration>,
    dense: Calibration,
    joint: Calibration,
}

impl Joint {
    /// From the BM25 calibration and, for each negative and each positive
    /// question, its `(best BM25 score, nearest passage similarity)`.
    pub fn new(bm25: Arc<Calibration>, negatives: &[(f32, f32)], positives: &[(f32, f32)]) -> Self {
        let dense = Calibration::new(
            negatives.iter().map(|(_, s)| *s).collect(),
            positives.iter().map(|(_, s)| *s).collect(),
        );
        let mean = |(b, s): &(f32, f32)| (bm25.relevance(*b) + dense.relevance(*s)) / 2.0;
        let joint = Calibration::new(
            negatives.iter().map(mean).collect(),
            positives.iter().map(mean).collect(),
        );
        Self { bm25, dense, joint }
    }

    /// Joint relevance (0–1) of a question whose best BM25 score is
    /// `best_score` and whose nearest passage is `similarity` similar.
    pub fn relevance(&self, best_score: f32, similarity: f32) -> f32 {
        (self.bm25.relevance(best_score) + self.dense.relevance(similarity)) / 2.0
    }

    /// Whether such a question counts as covered when `refusal_target`
    /// (0–1) of off-topic questions are to be refused. Never, with nothing
    /// to calibrate with.
    pub fn covers(&self, best_score: f32, similarity: f32, refusal_target: f32) -> bool {
        self.joint
            .threshold(refusal_target)
            .is_some_and(|t| self.relevance(best_score, similarity) >= t)
    }

    /// Share of the negatives and of the positives the threshold for
    /// `refusal_target` refuses (for logs and `kb` reports).
    pub fn refused(&self, refusal_target: f32) -> (Option<f32>, Option<f32>) {
        (
            self.joint.negatives_refused(refusal_target),
            self.joint.positives_refused(refusal_target),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spread(n: usize, from: f32, step: f32) -> Vec<f32> {
        (0..n).map(|i| from + step * i as f32).collect()
    }

    #[test]
    fn the_target_share_of_negatives_is_refused_with_both_signals() {
        // Negatives: BM25 1..100, similarity 0.01..1.00 (same order).
        let negatives: Vec<(f32, f32)> = spread(100, 1.0, 1.0)
            .into_iter()
            .zip(spread(100, 0.01, 0.01))
            .collect();
        let positives: Vec<(f32, f32)> = (0..40).map(|_| (500.0, 0.99)).collect();
        let bm25 = Arc::new(Calibration::new(
            negatives.iter().map(|(b, _)| *b).collect(),
            positives.iter().map(|(b, _)| *b).collect(),
        ));
        let joint = Joint::new(bm25, &negatives, &positives);
        let (neg, pos) = joint.refused(0.9);
        assert!((neg.unwrap() - 0.9).abs() < 0.011, "{neg:?}");
        assert_eq!(pos, Some(0.0));
        // Above every negative on both: covered.
        assert!(joint.covers(200.0, 1.5, 0.9));
        // High on one signal only, low on the other: not covered (a fixed
        // cosine threshold would let it in).
        assert!(!joint.covers(2.0, 1.5, 0.9));
        assert!(!joint.covers(200.0, 0.02, 0.9));
        assert!(!joint.covers(0.0, 0.0, 0.9));
    }

    #[test]
    fn nothing_to_calibrate_with_covers_nothing() {
        let joint = Joint::new(Arc::new(Calibration::default()), &[], &[]);
        assert!(!joint.covers(100.0, 1.0, 0.9));
    }
}
