-- Every help desk and PSA the registry knows (aia_itsm::Itsm).
alter table tenants drop constraint tenants_itsm_kind_check;
alter table tenants add constraint tenants_itsm_kind_check check (itsm_kind in (
  'servicedesk_plus', 'jira', 'zendesk', 'freshservice', 'servicenow',
  'connectwise', 'autotask', 'halopsa'));

-- Where an interrupted history import resumes: each tool pages its own way
-- (a page number, an offset, an opaque cursor, a next-page URL), so the
-- position is the tool's own cursor; `next_index` keeps the count of
-- records read for ServiceDesk Plus's index paging.
alter table import_progress add column cursor text;
