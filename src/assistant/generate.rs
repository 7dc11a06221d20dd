//! Generation: the prompt fitted to the model's context (see
//! [`super::budget`]), the streamed call, and reading a decline (see
//! [`super::decline`]).

use futures::StreamExt;

use super::*;

impl Assistant {
    /// The best passages (at most `assistant.max_passages`) that fit in
    /// `budget` tokens, grouped by article in the order of their best
    /// passage.
    fn prompt_sources(&self, hits: &[Hit], budget: usize) -> Vec<PromptSource> {
        let hits: Vec<&Hit> = hits
            .iter()
            .take(self.inner.settings.max_passages.max(1))
            .collect();
        let texts: Vec<&str> = hits.iter().map(|h| h.markdown.as_str()).collect();
        let (kept, _) = budget::fit_passages(&texts, budget);
        let mut sources: Vec<PromptSource> = Vec::new();
        for (i, text) in kept {
            let hit = hits[i];
            let passage = PromptPassage {
                heading: hit.heading.clone(),
                text,
            };
            match sources.iter_mut().find(|s| s.slug == hit.slug) {
                Some(source) => source.passages.push(passage),
                None => sources.push(PromptSource {
                    slug: hit.slug.clone(),
                    title: hit.title.clone(),
                    url: self.inner.kb.link(&hit.slug, hit.url.as_deref()),
                    score: hit.score,
                    passages: vec![passage],
                }),
            }
        }
        sources
    }

    /// The messages for the model (rules, the recent conversation, then
    /// the sources and the question) and the sources they number, fitted
    /// into the model's context (see [`budget`]).
    pub(super) fn build_prompt(
        &self,
        question: &str,
        hits: &[Hit],
        history: &[Earlier],
    ) -> Result<(Vec<ChatMessage>, Vec<PromptSource>), Error> {
        let system = self.render(Template::System, serde_json::json!({}))?;
        // The question is data inside <question>; a customer cannot close
        // the tag and write instructions after it.
        let question = prompts::without_tag(question, "question");
        let skeleton = self.render(
            Template::Answer,
            serde_json::json!({"sources": [], "question": question}),
        )?;
        let PromptBudget {
            context_tokens,
            answer_tokens,
        } = self.inner.budget;
        let fixed = budget::estimate_tokens(&system) + budget::estimate_tokens(&skeleton) + 32;
        let room = context_tokens.saturating_sub(answer_tokens + fixed);
        let history_need: usize = history
            .iter()
            .map(|m| budget::estimate_tokens(&m.text) + 8)
            .sum();
        let for_history = history_need.min(room / 4);
        let sources = self.prompt_sources(hits, room - for_history);
        let used: usize = sources
            .iter()
            .flat_map(|s| &s.passages)
            .map(|p| budget::estimate_tokens(&p.text) + budget::estimate_tokens(&p.heading) + 16)
            .sum();
        let history = budget::fit_history(history, room.saturating_sub(used), room);
        let user = self.render(
            Template::Answer,
            serde_json::json!({"sources": sources, "question": question}),
        )?;
        let mut messages = vec![ChatMessage::new(Speaker::System, system)];
        for m in &history {
            let speaker = if m.role == context::Role::Customer {
                Speaker::User
            } else {
                Speaker::Assistant
            };
            messages.push(ChatMessage::new(speaker, m.text.clone()));
        }
        messages.push(ChatMessage::new(Speaker::User, user));
        Ok((messages, sources))
    }

    /// Generates an answer to `question` from `retrieval` with the same
    /// prompts customers get, but without a conversation: nothing is
    /// stored and there is no history.
    ///
    /// # Errors
    /// [`Error::Model`] without a model or when it fails.
    pub async fn draft(&self, question: &str, retrieval: &Retrieval) -> Result<Draft, Error> {
        self.draft_in(question, &[], retrieval).await
    }

    /// [`Assistant::draft`] in a conversation whose earlier turns are
    /// `earlier` (given to the model as for a live conversation).
    ///
    /// # Errors
    /// [`Error::Model`] without a model or when it fails.
    pub async fn draft_in(
        &self,
        question: &str,
        earlier: &[Earlier],
        retrieval: &Retrieval,
    ) -> Result<Draft, Error> {
        let model = self
            .inner
            .model
            .as_ref()
            .ok_or_else(|| Error::Model("no LLM is configured (llm.base_url)".into()))?;
        let (messages, sources) = self.build_prompt(question, &retrieval.hits, earlier)?;
        let (text, _) = self
            .generate(model.as_ref(), &messages, None)
            .await
            .map_err(|e| Error::Model(e.to_string()))?;
        if decline::is_decline(&text) {
            return Ok(Draft {
                text,
                sources: Vec::new(),
                declined: true,
            });
        }
        let sources = cited_sources(&text, &sources);
        Ok(Draft {
            text,
            sources,
            declined: false,
        })
    }

    /// One whole completion of `messages` for work beside the customers'
    /// answers (drafting an article from a conversation): the same model,
    /// the same `llm.max_concurrency` gate and timeouts. `None` without a
    /// model.
    pub async fn complete(&self, messages: &[ChatMessage]) -> Option<Result<String, llm::Error>> {
        let model = self.inner.model.as_ref()?;
        Some(
            self.generate(model.as_ref(), messages, None)
                .await
                .map(|(text, _)| text),
        )
    }

    /// Runs the model, forwarding text to `deltas` except while it may
    /// still be a decline (see [`decline`]).
    pub(super) async fn generate(
        &self,
        model: &dyn ChatModel,
        messages: &[ChatMessage],
        deltas: Option<mpsc::UnboundedSender<String>>,
    ) -> Result<(String, Usage), llm::Error> {
        // The place is held until the stream has ended (or failed): the
        // limit is on calls in flight, not on calls started.
        let _place = match &self.inner.limits {
            Some(limits) => Some(limits.model().enter().await.ok_or(llm::Error::Busy)?),
            None => None,
        };
        let limit = self.inner.llm_timeout;
        let stream = tokio::time::timeout(limit, model.stream(messages))
            .await
            .map_err(|_| llm::Error::Timeout(limit))??;
        let mut stream = llm::with_stall_timeout(stream, limit);
        let mut text = String::new();
        let mut usage = Usage::default();
        let mut holding = true;
        while let Some(item) = stream.next().await {
            match item? {
                Delta::Usage(u) => usage = u,
                Delta::Text(piece) => {
                    text.push_str(&piece);
                    if holding {
                        // Held back while it may still be a decline (the
                        // customer then gets the no-answer message instead).
                        if decline::may_decline(&text) != Some(false) {
                            continue;
                        }
                        holding = false;
                        if let Some(tx) = &deltas {
                            let _ = tx.send(text.clone());
                        }
                    } else if let Some(tx) = &deltas {
                        let _ = tx.send(piece);
                    }
                }
            }
        }
        if text.trim().is_empty() {
            return Err(llm::Error::Protocol("empty answer".into()));
        }
        Ok((text.trim().to_string(), usage))
    }
}

/// The sources whose `[n]` the answer cites; all of them if it cites none.
pub(super) fn cited_sources(text: &str, sources: &[PromptSource]) -> Vec<SourceRef> {
    let mut cited: Vec<usize> = Vec::new();
    for n in super::decline::citations(text) {
        if (1..=sources.len()).contains(&n) && !cited.contains(&(n - 1)) {
            cited.push(n - 1);
        }
    }
    if cited.is_empty() {
        cited = (0..sources.len()).collect();
    }
    cited.sort_unstable();
    cited
        .into_iter()
        .map(|i| {
            let s = &sources[i];
            SourceRef {
                slug: s.slug.clone(),
                title: s.title.clone(),
                url: s.url.clone(),
                score: s.score,
            }
        })
        .collect()
}

pub(super) fn source_of(hit: &Hit) -> SourceRef {
    SourceRef {
        slug: hit.slug.clone(),
        title: hit.title.clone(),
        url: hit.url.clone(),
        score: hit.score,
    }
}

/// The passage as a quote: whole paragraphs up to [`MAX_QUOTE_CHARS`].
pub(super) fn quote_of(markdown: &str) -> String {
    let mut out = String::new();
    for para in markdown.split("\n\n") {
        if !out.is_empty() && out.chars().count() + para.chars().count() > MAX_QUOTE_CHARS {
            break;
        }
        if !out.is_empty() {
            out.push_str("\n\n");
        }
        out.push_str(para.trim_end());
    }
    if out.chars().count() > MAX_QUOTE_CHARS {
        out = out.chars().take(MAX_QUOTE_CHARS).collect::<String>() + "…";
    }
    out
}
