//! Passages' stored fields, read from tantivy's document store once and
//! kept in a bounded cache.
//!
//! Every retrieval reads the stored fields of its whole candidate pool
//! (dozens of passages), and a stored document is a block to decompress and
//! a document to deserialize: profiling the message pipeline put a fifth of
//! its time there. Segments are immutable, so a passage read once stays
//! true for as long as its segment exists; a key names the segment, and
//! passages of merged or deleted segments simply age out.

use std::num::NonZeroUsize;
use std::sync::{Arc, Mutex};

use lru::LruCache;
use tantivy::index::SegmentId;
use tantivy::schema::Field;
use tantivy::{DocAddress, DocId, Searcher, TantivyDocument};

use super::schema::{Fields, field_text};

/// Passages kept: the whole of a few-hundred-article knowledge base, a
/// few megabytes at most.
const CAPACITY: NonZeroUsize = NonZeroUsize::new(1024).unwrap();

/// The stored fields of one passage that retrieval needs.
#[derive(Debug)]
pub(super) struct Passage {
    pub(super) slug: String,
    pub(super) title: String,
    pub(super) heading: String,
    pub(super) markdown: String,
    pub(super) url: String,
    pub(super) tags_raw: String,
    /// The passage's distinct analysed terms, sorted and space-separated
    /// as indexed (coverage matches them against the sorted query terms in
    /// one pass).
    pub(super) terms: String,
}

impl Passage {
    /// The stored fields of an indexed passage that retrieval needs.
    pub(super) fn read(doc: &TantivyDocument, f: &Fields) -> Self {
        let get = |field: Field| field_text(doc, field).to_string();
        Self {
            slug: get(f.slug),
            title: get(f.title),
            heading: get(f.heading),
            markdown: get(f.markdown),
            url: get(f.url),
            tags_raw: get(f.tags_raw),
            terms: get(f.terms),
        }
    }
}

/// Recently read passages by segment and document id.
pub(super) struct PassageCache {
    entries: Mutex<LruCache<(SegmentId, DocId), Arc<Passage>>>,
}

impl PassageCache {
    pub(super) fn new() -> Self {
        Self {
            entries: Mutex::new(LruCache::new(CAPACITY)),
        }
    }

    /// The passage at `address` in `searcher`, from the cache or `read`.
    pub(super) fn get(
        &self,
        searcher: &Searcher,
        address: DocAddress,
        read: impl FnOnce() -> tantivy::Result<Passage>,
    ) -> tantivy::Result<Arc<Passage>> {
        let key = (
            searcher.segment_reader(address.segment_ord).segment_id(),
            address.doc_id,
        );
        if let Some(found) = self.lock().get(&key) {
            return Ok(Arc::clone(found));
        }
        // Read without holding the lock: concurrent retrievals may read the
        // same passage twice, never wait for each other's reads.
        let passage = Arc::new(read()?);
        self.lock().put(key, Arc::clone(&passage));
        Ok(passage)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, LruCache<(SegmentId, DocId), Arc<Passage>>> {
        // A panic while holding the lock leaves a cache that is still
        // consistent (every entry was complete when inserted).
        self.entries.lock().unwrap_or_else(|p| p.into_inner())
    }
}
