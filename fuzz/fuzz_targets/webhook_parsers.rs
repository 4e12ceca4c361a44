//! Every webhook parser, on arbitrary bytes: never panics, and anything it
//! accepts satisfies the limits the pipeline relies on.
#![no_main]

use aia_itsm::inbound::{Inbound, MAX_DESCRIPTION_CHARS};
use aia_itsm::{jira, servicedesk};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|body: &[u8]| {
    let now = chrono::Utc::now();
    let _ = servicedesk::webhook::tenant_of(body);
    for parsed in [
        servicedesk::webhook::parse_ticket(body, now),
        servicedesk::webhook::parse_resolved(body),
        jira::webhook::parse(body),
    ] {
        match parsed {
            Ok(Inbound::Received { ticket, .. }) => {
                assert!(ticket.description.chars().count() <= MAX_DESCRIPTION_CHARS);
                assert!(!ticket.description.contains('\0'));
            }
            Ok(Inbound::Resolved { ticket, .. }) => {
                assert!(ticket.description.chars().count() <= MAX_DESCRIPTION_CHARS);
                assert!(!ticket.resolution.contains('\0'));
            }
            Ok(Inbound::Ignored { .. }) | Err(_) => {}
        }
    }
});
