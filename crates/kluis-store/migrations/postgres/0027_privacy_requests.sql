-- Data-subject requests (issue 19, GDPR art. 15-20). Lockstep with ../sqlite/0027_privacy_requests.sql.
--
-- `subject` is the sealed JSON of the identifiers asked for (email, phone); erasure replaces it
-- with a sealed `{}`, so the request row outlives the data it was about without naming them.
CREATE TABLE privacy_requests (
    tenant_id   UUID NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    id          UUID NOT NULL,
    kind        TEXT NOT NULL CHECK (kind IN ('access', 'erasure')),
    status      TEXT NOT NULL CHECK (status IN ('open', 'exported', 'erased')),
    subject     BYTEA NOT NULL,
    created_at  BIGINT NOT NULL,
    created_by  TEXT NOT NULL,
    due_at      BIGINT NOT NULL,
    exported_at BIGINT,
    erased_at   BIGINT,
    PRIMARY KEY (tenant_id, id)
);
ALTER TABLE privacy_requests ENABLE ROW LEVEL SECURITY;
ALTER TABLE privacy_requests FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON privacy_requests
    USING (tenant_id = nullif(current_setting('app.tenant_id', true), '')::uuid)
    WITH CHECK (tenant_id = nullif(current_setting('app.tenant_id', true), '')::uuid);

-- Audit events whose details an erasure replaced, and the erasure event (`by_seq`, later in the
-- same log) that lists them. Verification accepts a redacted event's stored leaf hash only when
-- that event names it; the leaf hashes and every other column stay as they were.
CREATE TABLE audit_redactions (
    tenant_id  UUID NOT NULL,
    seq        BIGINT NOT NULL,
    by_seq     BIGINT NOT NULL CHECK (by_seq > seq),
    PRIMARY KEY (tenant_id, seq)
);
ALTER TABLE audit_redactions ENABLE ROW LEVEL SECURITY;
ALTER TABLE audit_redactions FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON audit_redactions
    USING (tenant_id = nullif(current_setting('app.tenant_id', true), '')::uuid)
    WITH CHECK (tenant_id = nullif(current_setting('app.tenant_id', true), '')::uuid);

-- Still append-only, with one exception: an UPDATE that changes `details` and nothing else, of
-- an event recorded in audit_redactions (in the same transaction as the erasure).
CREATE OR REPLACE FUNCTION audit_events_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'DELETE' AND OLD.seq < COALESCE(
        (SELECT truncated_before FROM audit_heads WHERE tenant_id = OLD.tenant_id), 0) THEN
        RETURN OLD;
    END IF;
    IF TG_OP = 'UPDATE'
        AND NEW.tenant_id = OLD.tenant_id AND NEW.seq = OLD.seq AND NEW.at = OLD.at
        AND NEW.actor = OLD.actor AND NEW.action = OLD.action AND NEW.outcome = OLD.outcome
        AND NEW.object_type IS NOT DISTINCT FROM OLD.object_type
        AND NEW.object_id IS NOT DISTINCT FROM OLD.object_id
        AND NEW.ip_bidx IS NOT DISTINCT FROM OLD.ip_bidx
        AND NEW.leaf_hash = OLD.leaf_hash
        AND EXISTS (SELECT 1 FROM audit_redactions r
                    WHERE r.tenant_id = OLD.tenant_id AND r.seq = OLD.seq) THEN
        RETURN NEW;
    END IF;
    RAISE EXCEPTION 'audit events are append-only';
END $$;
