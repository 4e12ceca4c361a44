-- The console's product views (issue 25).

-- The note as write-back handed it to the help desk (header, body, footer,
-- feedback links, marker), from writeback.completed v2; null for runs
-- written back before it was recorded.
alter table enhancement_history add column posted_markdown text;

-- Each stage consumer's lag, sampled once a minute by the admin service,
-- so the console can chart lag over a day and a week without Prometheus.
-- Several admin replicas sample the same minute; the first one's row
-- stands. Not tenant data: no RLS, read and written by the admin role.
create table stage_lag_samples (
  consumer     text not null,
  sampled_at   timestamptz not null,
  pending      bigint not null,
  in_flight    bigint not null,
  primary key (consumer, sampled_at)
);
create index stage_lag_samples_at on stage_lag_samples (sampled_at);
grant select, insert, delete on stage_lag_samples to aiagents_admin;
