-- Incident and breach register (issue 19): platform data, kept by the operator (GDPR art.
-- 33(5) documentation). Lockstep with ../sqlite/0029_incidents.sql. Deadlines are computed at
-- recording (2 business days for customers, 72 hours for the authority) and stored, so the
-- register shows what was due when, whatever the calendar code becomes later.
CREATE TABLE incidents (
    id                     UUID PRIMARY KEY,
    severity               TEXT NOT NULL CHECK (severity IN ('low', 'medium', 'high', 'critical')),
    title                  TEXT NOT NULL,
    description            TEXT NOT NULL,
    data_categories        TEXT NOT NULL,   -- JSON array of category names
    personal_data_breach   BOOLEAN NOT NULL,
    subjects_estimate      BIGINT,
    consequences           TEXT NOT NULL,
    measures               TEXT NOT NULL,
    detected_at            BIGINT NOT NULL,
    created_at             BIGINT NOT NULL,
    created_by             TEXT NOT NULL,
    customer_due_at        BIGINT NOT NULL,
    authority_due_at       BIGINT,          -- personal-data breaches only
    customers_notified_at  BIGINT,
    authority_notified_at  BIGINT,
    authority_reference    TEXT,
    closed_at              BIGINT
);
CREATE INDEX incidents_by_detection ON incidents (detected_at);

CREATE TABLE incident_tenants (
    incident_id  UUID NOT NULL REFERENCES incidents (id) ON DELETE CASCADE,
    tenant_id    UUID NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    PRIMARY KEY (incident_id, tenant_id)
);
