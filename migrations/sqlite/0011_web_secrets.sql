-- Server secrets generated once and kept with the data (the web widget's
-- visitor-token key when `web.visitor_secret` is not set).
CREATE TABLE secrets (
    name TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
