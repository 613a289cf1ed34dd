-- Public status page (issue 18): incidents and planned maintenance that operators post. Platform
-- data, not any organisation's; titles and texts in English and Dutch.
CREATE TABLE status_notices (
    id          BLOB PRIMARY KEY,
    kind        TEXT NOT NULL CHECK (kind IN ('incident', 'maintenance')),
    impact      TEXT NOT NULL CHECK (impact IN ('degraded', 'outage', 'maintenance')),
    components  TEXT NOT NULL,  -- JSON array of component names
    title_en    TEXT NOT NULL,
    title_nl    TEXT NOT NULL,
    body_en     TEXT NOT NULL,
    body_nl     TEXT NOT NULL,
    starts_at   INTEGER NOT NULL,
    ends_at     INTEGER,        -- planned end (maintenance); NULL: open until resolved
    resolved_at INTEGER,
    created_at  INTEGER NOT NULL
) STRICT;
CREATE INDEX status_notices_by_start ON status_notices (starts_at);
