//! Retrieval for a question in its conversation, and whether it is
//! covered: BM25 (with every passage scored with its whole article as
//! well), fused article by article with dense neighbours when embeddings
//! are on, follow-ups
//! resolved against the conversation (see [`super::context`]), and the
//! calibrated covered/not-covered decision.

use std::collections::HashMap;
use std::time::Instant;

use super::*;

/// The stateless decision for a question ([`Assistant::assess`]).
#[derive(Debug, Clone)]
pub enum Assessment {
    /// A person must take over.
    HandOff(Reason, Option<String>),
    /// A canned reply (the template's name): greetings, thanks.
    Reply(Template),
    /// The knowledge base covers it.
    Answer(Retrieval),
    /// The knowledge base does not cover it: say so, offer a person.
    NotCovered(Retrieval),
}

/// Retrieved passages and how sure retrieval is that they answer.
#[derive(Debug, Clone)]
pub struct Retrieval {
    /// Ranked passages.
    pub hits: Vec<Hit>,
    /// 0–1: the share of the question's information the best passage holds.
    pub confidence: f32,
    /// The best BM25 score.
    pub best_score: f32,
    /// The best BM25 score as the share (0–1) of generic off-topic
    /// questions that score lower on this knowledge base: comparable across
    /// knowledge bases.
    pub relevance: f32,
    /// Cosine similarity of the nearest passage, with embeddings on.
    pub similarity: Option<f32>,
    /// Whether BM25 and the embeddings put the same article first.
    pub agree: bool,
}

impl Assistant {
    /// Searches the knowledge base for `question` and measures confidence.
    ///
    /// # Errors
    /// On an index failure.
    pub async fn retrieve(&self, question: &str) -> Result<Retrieval, Error> {
        self.retrieve_parts(&[(question, 1.0)]).await
    }

    /// Retrieval for weighted query parts (the new message first).
    async fn retrieve_parts(&self, parts: &[(&str, f32)]) -> Result<Retrieval, Error> {
        let started = Instant::now();
        let kb = &self.inner.kb;
        let pool = kb.retrieve_parts(parts, ARTICLE_POOL)?;
        // Coverage as BM25 ranks passages: the share of the question found
        // in the best few passages (with what earlier passages of the same
        // article held).
        let confidence = pool.iter().take(3).map(|h| h.coverage).fold(0.0, f32::max);
        let best_score = pool.first().map_or(0.0, |h| h.score);
        let relevance = self.inner.kb.calibration().relevance(best_score);
        let mut ranked = by_article(pool);
        let near = match &self.inner.semantic {
            Some(semantic) => self.dense(semantic, parts).await,
            None => None,
        };
        let similarity = near.as_ref().map(|n| n[0].similarity);
        let agree = near
            .as_ref()
            .is_some_and(|n| ranked.first().is_some_and(|h| h.slug == n[0].slug));
        let hits = match near {
            Some(near) => fuse_articles(kb, ranked, &near),
            None => {
                ranked.truncate(RETRIEVE_LIMIT);
                ranked
            }
        };
        metrics::histogram!("switchboard_retrieval_latency_seconds")
            .record(started.elapsed().as_secs_f64());
        Ok(Retrieval {
            hits,
            confidence,
            best_score,
            relevance,
            similarity,
            agree,
        })
    }

    /// The passages nearest to the query parts that weigh at least half
    /// (the new message, the previous customer turn); `None` when there are
    /// none or the embeddings fail (BM25 alone then).
    async fn dense(
        &self,
        semantic: &Semantic,
        parts: &[(&str, f32)],
    ) -> Option<Vec<semantic::Near>> {
        let query = parts
            .iter()
            .filter(|(_, w)| *w >= 0.5)
            .map(|(t, _)| *t)
            .collect::<Vec<_>>()
            .join("\n");
        match semantic.nearest(&query, DENSE_POOL).await {
            Ok(near) if !near.is_empty() => Some(near),
            Ok(_) => None,
            Err(e) => {
                tracing::warn!("dense retrieval skipped, BM25 only: {e}");
                None
            }
        }
    }

    /// The stateless part of the decision for a question: a request for a
    /// person, upset wording, an admin keyword, small talk, or retrieval and
    /// whether it covers the question. Customers' messages and `switchboard
    /// eval` both go through this.
    ///
    /// # Errors
    /// On an index failure.
    pub async fn assess(&self, question: &str) -> Result<Assessment, Error> {
        self.assess_in(question, &[]).await
    }

    /// Retrieval for `question` in a conversation whose earlier turns are
    /// `earlier` (oldest first). A message that leans on the conversation
    /// is searched together with the earlier turns (at lower weights) and,
    /// with a model, its standalone rewrite; that merged retrieval is kept
    /// only when its best article is about the new message too; otherwise
    /// the message is searched alone.
    ///
    /// # Errors
    /// On an index failure.
    pub async fn retrieve_in(
        &self,
        question: &str,
        earlier: &[Earlier],
    ) -> Result<Retrieval, Error> {
        let alone = self.retrieve(question).await?;
        let mut parts = context::parts(question, earlier);
        if parts.len() == 1 {
            return Ok(alone);
        }
        let new_terms = self.inner.kb.analyze(question);
        let follow_up = context::follow_up(question, new_terms.len());
        let standalone = match follow_up {
            context::FollowUp::No => None,
            _ => self.standalone(question, earlier).await,
        };
        if let Some(standalone) = &standalone {
            // The model's rewrite says what the message is about, as much
            // as the message itself; the earlier turns stay in at their
            // lower weights, so a small model's poor rewrite cannot take
            // the conversation off its topic, and the merge is checked
            // against the message alone as without a model.
            parts.insert(1, (standalone.as_str(), 1.0));
        }
        let merged = self.retrieve_parts(&parts).await?;
        let Some(top) = merged.hits.first() else {
            return Ok(alone);
        };
        if new_terms.is_empty() {
            // Nothing but pointers ("tell me more"): the conversation says
            // what it is about.
            return Ok(merged);
        }
        let merged_share = context::about_share(&new_terms, &self.article_terms(&top.slug));
        let alone_top = alone.hits.first();
        let keep = match follow_up {
            // "and how long does it take?": about the earlier topic unless
            // the message alone is clearly about another article.
            context::FollowUp::Explicit => {
                merged_share > 0.0
                    || !(self.covers(&alone) && alone_top.is_some_and(|h| h.slug != top.slug))
            }
            // "Probate?": a few words of their own, which the merged
            // article must hold.
            context::FollowUp::Short => merged_share > 0.0,
            // A question of its own: the merged article must be about it at
            // least as much as what the message finds alone.
            context::FollowUp::No => {
                let alone_share = alone_top.map_or(0.0, |h| {
                    context::about_share(&new_terms, &self.article_terms(&h.slug))
                });
                merged_share >= ABOUT_NEW_TURN.max(alone_share)
            }
        };
        tracing::debug!(
            ?follow_up,
            keep,
            merged_share,
            alone = alone.best_score,
            alone_relevance = alone.relevance,
            merged = merged.best_score,
            merged_relevance = merged.relevance,
            "follow-up merge"
        );
        Ok(if keep { merged } else { alone })
    }

    /// With a model: `question` rewritten as a standalone question from the
    /// recent conversation (template `rewrite.md`; one short call, cached
    /// per turn). `None` without a model or template, or when the call
    /// fails: retrieval then merges the conversation without a model.
    async fn standalone(&self, question: &str, earlier: &[Earlier]) -> Option<String> {
        let model = self.inner.model.as_ref()?;
        let recent = &earlier[earlier.len().saturating_sub(REWRITE_TURNS)..];
        let key = {
            use std::hash::{Hash, Hasher};
            let mut h = std::collections::hash_map::DefaultHasher::new();
            recent.hash(&mut h);
            question.hash(&mut h);
            h.finish()
        };
        if let Some(hit) = self.inner.rewrites.lock().ok()?.get(&key) {
            return Some(hit.clone());
        }
        let history: Vec<serde_json::Value> = recent
            .iter()
            .map(|e| {
                let text: String = e.text.chars().take(REWRITE_TURN_CHARS).collect();
                serde_json::json!({
                    "role": if e.role == context::Role::Customer { "Customer" } else { "Assistant" },
                    "text": text.replace("</conversation>", "").replace("</latest>", ""),
                })
            })
            .collect();
        let question_text = question.replace("</latest>", "").replace("<latest>", "");
        let prompt = match self.render(
            Template::Rewrite,
            serde_json::json!({"history": history, "question": question_text}),
        ) {
            Ok(p) => p,
            Err(e) => {
                tracing::debug!("no follow-up rewrite: {e}");
                return None;
            }
        };
        let messages = vec![ChatMessage::new(Speaker::User, prompt)];
        let text = match self.generate(model.as_ref(), &messages, None).await {
            Ok((text, _)) => text,
            Err(e) => {
                tracing::warn!("follow-up rewrite failed, merging without the model: {e}");
                return None;
            }
        };
        let line = text
            .lines()
            .map(|l| l.trim().trim_matches('"').trim())
            .find(|l| !l.is_empty())?;
        if decline::is_no_answer_token(line) {
            return None;
        }
        let rewrite: String = line.chars().take(REWRITE_MAX_CHARS).collect();
        if let Ok(mut cache) = self.inner.rewrites.lock() {
            if cache.len() >= REWRITE_CACHE {
                cache.clear();
            }
            cache.insert(key, rewrite.clone());
        }
        Some(rewrite)
    }

    /// The analysed terms of an article (title, tags, every passage).
    fn article_terms(&self, slug: &str) -> std::collections::HashSet<String> {
        let Some(article) = self.inner.kb.article(slug) else {
            return Default::default();
        };
        let mut text = format!("{}\n{}\n", article.title, article.tags.join(" "));
        for p in &article.passages {
            text.push_str(&p.heading);
            text.push('\n');
            text.push_str(&p.text);
            text.push('\n');
        }
        self.inner.kb.analyze(&text).into_iter().collect()
    }

    /// [`Assistant::assess`] for a message in a conversation: the same
    /// checks on the message itself, then [`Assistant::retrieve_in`].
    /// Customers' messages and `switchboard eval` (with a case's `history`)
    /// both go through this.
    ///
    /// # Errors
    /// On an index failure.
    pub async fn assess_in(
        &self,
        question: &str,
        earlier: &[Earlier],
    ) -> Result<Assessment, Error> {
        let normal = handoff::normalise(question);
        if let Some(keyword) = self.inner.rules.keyword_in(question) {
            return Ok(Assessment::HandOff(
                Reason::Rule,
                Some(format!("keyword `{keyword}`")),
            ));
        }
        if handoff::asks_for_person(question) {
            return Ok(Assessment::HandOff(Reason::CustomerRequest, None));
        }
        if handoff::is_upset(question) {
            return Ok(Assessment::HandOff(
                Reason::Frustration,
                Some("negative wording".into()),
            ));
        }
        if GREETINGS.contains(&normal.as_str()) {
            return Ok(Assessment::Reply(Template::Welcome));
        }
        if THANKS.contains(&normal.as_str()) {
            return Ok(Assessment::Reply(Template::Thanks));
        }
        if let Some(example) = self.like_a_request(question).await {
            return Ok(Assessment::HandOff(
                Reason::CustomerRequest,
                Some(format!("reads like “{example}”")),
            ));
        }
        let retrieval = self.retrieve_in(question, earlier).await?;
        if let Some(tag) = retrieval
            .hits
            .first()
            .and_then(|h| self.inner.rules.tag_in(&h.tags))
        {
            return Ok(Assessment::HandOff(
                Reason::Rule,
                Some(format!("article tag `{tag}`")),
            ));
        }
        Ok(if self.covers(&retrieval) {
            Assessment::Answer(retrieval)
        } else {
            Assessment::NotCovered(retrieval)
        })
    }

    /// Whether a BM25 score alone clears the covered threshold.
    fn bm25_sure(&self, best_score: f32) -> bool {
        let settings = &self.inner.settings;
        settings
            .min_score
            .or_else(|| {
                self.inner
                    .kb
                    .calibration()
                    .threshold(settings.refusal_target)
            })
            .is_some_and(|t| best_score >= t)
    }

    /// Whether retrieval is confident enough to answer.
    pub fn covers(&self, retrieval: &Retrieval) -> bool {
        let settings = &self.inner.settings;
        if retrieval.hits.is_empty() {
            return false;
        }
        let confident = settings
            .min_confidence
            .is_some_and(|c| retrieval.confidence >= c);
        if let Some(similarity) = retrieval.similarity {
            if let Some(min) = settings.min_similarity {
                // A fixed cosine threshold, as configured, beside BM25's.
                let dense =
                    similarity >= min || (retrieval.agree && similarity >= min - AGREEMENT_BONUS);
                return dense || self.bm25_sure(retrieval.best_score) || confident;
            }
            if settings.min_score.is_none()
                && let Some(joint) = self.inner.semantic.as_ref().and_then(Semantic::joint)
            {
                // Both signals, calibrated together for this knowledge base.
                return joint.covers(retrieval.best_score, similarity, settings.refusal_target)
                    || confident;
            }
        }
        self.bm25_sure(retrieval.best_score) || confident
    }
}

/// Passages grouped by article, articles in the order of their best
/// passage (BM25 already scores each passage with its whole article), at
/// most [`PASSAGES_PER_ARTICLE`] each.
fn by_article(hits: Vec<Hit>) -> Vec<Hit> {
    let mut order: Vec<String> = Vec::new();
    for hit in &hits {
        if !order.contains(&hit.slug) {
            order.push(hit.slug.clone());
        }
    }
    let mut kept: HashMap<String, usize> = HashMap::new();
    let mut ranked: Vec<(usize, usize, Hit)> = hits
        .into_iter()
        .enumerate()
        .filter(|(_, h)| {
            let n = kept.entry(h.slug.clone()).or_default();
            *n += 1;
            *n <= PASSAGES_PER_ARTICLE
        })
        .map(|(i, h)| (order.iter().position(|s| *s == h.slug).unwrap_or(i), i, h))
        .collect();
    ranked.sort_by_key(|(article, i, _)| (*article, *i));
    ranked.into_iter().map(|(_, _, h)| h).collect()
}

/// Articles ranked by BM25 and by the embeddings, fused by
/// [`semantic::combine`] at the article level (each article by its best
/// passage in either ranking), then their passages in that order: an
/// article's BM25 passages (at most [`PASSAGES_PER_ARTICLE`]), or the
/// nearest passage when only the embeddings found it.
///
/// Fusing articles rather than passages matters on long documents: there
/// many passages of neighbouring articles are about as near as the right
/// one, and passage-level reciprocal-rank fusion let them outvote the
/// article BM25 was sure of (mtrag hit@1 0.696 against 0.838 for BM25
/// alone; see the README).
fn fuse_articles(kb: &KnowledgeBase, bm25: Vec<Hit>, near: &[semantic::Near]) -> Vec<Hit> {
    let by_bm25: Vec<(&str, f32)> = bm25.iter().map(|h| (h.slug.as_str(), h.score)).collect();
    // Each article once, by its nearest passage (`near` is nearest first):
    // the cosine range is spread over articles, not passages.
    let mut by_meaning: Vec<(&str, f32)> = Vec::new();
    for n in near {
        if !by_meaning.iter().any(|(slug, _)| *slug == n.slug) {
            by_meaning.push((n.slug.as_str(), n.similarity));
        }
    }
    let mut passages: HashMap<&str, Vec<&Hit>> = HashMap::new();
    for hit in &bm25 {
        passages.entry(hit.slug.as_str()).or_default().push(hit);
    }
    let mut fused = Vec::new();
    for (slug, _) in semantic::combine(&by_bm25, &by_meaning, BM25_WEIGHT) {
        match passages.get(slug) {
            Some(own) => fused.extend(own.iter().take(PASSAGES_PER_ARTICLE).map(|h| (*h).clone())),
            None => fused.extend(
                near.iter()
                    .find(|n| n.slug == slug)
                    .and_then(|n| dense_hit(kb, &n.slug, &n.heading)),
            ),
        }
        if fused.len() >= RETRIEVE_LIMIT {
            break;
        }
    }
    fused.truncate(RETRIEVE_LIMIT);
    fused
}

fn dense_hit(kb: &KnowledgeBase, slug: &str, heading: &str) -> Option<Hit> {
    let article = kb.article(slug)?;
    let passage = article.passages.iter().find(|p| p.heading == heading)?;
    Some(Hit {
        slug: article.slug.clone(),
        title: article.title.clone(),
        heading: passage.heading.clone(),
        snippet: passage.text.chars().take(200).collect(),
        score: 0.0,
        markdown: passage.markdown.clone(),
        url: kb.link(&article.slug, article.url.as_deref()),
        tags: article.tags.clone(),
        coverage: 0.0,
        query_weight: 0.0,
    })
}
