//! Requests for a person recognised by meaning, beside the phrase patterns
//! of [`crate::handoff`]: with embeddings on, a message that is closer to
//! one of the examples in `prompts/handoff_examples.md` than to anything
//! in the knowledge base (by [`MARGIN`], and at least [`FLOOR`]) asks for a
//! person. Comparing with the knowledge base's own nearest passage makes
//! the decision follow the content it runs on: a question the articles
//! answer stays with the bot however it is worded.
//!
//! The examples are embedded once and again whenever the file changes (it
//! is read with the other templates, so an admin's edit applies after the
//! prompts reload).

use std::sync::Arc;

use super::*;

/// Closer than this (cosine) to some example, or it is no request.
pub const FLOOR: f32 = 0.60;
/// And this much closer to the example than to the nearest passage.
pub const MARGIN: f32 = 0.05;
/// At most this many examples are read.
const MAX_EXAMPLES: usize = 500;

/// The examples as embedded, with the text they came from.
pub(super) struct Embedded {
    /// A hash of the examples' text.
    source: u64,
    /// Each example and its unit vector.
    examples: Arc<Vec<(String, Arc<[f32]>)>>,
}

/// The examples in the template's text: lines starting with `- `.
pub fn parse_examples(text: &str) -> Vec<String> {
    text.lines()
        .filter_map(|l| l.trim().strip_prefix("- "))
        .map(|l| l.trim().chars().take(300).collect::<String>())
        .filter(|l| !l.is_empty())
        .take(MAX_EXAMPLES)
        .collect()
}

impl Assistant {
    /// The example `question` is most like when it reads as a request for
    /// a person (see the module), or `None`: also without embeddings, without
    /// examples, or when the embedder fails (the phrases still apply).
    pub(super) async fn like_a_request(&self, question: &str) -> Option<String> {
        let semantic = self.inner.semantic.as_ref()?;
        if semantic.is_empty() {
            return None;
        }
        let examples = self.request_examples(semantic).await?;
        let query = match semantic.query_vector(question).await {
            Ok(q) => q,
            Err(e) => {
                tracing::debug!("hand-off examples skipped: {e}");
                return None;
            }
        };
        let (best, example) = examples
            .iter()
            .map(|(text, v)| (ann::dot(&query, v), text))
            .max_by(|a, b| a.0.total_cmp(&b.0))?;
        if best < FLOOR {
            return None;
        }
        let nearest = semantic
            .nearest_to(&query, 1)
            .ok()?
            .first()
            .map_or(0.0, |n| n.similarity);
        (best >= nearest + MARGIN).then(|| example.clone())
    }

    /// The examples' vectors, embedded when the template's text changed.
    async fn request_examples(
        &self,
        semantic: &Semantic,
    ) -> Option<Arc<Vec<(String, Arc<[f32]>)>>> {
        let text = self
            .inner
            .prompts
            .render(Template::HandoffExamples, serde_json::json!({}))
            .ok()?;
        let source = {
            use std::hash::{Hash, Hasher};
            let mut h = std::collections::hash_map::DefaultHasher::new();
            text.hash(&mut h);
            h.finish()
        };
        let mut held = self.inner.request_examples.lock().await;
        if let Some(embedded) = held.as_ref().filter(|e| e.source == source) {
            return Some(embedded.examples.clone());
        }
        let texts = parse_examples(&text);
        if texts.is_empty() {
            return None;
        }
        let vectors = match semantic.embed_texts(&texts).await {
            Ok(v) => v,
            Err(e) => {
                tracing::warn!(
                    "embedding {} failed; phrases only: {e}",
                    Template::HandoffExamples
                );
                return None;
            }
        };
        let examples: Arc<Vec<(String, Arc<[f32]>)>> =
            Arc::new(texts.into_iter().zip(vectors).collect());
        *held = Some(Embedded {
            source,
            examples: examples.clone(),
        });
        Some(examples)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn examples_are_the_list_items() {
        let text = "Intro line\n- I want a human\n  -   call me back  \n-no space\n- \n";
        assert_eq!(parse_examples(text), ["I want a human", "call me back"]);
    }

    proptest! {
        #[test]
        fn any_text_parses_to_short_examples(s in crate::hostile::text()) {
            for e in parse_examples(&s) {
                prop_assert!(!e.is_empty() && e.chars().count() <= 300);
            }
        }
    }
}
