//! The service refuses to start without the application key, and says why.

use aia_testkit::start_without_servers;

#[test]
fn refuses_to_start_without_the_secret_keys() {
    let stderr = start_without_servers(env!("CARGO_BIN_EXE_writeback"), None);
    assert!(stderr.contains("AI_AGENTS_SECRET_KEYS"), "{stderr}");
}

#[test]
fn refuses_a_malformed_key_without_echoing_it() {
    let stderr = start_without_servers(env!("CARGO_BIN_EXE_writeback"), Some("k1:too-short"));
    assert!(stderr.contains("AI_AGENTS_SECRET_KEYS"), "{stderr}");
    assert!(!stderr.contains("too-short"), "{stderr}");
}
