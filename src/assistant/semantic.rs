//! Dense retrieval beside BM25: passage embeddings from an
//! [`Embedder`] (the model run in the process, or an OpenAI-compatible
//! `/v1/embeddings`; `[embeddings]` in the settings), kept in a file beside
//! the tantivy index, keyed by passage hash and the embedder's identity,
//! and searched by cosine similarity through an [`ann::Index`] (an exact
//! scan for small knowledge bases, an HNSW graph for large ones, updated
//! in place when passages change while running and built afresh at start
//! unless the graph saved for the same passages is read back). Only
//! passages whose text changed are embedded again, so a
//! restart or a one-article edit costs one small request, not a re-embed
//! of the whole knowledge base.
//!
//! Everything here is optional: when the endpoint fails, retrieval is
//! BM25 alone, as without an embedding model.

use std::collections::HashMap;
use std::io::{BufRead, BufReader, BufWriter, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::ann;
use crate::embed::Embedder;
use crate::kb::KnowledgeBase;
pub use calibration::Joint;
use calibration::{asked, question_hash};
pub use fusion::combine;
use saved::{GraphKey, index_for, updated};

mod calibration;
mod fusion;
mod saved;

/// Characters of a passage that are embedded (small embedding models read
/// a few hundred tokens at most).
const MAX_CHARS: usize = 2000;
/// File name inside the index folder.
pub const FILE: &str = "vectors.bin";
/// The nearest-neighbour graph over those vectors, beside them.
pub const GRAPH_FILE: &str = "vectors.graph";

/// A failure of the dense side; callers fall back to BM25.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The embedder failed.
    #[error("embedding failed: {0}")]
    Model(#[from] crate::embed::Error),
    /// The endpoint did not answer in time.
    #[error("embedding request timed out after {0:?}")]
    Timeout(std::time::Duration),
    /// The endpoint answered with the wrong number or size of vectors.
    #[error("embedding endpoint returned {0}")]
    Shape(String),
    /// Building the nearest-neighbour index failed (a panic in the build).
    #[error("building the vector index failed: {0}")]
    Index(String),
    /// The vectors file could not be written.
    #[error("cannot write {0}: {1}")]
    Io(PathBuf, std::io::Error),
}

/// One passage, for ranking.
struct Entry {
    slug: String,
    heading: String,
    hash: [u8; 32],
}

#[derive(Default)]
struct State {
    dim: usize,
    /// Unit vectors by passage hash (what the file holds).
    by_hash: HashMap<[u8; 32], Arc<[f32]>>,
    /// The current passages, in knowledge-base order.
    entries: Vec<Entry>,
    /// Their vectors, in the same order.
    index: ann::Index,
}

#[derive(Serialize, Deserialize)]
struct Header {
    model: String,
    dim: usize,
    count: usize,
}

/// The dense index. Cheap to clone.
#[derive(Clone)]
pub struct Semantic {
    inner: Arc<Inner>,
}

struct Inner {
    model: Arc<dyn Embedder>,
    /// Longest wait for one embedding request.
    timeout: std::time::Duration,
    path: Option<PathBuf>,
    state: RwLock<State>,
    /// One sync at a time.
    syncing: tokio::sync::Mutex<()>,
    /// Recent questions' vectors (a message is embedded once for the
    /// hand-off check and for retrieval).
    queries: std::sync::Mutex<HashMap<String, Arc<[f32]>>>,
    /// The decision's calibration for the current passages.
    joint: RwLock<Option<Arc<Joint>>>,
}

/// Question vectors kept in [`Inner::queries`] before it is emptied.
const QUERY_CACHE: usize = 256;

/// A passage found by similarity.
#[derive(Debug, Clone, PartialEq)]
pub struct Near {
    /// Article slug.
    pub slug: String,
    /// Passage heading.
    pub heading: String,
    /// Cosine similarity to the question (-1–1).
    pub similarity: f32,
}

impl Semantic {
    /// A dense index embedding through `model`, kept in `dir/vectors.bin`
    /// (`None`: in memory only), waiting at most `timeout` for each
    /// request. Loads what the file holds if `model` made it (same
    /// [`Embedder::identity`]); [`Semantic::sync`] embeds what is missing.
    pub fn open(
        model: Arc<dyn Embedder>,
        dir: Option<&Path>,
        timeout: std::time::Duration,
    ) -> Self {
        let path = dir.map(|d| d.join(FILE));
        let state = path
            .as_deref()
            .and_then(|p| match load(p, model.identity()) {
                Ok(s) => s,
                Err(e) => {
                    tracing::warn!("{}: unreadable, embedding again: {e}", p.display());
                    None
                }
            })
            .unwrap_or_default();
        Self {
            inner: Arc::new(Inner {
                model,
                timeout,
                path,
                state: RwLock::new(state),
                syncing: tokio::sync::Mutex::new(()),
                queries: Default::default(),
                joint: RwLock::new(None),
            }),
        }
    }

    /// Embeds the passages that have no vector yet and drops the vectors of
    /// passages that are gone. Returns how many passages were embedded.
    ///
    /// # Errors
    /// When the endpoint fails; what was embedded before the failure is
    /// kept.
    pub async fn sync(&self, kb: &KnowledgeBase) -> Result<usize, Error> {
        let _one = self.inner.syncing.lock().await;
        let mut wanted: Vec<(String, String, [u8; 32], String)> = Vec::new();
        for article in kb.articles() {
            for passage in &article.passages {
                let text = passage_text(&article.title, &passage.heading, &passage.text);
                let hash: [u8; 32] = Sha256::digest(text.as_bytes()).into();
                wanted.push((article.slug.clone(), passage.heading.clone(), hash, text));
            }
        }
        let missing: Vec<(usize, String)> = {
            let state = self.read();
            let mut seen = std::collections::HashSet::new();
            wanted
                .iter()
                .enumerate()
                .filter(|(_, (_, _, h, _))| !state.by_hash.contains_key(h) && seen.insert(*h))
                .map(|(i, (_, _, _, t))| (i, t.clone()))
                .collect()
        };
        let mut embedded = 0;
        let mut result = Ok(());
        for chunk in missing.chunks(self.inner.model.batch_size().max(1)) {
            let texts: Vec<String> = chunk.iter().map(|(_, t)| t.clone()).collect();
            match self.embed(&texts).await {
                Ok(vectors) => {
                    let mut state = self.write();
                    for ((i, _), v) in chunk.iter().zip(vectors) {
                        if state.dim == 0 {
                            state.dim = v.len();
                        }
                        state.by_hash.insert(wanted[*i].2, v);
                    }
                    embedded += chunk.len();
                }
                Err(e) => {
                    result = Err(e);
                    break;
                }
            }
        }
        // The calibration questions' vectors are kept with the passages'.
        let calibration = kb.calibration();
        let rebuild = {
            let mut state = self.write();
            let keep: std::collections::HashSet<[u8; 32]> = wanted
                .iter()
                .map(|(_, _, h, _)| *h)
                .chain(asked(calibration.questions()).map(question_hash))
                .collect();
            if result.is_ok() {
                state.by_hash.retain(|h, _| keep.contains(h));
            }
            let entries: Vec<Entry> = wanted
                .iter()
                .filter(|(_, _, hash, _)| state.by_hash.contains_key(hash))
                .map(|(slug, heading, hash, _)| Entry {
                    slug: slug.clone(),
                    heading: heading.clone(),
                    hash: *hash,
                })
                .collect();
            let same = entries.len() == state.entries.len()
                && entries
                    .iter()
                    .zip(&state.entries)
                    .all(|(a, b)| a.hash == b.hash);
            if same {
                // Same vectors in the same order: the index stands.
                state.entries = entries;
                None
            } else {
                let vectors: Vec<Arc<[f32]>> = entries
                    .iter()
                    .map(|e| state.by_hash[&e.hash].clone())
                    .collect();
                // A graph in use is updated rather than built again: each
                // passage's position in it, if it was there.
                let base = (!state.index.is_exact()).then(|| {
                    let was: HashMap<[u8; 32], usize> = state
                        .entries
                        .iter()
                        .enumerate()
                        .map(|(i, e)| (e.hash, i))
                        .collect();
                    let previous: Vec<Option<usize>> =
                        entries.iter().map(|e| was.get(&e.hash).copied()).collect();
                    (state.index.clone(), previous)
                });
                Some((entries, vectors, base))
            }
        };
        let changed = rebuild.is_some();
        if let Some((entries, vectors, base)) = rebuild {
            // Built outside the lock (a large graph takes seconds), so
            // questions keep being answered from the previous index. A
            // graph saved for exactly these passages is read instead.
            let graph = self
                .inner
                .path
                .as_ref()
                .map(|p| p.with_file_name(GRAPH_FILE));
            let key = GraphKey::of(self.inner.model.identity(), &entries);
            let index = tokio::task::spawn_blocking(move || match base {
                Some((base, previous)) => updated(
                    base,
                    vectors,
                    &previous,
                    graph.as_deref(),
                    &key,
                    ann::EXACT_BELOW,
                ),
                None => index_for(vectors, graph.as_deref(), &key, ann::EXACT_BELOW),
            })
            .await
            .map_err(|e| Error::Index(e.to_string()))?;
            let mut state = self.write();
            state.entries = entries;
            state.index = index;
        }
        if embedded > 0 {
            self.save()?;
        }
        if result.is_ok() && (changed || self.joint().is_none()) {
            self.recalibrate(kb).await;
        }
        result.map(|()| embedded)
    }

    /// Passages with a vector.
    pub fn len(&self) -> usize {
        self.read().entries.len()
    }

    /// Whether no passage has a vector yet.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The `limit` passages most similar to `question`.
    ///
    /// # Errors
    /// When the endpoint fails.
    pub async fn nearest(&self, question: &str, limit: usize) -> Result<Vec<Near>, Error> {
        if self.is_empty() {
            return Ok(Vec::new());
        }
        let query = self.query_vector(question).await?;
        self.nearest_to(&query, limit)
    }

    /// The unit vector of a question (embedded once; recent ones are kept).
    ///
    /// # Errors
    /// When the embedder fails or answers with no vector.
    pub async fn query_vector(&self, question: &str) -> Result<Arc<[f32]>, Error> {
        let text: String = question.chars().take(MAX_CHARS).collect();
        let cached = self
            .inner
            .queries
            .lock()
            .ok()
            .and_then(|q| q.get(&text).cloned());
        if let Some(vector) = cached {
            return Ok(vector);
        }
        let vector = self
            .embed(std::slice::from_ref(&text))
            .await?
            .pop()
            .ok_or_else(|| Error::Shape("no vector for the question".into()))?;
        if let Ok(mut queries) = self.inner.queries.lock() {
            if queries.len() >= QUERY_CACHE {
                queries.clear();
            }
            queries.insert(text, vector.clone());
        }
        Ok(vector)
    }

    /// The passages nearest to a question's unit vector.
    ///
    /// # Errors
    /// When its dimension is not the passages'.
    pub fn nearest_to(&self, query: &[f32], limit: usize) -> Result<Vec<Near>, Error> {
        let state = self.read();
        if state.entries.is_empty() {
            return Ok(Vec::new());
        }
        if query.len() != state.dim {
            return Err(Error::Shape(format!(
                "a {}-dimensional question vector for {}-dimensional passages",
                query.len(),
                state.dim
            )));
        }
        let scored = state.index.search(query, limit);
        Ok(scored
            .into_iter()
            .take(limit)
            .map(|(similarity, i)| Near {
                slug: state.entries[i].slug.clone(),
                heading: state.entries[i].heading.clone(),
                similarity,
            })
            .collect())
    }

    /// Unit vectors for short texts other than passages (each cut to what
    /// an embedding model reads).
    ///
    /// # Errors
    /// When the embedder fails or answers with the wrong shape.
    pub async fn embed_texts(&self, texts: &[String]) -> Result<Vec<Arc<[f32]>>, Error> {
        let cut: Vec<String> = texts
            .iter()
            .map(|t| t.chars().take(MAX_CHARS).collect())
            .collect();
        self.embed(&cut).await
    }

    /// Unit vectors for `texts`.
    async fn embed(&self, texts: &[String]) -> Result<Vec<Arc<[f32]>>, Error> {
        let limit = self.inner.timeout;
        let vectors = tokio::time::timeout(limit, self.inner.model.embed(texts))
            .await
            .map_err(|_| Error::Timeout(limit))??;
        if vectors.len() != texts.len() {
            return Err(Error::Shape(format!(
                "{} vectors for {} inputs",
                vectors.len(),
                texts.len()
            )));
        }
        let dim = self.read().dim;
        vectors
            .into_iter()
            .map(|mut v| {
                if v.is_empty() || (dim != 0 && v.len() != dim) {
                    return Err(Error::Shape(format!(
                        "a {}-dimensional vector where {dim} were expected",
                        v.len()
                    )));
                }
                normalise(&mut v);
                Ok(Arc::from(v))
            })
            .collect()
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, State> {
        self.inner.state.read().unwrap_or_else(|p| p.into_inner())
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, State> {
        self.inner.state.write().unwrap_or_else(|p| p.into_inner())
    }

    /// Writes the vectors file (a JSON header line, then for each vector
    /// its 32-byte passage hash and `dim` little-endian f32s), atomically.
    fn save(&self) -> Result<(), Error> {
        let Some(path) = &self.inner.path else {
            return Ok(());
        };
        let io = |e| Error::Io(path.clone(), e);
        let tmp = path.with_extension("bin.tmp");
        {
            let state = self.read();
            let file = std::fs::File::create(&tmp).map_err(io)?;
            let mut out = BufWriter::new(file);
            let header = Header {
                model: self.inner.model.identity().to_string(),
                dim: state.dim,
                count: state.by_hash.len(),
            };
            let line = serde_json::to_string(&header).unwrap_or_default();
            writeln!(out, "{line}").map_err(io)?;
            for (hash, vector) in &state.by_hash {
                out.write_all(hash).map_err(io)?;
                for x in vector.iter() {
                    out.write_all(&x.to_le_bytes()).map_err(io)?;
                }
            }
            out.flush().map_err(io)?;
        }
        std::fs::rename(&tmp, path).map_err(io)
    }
}

/// What is embedded for a passage: its article title and heading give the
/// context a bare section lacks.
fn passage_text(title: &str, heading: &str, text: &str) -> String {
    let mut s = if heading == title || heading.is_empty() {
        format!("{title}\n{text}")
    } else {
        format!("{title}: {heading}\n{text}")
    };
    if s.len() > MAX_CHARS {
        let cut = s.char_indices().nth(MAX_CHARS).map_or(s.len(), |(i, _)| i);
        s.truncate(cut);
    }
    s
}

/// Reads a vectors file written for `model`; `None` when there is none or
/// it was made with another model.
fn load(path: &Path, model: &str) -> std::io::Result<Option<State>> {
    let file = match std::fs::File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e),
    };
    let mut input = BufReader::new(file);
    let mut line = String::new();
    input.read_line(&mut line)?;
    let header: Header = serde_json::from_str(line.trim())
        .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidData, e))?;
    if header.model != model {
        tracing::info!(
            "passage vectors were made with `{}`; embedding again with `{model}`",
            header.model
        );
        return Ok(None);
    }
    let mut state = State {
        dim: header.dim,
        ..State::default()
    };
    let mut hash = [0u8; 32];
    let mut bytes = vec![0u8; header.dim * 4];
    for _ in 0..header.count {
        input.read_exact(&mut hash)?;
        input.read_exact(&mut bytes)?;
        let vector: Vec<f32> = bytes
            .chunks_exact(4)
            .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
            .collect();
        state.by_hash.insert(hash, Arc::from(vector));
    }
    Ok(Some(state))
}

fn normalise(v: &mut [f32]) {
    let norm = v.iter().map(|x| x * x).sum::<f32>().sqrt();
    if norm > 0.0 {
        for x in v.iter_mut() {
            *x /= norm;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passage_text_is_bounded_and_keeps_context() {
        let t = passage_text("Refunds", "How long", &"x".repeat(5000));
        assert!(t.starts_with("Refunds: How long\n"));
        assert_eq!(t.chars().count(), MAX_CHARS);
        assert_eq!(passage_text("A", "A", "body"), "A\nbody");
    }
}
