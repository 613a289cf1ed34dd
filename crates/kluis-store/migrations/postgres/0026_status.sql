-- Public status page (issue 18): incidents and planned maintenance that operators post. Platform
-- data, not any organisation's; titles and texts in English and Dutch.
CREATE TABLE status_notices (
    id          UUID PRIMARY KEY,
    kind        TEXT NOT NULL CHECK (kind IN ('incident', 'maintenance')),
    impact      TEXT NOT NULL CHECK (impact IN ('degraded', 'outage', 'maintenance')),
    components  TEXT NOT NULL,
    title_en    TEXT NOT NULL,
    title_nl    TEXT NOT NULL,
    body_en     TEXT NOT NULL,
    body_nl     TEXT NOT NULL,
    starts_at   BIGINT NOT NULL,
    ends_at     BIGINT,
    resolved_at BIGINT,
    created_at  BIGINT NOT NULL
);
CREATE INDEX status_notices_by_start ON status_notices (starts_at);
