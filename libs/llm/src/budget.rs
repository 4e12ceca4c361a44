//! A tenant's LLM budget: what its spend in the current period means for
//! the next ticket ([`decide`], no I/O), and the spend itself, from the
//! daily counters the history projector keeps.

use aia_events::TenantId;
use aia_store::{Client, StoreError, tenant_query};
use chrono::{NaiveDate, Utc};

/// The first day of the period containing today. Periods are fixed windows
/// of `period_days` counted from 1970-01-01, so they reset on their own.
pub fn period_start(today: NaiveDate, period_days: u32) -> NaiveDate {
    let epoch = NaiveDate::from_ymd_opt(1970, 1, 1).expect("valid date");
    let days = (today - epoch).num_days();
    let period = i64::from(period_days.max(1));
    epoch + chrono::Days::new(u64::try_from(days - days.rem_euclid(period)).unwrap_or(0))
}

/// What a tenant's spend means for its next ticket.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Decision {
    /// Past the grace share: the ticket gets the raw context, no model call.
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
}

impl Budget {
    /// `None` when the tenant has no budget.
    pub fn of(settings: &aia_store::TenantSettings) -> Option<Self> {
        settings.llm_budget_usd.map(|budget_usd| Self {
            budget_usd,
            alert_ratio: settings.llm_budget_alert_ratio,
            grace_ratio: settings.llm_budget_grace_ratio,
        })
    }
}

/// Decides, from `spent` this period, whether the next ticket may call a
/// model and whether an alert is due.
pub fn decide(budget: Budget, spent: f64) -> Decision {
    Decision {
        exceeded: spent > budget.budget_usd * budget.grace_ratio,
        alert: spent >= budget.budget_usd * budget.alert_ratio,
    }
}

/// Dollars spent since the period began.
pub async fn spent(
    client: &mut Client,
    tenant: &TenantId,
    period_days: u32,
) -> Result<f64, StoreError> {
    let start = period_start(Utc::now().date_naive(), period_days);
    let rows = tenant_query(
        client,
        tenant,
        "select coalesce(sum(cost_usd), 0)::float8 from tenant_daily_stats where tenant_id = $1 and day >= $2",
        &[&tenant.as_str(), &start],
    )
    .await?;
    let row = rows
        .first()
        .ok_or_else(|| StoreError::Corrupt("a sum returned no row".into()))?;
    Ok(row.get(0))
}

/// Records that the tenant was alerted for the period; true the first time
/// (so exactly one instance publishes the alert).
pub async fn first_alert(
    client: &mut Client,
    tenant: &TenantId,
    period_days: u32,
) -> Result<bool, StoreError> {
    let start = period_start(Utc::now().date_naive(), period_days);
    let inserted = tenant_query(
        client,
        tenant,
        "insert into budget_alerts (tenant_id, period_start) values ($1, $2)
         on conflict do nothing returning 1",
        &[&tenant.as_str(), &start],
    )
    .await?
    .len();
    Ok(inserted == 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    const BUDGET: Budget = Budget {
        budget_usd: 10.0,
        alert_ratio: 0.8,
        grace_ratio: 1.1,
    };

    #[test]
    fn under_the_alert_share_the_model_is_called_and_nobody_is_alerted() {
        assert_eq!(
            decide(BUDGET, 7.99),
            Decision {
                exceeded: false,
                alert: false
            }
        );
    }

    #[test]
    fn at_the_alert_share_an_alert_is_due_and_the_model_is_still_called() {
        assert_eq!(
            decide(BUDGET, 8.0),
            Decision {
                exceeded: false,
                alert: true
            }
        );
    }

    #[test]
    fn over_budget_within_grace_the_model_is_still_called() {
        assert!(!decide(BUDGET, 11.0).exceeded);
    }

    #[test]
    fn past_the_grace_share_the_ticket_gets_the_raw_context_and_an_alert_is_due() {
        assert_eq!(
            decide(BUDGET, 11.01),
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
