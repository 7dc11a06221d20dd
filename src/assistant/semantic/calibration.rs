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

use sha2::{Digest, Sha256};

use super::{Error, Semantic};
use crate::kb::KnowledgeBase;
use crate::kb::calibrate::{Calibration, Questions};

/// The refusal target the calibration's log line reports (the setting's
/// default).
const CALIBRATION_REPORT_TARGET: f32 = 0.9;

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
        let mean = |(b, s): &(f32, f32)| mean_relevance(&bm25, &dense, *b, *s);
        let joint = Calibration::new(
            negatives.iter().map(mean).collect(),
            positives.iter().map(mean).collect(),
        );
        Self { bm25, dense, joint }
    }

    /// Joint relevance (0–1) of a question whose best BM25 score is
    /// `best_score` and whose nearest passage is `similarity` similar.
    pub fn relevance(&self, best_score: f32, similarity: f32) -> f32 {
        mean_relevance(&self.bm25, &self.dense, best_score, similarity)
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

/// The mean of the shares of off-topic questions a BM25 score and a
/// similarity beat.
fn mean_relevance(bm25: &Calibration, dense: &Calibration, score: f32, similarity: f32) -> f32 {
    (bm25.relevance(score) + dense.relevance(similarity)) / 2.0
}

impl Semantic {
    /// Calibrates the decision again (after the passages changed); on a
    /// failure the previous calibration, or BM25's, stays in use.
    pub(super) async fn recalibrate(&self, kb: &KnowledgeBase) {
        match self.calibrate(kb).await {
            Ok(joint) => {
                let (negatives, positives) = joint.refused(CALIBRATION_REPORT_TARGET);
                tracing::info!(
                    ?negatives,
                    ?positives,
                    "hybrid decision calibrated (refused at the default target)"
                );
                *self.inner.joint.write().unwrap_or_else(|p| p.into_inner()) =
                    Some(Arc::new(joint));
            }
            Err(e) => {
                tracing::warn!("hybrid decision not calibrated, BM25's calibration decides: {e}")
            }
        }
    }

    /// The decision's joint BM25 + embedding calibration for the current
    /// passages (`None` before the first successful [`Semantic::sync`]).
    pub fn joint(&self) -> Option<Arc<Joint>> {
        self.inner
            .joint
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// Embeds the knowledge base's calibration questions (generic off-topic
    /// ones and ones made from its articles, see [`crate::kb::calibrate`];
    /// their BM25 scores come with the knowledge base's own calibration) and
    /// finds each one's nearest passage: the [`Joint`] calibration. Their
    /// vectors are kept in the vectors file beside the passages', so a
    /// restart embeds none and an edit only the changed articles' questions.
    async fn calibrate(&self, kb: &KnowledgeBase) -> Result<Joint, Error> {
        let bm25 = kb.calibration();
        let questions = bm25.questions();
        let missing: Vec<String> = {
            let state = self.read();
            let mut seen = std::collections::HashSet::new();
            asked(questions)
                .filter(|q| {
                    let hash = question_hash(q);
                    !state.by_hash.contains_key(&hash) && seen.insert(hash)
                })
                .map(String::from)
                .collect()
        };
        for chunk in missing.chunks(self.inner.model.batch_size().max(1)) {
            let vectors = self.embed_texts(chunk).await?;
            let mut state = self.write();
            for (q, v) in chunk.iter().zip(vectors) {
                state.by_hash.insert(question_hash(q), v);
            }
        }
        if !missing.is_empty() {
            self.save()?;
        }
        let pairs = |list: &[(String, f32)]| -> Result<Vec<(f32, f32)>, Error> {
            list.iter()
                .map(|(q, best)| {
                    let vector = self.read().by_hash.get(&question_hash(q)).cloned();
                    let similarity = match vector {
                        Some(v) => self
                            .nearest_to(&v, 1)?
                            .first()
                            .map_or(0.0, |n| n.similarity),
                        None => 0.0,
                    };
                    Ok((*best, similarity))
                })
                .collect()
        };
        let negatives = pairs(&questions.negatives)?;
        let positives = pairs(&questions.positives)?;
        Ok(Joint::new(bm25.clone(), &negatives, &positives))
    }
}

/// Every calibration question, negatives first.
pub(super) fn asked(questions: &Questions) -> impl Iterator<Item = &str> {
    questions
        .negatives
        .iter()
        .chain(&questions.positives)
        .map(|(q, _)| q.as_str())
}

/// The key of a calibration question's vector in the vectors file, kept
/// apart from passages' keys by a prefix ending in a NUL byte.
pub(super) fn question_hash(question: &str) -> [u8; 32] {
    let mut hasher = Sha256::new();
    hasher.update(b"calibration question\0");
    hasher.update(question.as_bytes());
    hasher.finalize().into()
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
