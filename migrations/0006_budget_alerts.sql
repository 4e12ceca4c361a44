-- One budget alert per tenant and period: the llm-enhancer records here the
-- periods it has alerted for, so every instance alerts once.
create table budget_alerts (
  tenant_id    text not null,
  period_start date not null,
  alerted_at   timestamptz not null default now(),
  primary key (tenant_id, period_start)
);
select secure_projection_table('budget_alerts', false);
