-- Which run's call crossed the alert share: the alert it publishes is that
-- run's output, so a redelivery of the run (its publish failed, or it
-- crashed after recording the alert) publishes it again under the same
-- message id instead of finding the period alerted and publishing nothing.
alter table budget_alerts add column claim_id text;
