//! Editing articles in place (the console's knowledge-base editor): the
//! source of one article, checks of a draft, and changes that are refused
//! when a file is no longer the version the editor opened.
//!
//! Slugs come from browsers and are untrusted: [`file_for`] accepts only
//! slugs whose every segment is a plain name, so the file is always below
//! the knowledge-base folder. Every change is checked against the hash of
//! the version it was made on, written beside the target and renamed over
//! it (a reader never sees half a file), and the index is reloaded before
//! the call returns, so the next answer already uses the new text.

use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

use super::{Error, KnowledgeBase, Problem, parse};
use crate::kb::article::Front;

/// Longest slug the editor accepts, in bytes.
pub const MAX_SLUG_BYTES: usize = 200;

/// An article's file as it is on disk.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Source {
    /// The slug.
    pub slug: String,
    /// The file.
    pub path: PathBuf,
    /// Its text (lossy UTF-8 for a file that is not valid UTF-8).
    pub text: String,
    /// [`hash_of`] its bytes: what a later change must name.
    pub hash: String,
    /// Last modified, in milliseconds since the epoch.
    pub modified: Option<i64>,
}

/// One file change: `slug` must be at version `expected` (a [`hash_of`],
/// or `None` for "must not exist") and becomes `text` (`None`: removed).
#[derive(Debug, Clone)]
pub struct Change<'a> {
    /// The article.
    pub slug: &'a str,
    /// The version the change was made on.
    pub expected: Option<&'a str>,
    /// The new text, or `None` to remove the file.
    pub text: Option<&'a str>,
}

/// The hash a version of a file is known by (SHA-256, hex).
pub fn hash_of(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// Whether `slug` is one the editor may write: `/`-separated names of
/// letters, digits, `-`, `_` and `.`, none empty or starting with `.`
/// (hidden files are not articles), not ending in `.md`, at most
/// [`MAX_SLUG_BYTES`].
///
/// # Errors
/// [`Error::BadSlug`] otherwise.
pub fn validate_slug(slug: &str) -> Result<(), Error> {
    let ok = !slug.is_empty()
        && slug.len() <= MAX_SLUG_BYTES
        && !slug.ends_with(".md")
        && !slug.ends_with(".markdown")
        && slug.split('/').all(|part| {
            !part.is_empty()
                && !part.starts_with('.')
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

/// The file of `slug` below `root` (`root/a/b.md` for `a/b`), after
/// [`validate_slug`].
///
/// # Errors
/// [`Error::BadSlug`] for a slug that is not allowed.
pub fn file_for(root: &Path, slug: &str) -> Result<PathBuf, Error> {
    validate_slug(slug)?;
    let mut path = root.to_path_buf();
    let mut parts = slug.split('/').peekable();
    while let Some(part) = parts.next() {
        if parts.peek().is_some() {
            path.push(part);
        } else {
            path.push(format!("{part}.md"));
        }
    }
    Ok(path)
}

/// An article's source from form fields: a front-matter block with the
/// fields that are set (none when all are empty), then `body`. Fields are
/// trimmed and kept to one line; empty tags are dropped.
pub fn compose(front: &Front, body: &str) -> String {
    let front = normalize(front);
    if front == Front::default() {
        return body.to_string();
    }
    #[derive(serde::Serialize)]
    struct Out<'a> {
        #[serde(skip_serializing_if = "Option::is_none")]
        title: Option<&'a str>,
        #[serde(skip_serializing_if = "<[String]>::is_empty")]
        tags: &'a [String],
        #[serde(skip_serializing_if = "Option::is_none")]
        url: Option<&'a str>,
        #[serde(skip_serializing_if = "Option::is_none")]
        locale: Option<&'a str>,
    }
    let yaml = serde_yaml::to_string(&Out {
        title: front.title.as_deref(),
        tags: &front.tags,
        url: front.url.as_deref(),
        locale: front.locale.as_deref(),
    })
    .unwrap_or_default();
    format!("---\n{yaml}---\n{body}")
}

/// `front` as [`compose`] writes it: trimmed one-line fields, empty ones
/// unset.
pub fn normalize(front: &Front) -> Front {
    fn line(s: &str) -> String {
        s.split(|c: char| c.is_control())
            .filter(|p| !p.trim().is_empty())
            .map(str::trim)
            .collect::<Vec<_>>()
            .join(" ")
    }
    let field = |f: &Option<String>| f.as_deref().map(line).filter(|s| !s.is_empty());
    Front {
        title: field(&front.title),
        tags: front
            .tags
            .iter()
            .map(|t| line(t))
            .filter(|t| !t.is_empty())
            .collect(),
        url: field(&front.url),
        locale: field(&front.locale),
    }
}

impl KnowledgeBase {
    /// The file of `slug` as it is now, if there is one (`.md`, else
    /// `.markdown`).
    ///
    /// # Errors
    /// [`Error::BadSlug`], or when the file cannot be read.
    pub fn source(&self, slug: &str) -> Result<Option<Source>, Error> {
        let md = file_for(&self.root, slug)?;
        for path in [md.clone(), md.with_extension("markdown")] {
            match std::fs::read(&path) {
                Ok(bytes) => {
                    let modified = std::fs::metadata(&path)
                        .and_then(|m| m.modified())
                        .ok()
                        .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
                        .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX));
                    return Ok(Some(Source {
                        slug: slug.to_string(),
                        hash: hash_of(&bytes),
                        text: String::from_utf8_lossy(&bytes).into_owned(),
                        path,
                        modified,
                    }));
                }
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) if e.kind() == std::io::ErrorKind::IsADirectory => {}
                Err(e) => return Err(Error::Io(path, e)),
            }
        }
        Ok(None)
    }

    /// What `kb check` would report for `text` saved as `slug`: the
    /// article's own problems, and a title another article already uses
    /// (`replacing` is an article the draft replaces, as in a rename).
    pub fn check_draft(&self, slug: &str, text: &str, replacing: Option<&str>) -> Vec<Problem> {
        let (article, mut problems) = parse(slug, text.as_bytes());
        if let Some(article) = article {
            let title = article.title.to_lowercase();
            if let Some(other) = self.articles().iter().find(|a| {
                a.slug != slug
                    && Some(a.slug.as_str()) != replacing
                    && a.title.to_lowercase() == title
            }) {
                problems.push(Problem {
                    line: 1,
                    message: format!(
                        "title `{}` is also used by {}; give each article its own title",
                        article.title, other.slug
                    ),
                    fatal: false,
                });
            }
        }
        problems
    }

    /// Applies `changes` if every file is still at its expected version,
    /// then reloads the index; returns each file's text before. Writes go
    /// first (temp file and rename), then removals, so a rename never loses
    /// the article.
    ///
    /// # Errors
    /// [`Error::Stale`] for the first file not at its expected version
    /// (nothing is changed then), [`Error::BadSlug`], or an I/O or index
    /// failure.
    pub fn apply(&self, changes: &[Change<'_>]) -> Result<Vec<Option<String>>, Error> {
        let _held = self.edits.lock().unwrap_or_else(|p| p.into_inner());
        let mut current = Vec::with_capacity(changes.len());
        for change in changes {
            let source = self.source(change.slug)?;
            if source.as_ref().map(|s| s.hash.as_str()) != change.expected {
                return Err(Error::Stale {
                    slug: change.slug.to_string(),
                    current: source.map(|s| s.text),
                });
            }
            current.push(source);
        }
        for (change, source) in changes.iter().zip(&current) {
            let Some(text) = change.text else { continue };
            let target = match source {
                Some(s) => s.path.clone(),
                None => file_for(&self.root, change.slug)?,
            };
            if let Some(parent) = target.parent() {
                std::fs::create_dir_all(parent).map_err(|e| Error::Io(parent.to_path_buf(), e))?;
            }
            // A hidden name: the folder scan skips it if we are interrupted.
            let name = target
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default();
            let tmp = target.with_file_name(format!(".{name}.{}.tmp", crate::store::new_id()));
            std::fs::write(&tmp, text).map_err(|e| Error::Io(tmp.clone(), e))?;
            if let Err(e) = std::fs::rename(&tmp, &target) {
                let _ = std::fs::remove_file(&tmp);
                return Err(Error::Io(target, e));
            }
        }
        for (change, source) in changes.iter().zip(&current) {
            if let (None, Some(source)) = (change.text, source) {
                std::fs::remove_file(&source.path)
                    .map_err(|e| Error::Io(source.path.clone(), e))?;
            }
        }
        self.reload()?;
        Ok(current.into_iter().map(|s| s.map(|s| s.text)).collect())
    }

    /// When the file of `slug` was last modified (milliseconds since the
    /// epoch), if it exists.
    pub fn modified(&self, slug: &str) -> Option<i64> {
        let md = file_for(&self.root, slug).ok()?;
        [md.clone(), md.with_extension("markdown")]
            .iter()
            .find_map(|p| std::fs::metadata(p).and_then(|m| m.modified()).ok())
            .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
            .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn slugs_map_to_files_below_the_folder() {
        let root = Path::new("/kb");
        assert_eq!(
            file_for(root, "billing/refunds").unwrap(),
            Path::new("/kb/billing/refunds.md")
        );
        for bad in [
            "",
            "/etc/passwd",
            "../x",
            "a/../../x",
            "a//b",
            "a/",
            ".hidden",
            "a/.git/x",
            "a\\b",
            "a.md",
            "x y",
            "a/b\0c",
            "C:x",
        ] {
            assert!(file_for(root, bad).is_err(), "{bad:?} accepted");
        }
        assert!(file_for(root, &"a".repeat(MAX_SLUG_BYTES + 1)).is_err());
    }

    #[test]
    fn compose_writes_only_the_fields_that_are_set() {
        assert_eq!(compose(&Front::default(), "# T\n\nx\n"), "# T\n\nx\n");
        let front = Front {
            title: Some(" Refunds: how ".into()),
            tags: vec!["billing".into(), " ".into()],
            url: None,
            locale: Some(String::new()),
        };
        let text = compose(&front, "# Refunds\n\nBody.\n");
        assert!(text.starts_with("---\ntitle: 'Refunds: how'\n"), "{text}");
        let (parsed, body) = super::super::split_source(&text);
        assert_eq!(parsed, Some(normalize(&front)));
        assert_eq!(body, "# Refunds\n\nBody.\n");
    }

    proptest! {
        /// Whatever a browser sends, an accepted slug names a `.md` file
        /// strictly below the folder, and reads back as the same slug.
        #[test]
        fn accepted_slugs_never_leave_the_folder(slug in "([a-z.]{0,3}|\\.\\.|/|\\\\|[^\\x00]{0,4}){0,6}") {
            let root = Path::new("/srv/kb");
            if let Ok(path) = file_for(root, &slug) {
                prop_assert!(path.starts_with(root));
                prop_assert!(path.components().skip(3).all(|c| matches!(c, std::path::Component::Normal(_))));
                prop_assert_eq!(crate::kb::slug_for(root, &path), Some(slug.clone()));
                let name = path.file_name().unwrap().to_string_lossy().into_owned();
                prop_assert!(!name.starts_with('.'));
            }
        }

        /// Form fields with any text survive a save and a reload.
        #[test]
        fn composed_front_matter_reads_back(
            title in "\\PC{0,40}", tags in proptest::collection::vec("\\PC{0,12}", 0..4),
            url in "\\PC{0,20}", locale in "[a-zA-Z\\-:#'\"\\[\\]{}]{0,8}", body in "\\PC{0,80}",
        ) {
            let front = Front { title: Some(title), tags, url: Some(url), locale: Some(locale) };
            let text = compose(&front, &body);
            let normalized = normalize(&front);
            let (parsed, rest) = super::super::split_source(&text);
            if normalized != Front::default() {
                prop_assert_eq!(parsed, Some(normalized));
                prop_assert_eq!(rest, body.as_str());
            } else {
                prop_assert_eq!(text, body);
            }
        }
    }
}
