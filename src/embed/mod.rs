//! Text embeddings for hybrid retrieval behind one small trait,
//! [`Embedder`], with two providers: a sentence-transformers folder run in
//! the process ([`local::LocalEmbedder`], `embeddings.provider = "local"`)
//! and the `/v1/embeddings` endpoint of the configured model
//! ([`Endpoint`], `embeddings.provider = "openai"`).
//!
//! The dense index ([`crate::assistant::semantic`]) only sees the trait: it
//! does not know which provider runs.

use std::sync::Arc;

use crate::llm::ChatModel;

pub mod local;

/// An embedding failure; retrieval falls back to BM25.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The endpoint failed.
    #[error("embedding endpoint: {0}")]
    Endpoint(#[from] crate::llm::Error),
    /// The model folder could not be loaded.
    #[error("embedding model {0}: {1}")]
    Load(String, String),
    /// The forward pass failed.
    #[error("embedding model: {0}")]
    Inference(String),
    /// Every embedding worker is busy and the queue is full.
    #[error("embedding model busy: every worker is in use and the queue is full")]
    Busy,
}

/// Something that turns texts into vectors.
#[async_trait::async_trait]
pub trait Embedder: Send + Sync {
    /// What made the vectors (provider, model, and for a local folder a
    /// hash of its files): cached vectors made under another identity are
    /// embedded again.
    fn identity(&self) -> &str;

    /// Texts per call when indexing: each call must finish within the
    /// embedding timeout (`llm.timeout_secs`), so a model whose time grows
    /// with the batch asks for smaller ones.
    fn batch_size(&self) -> usize {
        64
    }

    /// One vector per input, in order.
    ///
    /// # Errors
    /// When the model fails or is overloaded.
    async fn embed(&self, inputs: &[String]) -> Result<Vec<Vec<f32>>, Error>;
}

/// Embeddings from the `/v1/embeddings` endpoint of a [`ChatModel`]
/// (`embeddings.provider = "openai"`).
pub struct Endpoint {
    model: Arc<dyn ChatModel>,
    identity: String,
}

impl Endpoint {
    /// Embeds through `model`, whose endpoint serves `name`; `base_url`
    /// is part of the identity, since two servers may give one name to
    /// different models.
    pub fn new(model: Arc<dyn ChatModel>, name: &str, base_url: &str) -> Self {
        Self {
            model,
            identity: format!("openai:{name}@{}", base_url.trim_end_matches('/')),
        }
    }
}

#[async_trait::async_trait]
impl Embedder for Endpoint {
    fn identity(&self) -> &str {
        &self.identity
    }

    async fn embed(&self, inputs: &[String]) -> Result<Vec<Vec<f32>>, Error> {
        Ok(self.model.embed(inputs).await?)
    }
}
