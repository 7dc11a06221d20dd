//! Calibrating the covered/not-covered decision for one knowledge base.
//!
//! A raw BM25 score means different things on short FAQ entries and on long
//! manual sections, so no fixed threshold holds across knowledge bases.
//! Instead, whenever the index changes, the knowledge base scores two sets of
//! questions against itself: generic off-topic questions shipped with the
//! program (`off_topic.txt`, negatives) and questions made from its own
//! articles' titles, headings and first sentences (positives). A question is
//! then judged by where its best score falls among the negatives' scores
//! ([`Calibration::relevance`]), and the operator's knob is the share of
//! off-topic questions to refuse ([`Calibration::threshold`]).

use super::article::Article;

/// Generic off-topic questions (negatives), one a line, `#` comments.
const OFF_TOPIC: &str = include_str!("off_topic.txt");
/// Most positives made from the articles (spread over all of them).
const MAX_POSITIVES: usize = 400;
/// The threshold never refuses more than this share of the positives: on
/// a knowledge base about everyday topics the off-topic questions score
/// high, and the bot must still answer its own articles.
const MAX_POSITIVES_REFUSED: f32 = 0.25;
/// Words a positive made from a first sentence keeps.
const SENTENCE_WORDS: usize = 16;

/// The shipped off-topic questions.
pub fn off_topic_questions() -> impl Iterator<Item = &'static str> {
    OFF_TOPIC
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
}

/// Headings repeated in more articles than this ("Answer 1", "Overview")
/// say nothing about any one of them and make no positive.
const SHARED_HEADING_ARTICLES: usize = 2;

/// Questions made from the articles' own titles, headings and first
/// sentences, at most [`MAX_POSITIVES`], spread evenly over the articles.
pub fn positive_questions(articles: &[&Article]) -> Vec<String> {
    let mut heading_use: std::collections::HashMap<String, usize> = Default::default();
    for article in articles {
        let own: std::collections::HashSet<String> = article
            .passages
            .iter()
            .map(|p| p.heading.trim().to_lowercase())
            .collect();
        for h in own {
            *heading_use.entry(h).or_default() += 1;
        }
    }
    let mut all = Vec::new();
    for article in articles {
        let mut own = vec![article.title.clone()];
        for passage in &article.passages {
            let heading = passage.heading.trim();
            let shared = heading_use
                .get(&heading.to_lowercase())
                .is_some_and(|n| *n > SHARED_HEADING_ARTICLES);
            if !heading.is_empty() && heading != article.title && !shared {
                own.push(heading.to_string());
            }
        }
        if let Some(first) = article.passages.iter().find(|p| !p.text.trim().is_empty()) {
            let sentence = first
                .text
                .split(['.', '?', '!', '\n'])
                .find(|s| s.split_whitespace().count() >= 3)
                .unwrap_or_default();
            let words: Vec<&str> = sentence.split_whitespace().take(SENTENCE_WORDS).collect();
            if !words.is_empty() {
                own.push(words.join(" "));
            }
        }
        all.push(own);
    }
    let total: usize = all.iter().map(Vec::len).sum();
    let step = total.div_ceil(MAX_POSITIVES).max(1);
    all.into_iter()
        .flatten()
        .enumerate()
        .filter(|(i, _)| i % step == 0)
        .map(|(_, q)| q)
        .collect()
}

/// Best scores of the negatives and positives on one knowledge base.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Calibration {
    /// Off-topic questions' best scores, ascending.
    negatives: Vec<f32>,
    /// Positives' best scores, ascending.
    positives: Vec<f32>,
    /// The questions themselves with their best scores, when made from
    /// them ([`Calibration::from_questions`]), so that another signal can
    /// be calibrated on the same questions without scoring them again.
    questions: Questions,
}

/// Calibration questions with their best scores, in the order asked.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Questions {
    /// Generic off-topic questions.
    pub negatives: Vec<(String, f32)>,
    /// Questions made from the articles.
    pub positives: Vec<(String, f32)>,
}

impl Calibration {
    /// From the best score of each negative and each positive question.
    pub fn new(mut negatives: Vec<f32>, mut positives: Vec<f32>) -> Self {
        negatives.retain(|s| s.is_finite());
        positives.retain(|s| s.is_finite());
        negatives.sort_by(f32::total_cmp);
        positives.sort_by(f32::total_cmp);
        Self {
            negatives,
            positives,
            questions: Questions::default(),
        }
    }

    /// From the questions and their best scores, which it keeps
    /// ([`Calibration::questions`]).
    pub fn from_questions(questions: Questions) -> Self {
        let scores = |list: &[(String, f32)]| list.iter().map(|(_, s)| *s).collect();
        let mut calibration = Self::new(scores(&questions.negatives), scores(&questions.positives));
        calibration.questions = questions;
        calibration
    }

    /// The questions it was made from, with their best scores (empty when
    /// made from bare scores).
    pub fn questions(&self) -> &Questions {
        &self.questions
    }

    /// Whether there is anything to calibrate with (an empty knowledge
    /// base has nothing).
    pub fn is_empty(&self) -> bool {
        self.negatives.is_empty()
    }

    /// Share (0–1) of the off-topic questions whose best score is below
    /// `score`: how far a question stands out from generic chatter on this
    /// knowledge base.
    pub fn relevance(&self, score: f32) -> f32 {
        if self.negatives.is_empty() {
            return 0.0;
        }
        let below = self.negatives.partition_point(|s| *s < score);
        below as f32 / self.negatives.len() as f32
    }

    /// The lowest best score that counts as covered when `refusal_target`
    /// (0–1) of off-topic questions are to be refused, lowered when it
    /// would refuse more than [`MAX_POSITIVES_REFUSED`] of the positives.
    /// `None` without negatives.
    pub fn threshold(&self, refusal_target: f32) -> Option<f32> {
        let n = self.negatives.len();
        if n == 0 {
            return None;
        }
        let target = refusal_target.clamp(0.0, 1.0);
        // Refuse the `k` lowest-scoring negatives: the threshold sits just
        // above the k-th.
        let k = (target * n as f32).ceil() as usize;
        let from_negatives = if k == 0 {
            f32::MIN
        } else if k >= n {
            next_up(self.negatives[n - 1])
        } else {
            next_up(self.negatives[k - 1])
        };
        let guard = (!self.positives.is_empty()).then(|| {
            let i = (MAX_POSITIVES_REFUSED * self.positives.len() as f32).floor() as usize;
            self.positives[i.min(self.positives.len() - 1)]
        });
        Some(match guard {
            Some(g) if g < from_negatives => g,
            _ => from_negatives,
        })
    }

    /// Share of the positives the threshold for `refusal_target` refuses.
    pub fn positives_refused(&self, refusal_target: f32) -> Option<f32> {
        let t = self.threshold(refusal_target)?;
        (!self.positives.is_empty()).then(|| {
            self.positives.partition_point(|s| *s < t) as f32 / self.positives.len() as f32
        })
    }

    /// Share of the negatives the threshold for `refusal_target` refuses.
    pub fn negatives_refused(&self, refusal_target: f32) -> Option<f32> {
        let t = self.threshold(refusal_target)?;
        Some(self.negatives.partition_point(|s| *s < t) as f32 / self.negatives.len() as f32)
    }
}

/// The smallest float above `x` (scores equal to a refused negative's are
/// refused too).
fn next_up(x: f32) -> f32 {
    if x.is_nan() || x == f32::INFINITY {
        return x;
    }
    if x == 0.0 {
        return f32::from_bits(1);
    }
    let bits = x.to_bits();
    f32::from_bits(if x > 0.0 { bits + 1 } else { bits - 1 })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn threshold_refuses_the_target_share_of_negatives() {
        let negatives: Vec<f32> = (1..=100).map(|i| i as f32).collect();
        let positives: Vec<f32> = (0..50).map(|i| 200.0 + i as f32).collect();
        let c = Calibration::new(negatives, positives);
        let t = c.threshold(0.9).unwrap();
        assert!(t > 90.0 && t < 91.0, "{t}");
        assert_eq!(c.negatives_refused(0.9), Some(0.9));
        assert_eq!(c.positives_refused(0.9), Some(0.0));
        assert_eq!(c.relevance(95.0), 0.94);
        assert_eq!(c.relevance(1000.0), 1.0);
        assert_eq!(c.relevance(0.0), 0.0);
    }

    #[test]
    fn positives_keep_the_threshold_down() {
        // Off-topic questions score as high as the articles' own: the
        // threshold stops where it would refuse a quarter of the positives.
        let negatives: Vec<f32> = (1..=100).map(|i| i as f32).collect();
        let positives: Vec<f32> = (1..=100).map(|i| i as f32).collect();
        let c = Calibration::new(negatives, positives);
        assert_eq!(c.threshold(0.9), Some(26.0));
        assert!(c.positives_refused(0.9).unwrap() <= MAX_POSITIVES_REFUSED);
    }

    #[test]
    fn made_from_questions_it_keeps_them_and_calibrates_the_same() {
        let questions = Questions {
            negatives: (1..=10).map(|i| (format!("n{i}"), i as f32)).collect(),
            positives: vec![("p".into(), 50.0), ("q".into(), 60.0)],
        };
        let c = Calibration::from_questions(questions.clone());
        assert_eq!(c.questions(), &questions);
        let bare = Calibration::new((1..=10).map(|i| i as f32).collect(), vec![50.0, 60.0]);
        assert_eq!(c.threshold(0.9), bare.threshold(0.9));
        assert_eq!(c.relevance(5.5), bare.relevance(5.5));
        assert!(bare.questions().negatives.is_empty());
    }

    #[test]
    fn nothing_to_calibrate_with() {
        let c = Calibration::new(vec![], vec![1.0]);
        assert!(c.is_empty());
        assert_eq!(c.threshold(0.9), None);
        assert_eq!(c.relevance(3.0), 0.0);
    }

    #[test]
    fn shipped_negatives_are_read() {
        assert!(off_topic_questions().count() >= 150);
        assert!(off_topic_questions().all(|q| !q.starts_with('#')));
    }
}
