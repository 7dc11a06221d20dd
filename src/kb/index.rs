//! The tantivy index of passages, kept on disk and updated incrementally.
//!
//! Each commit carries a manifest (slug → content hash) as its payload, so
//! the manifest and the index can never disagree: after a crash the index is
//! at the last commit and so is the manifest. Queries are built from the
//! analyzer's terms, never parsed, so customer text cannot be a syntax error.

use std::collections::{BTreeMap, HashSet};
use std::path::Path;
use std::sync::Mutex;

use serde::{Deserialize, Serialize};
use tantivy::collector::TopDocs;
use tantivy::query::{BooleanQuery, BoostQuery, Occur, Query, TermQuery};
use tantivy::schema::{IndexRecordOption, TantivyDocument};
use tantivy::snippet::SnippetGenerator;
use tantivy::tokenizer::TextAnalyzer;
use tantivy::{Index, IndexReader, ReloadPolicy, Term, doc};

use super::Error;
use super::analysis::{analyzer, terms};
use super::article::Article;
use super::schema::{ANALYZER, Fields, TERMS_TOKENIZER, field_text, schema};
use super::stored::{Passage, PassageCache};

/// Bump when the schema or analyzer changes: an index of another version is
/// rebuilt from scratch.
const SCHEMA_VERSION: u32 = 6;
/// Terms taken from one query; the rest of a 10 kB paste is ignored.
const MAX_QUERY_TERMS: usize = 48;
// Coverage keeps one bit per query term in a u64.
const _: () = assert!(MAX_QUERY_TERMS <= 64);
/// Field boosts: a match in the article title says more than one in the body.
const TITLE_BOOST: f32 = 2.5;
const HEADING_BOOST: f32 = 1.5;
const TAGS_BOOST: f32 = 1.0;
/// A match anywhere in the passage's article (each distinct term once):
/// passages of an article that holds the whole question rank above a lone
/// passage that holds part of it.
const ARTICLE_BOOST: f32 = 1.0;

/// One ranked passage.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Hit {
    /// Article slug.
    pub slug: String,
    /// Article title.
    pub title: String,
    /// Section heading.
    pub heading: String,
    /// Short extract around the matching terms.
    pub snippet: String,
    /// BM25 score (higher is better; not comparable across queries).
    pub score: f32,
    /// Markdown source of the passage.
    #[serde(skip)]
    pub markdown: String,
    /// Article link from front matter, if any.
    #[serde(skip)]
    pub url: Option<String>,
    /// Article tags.
    #[serde(skip)]
    pub tags: Vec<String>,
    /// Share (0–1) of the query's information, by IDF weight, that this
    /// passage (with its article title) contains.
    #[serde(skip)]
    pub coverage: f32,
    /// The query's total information (sum of its terms' IDF weights), the
    /// same for every hit of one query: `score / query_weight` is a score
    /// comparable across queries and knowledge bases.
    #[serde(skip)]
    pub query_weight: f32,
}

/// What a sync changed.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct SyncReport {
    /// Articles indexed for the first time.
    pub added: usize,
    /// Articles re-indexed because their content changed.
    pub updated: usize,
    /// Articles removed from the index.
    pub removed: usize,
    /// Articles whose content was unchanged.
    pub unchanged: usize,
}

#[derive(Debug, Default, Serialize, Deserialize)]
struct Manifest {
    version: u32,
    hashes: BTreeMap<String, String>,
}

/// The passage index.
pub struct SearchIndex {
    index: Index,
    reader: IndexReader,
    fields: Fields,
    analyzer: TextAnalyzer,
    manifest: Mutex<Manifest>,
    /// Serialises writers: tantivy allows one per index.
    write_lock: Mutex<()>,
    /// Stored fields of recently retrieved passages.
    passages: PassageCache,
}

impl SearchIndex {
    /// Opens the index in `dir`, creating it (or rebuilding it when its
    /// schema is from another version).
    ///
    /// # Errors
    /// [`Error::Index`] when the folder cannot be created or read.
    pub fn open(dir: &Path) -> Result<Self, Error> {
        std::fs::create_dir_all(dir).map_err(|e| Error::Io(dir.to_path_buf(), e))?;
        let (schema, fields) = schema();
        let open = || -> tantivy::Result<Index> {
            let mmap = tantivy::directory::MmapDirectory::open(dir)?;
            Index::open_or_create(mmap, schema.clone())
        };
        let index = match open() {
            Ok(index)
                if read_manifest(&index).version == SCHEMA_VERSION || index_is_empty(&index) =>
            {
                index
            }
            _ => {
                // Another schema version, or unreadable: the index is a cache
                // of the articles, so start again.
                tracing::info!(path = %dir.display(), "rebuilding search index (new format)");
                std::fs::remove_dir_all(dir).map_err(|e| Error::Io(dir.to_path_buf(), e))?;
                std::fs::create_dir_all(dir).map_err(|e| Error::Io(dir.to_path_buf(), e))?;
                open()?
            }
        };
        Self::from_index(index, fields)
    }

    /// An index held in memory (tests, `eval` on a scratch knowledge base).
    ///
    /// # Errors
    /// Only if tantivy fails to set up its reader.
    pub fn in_memory() -> Result<Self, Error> {
        let (schema, fields) = schema();
        Self::from_index(Index::create_in_ram(schema), fields)
    }

    fn from_index(index: Index, fields: Fields) -> Result<Self, Error> {
        index.tokenizers().register(ANALYZER, analyzer());
        index.tokenizers().register(
            TERMS_TOKENIZER,
            TextAnalyzer::builder(tantivy::tokenizer::WhitespaceTokenizer::default()).build(),
        );
        let reader = index
            .reader_builder()
            .reload_policy(ReloadPolicy::Manual)
            .try_into()?;
        let mut manifest = read_manifest(&index);
        if manifest.version != SCHEMA_VERSION {
            manifest = Manifest {
                version: SCHEMA_VERSION,
                hashes: BTreeMap::new(),
            };
        }
        Ok(Self {
            index,
            reader,
            fields,
            analyzer: analyzer(),
            manifest: Mutex::new(manifest),
            write_lock: Mutex::new(()),
            passages: PassageCache::new(),
        })
    }

    /// Brings the index in line with `articles` (each with its content hash):
    /// only changed articles are re-indexed. `on_progress(done, total)` is
    /// called as articles are written.
    ///
    /// # Errors
    /// [`Error::Index`] when tantivy cannot write.
    pub fn sync(
        &self,
        articles: &[(&Article, &str)],
        on_progress: &dyn Fn(usize, usize),
    ) -> Result<SyncReport, Error> {
        let _guard = self.write_lock.lock().unwrap_or_else(|p| p.into_inner());
        // Another process (`kb add` beside `run`) may have committed since
        // this one last looked: start from the index's own latest manifest.
        let on_disk = read_manifest(&self.index);
        let mut manifest = if on_disk.version == SCHEMA_VERSION {
            on_disk.hashes
        } else {
            self.manifest
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .clone_map()
        };
        let mut report = SyncReport::default();
        let wanted: HashSet<&str> = articles.iter().map(|(a, _)| a.slug.as_str()).collect();
        let stale: Vec<String> = manifest
            .keys()
            .filter(|s| !wanted.contains(String::as_str(s)))
            .cloned()
            .collect();
        let changed: Vec<&(&Article, &str)> = articles
            .iter()
            .filter(|(a, hash)| manifest.get(&a.slug).map(String::as_str) != Some(*hash))
            .collect();
        report.unchanged = articles.len() - changed.len();
        if stale.is_empty() && changed.is_empty() {
            // Pick up commits other processes made.
            self.reader.reload()?;
            return Ok(report);
        }
        let threads = if changed.len() > 500 { 2 } else { 1 };
        let mut writer = self
            .index
            .writer_with_num_threads_retrying(threads, 20_000_000 * threads)?;
        for slug in &stale {
            writer.delete_term(Term::from_field_text(self.fields.slug, slug));
            manifest.remove(slug);
            report.removed += 1;
        }
        let total = changed.len();
        let mut analyzer = self.analyzer.clone();
        for (done, (article, hash)) in changed.into_iter().enumerate() {
            // Deleting first also removes any stray copy of the article.
            writer.delete_term(Term::from_field_text(self.fields.slug, &article.slug));
            if manifest.contains_key(&article.slug) {
                report.updated += 1;
            } else {
                report.added += 1;
            }
            let whole = {
                let mut text = format!("{}\n{}\n", article.title, article.tags.join(" "));
                for p in &article.passages {
                    text.push_str(&p.heading);
                    text.push('\n');
                    text.push_str(&p.text);
                    text.push('\n');
                }
                terms(&mut analyzer, &text).join(" ")
            };
            for passage in &article.passages {
                let f = self.fields;
                writer.add_document(doc!(
                    f.slug => article.slug.as_str(),
                    f.title => article.title.as_str(),
                    f.heading => passage.heading.as_str(),
                    f.body => passage.text.as_str(),
                    f.tags => article.tags.join(" "),
                    f.markdown => passage.markdown.as_str(),
                    f.url => article.url.clone().unwrap_or_default(),
                    f.tags_raw => article.tags.join(","),
                    f.terms => {
                        // Distinct (as analysed) and sorted, for the
                        // one-pass match of `present_terms`.
                        let mut terms = terms(
                            &mut analyzer,
                            &format!("{}\n{}\n{}\n{}", article.title, passage.heading, passage.text, article.tags.join(" ")),
                        );
                        terms.sort_unstable();
                        terms.join(" ")
                    },
                    f.article => whole.as_str(),
                ))?;
            }
            manifest.insert(article.slug.clone(), hash.to_string());
            on_progress(done + 1, total);
        }
        let new_manifest = Manifest {
            version: SCHEMA_VERSION,
            hashes: manifest,
        };
        let payload =
            serde_json::to_string(&new_manifest).map_err(|e| Error::Index(e.to_string()))?;
        let mut prepared = writer.prepare_commit()?;
        prepared.set_payload(&payload);
        prepared.commit()?;
        writer.wait_merging_threads()?;
        self.reader.reload()?;
        *self.manifest.lock().unwrap_or_else(|p| p.into_inner()) = new_manifest;
        Ok(report)
    }

    /// Drops every passage (before a full rebuild).
    ///
    /// # Errors
    /// [`Error::Index`] when tantivy cannot write.
    pub fn clear(&self) -> Result<(), Error> {
        let _guard = self.write_lock.lock().unwrap_or_else(|p| p.into_inner());
        let mut writer = self.index.writer_with_num_threads_retrying(1, 15_000_000)?;
        writer.delete_all_documents()?;
        let empty = Manifest {
            version: SCHEMA_VERSION,
            hashes: BTreeMap::new(),
        };
        let payload = serde_json::to_string(&empty).map_err(|e| Error::Index(e.to_string()))?;
        let mut prepared = writer.prepare_commit()?;
        prepared.set_payload(&payload);
        prepared.commit()?;
        self.reader.reload()?;
        *self.manifest.lock().unwrap_or_else(|p| p.into_inner()) = empty;
        Ok(())
    }

    /// Number of indexed passages.
    pub fn passages(&self) -> u64 {
        self.reader.searcher().num_docs()
    }

    /// The analyzed terms of `text`.
    pub fn analyze(&self, text: &str) -> Vec<String> {
        let mut analyzer = self.analyzer.clone();
        terms(&mut analyzer, text)
    }

    /// Ranked passages for free text. Any input is accepted: the text is
    /// analyzed into terms and those are searched, so quotes, colons,
    /// brackets and operators are just characters.
    ///
    /// # Errors
    /// [`Error::Index`] on a tantivy failure (not on any query text).
    pub fn search(&self, text: &str, limit: usize) -> Result<Vec<Hit>, Error> {
        self.search_with(text, limit, true)
    }

    /// [`SearchIndex::search`] without snippets (what answering needs; faster).
    ///
    /// # Errors
    /// As [`SearchIndex::search`].
    pub fn retrieve(&self, text: &str, limit: usize) -> Result<Vec<Hit>, Error> {
        self.search_with(text, limit, false)
    }

    /// Ranked passages for a query made of weighted parts (the customer's
    /// new message at 1.0, earlier turns of the conversation less): each
    /// term counts with the largest weight of a part it appears in, in the
    /// ranking and in [`Hit::coverage`] alike. No snippets.
    ///
    /// # Errors
    /// As [`SearchIndex::search`].
    pub fn retrieve_parts(&self, parts: &[(&str, f32)], limit: usize) -> Result<Vec<Hit>, Error> {
        let mut weighted: Vec<(String, f32)> = Vec::new();
        for (text, weight) in parts {
            if *weight <= 0.0 {
                continue;
            }
            for t in self.analyze(text) {
                match weighted.iter_mut().find(|(seen, _)| *seen == t) {
                    Some((_, w)) => *w = w.max(*weight),
                    None => weighted.push((t, *weight)),
                }
            }
        }
        self.search_terms(weighted, limit, false)
    }

    fn search_with(
        &self,
        text: &str,
        limit: usize,
        with_snippets: bool,
    ) -> Result<Vec<Hit>, Error> {
        let weighted = self.analyze(text).into_iter().map(|t| (t, 1.0)).collect();
        self.search_terms(weighted, limit, with_snippets)
    }

    fn search_terms(
        &self,
        mut weighted: Vec<(String, f32)>,
        limit: usize,
        with_snippets: bool,
    ) -> Result<Vec<Hit>, Error> {
        weighted.truncate(MAX_QUERY_TERMS);
        if weighted.is_empty() || limit == 0 {
            return Ok(Vec::new());
        }
        let query_terms: Vec<String> = weighted.iter().map(|(t, _)| t.clone()).collect();
        let searcher = self.reader.searcher();
        let f = self.fields;
        let mut clauses: Vec<(Occur, Box<dyn Query>)> = Vec::new();
        let mut weights = Vec::with_capacity(query_terms.len());
        let n = searcher.num_docs() as f32;
        for (t, part_weight) in &weighted {
            let mut df = 0;
            for (field, boost) in [
                (f.title, TITLE_BOOST),
                (f.heading, HEADING_BOOST),
                (f.body, 1.0),
                (f.tags, TAGS_BOOST),
                (f.article, ARTICLE_BOOST),
            ] {
                let term = Term::from_field_text(field, t);
                df = df.max(searcher.doc_freq(&term)?);
                let q: Box<dyn Query> =
                    Box::new(TermQuery::new(term, IndexRecordOption::WithFreqs));
                clauses.push((
                    Occur::Should,
                    Box::new(BoostQuery::new(q, boost * part_weight)),
                ));
            }
            // BM25's IDF; a term the index has never seen carries the most
            // weight, so a question full of unknown words has low coverage.
            let df = df as f32;
            weights.push((1.0 + (n - df + 0.5) / (df + 0.5)).ln().max(0.01) * part_weight);
        }
        let query = BooleanQuery::new(clauses);
        let top = searcher.search(&query, &TopDocs::with_limit(limit).order_by_score())?;
        let snippets = if with_snippets {
            let mut generator = SnippetGenerator::create(&searcher, &query, f.body)?;
            generator.set_max_num_chars(180);
            Some(generator)
        } else {
            None
        };
        let total_weight: f32 = weights.iter().sum();
        let mut hits = Vec::with_capacity(top.len());
        // Which query terms each article's retrieved passages hold so far,
        // a bit per term (at most MAX_QUERY_TERMS ≤ 64 of them).
        let mut sorted: Vec<(&str, usize)> = query_terms
            .iter()
            .enumerate()
            .map(|(i, t)| (t.as_str(), i))
            .collect();
        sorted.sort_unstable();
        let mut article_terms: std::collections::HashMap<String, u64> =
            std::collections::HashMap::new();
        for (score, address) in top {
            // Only `kb search` and the console ask for snippets: the body is
            // read for them (not kept in the cache).
            let doc: Option<TantivyDocument> = match snippets {
                Some(_) => Some(searcher.doc(address)?),
                None => None,
            };
            let passage = self.passages.get(&searcher, address, || match &doc {
                Some(doc) => Ok(Passage::read(doc, &self.fields)),
                None => Ok(Passage::read(&searcher.doc(address)?, &self.fields)),
            })?;
            let snippet = match (&snippets, &doc) {
                (Some(generator), Some(doc)) => {
                    let snippet = generator.snippet_from_doc(doc);
                    if snippet.fragment().trim().is_empty() {
                        field_text(doc, f.body)
                            .chars()
                            .take(180)
                            .collect::<String>()
                    } else {
                        snippet.fragment().to_string()
                    }
                }
                _ => String::new(),
            };
            let present = present_terms(&sorted, &passage.terms);
            // Terms found anywhere in the article's retrieved passages count:
            // a question's words are often spread over sections.
            let seen = article_terms.entry(passage.slug.clone()).or_default();
            *seen |= present;
            let seen = *seen;
            let covered: f32 = weights
                .iter()
                .enumerate()
                .filter(|(i, _)| seen & (1u64 << i) != 0)
                .map(|(_, w)| w)
                .sum();
            hits.push(Hit {
                slug: passage.slug.clone(),
                title: passage.title.clone(),
                heading: passage.heading.clone(),
                snippet: snippet.split_whitespace().collect::<Vec<_>>().join(" "),
                score,
                markdown: passage.markdown.clone(),
                url: (!passage.url.is_empty()).then(|| passage.url.clone()),
                tags: passage
                    .tags_raw
                    .split(',')
                    .filter(|t| !t.is_empty())
                    .map(str::to_string)
                    .collect(),
                coverage: if total_weight > 0.0 {
                    covered / total_weight
                } else {
                    0.0
                },
                query_weight: total_weight,
            });
        }
        Ok(hits)
    }
}

impl Manifest {
    fn clone_map(&self) -> BTreeMap<String, String> {
        self.hashes.clone()
    }
}

/// Opening a writer while another process (e.g. `kb add` beside a running
/// `run`) holds the index lock: wait for it rather than fail.
trait WriterRetry {
    fn writer_with_num_threads_retrying(
        &self,
        threads: usize,
        memory: usize,
    ) -> tantivy::Result<tantivy::IndexWriter<TantivyDocument>>;
}

impl WriterRetry for Index {
    fn writer_with_num_threads_retrying(
        &self,
        threads: usize,
        memory: usize,
    ) -> tantivy::Result<tantivy::IndexWriter<TantivyDocument>> {
        let mut attempts = 0;
        loop {
            match self.writer_with_num_threads::<TantivyDocument>(threads, memory) {
                Err(tantivy::TantivyError::LockFailure(..)) if attempts < 50 => {
                    attempts += 1;
                    std::thread::sleep(std::time::Duration::from_millis(100));
                }
                other => return other,
            }
        }
    }
}

fn read_manifest(index: &Index) -> Manifest {
    index
        .load_metas()
        .ok()
        .and_then(|m| m.payload)
        .and_then(|p| serde_json::from_str(&p).ok())
        .unwrap_or_default()
}

fn index_is_empty(index: &Index) -> bool {
    index
        .load_metas()
        .map(|m| m.segments.is_empty())
        .unwrap_or(false)
}

/// A bit for every position in the query whose term the passage holds:
/// `query` is (term, position) sorted by term (a query may repeat one),
/// `terms` the passage's distinct terms, sorted and space-separated
/// ([`Passage::terms`]).
fn present_terms(query: &[(&str, usize)], terms: &str) -> u64 {
    let mut bits = 0u64;
    let mut query = query.iter().peekable();
    for term in terms.split(' ') {
        while let Some((q, at)) = query.next_if(|(q, _)| *q <= term) {
            if *q == term {
                bits |= 1 << at;
            }
        }
        if query.peek().is_none() {
            break;
        }
    }
    bits
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    proptest! {
        /// The one-pass match finds exactly the query positions whose term
        /// the passage holds, repeated terms and terms that are prefixes of
        /// others included.
        #[test]
        fn present_terms_are_those_the_passage_holds(
            query in prop::collection::vec("[ab]{1,3}", 0..12),
            passage in prop::collection::vec("[ab]{1,3}", 0..20),
        ) {
            let mut sorted: Vec<(&str, usize)> =
                query.iter().enumerate().map(|(i, t)| (t.as_str(), i)).collect();
            sorted.sort_unstable();
            let mut terms: Vec<&str> = passage.iter().map(String::as_str).collect();
            terms.sort_unstable();
            terms.dedup();
            let expected = query
                .iter()
                .enumerate()
                .filter(|(_, q)| passage.contains(q))
                .fold(0u64, |bits, (i, _)| bits | 1 << i);
            prop_assert_eq!(super::present_terms(&sorted, &terms.join(" ")), expected);
        }
    }
}
