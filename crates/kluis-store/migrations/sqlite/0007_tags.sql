-- Tags: a tenant's catalogue of labels, and which records carry which.
-- Lockstep with ../postgres/0007_tags.sql.
-- A tag name may say something about a person ("VIP", "klaagt vaak"), so it is sealed; its
-- blind index keeps names unique per tenant without decrypting the catalogue.
CREATE TABLE crm_tags (
    tenant_id  BLOB NOT NULL REFERENCES tenants (id),
    id         BLOB NOT NULL,
    name       BLOB NOT NULL,
    name_bidx  BLOB NOT NULL,
    color      TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL,
    deleted_at INTEGER,
    PRIMARY KEY (tenant_id, id)
) STRICT;
CREATE UNIQUE INDEX crm_tags_name ON crm_tags (tenant_id, name_bidx);

CREATE TABLE crm_record_tags (
    tenant_id BLOB NOT NULL,
    record_id BLOB NOT NULL,
    tag_id    BLOB NOT NULL,
    PRIMARY KEY (tenant_id, record_id, tag_id)
) STRICT;
CREATE INDEX crm_record_tags_tag ON crm_record_tags (tenant_id, tag_id);
