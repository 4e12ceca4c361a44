-- Per-tenant integration secrets (knowledge-base and monitoring tokens),
-- encrypted like every other secret; the non-secret parts live in settings.
alter table tenants add column integrations_enc bytea;
