//! Canned replies (`prompts/canned/NAME.md`): one as an agent sends it, and
//! all of them for the console's `/` list.

use super::*;

impl Desk {
    /// The canned reply `name` as an agent shown as `shown` sends it.
    ///
    /// # Errors
    /// [`Error::NoSuchCanned`] (naming the ones there are), or a template
    /// failure.
    pub(super) fn canned(&self, name: &str, shown: &str) -> Result<String, Error> {
        let name = name.trim();
        let names = self.inner.prompts.canned_names();
        if !names.iter().any(|n| n == name) {
            return Err(Error::NoSuchCanned(name.to_string(), names.join(", ")));
        }
        Ok(self.inner.prompts.render_file(
            &format!("canned/{name}.md"),
            serde_json::json!({"agent": shown}),
        )?)
    }

    /// The canned replies by name, each as `agent` would send it, for the
    /// console's `/` autocomplete.
    ///
    /// # Errors
    /// When a template fails to render.
    pub fn canned_replies(&self, agent: &Agent) -> Result<Vec<(String, String)>, Error> {
        let mut names = self.inner.prompts.canned_names();
        names.sort();
        names
            .into_iter()
            .map(|name| {
                let text = self.canned(&name, agent.display_name())?;
                Ok((name, text))
            })
            .collect()
    }
}
