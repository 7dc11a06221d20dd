//! Language models behind one small trait, [`ChatModel`], and its
//! implementation for any OpenAI-compatible endpoint through async-openai.
//!
//! The assistant only sees a stream of text deltas; timeouts, retries and
//! the provider's error formats stay here. 429 and 5xx answers are retried a
//! few times (honouring `Retry-After`) by async-openai's retry middleware;
//! a stream that stalls longer than the configured timeout is an error, so
//! the caller can fall back to an extractive answer instead of hanging.

use std::pin::Pin;
use std::time::Duration;

use async_openai::Client;
use async_openai::config::OpenAIConfig;
use async_openai::error::OpenAIError;
use async_openai::middleware::ReqwestService;
use async_openai::middleware::retry::SimpleRetryPolicy;
use async_openai::types::chat::{
    ChatCompletionRequestAssistantMessage, ChatCompletionRequestMessage,
    ChatCompletionRequestSystemMessage, ChatCompletionRequestUserMessage,
    ChatCompletionStreamOptions, CreateChatCompletionRequestArgs,
};
use async_openai::types::embeddings::CreateEmbeddingRequestArgs;
use futures::{Stream, StreamExt};

use crate::config::LlmSettings;

/// A model failure. Every variant makes the assistant fall back.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The provider answered with an error status.
    #[error("LLM provider error: {0}")]
    Api(String),
    /// The connection failed or the stream broke.
    #[error("LLM connection: {0}")]
    Transport(String),
    /// No token arrived within the timeout.
    #[error("LLM timed out after {0:?}")]
    Timeout(Duration),
    /// The provider sent something that is not the protocol.
    #[error("LLM sent an unreadable response: {0}")]
    Protocol(String),
    /// The request could not be built.
    #[error("LLM request: {0}")]
    Request(String),
    /// Every model call allowed at once (`llm.max_concurrency`) is in use
    /// and the wait queue is full, or the wait was too long; not a failure
    /// of the model.
    #[error("LLM busy: every call is in use and the queue is full")]
    Busy,
}

impl From<OpenAIError> for Error {
    fn from(e: OpenAIError) -> Self {
        match e {
            OpenAIError::ApiError(api) => Error::Api(api.to_string()),
            OpenAIError::Reqwest(e) => Error::Transport(e.to_string()),
            OpenAIError::JSONDeserialize(e, _) => Error::Protocol(e.to_string()),
            OpenAIError::StreamError(e) => Error::Transport(e.to_string()),
            OpenAIError::InvalidArgument(e) => Error::Request(e),
            other => Error::Transport(other.to_string()),
        }
    }
}

/// Who said a chat message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Speaker {
    /// Instructions.
    System,
    /// The customer (or the prompt built around their question).
    User,
    /// Earlier answers.
    Assistant,
}

/// One message of the prompt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChatMessage {
    /// Who said it.
    pub speaker: Speaker,
    /// What was said.
    pub content: String,
}

impl ChatMessage {
    /// A message from `speaker`.
    pub fn new(speaker: Speaker, content: impl Into<String>) -> Self {
        Self {
            speaker,
            content: content.into(),
        }
    }
}

/// Token counts reported by the provider.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Usage {
    /// Prompt tokens.
    pub prompt: i64,
    /// Generated tokens.
    pub completion: i64,
}

/// A piece of a streamed answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Delta {
    /// More text.
    Text(String),
    /// Final token counts.
    Usage(Usage),
}

/// A streamed answer.
pub type DeltaStream = Pin<Box<dyn Stream<Item = Result<Delta, Error>> + Send>>;

/// A chat model.
#[async_trait::async_trait]
pub trait ChatModel: Send + Sync {
    /// Model name, for the log.
    fn name(&self) -> &str;

    /// Starts a streamed completion.
    ///
    /// # Errors
    /// When the request is refused or the connection fails.
    async fn stream(&self, messages: &[ChatMessage]) -> Result<DeltaStream, Error>;

    /// Embeds texts (for hybrid retrieval).
    ///
    /// # Errors
    /// When the request is refused or no embedding model is configured.
    async fn embed(&self, inputs: &[String]) -> Result<Vec<Vec<f32>>, Error>;
}

/// A [`ChatModel`] at an OpenAI-compatible endpoint.
pub struct OpenAiModel {
    client: Client<OpenAIConfig>,
    model: String,
    embedding_model: Option<String>,
    temperature: f32,
    max_tokens: u32,
}

impl OpenAiModel {
    /// A client for `base_url` (the endpoint from [`LlmSettings::endpoint`]).
    pub fn new(settings: &LlmSettings, base_url: &str) -> Self {
        let mut config = OpenAIConfig::new().with_api_base(base_url.trim_end_matches('/'));
        // Local servers need no key; async-openai sends whatever is set.
        config = config.with_api_key(
            settings
                .api_key
                .as_ref()
                .map(|k| k.expose().to_string())
                .unwrap_or_default(),
        );
        let service = tower::ServiceBuilder::new()
            .retry(SimpleRetryPolicy::new(2))
            .service(ReqwestService::default());
        let client = Client::with_config(config).with_http_service(service);
        Self {
            client,
            model: settings.model.clone(),
            embedding_model: settings.embedding_model.clone(),
            temperature: settings.temperature,
            max_tokens: settings.max_tokens,
        }
    }
}

fn to_openai(message: &ChatMessage) -> ChatCompletionRequestMessage {
    let content = message.content.clone();
    match message.speaker {
        Speaker::System => {
            ChatCompletionRequestMessage::System(ChatCompletionRequestSystemMessage {
                content: content.into(),
                name: None,
            })
        }
        Speaker::User => ChatCompletionRequestMessage::User(ChatCompletionRequestUserMessage {
            content: content.into(),
            name: None,
        }),
        Speaker::Assistant => {
            ChatCompletionRequestMessage::Assistant(ChatCompletionRequestAssistantMessage {
                content: Some(content.into()),
                ..Default::default()
            })
        }
    }
}

#[async_trait::async_trait]
impl ChatModel for OpenAiModel {
    fn name(&self) -> &str {
        &self.model
    }

    async fn stream(&self, messages: &[ChatMessage]) -> Result<DeltaStream, Error> {
        let request = CreateChatCompletionRequestArgs::default()
            .model(&self.model)
            .messages(messages.iter().map(to_openai).collect::<Vec<_>>())
            .temperature(self.temperature)
            .max_completion_tokens(self.max_tokens)
            .stream(true)
            .stream_options(ChatCompletionStreamOptions {
                include_usage: Some(true),
                include_obfuscation: None,
            })
            .build()
            .map_err(|e| Error::Request(e.to_string()))?;
        let stream = self.client.chat().create_stream(request).await?;
        let deltas = stream.flat_map(|item| {
            let out: Vec<Result<Delta, Error>> = match item {
                Err(e) => vec![Err(Error::from(e))],
                Ok(chunk) => {
                    let mut out = Vec::new();
                    for choice in chunk.choices {
                        if let Some(text) = choice.delta.content.filter(|t| !t.is_empty()) {
                            out.push(Ok(Delta::Text(text)));
                        }
                    }
                    if let Some(u) = chunk.usage {
                        out.push(Ok(Delta::Usage(Usage {
                            prompt: i64::from(u.prompt_tokens),
                            completion: i64::from(u.completion_tokens),
                        })));
                    }
                    out
                }
            };
            futures::stream::iter(out)
        });
        Ok(Box::pin(deltas))
    }

    async fn embed(&self, inputs: &[String]) -> Result<Vec<Vec<f32>>, Error> {
        let model = self
            .embedding_model
            .as_deref()
            .ok_or_else(|| Error::Request("llm.embedding_model is not set".into()))?;
        let request = CreateEmbeddingRequestArgs::default()
            .model(model)
            .input(inputs.to_vec())
            .build()
            .map_err(|e| Error::Request(e.to_string()))?;
        let response = self.client.embeddings().create(request).await?;
        let mut data = response.data;
        data.sort_by_key(|d| d.index);
        Ok(data.into_iter().map(|d| d.embedding).collect())
    }
}

/// Wraps a stream so that a gap longer than `limit` between items (or
/// before the first) ends it with [`Error::Timeout`].
pub fn with_stall_timeout(stream: DeltaStream, limit: Duration) -> DeltaStream {
    Box::pin(futures::stream::unfold(
        (stream, false),
        move |(mut stream, done)| async move {
            if done {
                return None;
            }
            match tokio::time::timeout(limit, stream.next()).await {
                Ok(Some(item)) => Some((item, (stream, false))),
                Ok(None) => None,
                Err(_) => Some((Err(Error::Timeout(limit)), (stream, true))),
            }
        },
    ))
}
