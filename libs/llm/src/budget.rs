//! A tenant's LLM budget: what its spend in the current period means for
//! the next call ([`decide`], no I/O), and the ledger that holds it under
//! concurrency: each call [`claim`]s its estimated cost before it is made
//! and [`settle`]s its real cost after (migration 0021).

use aia_events::TenantId;
use aia_store::{Client, StoreError, tenant_query_within, tenant_transaction_within};
use chrono::{NaiveDate, Utc};

/// How long any statement of the ledger may run, waiting for the period's
/// row included: every call of a tenant claims on that one row, so a
/// holder that stalls (a connection lost mid-transaction, a lock taken by
/// hand) would otherwise hold every call of the tenant behind it. A claim
/// that times out is an error the caller handles — the rewrite is skipped,
/// the enhancer's delivery retried — and its connection stays usable.
pub const STATEMENT_TIMEOUT: &str = "5s";

/// The first day of the period containing today. Periods are fixed windows
/// of `period_days` counted from 1970-01-01, so they reset on their own.
pub fn period_start(today: NaiveDate, period_days: u32) -> NaiveDate {
    let epoch = NaiveDate::from_ymd_opt(1970, 1, 1).expect("valid date");
    let days = (today - epoch).num_days();
    let period = i64::from(period_days.max(1));
    epoch + chrono::Days::new(u64::try_from(days - days.rem_euclid(period)).unwrap_or(0))
}

/// What a tenant's spend means for its next call.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Decision {
    /// The call would take the spend past the grace share: the ticket gets
    /// the raw context, no model call.
    pub exceeded: bool,
    /// At or past the alert share: an alert is due for the period (sent
    /// once per period, by whichever instance records it first).
    pub alert: bool,
}

/// The tenant's budget as its settings give it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Budget {
    pub budget_usd: f64,
    pub alert_ratio: f64,
    pub grace_ratio: f64,
    pub period_days: u32,
}

impl Budget {
    /// `None` when the tenant has no budget.
    pub fn of(settings: &aia_store::TenantSettings) -> Option<Self> {
        settings.llm_budget_usd.map(|budget_usd| Self {
            budget_usd,
            alert_ratio: settings.llm_budget_alert_ratio,
            grace_ratio: settings.llm_budget_grace_ratio,
            period_days: settings.llm_budget_period_days,
        })
    }

    /// The first day of the current period.
    pub fn period_start(&self) -> NaiveDate {
        period_start(Utc::now().date_naive(), self.period_days)
    }
}

/// Decides, from `spent` this period (settled and reserved), whether a call
/// estimated to cost `estimate` may be made and whether an alert is due.
pub fn decide(budget: Budget, spent: f64, estimate: f64) -> Decision {
    let exceeded = spent + estimate > budget.budget_usd * budget.grace_ratio;
    Decision {
        exceeded,
        // A call refused is always worth an alert, even when the spend is
        // short of the alert share (a budget smaller than one call).
        alert: exceeded || spent >= budget.budget_usd * budget.alert_ratio,
    }
}

/// What a claim on the budget found.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Claimed {
    /// What the period held (settled and reserved) before this claim.
    pub spent: f64,
    pub decision: Decision,
}

/// Claims `estimate` dollars of the tenant's budget for one call
/// (`claim_id`: the run and the purpose). The period's row is locked for
/// the claim, so of a hundred concurrent claims exactly those that fit
/// are granted. A claim already open under `claim_id` (a redelivered
/// ticket) is granted again without reserving twice.
pub async fn claim(
    client: &mut Client,
    tenant: &TenantId,
    claim_id: &str,
    budget: Budget,
    estimate: f64,
) -> Result<Claimed, StoreError> {
    let start = budget.period_start();
    let tx = tenant_transaction_within(client, tenant, STATEMENT_TIMEOUT).await?;
    tx.execute(
        "insert into llm_budget_periods (tenant_id, period_start, spent_usd)
         select $1, $2, coalesce(sum(cost_usd), 0)::float8
           from tenant_daily_stats where tenant_id = $1 and day >= $2
         on conflict do nothing",
        &[&tenant.as_str(), &start],
    )
    .await?;
    let spent: f64 = tx
        .query_one(
            "select spent_usd from llm_budget_periods
              where tenant_id = $1 and period_start = $2 for update",
            &[&tenant.as_str(), &start],
        )
        .await?
        .get(0);
    let open = tx
        .query_opt(
            "select reserved_usd from llm_budget_claims
              where tenant_id = $1 and claim_id = $2 and cost_usd is null and period_start = $3",
            &[&tenant.as_str(), &claim_id, &start],
        )
        .await?;
    if let Some(open) = open {
        let reserved: f64 = open.get(0);
        let spent = spent - reserved;
        tx.commit().await?;
        let decision = decide(budget, spent, 0.0);
        return Ok(Claimed {
            spent,
            decision: Decision {
                exceeded: false,
                ..decision
            },
        });
    }
    let decision = decide(budget, spent, estimate);
    if !decision.exceeded {
        tx.execute(
            "insert into llm_budget_claims (tenant_id, claim_id, period_start, reserved_usd)
             values ($1, $2, $3, $4)
             on conflict (tenant_id, claim_id) do update
               set period_start = excluded.period_start, reserved_usd = excluded.reserved_usd,
                   cost_usd = null, claimed_at = now()",
            &[&tenant.as_str(), &claim_id, &start, &estimate],
        )
        .await?;
        tx.execute(
            "update llm_budget_periods set spent_usd = spent_usd + $3
              where tenant_id = $1 and period_start = $2",
            &[&tenant.as_str(), &start, &estimate],
        )
        .await?;
    }
    tx.commit().await?;
    Ok(Claimed { spent, decision })
}

/// What the period holds now (settled and reserved), without claiming:
/// the ledger's figure, or the projected spend where no call has claimed
/// on the period yet.
pub async fn spent(
    client: &mut Client,
    tenant: &TenantId,
    budget: Budget,
) -> Result<f64, StoreError> {
    let rows = tenant_query_within(
        client,
        tenant,
        STATEMENT_TIMEOUT,
        "select coalesce(
                  (select spent_usd from llm_budget_periods where tenant_id = $1 and period_start = $2),
                  (select coalesce(sum(cost_usd), 0)::float8 from tenant_daily_stats
                    where tenant_id = $1 and day >= $2))",
        &[&tenant.as_str(), &budget.period_start()],
    )
    .await?;
    let row = rows
        .first()
        .ok_or_else(|| StoreError::Corrupt("a sum returned no row".into()))?;
    Ok(row.get(0))
}

/// Settles the claim `claim_id` with one call's cost (0 when no model
/// answered): the first settle of an open claim releases its reservation
/// and books the cost; a later one — a second delivery that found the
/// claim open and called the model too — books its own cost beside it.
/// Each settle is one call made, so each cost counts once.
pub async fn settle(
    client: &mut Client,
    tenant: &TenantId,
    claim_id: &str,
    cost: f64,
) -> Result<(), StoreError> {
    tenant_query_within(
        client,
        tenant,
        STATEMENT_TIMEOUT,
        "with claim as (
           select period_start, case when cost_usd is null then reserved_usd else 0 end as released
             from llm_budget_claims
            where tenant_id = $1 and claim_id = $2
              for update),
         settled as (
           update llm_budget_claims c set cost_usd = coalesce(c.cost_usd, 0) + $3
             from claim
            where c.tenant_id = $1 and c.claim_id = $2
           returning claim.period_start, claim.released)
         update llm_budget_periods p set spent_usd = p.spent_usd - s.released + $3
           from settled s
          where p.tenant_id = $1 and p.period_start = s.period_start",
        &[&tenant.as_str(), &claim_id, &cost],
    )
    .await?;
    Ok(())
}

/// Records that the tenant was alerted for the period, by the call
/// `claim_id`; true when that call is the one alerting — the first to
/// record it, or the same call again on a redelivery of its run, which must
/// publish the alert again (its first publish may be what failed).
pub async fn first_alert(
    client: &mut Client,
    tenant: &TenantId,
    budget: Budget,
    claim_id: &str,
) -> Result<bool, StoreError> {
    let rows = tenant_query_within(
        client,
        tenant,
        STATEMENT_TIMEOUT,
        "with inserted as (
           insert into budget_alerts (tenant_id, period_start, claim_id) values ($1, $2, $3)
           on conflict do nothing returning claim_id)
         select claim_id = $3 from inserted
         union all
         select claim_id is not distinct from $3 from budget_alerts
          where tenant_id = $1 and period_start = $2
            and not exists (select 1 from inserted)",
        &[&tenant.as_str(), &budget.period_start(), &claim_id],
    )
    .await?;
    Ok(rows.first().is_some_and(|row| row.get::<_, bool>(0)))
}

#[cfg(test)]
mod tests {
    use super::*;

    const BUDGET: Budget = Budget {
        budget_usd: 10.0,
        alert_ratio: 0.8,
        grace_ratio: 1.1,
        period_days: 30,
    };

    #[test]
    fn under_the_alert_share_the_model_is_called_and_nobody_is_alerted() {
        assert_eq!(
            decide(BUDGET, 7.99, 0.0),
            Decision {
                exceeded: false,
                alert: false
            }
        );
    }

    #[test]
    fn at_the_alert_share_an_alert_is_due_and_the_model_is_still_called() {
        assert_eq!(
            decide(BUDGET, 8.0, 0.0),
            Decision {
                exceeded: false,
                alert: true
            }
        );
    }

    #[test]
    fn over_budget_within_grace_the_model_is_still_called() {
        assert!(!decide(BUDGET, 11.0, 0.0).exceeded);
    }

    #[test]
    fn past_the_grace_share_the_ticket_gets_the_raw_context_and_an_alert_is_due() {
        assert_eq!(
            decide(BUDGET, 11.01, 0.0),
            Decision {
                exceeded: true,
                alert: true
            }
        );
    }

    #[test]
    fn a_call_that_would_pass_the_grace_share_is_not_made() {
        assert!(!decide(BUDGET, 10.9, 0.1).exceeded);
        assert!(decide(BUDGET, 10.9, 0.11).exceeded);
    }

    #[test]
    fn a_refused_call_is_alerted_even_below_the_alert_share() {
        assert_eq!(
            decide(BUDGET, 1.0, 20.0),
            Decision {
                exceeded: true,
                alert: true
            }
        );
    }

    #[test]
    fn a_tenant_without_a_budget_has_no_decision_to_make() {
        assert_eq!(Budget::of(&aia_store::TenantSettings::default()), None);
    }

    #[test]
    fn periods_are_fixed_windows_that_reset() {
        let day = |y, m, d| NaiveDate::from_ymd_opt(y, m, d).unwrap();
        let start = period_start(day(2026, 11, 25), 30);
        assert!(start <= day(2026, 11, 25) && day(2026, 11, 25) < start + chrono::Days::new(30));
        assert_eq!(period_start(start + chrono::Days::new(29), 30), start);
        assert_eq!(
            period_start(start + chrono::Days::new(30), 30),
            start + chrono::Days::new(30)
        );
        assert_eq!(period_start(day(2026, 11, 25), 1), day(2026, 11, 25));
    }
}
