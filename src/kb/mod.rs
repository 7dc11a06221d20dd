//! The knowledge base: a folder of Markdown articles, parsed into passages
//! and searched through a persistent tantivy index.
//!
//! [`KnowledgeBase`] is the one handle the rest of the program uses; it is
//! cheap to share behind an `Arc` and safe to reload while it is searched.

mod analysis;
mod article;
pub mod calibrate;
pub mod edit;
mod index;
mod schema;
mod stored;
pub mod watch;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};

use sha2::{Digest, Sha256};

pub use analysis::{analyzer, terms};
pub use article::{Article, Front, Passage, Problem, parse, plain_text, slug_for, split_source};
pub use calibrate::Calibration;
pub use index::{Hit, SearchIndex, SyncReport};

use crate::config::KnowledgeBaseSettings;

/// A knowledge-base failure.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A file or folder could not be read or written.
    #[error("{}: {}", .0.display(), .1)]
    Io(PathBuf, #[source] std::io::Error),
    /// The search index failed.
    #[error("search index: {0}")]
    Index(String),
    /// `kb rm` of a slug that does not exist.
    #[error("no article `{0}`; `switchboard kb list` shows the slugs")]
    NoSuchArticle(String),
    /// `kb add` of a file that cannot be loaded.
    #[error("{}:{line}: {message}", .path.display())]
    Invalid {
        /// The file.
        path: PathBuf,
        /// Line of the problem.
        line: usize,
        /// What is wrong.
        message: String,
    },
    /// A slug that would escape the knowledge-base folder.
    #[error("slug `{0}` is not allowed: use letters, digits, `-`, `_` and `/` only")]
    BadSlug(String),
    /// An edit made against a version of the file that is no longer there
    /// (someone else changed, added or removed it since it was opened).
    #[error("`{slug}` was changed since you opened it; reload it and apply your edit again")]
    Stale {
        /// The article.
        slug: String,
        /// Its text now (`None`: it does not exist any more).
        current: Option<String>,
    },
}

impl From<tantivy::TantivyError> for Error {
    fn from(e: tantivy::TantivyError) -> Self {
        Error::Index(e.to_string())
    }
}

/// A problem found in one file by [`check_folder`].
#[derive(Debug, Clone, serde::Serialize)]
pub struct FileProblem {
    /// The file.
    pub path: PathBuf,
    /// The problem.
    #[serde(flatten)]
    pub problem: Problem,
}

/// A loaded article and the hash of its file.
struct Loaded {
    article: Arc<Article>,
    hash: String,
}

/// The knowledge base.
pub struct KnowledgeBase {
    root: PathBuf,
    base_url: String,
    index: SearchIndex,
    articles: RwLock<BTreeMap<String, Arc<Article>>>,
    /// Redone whenever the index changes.
    calibration: RwLock<Arc<Calibration>>,
    /// Held while the editor checks and changes files ([`edit`]), so two
    /// saves cannot both pass the check against the same version.
    edits: std::sync::Mutex<()>,
}

impl KnowledgeBase {
    /// Opens the index named in `settings` and syncs it with the folder.
    ///
    /// # Errors
    /// When the folder cannot be read or the index cannot be written.
    pub fn open(
        settings: &KnowledgeBaseSettings,
        on_progress: &dyn Fn(usize, usize),
    ) -> Result<Self, Error> {
        let index = SearchIndex::open(&settings.index_path)?;
        Self::with_index(&settings.path, &settings.base_url, index, on_progress)
    }

    /// A knowledge base over `root` with an in-memory index.
    ///
    /// # Errors
    /// When the folder cannot be read.
    pub fn in_memory(root: &Path) -> Result<Self, Error> {
        Self::with_index(root, "", SearchIndex::in_memory()?, &|_, _| {})
    }

    fn with_index(
        root: &Path,
        base_url: &str,
        index: SearchIndex,
        on_progress: &dyn Fn(usize, usize),
    ) -> Result<Self, Error> {
        let kb = Self {
            root: root.to_path_buf(),
            base_url: base_url.trim_end_matches('/').to_string(),
            index,
            articles: RwLock::new(BTreeMap::new()),
            calibration: RwLock::new(Arc::new(Calibration::default())),
            edits: std::sync::Mutex::new(()),
        };
        kb.reload_with(on_progress)?;
        Ok(kb)
    }

    /// The articles folder.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Re-reads the folder and re-indexes what changed.
    ///
    /// # Errors
    /// When the folder cannot be read or the index cannot be written.
    pub fn reload(&self) -> Result<SyncReport, Error> {
        self.reload_with(&|_, _| {})
    }

    /// [`KnowledgeBase::reload`] with a progress callback `(done, total)`.
    ///
    /// # Errors
    /// As [`KnowledgeBase::reload`].
    pub fn reload_with(&self, on_progress: &dyn Fn(usize, usize)) -> Result<SyncReport, Error> {
        let loaded = load_folder(&self.root)?;
        let pairs: Vec<(&Article, &str)> = loaded
            .iter()
            .map(|l| (l.article.as_ref(), l.hash.as_str()))
            .collect();
        let report = self.index.sync(&pairs, on_progress)?;
        let map = loaded
            .into_iter()
            .map(|l| (l.article.slug.clone(), l.article))
            .collect();
        *self.articles.write().unwrap_or_else(|p| p.into_inner()) = map;
        let changed = report.added + report.updated + report.removed > 0;
        if changed || self.calibration().is_empty() {
            let calibration = Arc::new(self.calibrate()?);
            *self.calibration.write().unwrap_or_else(|p| p.into_inner()) = calibration;
        }
        Ok(report)
    }

    /// How this knowledge base scores generic off-topic questions and its
    /// own articles' questions (see [`calibrate`]).
    pub fn calibration(&self) -> Arc<Calibration> {
        self.calibration
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// The best passage score of `question` (what the decision compares).
    ///
    /// # Errors
    /// On an index failure.
    pub fn best_score(&self, question: &str) -> Result<f32, Error> {
        Ok(self
            .index
            .retrieve(question, 1)?
            .first()
            .map_or(0.0, |h| h.score))
    }

    fn calibrate(&self) -> Result<Calibration, Error> {
        let articles = self.articles();
        if articles.is_empty() {
            return Ok(Calibration::default());
        }
        let refs: Vec<&Article> = articles.iter().map(Arc::as_ref).collect();
        let scored = |q: String| self.best_score(&q).map(|s| (q, s));
        let negatives = calibrate::off_topic_questions()
            .map(|q| scored(q.to_string()))
            .collect::<Result<Vec<_>, _>>()?;
        let positives = calibrate::positive_questions(&refs)
            .into_iter()
            .map(scored)
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Calibration::from_questions(calibrate::Questions {
            negatives,
            positives,
        }))
    }

    /// Drops the index and indexes every article again.
    ///
    /// # Errors
    /// As [`KnowledgeBase::reload`].
    pub fn rebuild(&self, on_progress: &dyn Fn(usize, usize)) -> Result<SyncReport, Error> {
        self.index.clear()?;
        self.reload_with(on_progress)
    }

    /// Ranked passages for `query` (any text).
    ///
    /// # Errors
    /// Only on an index failure.
    pub fn search(&self, query: &str, limit: usize) -> Result<Vec<Hit>, Error> {
        let mut hits = self.index.search(query, limit)?;
        for hit in &mut hits {
            if hit.url.is_none() && !self.base_url.is_empty() {
                hit.url = Some(format!("{}/{}", self.base_url, hit.slug));
            }
        }
        Ok(hits)
    }

    /// Ranked passages without snippets (what answering uses).
    ///
    /// # Errors
    /// Only on an index failure.
    pub fn retrieve(&self, query: &str, limit: usize) -> Result<Vec<Hit>, Error> {
        let mut hits = self.index.retrieve(query, limit)?;
        for hit in &mut hits {
            if hit.url.is_none() && !self.base_url.is_empty() {
                hit.url = Some(format!("{}/{}", self.base_url, hit.slug));
            }
        }
        Ok(hits)
    }

    /// Ranked passages for weighted query parts (see
    /// [`SearchIndex::retrieve_parts`]), without snippets.
    ///
    /// # Errors
    /// Only on an index failure.
    pub fn retrieve_parts(&self, parts: &[(&str, f32)], limit: usize) -> Result<Vec<Hit>, Error> {
        let mut hits = self.index.retrieve_parts(parts, limit)?;
        for hit in &mut hits {
            if hit.url.is_none() && !self.base_url.is_empty() {
                hit.url = Some(format!("{}/{}", self.base_url, hit.slug));
            }
        }
        Ok(hits)
    }

    /// The analyzed terms of `text` (what search matches on).
    pub fn analyze(&self, text: &str) -> Vec<String> {
        self.index.analyze(text)
    }

    /// All articles, by slug.
    pub fn articles(&self) -> Vec<Arc<Article>> {
        self.articles
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .values()
            .cloned()
            .collect()
    }

    /// One article.
    pub fn article(&self, slug: &str) -> Option<Arc<Article>> {
        self.articles
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .get(slug)
            .cloned()
    }

    /// The link for an article: its front-matter `url`, else `base_url/slug`.
    pub fn link(&self, slug: &str, url: Option<&str>) -> Option<String> {
        url.map(str::to_string)
            .or_else(|| (!self.base_url.is_empty()).then(|| format!("{}/{slug}", self.base_url)))
    }

    /// Number of indexed passages.
    pub fn passages(&self) -> u64 {
        self.index.passages()
    }

    /// Copies `file` into the folder as `slug` (default: its file name),
    /// replacing any article of that slug, and indexes it.
    ///
    /// # Errors
    /// [`Error::Invalid`] when the file cannot be loaded (nothing is copied),
    /// [`Error::BadSlug`] for a slug with `..` or odd characters.
    pub fn add(&self, file: &Path, slug: Option<&str>) -> Result<String, Error> {
        let bytes = std::fs::read(file).map_err(|e| Error::Io(file.to_path_buf(), e))?;
        let slug = match slug {
            Some(s) => s.trim_end_matches(".md").to_string(),
            None => file
                .file_stem()
                .map(|s| s.to_string_lossy().into_owned())
                .unwrap_or_default(),
        };
        check_slug(&slug)?;
        let (article, problems) = parse(&slug, &bytes);
        if let Some(fatal) = problems
            .iter()
            .find(|p| p.fatal)
            .or(problems.first())
            .filter(|_| article.is_none())
        {
            return Err(Error::Invalid {
                path: file.to_path_buf(),
                line: fatal.line,
                message: fatal.message.clone(),
            });
        }
        let target = self.root.join(format!("{slug}.md"));
        if let Some(parent) = target.parent() {
            std::fs::create_dir_all(parent).map_err(|e| Error::Io(parent.to_path_buf(), e))?;
        }
        // Write beside and rename, so a watcher never reads half a file.
        let tmp = target.with_extension("md.tmp");
        std::fs::write(&tmp, &bytes).map_err(|e| Error::Io(tmp.clone(), e))?;
        std::fs::rename(&tmp, &target).map_err(|e| Error::Io(target.clone(), e))?;
        self.reload()?;
        Ok(slug)
    }

    /// Deletes the article's file and removes it from the index.
    ///
    /// # Errors
    /// [`Error::NoSuchArticle`] when there is no such slug.
    pub fn remove(&self, slug: &str) -> Result<(), Error> {
        check_slug(slug)?;
        let path = ["md", "markdown"]
            .iter()
            .map(|ext| self.root.join(format!("{slug}.{ext}")))
            .find(|p| p.is_file())
            .ok_or_else(|| Error::NoSuchArticle(slug.to_string()))?;
        std::fs::remove_file(&path).map_err(|e| Error::Io(path.clone(), e))?;
        self.reload()?;
        Ok(())
    }
}

fn check_slug(slug: &str) -> Result<(), Error> {
    let ok = !slug.is_empty()
        && slug.split('/').all(|part| {
            !part.is_empty()
                && part != "."
                && part != ".."
                && part
                    .chars()
                    .all(|c| c.is_alphanumeric() || matches!(c, '-' | '_' | '.'))
        });
    if ok {
        Ok(())
    } else {
        Err(Error::BadSlug(slug.to_string()))
    }
}

/// Every Markdown file below `root`, sorted, hidden entries skipped.
fn markdown_files(root: &Path) -> Result<Vec<PathBuf>, Error> {
    let mut out = Vec::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        let entries = std::fs::read_dir(&dir).map_err(|e| Error::Io(dir.clone(), e))?;
        for entry in entries {
            let entry = entry.map_err(|e| Error::Io(dir.clone(), e))?;
            let path = entry.path();
            let name = entry.file_name();
            if name.to_string_lossy().starts_with('.') {
                continue;
            }
            let kind = entry.file_type().map_err(|e| Error::Io(path.clone(), e))?;
            if kind.is_dir() {
                stack.push(path);
            } else if path
                .extension()
                .is_some_and(|e| e == "md" || e == "markdown")
            {
                out.push(path);
            }
        }
    }
    out.sort();
    Ok(out)
}

fn load_folder(root: &Path) -> Result<Vec<Loaded>, Error> {
    let mut loaded = Vec::new();
    for path in markdown_files(root)? {
        let Some(slug) = slug_for(root, &path) else {
            continue;
        };
        let bytes = match std::fs::read(&path) {
            Ok(b) => b,
            // Deleted between listing and reading: it is simply gone.
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
            Err(e) => return Err(Error::Io(path, e)),
        };
        let (article, problems) = parse(&slug, &bytes);
        for p in &problems {
            tracing::warn!(file = %path.display(), line = p.line, "{}", p.message);
        }
        if let Some(article) = article {
            let hash = hex::encode(Sha256::digest(&bytes));
            loaded.push(Loaded {
                article: Arc::new(article),
                hash,
            });
        }
    }
    Ok(loaded)
}

/// Validates every article below `root`; returns each problem with its file.
///
/// # Errors
/// Only when the folder itself cannot be read.
pub fn check_folder(root: &Path) -> Result<(usize, Vec<FileProblem>), Error> {
    let files = markdown_files(root)?;
    let mut problems = Vec::new();
    let mut titles: BTreeMap<String, PathBuf> = BTreeMap::new();
    for path in &files {
        let Some(slug) = slug_for(root, path) else {
            continue;
        };
        let bytes = std::fs::read(path).map_err(|e| Error::Io(path.clone(), e))?;
        let (article, found) = parse(&slug, &bytes);
        problems.extend(found.into_iter().map(|problem| FileProblem {
            path: path.clone(),
            problem,
        }));
        if let Some(article) = article
            && let Some(other) = titles.insert(article.title.to_lowercase(), path.clone())
        {
            problems.push(FileProblem {
                path: path.clone(),
                problem: Problem {
                    line: 1,
                    message: format!(
                        "title `{}` is also used by {}; give each article its own title",
                        article.title,
                        other.display()
                    ),
                    fatal: false,
                },
            });
        }
    }
    Ok((files.len(), problems))
}
