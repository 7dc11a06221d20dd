//! A sentence-transformers BERT folder (config.json, tokenizer.json,
//! model.safetensors; e.g. all-MiniLM-L6-v2) run inside the process with
//! candle, the way sentence-transformers runs it: inputs truncated to the
//! folder's `max_seq_length` (256 when it does not say), padded per batch,
//! mean pooling over the attention mask, then L2 normalisation.
//!
//! The forward pass runs on a thread pool of its own (one thread per core),
//! never on the async runtime: a call waits for a free slot (at most
//! [`RUNNING`] calls compute at once, [`QUEUE`] more wait; past that it is
//! [`Error::Busy`] and retrieval falls back to BM25), then runs on a
//! blocking thread. A batch is sorted by length and cut into sub-batches
//! that run in parallel, so indexing uses every core and pads little.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use candle_core::{D, DType, Device, Tensor};
use candle_nn::VarBuilder;
use candle_transformers::models::bert::{BertModel, Config};
use rayon::prelude::*;
use sha2::{Digest, Sha256};
use tokenizers::{Encoding, Tokenizer, TruncationParams};
use tokio::sync::Semaphore;

use super::{Embedder, Error};

/// Calls computing at once (a question is not stuck behind a whole
/// indexing batch).
pub const RUNNING: usize = 2;
/// Calls waiting for a slot at most.
pub const QUEUE: usize = 64;
/// Texts per forward pass.
const SUB_BATCH: usize = 8;
/// Tokens per text when the folder does not say (sentence-transformers'
/// setting for all-MiniLM-L6-v2).
const DEFAULT_MAX_TOKENS: usize = 256;

/// The files a model folder must hold.
pub const FILES: [&str; 3] = ["config.json", "tokenizer.json", "model.safetensors"];

/// An in-process sentence embedding model. Cheap to clone.
#[derive(Clone)]
pub struct LocalEmbedder {
    model: Arc<Model>,
    identity: String,
    running: Arc<Semaphore>,
    admitted: Arc<Semaphore>,
}

struct Model {
    bert: BertModel,
    tokenizer: Tokenizer,
    pad_id: u32,
    max_tokens: usize,
    pool: rayon::ThreadPool,
}

impl LocalEmbedder {
    /// Loads the folder at `dir`.
    ///
    /// # Errors
    /// [`Error::Load`] naming the file that is missing or unreadable.
    pub fn load(dir: &Path) -> Result<Self, Error> {
        let fail = |what: &Path, why: String| Error::Load(what.display().to_string(), why);
        let read = |name: &str| {
            let path = dir.join(name);
            std::fs::read(&path).map_err(|e| {
                fail(
                    &path,
                    format!("{e} (a sentence-transformers folder holds {FILES:?}; scripts/local-embed.sh fetch downloads all-MiniLM-L6-v2)"),
                )
            })
        };
        let config_bytes = read("config.json")?;
        let tokenizer_bytes = read("tokenizer.json")?;
        let weights = read("model.safetensors")?;
        let config: Config = serde_json::from_slice(&config_bytes)
            .map_err(|e| fail(&dir.join("config.json"), format!("not a BERT config: {e}")))?;
        check_pooling(dir)?;
        let max_tokens = max_seq_length(dir)
            .unwrap_or(DEFAULT_MAX_TOKENS)
            .min(config.max_position_embeddings);

        let mut tokenizer = Tokenizer::from_bytes(&tokenizer_bytes)
            .map_err(|e| fail(&dir.join("tokenizer.json"), e.to_string()))?;
        // The file may carry its own padding (all-MiniLM-L6-v2's pads every
        // input to 128) and truncation; sentence-transformers pads per batch
        // and truncates at max_seq_length.
        tokenizer.with_padding(None);
        tokenizer
            .with_truncation(Some(TruncationParams {
                max_length: max_tokens,
                ..TruncationParams::default()
            }))
            .map_err(|e| fail(&dir.join("tokenizer.json"), e.to_string()))?;

        let mut hasher = Sha256::new();
        for part in [&config_bytes, &tokenizer_bytes, &weights] {
            hasher.update((part.len() as u64).to_le_bytes());
            hasher.update(part);
        }
        hasher.update((max_tokens as u64).to_le_bytes());
        let digest = hex::encode(hasher.finalize());
        let name = dir
            .canonicalize()
            .unwrap_or_else(|_| dir.to_path_buf())
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let identity = format!("local:{name}@{}", &digest[..16]);

        let device = Device::Cpu;
        let weights_path = dir.join("model.safetensors");
        let vb = VarBuilder::from_buffered_safetensors(weights, DType::F32, &device)
            .map_err(|e| fail(&weights_path, e.to_string()))?;
        let bert = BertModel::load(vb, &config).map_err(|e| fail(&weights_path, e.to_string()))?;
        let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .thread_name(|i| format!("embed-{i}"))
            .build()
            .map_err(|e| fail(dir, format!("cannot start the embedding threads: {e}")))?;
        Ok(Self {
            model: Arc::new(Model {
                bert,
                tokenizer,
                pad_id: u32::try_from(config.pad_token_id).unwrap_or(0),
                max_tokens,
                pool,
            }),
            identity,
            running: Arc::new(Semaphore::new(RUNNING)),
            admitted: Arc::new(Semaphore::new(RUNNING + QUEUE)),
        })
    }

    /// Tokens per input; longer inputs are truncated.
    pub fn max_tokens(&self) -> usize {
        self.model.max_tokens
    }

    /// Unit vectors for `texts`, computed on the calling thread (and the
    /// model's pool). For tests and benchmarks; the async
    /// [`Embedder::embed`] is what the service uses.
    ///
    /// # Errors
    /// [`Error::Inference`] when tokenizing or the forward pass fails.
    pub fn embed_blocking(&self, texts: &[String]) -> Result<Vec<Vec<f32>>, Error> {
        self.model.embed(texts)
    }
}

#[async_trait::async_trait]
impl Embedder for LocalEmbedder {
    fn identity(&self) -> &str {
        &self.identity
    }

    /// One sub-batch per core: every core busy, and a call over in a few
    /// seconds even on a loaded machine (calls are timed out).
    fn batch_size(&self) -> usize {
        SUB_BATCH * self.model.pool.current_num_threads()
    }

    async fn embed(&self, inputs: &[String]) -> Result<Vec<Vec<f32>>, Error> {
        if inputs.is_empty() {
            return Ok(Vec::new());
        }
        let admitted = self
            .admitted
            .clone()
            .try_acquire_owned()
            .map_err(|_| Error::Busy)?;
        let running = self
            .running
            .clone()
            .acquire_owned()
            .await
            .map_err(|_| Error::Busy)?;
        let model = self.model.clone();
        let texts = inputs.to_vec();
        // The permits move into the task: a caller that stops waiting
        // (timeout) does not free the slot before the work is done.
        tokio::task::spawn_blocking(move || {
            let _slot = (admitted, running);
            model.embed(&texts)
        })
        .await
        .map_err(|e| Error::Inference(format!("embedding thread: {e}")))?
    }
}

impl Model {
    fn embed(&self, texts: &[String]) -> Result<Vec<Vec<f32>>, Error> {
        let encodings: Vec<Encoding> = texts
            .iter()
            .map(|t| {
                self.tokenizer
                    .encode(t.as_str(), true)
                    .map_err(|e| Error::Inference(format!("tokenizer: {e}")))
            })
            .collect::<Result<_, _>>()?;
        // Longest first, so each sub-batch pads to a similar length.
        let mut order: Vec<usize> = (0..texts.len()).collect();
        order.sort_by_key(|&i| std::cmp::Reverse(encodings[i].get_ids().len()));
        let batches: Vec<&[usize]> = order.chunks(SUB_BATCH).collect();
        let results: Vec<Result<Vec<Vec<f32>>, Error>> = self.pool.install(|| {
            batches
                .par_iter()
                .map(|batch| {
                    let items: Vec<&Encoding> = batch.iter().map(|&i| &encodings[i]).collect();
                    self.forward(&items)
                        .map_err(|e| Error::Inference(e.to_string()))
                })
                .collect()
        });
        let mut out = vec![Vec::new(); texts.len()];
        for (batch, vectors) in batches.iter().zip(results) {
            for (&i, v) in batch.iter().zip(vectors?) {
                out[i] = v;
            }
        }
        Ok(out)
    }

    /// Mean-pooled, normalised vectors for one padded batch.
    fn forward(&self, items: &[&Encoding]) -> candle_core::Result<Vec<Vec<f32>>> {
        let rows = items.len();
        let len = items.iter().map(|e| e.get_ids().len()).max().unwrap_or(0);
        let mut ids = vec![self.pad_id; rows * len];
        let mut types = vec![0u32; rows * len];
        let mut mask = vec![0u32; rows * len];
        for (r, e) in items.iter().enumerate() {
            let at = r * len;
            let n = e.get_ids().len();
            ids[at..at + n].copy_from_slice(e.get_ids());
            types[at..at + n].copy_from_slice(e.get_type_ids());
            mask[at..at + n].copy_from_slice(e.get_attention_mask());
        }
        let device = &self.bert.device;
        let ids = Tensor::from_vec(ids, (rows, len), device)?;
        let types = Tensor::from_vec(types, (rows, len), device)?;
        let mask = Tensor::from_vec(mask, (rows, len), device)?;
        let hidden = self.bert.forward(&ids, &types, Some(&mask))?;
        // Mean over the real tokens (sentence-transformers' Pooling with
        // pooling_mode_mean_tokens), then unit length (its Normalize).
        let mask = mask.to_dtype(DType::F32)?.unsqueeze(D::Minus1)?;
        let summed = hidden.broadcast_mul(&mask)?.sum(1)?;
        let counts = mask.sum(1)?.clamp(1e-9f32, f32::MAX)?;
        let mean = summed.broadcast_div(&counts)?;
        let mut vectors = mean.to_vec2::<f32>()?;
        for v in &mut vectors {
            let norm = v.iter().map(|x| x * x).sum::<f32>().sqrt().max(1e-12);
            for x in v.iter_mut() {
                *x /= norm;
            }
        }
        Ok(vectors)
    }
}

/// `max_seq_length` from sentence_bert_config.json, if the folder has it.
fn max_seq_length(dir: &Path) -> Option<usize> {
    let text = std::fs::read_to_string(dir.join("sentence_bert_config.json")).ok()?;
    let value: serde_json::Value = serde_json::from_str(&text).ok()?;
    value
        .get("max_seq_length")?
        .as_u64()
        .and_then(|n| usize::try_from(n).ok())
}

/// Refuses a folder whose pooling (1_Pooling/config.json, when present)
/// is not mean pooling: its vectors would not be what the model was
/// trained to give.
fn check_pooling(dir: &Path) -> Result<(), Error> {
    let path: PathBuf = dir.join("1_Pooling").join("config.json");
    let Ok(text) = std::fs::read_to_string(&path) else {
        return Ok(());
    };
    let value: serde_json::Value = serde_json::from_str(&text)
        .map_err(|e| Error::Load(path.display().to_string(), e.to_string()))?;
    if value.get("pooling_mode_mean_tokens") == Some(&serde_json::Value::Bool(false)) {
        return Err(Error::Load(
            path.display().to_string(),
            "only mean pooling is supported".into(),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_folder_without_the_model_files_names_what_is_missing() {
        let dir = tempfile::tempdir().unwrap();
        let err = LocalEmbedder::load(dir.path()).err().expect("no model");
        let text = err.to_string();
        assert!(text.contains("config.json"), "{text}");
        assert!(text.contains("scripts/local-embed.sh fetch"), "{text}");
    }

    #[test]
    fn other_pooling_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("1_Pooling")).unwrap();
        std::fs::write(
            dir.path().join("1_Pooling/config.json"),
            r#"{"pooling_mode_cls_token": true, "pooling_mode_mean_tokens": false}"#,
        )
        .unwrap();
        assert!(check_pooling(dir.path()).is_err());
        std::fs::write(
            dir.path().join("1_Pooling/config.json"),
            r#"{"pooling_mode_mean_tokens": true}"#,
        )
        .unwrap();
        assert!(check_pooling(dir.path()).is_ok());
    }
}
