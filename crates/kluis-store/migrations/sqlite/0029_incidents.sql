-- Incident and breach register (issue 19). Lockstep with ../postgres/0029_incidents.sql.
CREATE TABLE incidents (
    id                     BLOB PRIMARY KEY,
    severity               TEXT NOT NULL CHECK (severity IN ('low', 'medium', 'high', 'critical')),
    title                  TEXT NOT NULL,
    description            TEXT NOT NULL,
    data_categories        TEXT NOT NULL,   -- JSON array of category names
    personal_data_breach   INTEGER NOT NULL CHECK (personal_data_breach IN (0, 1)),
    subjects_estimate      INTEGER,
    consequences           TEXT NOT NULL,
    measures               TEXT NOT NULL,
    detected_at            INTEGER NOT NULL,
    created_at             INTEGER NOT NULL,
    created_by             TEXT NOT NULL,
    customer_due_at        INTEGER NOT NULL,
    authority_due_at       INTEGER,         -- personal-data breaches only
    customers_notified_at  INTEGER,
    authority_notified_at  INTEGER,
    authority_reference    TEXT,
    closed_at              INTEGER
) STRICT;
CREATE INDEX incidents_by_detection ON incidents (detected_at);

CREATE TABLE incident_tenants (
    incident_id  BLOB NOT NULL REFERENCES incidents (id) ON DELETE CASCADE,
    tenant_id    BLOB NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    PRIMARY KEY (incident_id, tenant_id)
) STRICT;
