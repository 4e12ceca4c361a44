//! Every webhook parser of every help desk and PSA, on arbitrary bytes:
//! never panics, and anything it accepts satisfies the limits the pipeline
//! relies on. The ConnectWise and Autotask signature checks and the
//! ConnectWise key-URL reader are fuzzed alongside: a signature is only
//! valid for the body it was made for.
#![no_main]

use aia_events::ItsmKind;
use aia_itsm::inbound::{Inbound, MAX_DESCRIPTION_CHARS};
use aia_itsm::{Itsm, autotask, connectwise, servicedesk};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|body: &[u8]| {
    let now = chrono::Utc::now();
    let _ = servicedesk::webhook::tenant_of(body);
    let mut parsed = vec![servicedesk::webhook::parse_resolved(body)];
    parsed.extend(ItsmKind::ALL.iter().map(|kind| Itsm::parse_webhook(*kind, body, now)));
    for parsed in parsed {
        match parsed {
            Ok(Inbound::Received { ticket, .. }) => {
                assert!(ticket.description.chars().count() <= MAX_DESCRIPTION_CHARS);
                assert!(!ticket.description.contains('\0'));
            }
            Ok(Inbound::Resolved { ticket, .. }) => {
                assert!(ticket.description.chars().count() <= MAX_DESCRIPTION_CHARS);
                assert!(!ticket.resolution.contains('\0'));
            }
            Ok(Inbound::Mention { ticket_id, .. }) => assert!(!ticket_id.as_str().is_empty()),
            Ok(Inbound::Ignored { .. }) | Err(_) => {}
        }
    }
    let _ = connectwise::webhook::key_url(body);
    let _ = connectwise::webhook::signing_key(body);
    let signature = connectwise::webhook::signature("fuzz-key", body);
    assert!(connectwise::webhook::verify("fuzz-key", body, &signature));
    assert!(!connectwise::webhook::verify("other-key", body, &signature));
    let header = String::from_utf8_lossy(body);
    let _ = autotask::webhook::verify("fuzz-key", body, &header);
    let signed = autotask::webhook::signature("fuzz-key", body);
    assert!(autotask::webhook::verify("fuzz-key", body, &signed));
    assert!(!autotask::webhook::verify("other-key", body, &signed));
});
