//! Prompt and message templates from the `prompts/` folder (minijinja).
//!
//! Templates are read into memory at start and on [`Prompts::reload`], so
//! editing a file changes the bot's wording without a recompile or restart.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};

use minijinja::Environment;

/// A template the code renders, one file of the `prompts/` folder each.
///
/// Required ones must exist in a deployment's folder; the others were added
/// later and have a built-in fallback where they are used.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Template {
    /// `system.md`: the model's system prompt.
    System,
    /// `answer.md`: the question and its sources, for the model.
    Answer,
    /// `rewrite.md`: a follow-up rewritten into a standalone question, for the model.
    Rewrite,
    /// `extractive.md`: an answer quoted from the best passage (no model).
    Extractive,
    /// `no_answer.md`: the knowledge base does not cover the question.
    NoAnswer,
    /// `handoff.md`: the conversation goes to a person.
    Handoff,
    /// `already_waiting.md`: the customer already waits for a person elsewhere.
    AlreadyWaiting,
    /// `handoff_busy.md`: too many anonymous hand-offs at once.
    HandoffBusy,
    /// `busy.md`: every model call is in use.
    Busy,
    /// `slow_down.md`: the customer sends messages too fast.
    SlowDown,
    /// `welcome.md`: the first greeting (`/start`, a new conversation).
    Welcome,
    /// `help.md`: what the bot can do (`/help`).
    Help,
    /// `too_long.md`: a message over the length limit.
    TooLong,
    /// `thanks.md`: a reply to thanks.
    Thanks,
    /// `offer_declined.md`: the customer declined a person.
    OfferDeclined,
    /// `solved.md`: the customer said the answer solved it.
    Solved,
    /// `not_solved.md`: the customer said the answer did not help.
    NotSolved,
    /// `joined.md`: an agent joined the conversation.
    Joined,
    /// `transferred.md`: the conversation went to another agent.
    Transferred,
    /// `resolved.md`: an agent resolved the conversation.
    Resolved,
    /// `given_back.md`: an agent gave the conversation back to the bot.
    GivenBack,
    /// `still_waiting.md`: the customer still waits for a person.
    StillWaiting,
    /// `csat.md`: the CSAT survey question.
    Csat,
    /// `ces.md`: the CES survey question.
    Ces,
    /// `nps.md`: the NPS survey question.
    Nps,
    /// `survey_comment.md`: the survey's request for a comment.
    SurveyComment,
    /// `survey_thanks.md`: thanks for answering a survey.
    SurveyThanks,
    /// `surveys_stopped.md`: the customer opted out of surveys.
    SurveysStopped,
    /// `suggest_article.md`: an article drafted from a resolved conversation, for the model.
    SuggestArticle,
    /// `handoff_examples.md`: example requests for a person (not rendered for customers).
    HandoffExamples,
}

impl Template {
    /// Every template, in the order above.
    pub const ALL: [Template; 30] = [
        Template::System,
        Template::Answer,
        Template::Rewrite,
        Template::Extractive,
        Template::NoAnswer,
        Template::Handoff,
        Template::AlreadyWaiting,
        Template::HandoffBusy,
        Template::Busy,
        Template::SlowDown,
        Template::Welcome,
        Template::Help,
        Template::TooLong,
        Template::Thanks,
        Template::OfferDeclined,
        Template::Solved,
        Template::NotSolved,
        Template::Joined,
        Template::Transferred,
        Template::Resolved,
        Template::GivenBack,
        Template::StillWaiting,
        Template::Csat,
        Template::Ces,
        Template::Nps,
        Template::SurveyComment,
        Template::SurveyThanks,
        Template::SurveysStopped,
        Template::SuggestArticle,
        Template::HandoffExamples,
    ];

    /// Its file name in the `prompts/` folder.
    pub fn file(self) -> &'static str {
        match self {
            Template::System => "system.md",
            Template::Answer => "answer.md",
            Template::Rewrite => "rewrite.md",
            Template::Extractive => "extractive.md",
            Template::NoAnswer => "no_answer.md",
            Template::Handoff => "handoff.md",
            Template::AlreadyWaiting => "already_waiting.md",
            Template::HandoffBusy => "handoff_busy.md",
            Template::Busy => "busy.md",
            Template::SlowDown => "slow_down.md",
            Template::Welcome => "welcome.md",
            Template::Help => "help.md",
            Template::TooLong => "too_long.md",
            Template::Thanks => "thanks.md",
            Template::OfferDeclined => "offer_declined.md",
            Template::Solved => "solved.md",
            Template::NotSolved => "not_solved.md",
            Template::Joined => "joined.md",
            Template::Transferred => "transferred.md",
            Template::Resolved => "resolved.md",
            Template::GivenBack => "given_back.md",
            Template::StillWaiting => "still_waiting.md",
            Template::Csat => "csat.md",
            Template::Ces => "ces.md",
            Template::Nps => "nps.md",
            Template::SurveyComment => "survey_comment.md",
            Template::SurveyThanks => "survey_thanks.md",
            Template::SurveysStopped => "surveys_stopped.md",
            Template::SuggestArticle => "suggest_article.md",
            Template::HandoffExamples => "handoff_examples.md",
        }
    }

    /// Whether every deployment must have it.
    pub fn required(self) -> bool {
        !matches!(
            self,
            Template::Rewrite
                | Template::AlreadyWaiting
                | Template::HandoffBusy
                | Template::Busy
                | Template::SlowDown
                | Template::SuggestArticle
                | Template::HandoffExamples
        )
    }
}

impl std::fmt::Display for Template {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.file())
    }
}

/// A template problem.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The folder or a file cannot be read.
    #[error("{}: {}", .0.display(), .1)]
    Io(PathBuf, #[source] std::io::Error),
    /// A required template is missing.
    #[error(
        "prompt template {0} is missing; copy it from the prompts/ folder shipped with Switchboard"
    )]
    Missing(PathBuf),
    /// A template does not parse or fails to render.
    #[error("prompt template {name}: {message}")]
    Template {
        /// File name.
        name: String,
        /// minijinja's explanation, with the line.
        message: String,
    },
}

fn template_error(name: &str, e: &minijinja::Error) -> Error {
    let line = e.line().map(|l| format!(" (line {l})")).unwrap_or_default();
    Error::Template {
        name: name.to_string(),
        message: format!("{}{line}", e.kind()).trim().to_string()
            + &e.detail().map(|d| format!(": {d}")).unwrap_or_default(),
    }
}

/// The loaded templates, and the values every template may use (e.g.
/// `product_name`).
#[derive(Clone)]
pub struct Prompts {
    dir: PathBuf,
    env: Arc<RwLock<Environment<'static>>>,
    common: Arc<serde_json::Map<String, serde_json::Value>>,
}

impl std::fmt::Debug for Prompts {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Prompts").field("dir", &self.dir).finish()
    }
}

impl Prompts {
    /// Loads every template in `dir` (and `dir/canned/`).
    ///
    /// # Errors
    /// When a required template is missing or any template does not parse.
    /// When `dir` does not exist, the templates bundled with this binary
    /// (the `prompts/` folder it was built from) are used.
    pub fn load(dir: &Path) -> Result<Self, Error> {
        let env = build(dir)?;
        Ok(Self {
            dir: dir.to_path_buf(),
            env: Arc::new(RwLock::new(env)),
            common: Arc::default(),
        })
    }

    /// The same templates (reloads included) with `common` added to what
    /// every render sees; a render's own values win over them.
    pub fn with_common(&self, common: serde_json::Value) -> Self {
        let mut merged = (*self.common).clone();
        if let serde_json::Value::Object(common) = common {
            merged.extend(common);
        }
        Self {
            common: Arc::new(merged),
            ..self.clone()
        }
    }

    /// Re-reads the folder. On error the old templates stay in use.
    ///
    /// # Errors
    /// As [`Prompts::load`].
    pub fn reload(&self) -> Result<(), Error> {
        let env = build(&self.dir)?;
        *self.env.write().unwrap_or_else(|p| p.into_inner()) = env;
        Ok(())
    }

    /// The folder the templates come from.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Renders `template` with the common values and `extra` (a JSON
    /// object; its values win).
    ///
    /// # Errors
    /// When the template does not exist or fails to render.
    pub fn render(&self, template: Template, extra: serde_json::Value) -> Result<String, Error> {
        self.render_file(template.file(), extra)
    }

    /// Renders the template file `name` (a canned reply, `canned/NAME.md`)
    /// as [`Prompts::render`] does.
    ///
    /// # Errors
    /// When the template does not exist or fails to render.
    pub fn render_file(&self, name: &str, extra: serde_json::Value) -> Result<String, Error> {
        let mut context = (*self.common).clone();
        if let serde_json::Value::Object(extra) = extra {
            context.extend(extra);
        }
        let env = self.env.read().unwrap_or_else(|p| p.into_inner());
        let template = env
            .get_template(name)
            .map_err(|e| template_error(name, &e))?;
        let text = template
            .render(context)
            .map_err(|e| template_error(name, &e))?;
        Ok(text.trim().to_string())
    }

    /// Whether the deployment's folder has `template` (an optional one may
    /// be missing from a folder older than it).
    pub fn has(&self, template: Template) -> bool {
        let env = self.env.read().unwrap_or_else(|p| p.into_inner());
        env.get_template(template.file()).is_ok()
    }

    /// Names of the canned replies (`canned/NAME.md` → `NAME`).
    pub fn canned_names(&self) -> Vec<String> {
        let env = self.env.read().unwrap_or_else(|p| p.into_inner());
        env.templates()
            .filter_map(|(name, _)| {
                name.strip_prefix("canned/")?
                    .strip_suffix(".md")
                    .map(str::to_string)
            })
            .collect()
    }
}

/// `text` without any `<tag>` or `</tag>` (ASCII case-insensitive), so text
/// placed inside such a tag in a prompt cannot close it. Removal repeats
/// until none is left: taking one out can join the pieces of another
/// (`</que</question>stion>`). One pass does it: a tag is removed as soon as
/// the text kept so far ends with one, so nothing it joins is missed, and
/// hostile nesting costs no more than plain text.
pub fn without_tag(text: &str, tag: &str) -> String {
    let open = format!("<{tag}>");
    let close = format!("</{tag}>");
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        out.push(c);
        if c != '>' {
            continue;
        }
        for pattern in [&open, &close] {
            let bytes = out.as_bytes();
            if let Some(start) = bytes.len().checked_sub(pattern.len())
                && bytes[start..].eq_ignore_ascii_case(pattern.as_bytes())
            {
                // The match is ASCII, so `start` is a char boundary.
                out.truncate(start);
                break;
            }
        }
    }
    out
}

/// The `prompts/` folder this binary was built from.
static BUNDLED: include_dir::Dir<'static> =
    include_dir::include_dir!("$CARGO_MANIFEST_DIR/prompts");

/// The bundled templates by name (`canned/NAME.md` for canned replies).
fn bundled() -> BTreeMap<String, String> {
    let mut sources = BTreeMap::new();
    for (prefix, folder) in [("", Some(&BUNDLED)), ("canned/", BUNDLED.get_dir("canned"))] {
        for file in folder.into_iter().flat_map(|d| d.files()) {
            let path = file.path();
            if let (Some(name), Some(text), true) = (
                path.file_name(),
                file.contents_utf8(),
                path.extension().is_some_and(|e| e == "md"),
            ) {
                sources.insert(
                    format!("{prefix}{}", name.to_string_lossy()),
                    text.to_string(),
                );
            }
        }
    }
    sources
}

fn build(dir: &Path) -> Result<Environment<'static>, Error> {
    let sources = if dir.exists() {
        read_folder(dir)?
    } else {
        bundled()
    };
    for required in Template::ALL.into_iter().filter(|t| t.required()) {
        if !sources.contains_key(required.file()) {
            return Err(Error::Missing(dir.join(required.file())));
        }
    }
    let mut env = Environment::new();
    env.set_trim_blocks(true);
    env.set_keep_trailing_newline(false);
    for (name, text) in sources {
        env.add_template_owned(name.clone(), text)
            .map_err(|e| template_error(&name, &e))?;
    }
    Ok(env)
}

fn read_folder(dir: &Path) -> Result<BTreeMap<String, String>, Error> {
    let mut sources = BTreeMap::new();
    for (prefix, folder) in [("", dir.to_path_buf()), ("canned/", dir.join("canned"))] {
        let entries = match std::fs::read_dir(&folder) {
            Ok(e) => e,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound && !prefix.is_empty() => continue,
            Err(e) => return Err(Error::Io(folder, e)),
        };
        for entry in entries {
            let entry = entry.map_err(|e| Error::Io(folder.clone(), e))?;
            let path = entry.path();
            if path.extension().is_some_and(|e| e == "md") && path.is_file() {
                let text =
                    std::fs::read_to_string(&path).map_err(|e| Error::Io(path.clone(), e))?;
                let name = format!("{prefix}{}", entry.file_name().to_string_lossy());
                sources.insert(name, text);
            }
        }
    }
    Ok(sources)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bundled_templates_are_the_shipped_folder() {
        let folder = read_folder(&Path::new(env!("CARGO_MANIFEST_DIR")).join("prompts")).unwrap();
        assert_eq!(bundled(), folder);
        // The bundled folder has every template, optional ones too.
        for template in Template::ALL {
            assert!(bundled().contains_key(template.file()), "{template}");
        }
    }

    #[test]
    fn common_values_reach_every_render_and_a_render_s_own_win() {
        let dir = tempfile::tempdir().unwrap();
        for template in Template::ALL {
            std::fs::write(dir.path().join(template.file()), "{{ product_name }}").unwrap();
        }
        std::fs::create_dir(dir.path().join("canned")).unwrap();
        std::fs::write(
            dir.path().join("canned/hi.md"),
            "{{ product_name }}/{{ agent }}",
        )
        .unwrap();
        let plain = Prompts::load(dir.path()).unwrap();
        let acme = plain.with_common(serde_json::json!({"product_name": "Acme"}));
        let none = serde_json::json!({});
        assert_eq!(plain.render(Template::Help, none.clone()).unwrap(), "");
        assert_eq!(acme.render(Template::Help, none).unwrap(), "Acme");
        let own = serde_json::json!({"product_name": "Other"});
        assert_eq!(acme.render(Template::Help, own).unwrap(), "Other");
        let agent = serde_json::json!({"agent": "Ana"});
        assert_eq!(acme.render_file("canned/hi.md", agent).unwrap(), "Acme/Ana");
        // Both share the folder: a reload through one is seen by the other.
        std::fs::write(dir.path().join("help.md"), "Help for {{ product_name }}").unwrap();
        plain.reload().unwrap();
        let none = serde_json::json!({});
        assert_eq!(acme.render(Template::Help, none).unwrap(), "Help for Acme");
    }

    #[test]
    fn a_missing_folder_means_the_bundled_templates() {
        let dir = tempfile::tempdir().unwrap();
        let prompts = Prompts::load(&dir.path().join("no-such-folder")).unwrap();
        assert!(
            !prompts
                .render(Template::Welcome, serde_json::json!({}))
                .unwrap()
                .is_empty()
        );
        assert!(prompts.canned_names().contains(&"greeting".to_string()));
        // An existing folder is read as it is: here it lacks everything.
        assert!(matches!(Prompts::load(dir.path()), Err(Error::Missing(_))));
    }
}
