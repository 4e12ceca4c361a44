//! What an MSP engineer does in the customer's tool once its tenant exists:
//! where the webhook points, how it authenticates, which events it sends,
//! and what the API credentials need. Printed by `aiagents tenant add`,
//! returned by the admin API and shown by the console beside the secret;
//! `docs/help-desks.md` says the same at length.

use aia_events::ItsmKind;

/// The webhook URL(s) of a tenant on `kind`, by name.
pub fn webhook_urls(
    public_url: &str,
    tenant_id: &str,
    kind: ItsmKind,
) -> Vec<(&'static str, String)> {
    let base = public_url.trim_end_matches('/');
    match kind {
        ItsmKind::ServicedeskPlus => vec![
            ("servicedesk", format!("{base}/webhook/servicedesk")),
            (
                "servicedesk_resolved",
                format!("{base}/webhook/servicedesk/resolved-ticket"),
            ),
        ],
        other => vec![(
            other.as_str(),
            format!("{base}/webhook/{}/{tenant_id}", path_segment(other)),
        )],
    }
}

fn path_segment(kind: ItsmKind) -> &'static str {
    match kind {
        ItsmKind::ServicedeskPlus => "servicedesk",
        other => other.as_str(),
    }
}

/// The setup steps for a tenant on `kind`, its webhook at `url`.
pub fn steps(kind: ItsmKind, tenant_id: &str, url: &str) -> String {
    let body = |event: &str, id: &str| format!(r#"{{"event": "{event}", "ticket_id": {id}}}"#);
    match kind {
        ItsmKind::ServicedeskPlus => format!(
            "In ServiceDesk Plus (Admin → Automation → Webhooks): a webhook to {url}, method POST, \
             JSON body {{\"event\": \"ticket_created\", \"tenant_id\": \"{tenant_id}\", \"ticket_id\": \"$RequestId\", \
             \"subject\": \"$Subject\", \"description\": \"$Description\", \"priority\": \"$Priority\", \"created_at\": \"<ISO time>\"}}; \
             sign it in a custom function with the secret (X-ServiceDesk-Signature), or allow the secret unsigned \
             in the tenant's settings. Fire it from a business rule on \"Request created\". API key: a technician's \
             (authtoken) with note rights on requests."
        ),
        ItsmKind::Jira => format!(
            "In Jira (System → WebHooks): a webhook to {url} with the secret as its secret (X-Hub-Signature), \
             events Issue created and Issue updated, JQL limited to the service project. API: an account's e-mail \
             and API token with permission to comment internally."
        ),
        ItsmKind::Zendesk => format!(
            "In Zendesk (Admin Center → Apps and integrations → Webhooks): a webhook to {url}, method POST, \
             JSON, connected to triggers; copy its signing secret (Reveal secret) into the tenant's credentials as \
             \"webhook_signing_secret\". Triggers: \"Ticket is Created\" → notify the webhook with {}; \
             \"Status changed to Solved\" → {}. API: an agent's e-mail and API token \
             (Admin Center → Apps and integrations → Zendesk API).",
            body("ticket.created", "\"{{ticket.id}}\""),
            body("ticket.solved", "\"{{ticket.id}}\"")
        ),
        ItsmKind::Freshservice => format!(
            "In Freshservice (Admin → Workflow Automator): a ticket workflow \"Ticket is Raised\" with the action \
             Trigger Webhook: POST {url}, encoding JSON, authentication Basic with any user name and the secret as \
             password (or a custom header X-Webhook-Secret: <secret>), content (Advanced) {}; a second workflow on \
             \"Status is changed to Resolved or Closed\" with {}. API: an agent's API key (Profile settings → Your API key).",
            body("created", "{{ticket.id_numeric}}"),
            body("resolved", "{{ticket.id_numeric}}")
        ),
        ItsmKind::Servicenow => format!(
            "In ServiceNow: an async business rule on Incident, after insert and update, with the script in \
             docs/help-desks.md, posting to {url} with Basic auth (any user name, the secret as password) or the \
             header X-Webhook-Secret; it sends \"created\" on insert and \"resolved\" when the state changes to \
             Resolved or Closed. API: a user with the itil role (work notes on incidents) and, for duplicate checks, \
             read on sys_journal_field."
        ),
        ItsmKind::Connectwise => format!(
            "In ConnectWise PSA: as the API member, POST /system/callbacks {{\"url\": \"{url}?recordId=\", \
             \"objectId\": 1, \"type\": \"ticket\", \"level\": \"owner\", \"description\": \"AI Agents\", \
             \"inactiveFlag\": false}} (or level \"board\" with the board's id). Callbacks are verified with the key \
             their key_url serves, from your own site only. API: an API member (System → Members → API Members) with \
             Service Desk → Service Tickets inquire and add/edit notes, its public and private keys, and your \
             integration's clientId."
        ),
        ItsmKind::Autotask => format!(
            "In Autotask (REST API, as the API user): POST /V1.0/TicketWebhooks {{\"Name\": \"AI Agents\", \
             \"WebhookUrl\": \"{url}\", \"DeactivationUrl\": \"{url}\", \"SecretKey\": \"<the secret>\", \
             \"IsActive\": true, \"IsSubscribedToCreateEvents\": true, \"IsSubscribedToUpdateEvents\": true, \
             \"SendThresholdExceededNotification\": true}}, then its Fields: Status as a subscribed field (a change \
             to Complete sends the resolution). Callouts are signed with the secret (X-Hook-Signature). API: an API \
             user (API-only security level) with ticket and ticket-note read/add, and the integration's tracking \
             identifier."
        ),
        ItsmKind::Halopsa => format!(
            "In HaloPSA (Configuration → Integrations → Webhooks): a webhook to {url}, JSON, authentication Basic \
             (any user name, the secret as password), batching off, for the events \"New Ticket Logged\" and \
             \"Ticket Closed\". API: an application (Configuration → Integrations → HaloPSA API) with client \
             credentials, permission to read tickets and add actions; the private outcome (default \"Private Note\") \
             in the credentials as \"private_outcome\" if yours differs."
        ),
    }
}

/// The credentials a tool takes, as JSON with placeholders.
pub fn credentials_shape(kind: ItsmKind) -> &'static str {
    match kind {
        ItsmKind::ServicedeskPlus => {
            r#"{"authtoken": "…"} (on-prem) or {"client_id", "client_secret", "refresh_token", "accounts_url"} (Cloud)"#
        }
        ItsmKind::Jira => r#"{"email": "…", "api_token": "…"} or {"bearer": "…"}"#,
        ItsmKind::Zendesk => r#"{"email": "…", "api_token": "…", "webhook_signing_secret": "…"}"#,
        ItsmKind::Freshservice => r#"{"api_key": "…"}"#,
        ItsmKind::Servicenow => {
            r#"{"username": "…", "password": "…"} (add "client_id", "client_secret" for OAuth)"#
        }
        ItsmKind::Connectwise => {
            r#"{"company_id": "…", "public_key": "…", "private_key": "…", "client_id": "…"}"#
        }
        ItsmKind::Autotask => r#"{"username": "…", "secret": "…", "integration_code": "…"}"#,
        ItsmKind::Halopsa => r#"{"client_id": "…", "client_secret": "…", "tenant": "…"}"#,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_tool_has_its_webhook_url_steps_and_credentials() {
        for kind in ItsmKind::ALL {
            let urls = webhook_urls("https://hooks.example.com/", "acme", kind);
            assert!(!urls.is_empty());
            for (_, url) in &urls {
                assert!(
                    url.starts_with("https://hooks.example.com/webhook/"),
                    "{url}"
                );
                let steps = steps(kind, "acme", url);
                assert!(steps.contains(url.as_str()), "{kind:?}: {steps}");
            }
            assert!(credentials_shape(kind).starts_with('{'));
        }
        assert_eq!(
            webhook_urls("https://h", "acme", ItsmKind::Freshservice),
            [(
                "freshservice",
                "https://h/webhook/freshservice/acme".to_owned()
            )]
        );
    }
}
