//! The nearest-neighbour graph saved beside the vectors (`vectors.graph`):
//! keyed by the embedding model and the passages it was built for, read
//! back at start when they are the same, written after a build or an
//! update that leaves no waypoint.

use std::io::{BufRead, BufReader, BufWriter, Write};
use std::path::Path;
use std::sync::Arc;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::Entry;
use crate::assistant::ann;

/// What a saved graph was built for: the embedding model and the passages'
/// hashes in index order. A graph is read back only for the same key.
#[derive(Serialize, Deserialize, PartialEq, Debug)]
pub(super) struct GraphKey {
    model: String,
    count: usize,
    passages: String,
}

impl GraphKey {
    pub(super) fn of(model: &str, entries: &[Entry]) -> Self {
        let mut digest = Sha256::new();
        for e in entries {
            digest.update(e.hash);
        }
        Self {
            model: model.to_string(),
            count: entries.len(),
            passages: format!("{:x}", digest.finalize()),
        }
    }
}

/// The index over `vectors`: the graph saved at `path` when it was built
/// for `key`, else a new one (saved there when it is a graph, from
/// `exact_below` vectors on: [`ann::EXACT_BELOW`]). A graph that cannot be
/// read or saved costs a build, never an answer.
pub(super) fn index_for(
    vectors: Vec<Arc<[f32]>>,
    path: Option<&Path>,
    key: &GraphKey,
    exact_below: usize,
) -> ann::Index {
    // An exact index needs no file.
    let Some(path) = path.filter(|_| vectors.len() >= exact_below) else {
        return ann::Index::build_from(vectors, exact_below);
    };
    let vectors = match read_graph(vectors, path, key) {
        Ok(index) => return index,
        Err((vectors, why)) => {
            if let Some(why) = why {
                tracing::info!(
                    "{}: not used, building the graph again: {why}",
                    path.display()
                );
            }
            vectors
        }
    };
    let index = ann::Index::build_from(vectors, exact_below);
    if let Err(e) = write_graph(&index, path, key) {
        tracing::warn!("{}: cannot save the graph: {e}", path.display());
    }
    index
}

/// `base` updated for `vectors` (see [`ann::Index::updated_from`]), saved
/// at `path` under `key` when it has no waypoints (with waypoints a restart
/// builds the graph afresh: their vectors are not kept).
pub(super) fn updated(
    base: ann::Index,
    vectors: Vec<Arc<[f32]>>,
    previous: &[Option<usize>],
    path: Option<&Path>,
    key: &GraphKey,
    exact_below: usize,
) -> ann::Index {
    let index = base.updated_from(vectors, previous, exact_below);
    if let Some(path) = path
        && !index.is_exact()
    {
        if index.waypoints() > 0 {
            // A graph saved for the passages before is not read for these.
            let _ = std::fs::remove_file(path);
        } else if let Err(e) = write_graph(&index, path, key) {
            tracing::warn!("{}: cannot save the graph: {e}", path.display());
        }
    }
    index
}

/// A graph not read: the vectors back, and why unless there was no file.
type NotRead = (Vec<Arc<[f32]>>, Option<String>);

/// Reads the graph at `path` if it was saved for `key`; otherwise gives
/// the vectors back, with the reason unless there simply was no file.
fn read_graph(
    vectors: Vec<Arc<[f32]>>,
    path: &Path,
    key: &GraphKey,
) -> Result<ann::Index, NotRead> {
    let file = match std::fs::File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Err((vectors, None)),
        Err(e) => return Err((vectors, Some(e.to_string()))),
    };
    let mut input = BufReader::new(file);
    let mut line = String::new();
    if let Err(e) = input.read_line(&mut line) {
        return Err((vectors, Some(e.to_string())));
    }
    match serde_json::from_str::<GraphKey>(line.trim()) {
        Ok(saved) if saved == *key => {}
        Ok(_) => return Err((vectors, Some("made for other passages".into()))),
        Err(e) => return Err((vectors, Some(e.to_string()))),
    }
    // On a bad file the vectors are needed again for the build.
    let copy = vectors.clone();
    ann::Index::read_graph(vectors, &mut input).map_err(|e| (copy, Some(e.to_string())))
}

/// Saves `index`'s graph at `path` under `key`, atomically.
fn write_graph(index: &ann::Index, path: &Path, key: &GraphKey) -> std::io::Result<()> {
    let tmp = path.with_extension("graph.tmp");
    {
        let mut out = BufWriter::new(std::fs::File::create(&tmp)?);
        let line = serde_json::to_string(key).map_err(std::io::Error::other)?;
        writeln!(out, "{line}")?;
        index.write_graph(&mut out)?;
        out.flush()?;
    }
    std::fs::rename(&tmp, path)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::assistant::semantic::GRAPH_FILE;

    #[test]
    fn a_saved_graph_is_read_back_only_for_the_same_passages() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(GRAPH_FILE);
        // The same code as at ann::EXACT_BELOW, with a graph from 600
        // vectors on (a 10,000-vector graph takes seconds in a debug build).
        const GRAPH_FROM: usize = 600;
        let vectors = ann::random_unit_vectors(GRAPH_FROM, 16, 30, 11);
        let entries = |salt: u8| -> Vec<Entry> {
            (0..vectors.len())
                .map(|i| Entry {
                    slug: format!("a{i}"),
                    heading: String::new(),
                    hash: {
                        let mut h = [salt; 32];
                        h[..8].copy_from_slice(&(i as u64).to_le_bytes());
                        h
                    },
                })
                .collect()
        };
        let key = GraphKey::of("model", &entries(0));
        let built = index_for(vectors.clone(), Some(&path), &key, GRAPH_FROM);
        assert!(
            !built.is_exact() && path.exists(),
            "a graph is built and saved"
        );
        let saved = std::fs::metadata(&path).unwrap().modified().unwrap();

        // The same passages: read back, not rebuilt.
        let (read, why) = match read_graph(vectors.clone(), &path, &key) {
            Ok(index) => (Some(index), None),
            Err((_, why)) => (None, why),
        };
        let read = read.unwrap_or_else(|| panic!("not read back: {why:?}"));
        let query = &vectors[5];
        assert_eq!(read.search(query, 10), built.search(query, 10));
        let again = index_for(vectors.clone(), Some(&path), &key, GRAPH_FROM);
        assert_eq!(again.search(query, 10), built.search(query, 10));
        assert_eq!(std::fs::metadata(&path).unwrap().modified().unwrap(), saved);

        // Other passages or another model: refused.
        for other in [
            GraphKey::of("model", &entries(1)),
            GraphKey::of("other model", &entries(0)),
        ] {
            assert!(read_graph(vectors.clone(), &path, &other).is_err());
        }
        // A damaged file: refused, and the next build replaces it.
        let mut bytes = std::fs::read(&path).unwrap();
        let n = bytes.len();
        bytes.truncate(n - 10);
        std::fs::write(&path, &bytes).unwrap();
        assert!(read_graph(vectors.clone(), &path, &key).is_err());
        let rebuilt = index_for(vectors.clone(), Some(&path), &key, GRAPH_FROM);
        assert!(!rebuilt.is_exact());
        assert!(read_graph(vectors.clone(), &path, &key).is_ok());

        // A passage added while running: the graph is updated, not built
        // again, and saved for the new passages.
        let mut more = vectors.clone();
        more.push(ann::random_unit_vectors(1, 16, 30, 12).remove(0));
        let mut more_entries = entries(0);
        more_entries.push(Entry {
            slug: "new".into(),
            heading: String::new(),
            hash: [9; 32],
        });
        let previous: Vec<Option<usize>> = (0..vectors.len())
            .map(Some)
            .chain(std::iter::once(None))
            .collect();
        let more_key = GraphKey::of("model", &more_entries);
        let grown = updated(
            rebuilt,
            more.clone(),
            &previous,
            Some(&path),
            &more_key,
            GRAPH_FROM,
        );
        assert_eq!(grown.search(&more[vectors.len()], 1)[0].1, vectors.len());
        assert!(read_graph(more, &path, &more_key).is_ok());
    }
}
