-- Knowledge-base edits made in the console: who changed which article,
-- when, and its text before and after (NULL: it did not exist / was
-- removed). A rename names the old slug in `previous_slug`; a revert names
-- the change it undoes in `reverts` (and is itself a change).
CREATE TABLE kb_changes (
    id TEXT PRIMARY KEY,
    slug TEXT NOT NULL,
    previous_slug TEXT,
    action TEXT NOT NULL,
    agent TEXT NOT NULL,
    before_text TEXT,
    after_text TEXT,
    reverts TEXT,
    created_at INTEGER NOT NULL
);
CREATE INDEX kb_changes_by_slug ON kb_changes (slug, created_at);
CREATE INDEX kb_changes_by_previous_slug ON kb_changes (previous_slug);
