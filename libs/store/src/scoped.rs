//! Statements scoped to one tenant: row-level security reads the tenant
//! from a transaction-local setting, so every tenant's work runs in a
//! transaction that sets it first.

use aia_events::TenantId;

use crate::{Client, GenericClient, Row, StoreError, ToSql, Transaction};

/// Starts a transaction that sees and writes only `tenant`'s rows.
///
/// The tenant is set with `set_config(…, true)`, so it ends with the
/// transaction and a pooled connection never carries it to another tenant.
pub async fn tenant_transaction<'a>(
    client: &'a mut Client,
    tenant: &TenantId,
) -> Result<Transaction<'a>, StoreError> {
    let tx = client.transaction().await?;
    set_tenant(&tx, tenant.as_str()).await?;
    Ok(tx)
}

/// Points row-level security at `tenant` for the rest of the transaction
/// `client` is in (a projector's batch moves from tenant to tenant).
pub async fn set_tenant(client: &impl GenericClient, tenant: &str) -> Result<(), StoreError> {
    let statement = client.prepare_cached(SET_TENANT).await?;
    client.execute(&statement, &[&tenant]).await?;
    Ok(())
}

/// Runs one statement for `tenant` in a transaction of its own, in one round
/// trip once its statements are prepared on the connection: `BEGIN`, the
/// tenant, the statement and `COMMIT` leave together and their answers come
/// back together, where a [`tenant_transaction`] waits for each in turn.
pub async fn tenant_query(
    client: &mut Client,
    tenant: &TenantId,
    sql: &str,
    params: &[&(dyn ToSql + Sync)],
) -> Result<Vec<Row>, StoreError> {
    let tenant = tenant.as_str();
    one_round_trip(client, SET_TENANT, &[&tenant], sql, params).await
}

/// A [`tenant_query`] whose commit does not wait for the WAL flush
/// (`synchronous_commit = off` for this transaction only): for writes that
/// may be lost in a database crash because something else answers for
/// them then.
pub async fn tenant_query_unflushed(
    client: &mut Client,
    tenant: &TenantId,
    sql: &str,
    params: &[&(dyn ToSql + Sync)],
) -> Result<Vec<Row>, StoreError> {
    let tenant = tenant.as_str();
    one_round_trip(client, SET_TENANT_UNFLUSHED, &[&tenant], sql, params).await
}

/// A [`tenant_transaction`] whose commit does not wait for the WAL flush,
/// for the same kind of writes as [`tenant_query_unflushed`]'s: the tenant
/// and the setting in one statement.
pub async fn tenant_transaction_unflushed<'a>(
    client: &'a mut Client,
    tenant: &TenantId,
) -> Result<Transaction<'a>, StoreError> {
    transaction_with(client, SET_TENANT_UNFLUSHED, &[&tenant.as_str()]).await
}

/// A [`tenant_transaction`] whose every statement ends after
/// `statement_timeout` (waiting for a lock included), set with the tenant
/// in one statement: for the short statements that lock a row every call
/// of a tenant needs (the LLM budget's period), where one stuck holder
/// would otherwise hold every call behind it, and an error the caller
/// handles is better than a wait without end. The server ends the
/// statement, so the connection goes back to its pool usable, as it
/// would not when a client-side timeout dropped the request mid-way.
pub async fn tenant_transaction_within<'a>(
    client: &'a mut Client,
    tenant: &TenantId,
    statement_timeout: &str,
) -> Result<Transaction<'a>, StoreError> {
    transaction_with(
        client,
        SET_TENANT_WITHIN,
        &[&tenant.as_str(), &statement_timeout],
    )
    .await
}

/// A transaction begun with its `settings` (the tenant among them) applied
/// in one statement.
async fn transaction_with<'a>(
    client: &'a mut Client,
    settings: &str,
    params: &[&(dyn ToSql + Sync)],
) -> Result<Transaction<'a>, StoreError> {
    let tx = client.transaction().await?;
    let statement = tx.prepare_cached(settings).await?;
    tx.execute(&statement, params).await?;
    Ok(tx)
}

/// A [`tenant_query`] bounded as [`tenant_transaction_within`]'s statements
/// are, in one round trip.
pub async fn tenant_query_within(
    client: &mut Client,
    tenant: &TenantId,
    statement_timeout: &str,
    sql: &str,
    params: &[&(dyn ToSql + Sync)],
) -> Result<Vec<Row>, StoreError> {
    let tenant = tenant.as_str();
    one_round_trip(
        client,
        SET_TENANT_WITHIN,
        &[&tenant, &statement_timeout],
        sql,
        params,
    )
    .await
}

/// A [`tenant_query`] for full-text searches, which also bounds the
/// statement's time and plans it for its own lexemes (`plan_cache_mode =
/// force_custom_plan`): statements are prepared once per connection, and a
/// generic plan, blind to which lexemes and how common they are, ranked ten
/// times slower (measured: 10.2 ms against 0.28). The settings end with the
/// transaction.
pub async fn search_query(
    client: &mut Client,
    tenant: &TenantId,
    statement_timeout: &str,
    sql: &str,
    params: &[&(dyn ToSql + Sync)],
) -> Result<Vec<Row>, StoreError> {
    let settings =
        "select set_config('app.tenant_id', $1, true), set_config('statement_timeout', $2, true),
                           set_config('plan_cache_mode', 'force_custom_plan', true)";
    let tenant = tenant.as_str();
    one_round_trip(
        client,
        settings,
        &[&tenant, &statement_timeout],
        sql,
        params,
    )
    .await
}

const SET_TENANT: &str = "select set_config('app.tenant_id', $1, true)";
const SET_TENANT_WITHIN: &str =
    "select set_config('app.tenant_id', $1, true), set_config('statement_timeout', $2, true)";
const SET_TENANT_UNFLUSHED: &str =
    "select set_config('app.tenant_id', $1, true), set_config('synchronous_commit', 'off', true)";

/// `BEGIN`, the transaction's settings, the statement and `COMMIT`.
///
/// The client is borrowed mutably, as for a [`Transaction`], though only
/// shared access is needed: a client shared between tasks would interleave
/// another task's statements into this transaction.
async fn one_round_trip(
    client: &mut Client,
    settings: &str,
    settings_params: &[&(dyn ToSql + Sync)],
    sql: &str,
    params: &[&(dyn ToSql + Sync)],
) -> Result<Vec<Row>, StoreError> {
    let (settings, statement) =
        tokio::try_join!(client.prepare_cached(settings), client.prepare_cached(sql))?;
    // Each request is sent when its future is first polled, and `biased`
    // polls them in this order; `join!` (not `try_join!`) polls every one
    // even when another fails at once (parameters that do not encode, say).
    // So the first poll sends all four, and nothing leaves the connection
    // inside a transaction: the server gets the COMMIT whatever happens to
    // this future after that poll, and answers it with a rollback if the
    // statement failed. A caller that drops this future after its first poll
    // (a timeout) must take the statement as possibly committed. The
    // settings' parameters are text, which always encodes.
    let client = &*client;
    let (begin, set, rows, commit) = tokio::join!(
        biased;
        client.batch_execute("begin"),
        client.execute(&settings, settings_params),
        client.query(&statement, params),
        client.batch_execute("commit"),
    );
    begin?;
    set?;
    let rows = rows?;
    commit?;
    Ok(rows)
}
