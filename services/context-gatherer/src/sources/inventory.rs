//! The tenant's inventory entries for the hosts and addresses a ticket
//! mentions. An address matches an entry with that address or a subnet
//! entry that contains it; a name matches a host name or its first label,
//! and a fully qualified name in the ticket matches an entry kept by its
//! short name (`fs01.corp.local` finds `FS01`).

use std::net::IpAddr;

use aia_events::{SystemInfo, TenantId};
use aia_store::{Client, tenant_query};

use super::SourceError;
use crate::extract::Mentions;

pub async fn lookup(
    client: &mut Client,
    tenant: &TenantId,
    mentions: &Mentions,
) -> Result<Vec<SystemInfo>, SourceError> {
    if mentions.addresses.is_empty() && mentions.hostnames.is_empty() {
        return Ok(vec![]);
    }
    let addresses: Vec<String> = mentions
        .addresses
        .iter()
        .map(|(_, address)| address.to_string())
        .collect();
    let rows = tenant_query(
        client,
        tenant,
        "select host(address) || case when masklen(address) < (case family(address) when 4 then 32 else 128 end)
                                          then '/' || masklen(address) else '' end,
                    hostname, role, client, location,
                    (select a from unnest($2::text[]) a where address >>= a::inet limit 1) as matched_address,
                    (select n from unnest($3::text[]) n
                      where lower(hostname) = n or split_part(lower(hostname), '.', 1) = n
                         or (strpos(hostname, '.') = 0 and lower(hostname) = split_part(n, '.', 1))
                      limit 1) as matched_name
               from system_inventory
              where tenant_id = $1
                and (address >>= any($2::text[]::inet[])
                     or lower(hostname) = any($3)
                     or split_part(lower(hostname), '.', 1) = any($3)
                     or (strpos(hostname, '.') = 0
                         and lower(hostname) = any(select split_part(n, '.', 1) from unnest($3::text[]) n)))
              order by masklen(address) desc nulls last, hostname
              limit 20",
        &[&tenant.as_str(), &addresses, &mentions.hostnames],
    )
    .await?;
    Ok(rows
        .iter()
        .map(|row| {
            let matched_address: Option<String> = row.get(5);
            let matched_name: Option<String> = row.get(6);
            let matched = matched_address
                .and_then(|address| {
                    let parsed: IpAddr = address.parse().ok()?;
                    mentions
                        .addresses
                        .iter()
                        .find(|(_, a)| *a == parsed)
                        .map(|(written, _)| written.clone())
                })
                .or(matched_name)
                .unwrap_or_default();
            SystemInfo {
                matched,
                address: row.get(0),
                hostname: row.get(1),
                role: row.get(2),
                client: row.get(3),
                location: row.get(4),
            }
        })
        .collect())
}
