//! The service refuses to start without the application key, and says why.

use std::process::Command;

#[test]
fn refuses_to_start_without_the_secret_keys() {
    let output = Command::new(env!("CARGO_BIN_EXE_writeback"))
        .env_clear()
        .env("AI_AGENTS_NATS_URL", "nats://127.0.0.1:1")
        .env(
            "AI_AGENTS_DATABASE_URL",
            "postgres://nobody@127.0.0.1:1/none",
        )
        .env(
            "AI_AGENTS_ADMIN_DATABASE_URL",
            "postgres://nobody@127.0.0.1:1/none",
        )
        .env("AI_AGENTS_ADMIN_TOKEN", "a-token-long-enough-for-the-check")
        .output()
        .expect("run the service");
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("AI_AGENTS_SECRET_KEYS"), "{stderr}");
}

#[test]
fn refuses_a_malformed_key() {
    let output = Command::new(env!("CARGO_BIN_EXE_writeback"))
        .env_clear()
        .env("AI_AGENTS_NATS_URL", "nats://127.0.0.1:1")
        .env(
            "AI_AGENTS_DATABASE_URL",
            "postgres://nobody@127.0.0.1:1/none",
        )
        .env(
            "AI_AGENTS_ADMIN_DATABASE_URL",
            "postgres://nobody@127.0.0.1:1/none",
        )
        .env("AI_AGENTS_ADMIN_TOKEN", "a-token-long-enough-for-the-check")
        .env("AI_AGENTS_SECRET_KEYS", "k1:too-short")
        .output()
        .expect("run the service");
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("AI_AGENTS_SECRET_KEYS"), "{stderr}");
    assert!(
        !stderr.contains("too-short"),
        "the key value must not be echoed: {stderr}"
    );
}
