-- Per-organisation IP allowlist (issue 18): a JSON array of CIDR blocks; NULL or empty: any
-- address. Checked at sign-in, on every session request and every API-key request.
ALTER TABLE tenant_settings ADD COLUMN ip_allowlist TEXT;
