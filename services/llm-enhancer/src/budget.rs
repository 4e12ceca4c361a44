//! A tenant's LLM spend in the current budget period, from the daily
//! counters the history projector keeps.

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
