//! Rules about the source tree that no compiler checks, in the spirit of
//! rust-analyzer's `tidy.rs`: who may publish events, who writes the
//! projection, where the environment is read, and a code map in
//! ARCHITECTURE.md that names every crate and route. Each rule fails with
//! the file and line that broke it.

use std::path::{Path, PathBuf};

use regex::Regex;

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("tests/ has a parent")
        .to_path_buf()
}

/// Every Rust file of the workspace below `dir`, relative to the root.
fn rust_files(dir: &str) -> Vec<(String, String)> {
    let mut files = Vec::new();
    let mut stack = vec![root().join(dir)];
    while let Some(dir) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            let name = entry.file_name();
            if path.is_dir() {
                if name != "target" && !name.to_string_lossy().starts_with('.') {
                    stack.push(path);
                }
            } else if path.extension().is_some_and(|ext| ext == "rs") {
                let relative = path
                    .strip_prefix(root())
                    .expect("below the root")
                    .to_string_lossy()
                    .into_owned();
                files.push((relative, std::fs::read_to_string(&path).expect("readable")));
            }
        }
    }
    files.sort();
    files
}

fn workspace_sources() -> Vec<(String, String)> {
    ["libs", "services", "bench", "tests"]
        .iter()
        .flat_map(|dir| rust_files(dir))
        .collect()
}

/// Test code: integration tests, test support crates and `#[cfg(test)]`
/// modules (from their line on, which is where this codebase keeps them).
fn is_test_file(path: &str) -> bool {
    path.starts_with("tests/")
        || path.contains("/tests/")
        || path.starts_with("libs/testkit/")
        || path.starts_with("libs/standins/")
}

/// The lines of `text` outside its `#[cfg(test)]` module.
fn non_test_lines(text: &str) -> impl Iterator<Item = (usize, &str)> {
    text.lines()
        .enumerate()
        .take_while(|(_, line)| line.trim() != "#[cfg(test)]")
        .map(|(idx, line)| (idx + 1, line))
}

/// `path:line: text` for each line of non-test code matching `pattern`
/// in a file `allowed` refuses.
fn offenders(pattern: &Regex, allowed: impl Fn(&str) -> bool) -> Vec<String> {
    workspace_sources()
        .iter()
        .filter(|(path, _)| !is_test_file(path) && !allowed(path))
        .flat_map(|(path, text)| {
            non_test_lines(text)
                .filter(|(_, line)| !line.trim_start().starts_with("//") && pattern.is_match(line))
                .map(|(number, line)| format!("{path}:{number}: {}", line.trim()))
                .collect::<Vec<_>>()
        })
        .collect()
}

#[test]
fn only_the_ingress_the_stage_loop_operator_actions_and_imports_publish_events() {
    let publish = Regex::new(r"\bpublish_event\(").unwrap();
    let allowed = |path: &str| {
        [
            // The definition, and the consumer loop that publishes a
            // stage's outputs under their deterministic message ids.
            "libs/bus/src/",
            // Webhooks and ratings become events here.
            "services/ingress/src/",
            // Operator re-drives, replays and resumes (new ids each time).
            "libs/ops/src/",
            // History imports (content-derived ids).
            "services/aiagents/src/",
            // Benchmarks publish generated streams.
            "bench/src/",
            // Incident events, from the correlator's outbox under
            // `incident:<tenant>:<incident>:v<version>`.
            "services/incident-correlator/src/outbox.rs",
        ]
        .iter()
        .any(|prefix| path.starts_with(prefix))
    };
    let found = offenders(&publish, allowed);
    assert!(
        found.is_empty(),
        "events are published outside the crates allowed to (ARCHITECTURE.md, \"Who may publish\"):\n{}",
        found.join("\n")
    );
}

#[test]
fn only_the_history_projector_writes_projection_tables() {
    let write = Regex::new(
        r"(?i)\b(insert\s+into|update|delete\s+from|truncate(\s+table)?|copy)\s+(enhancement_history|ticket_history|tenant_daily_stats|projection_checkpoints)\b",
    )
    .unwrap();
    // `eval-retrieval` fills its own scratch database, and benchmarks
    // seed theirs (ARCHITECTURE.md names both exceptions).
    let allowed = |path: &str| {
        path.starts_with("services/history-projector/src/")
            || path.starts_with("services/aiagents/src/eval/")
            || path.starts_with("bench/src/")
    };
    let found = offenders(&write, allowed);
    assert!(
        found.is_empty(),
        "a projection table is written outside history-projector:\n{}",
        found.join("\n")
    );
    // The statements themselves may span lines: look at whole files too.
    for (path, text) in workspace_sources() {
        if is_test_file(&path) || allowed(&path) {
            continue;
        }
        let code: String = non_test_lines(&text)
            .map(|(_, line)| line)
            .collect::<Vec<_>>()
            .join(" ");
        assert!(
            !write.is_match(&code),
            "{path} writes a projection table (only history-projector may)"
        );
    }
}

#[test]
fn only_the_incident_correlator_writes_incidents_and_only_the_store_the_window() {
    let incidents = Regex::new(
        r"(?i)\b(insert\s+into|update|delete\s+from|truncate(\s+table)?|copy)\s+(incidents|incident_tickets|incident_outbox)\b",
    )
    .unwrap();
    let found = offenders(&incidents, |path| {
        path.starts_with("services/incident-correlator/src/")
    });
    assert!(
        found.is_empty(),
        "incident tables are written outside incident-correlator:\n{}",
        found.join("\n")
    );
    let window =
        Regex::new(r"(?i)\b(insert\s+into|update|delete\s+from|copy)\s+open_tickets\b").unwrap();
    let found = offenders(&window, |path| {
        path.starts_with("libs/store/src/open_tickets/") || path.starts_with("bench/src/")
    });
    assert!(
        found.is_empty(),
        "open_tickets is written outside aia_store::open_tickets:\n{}",
        found.join("\n")
    );
}

#[test]
fn the_environment_is_read_through_libs_config_only() {
    // OpenTelemetry's own OTEL_* variables are read by the telemetry crate,
    // as the OpenTelemetry specification names them.
    let read = Regex::new(r"\benv::var(_os)?\(|\benv::vars\(").unwrap();
    let found = offenders(&read, |path| {
        path.starts_with("libs/config/") || path == "libs/telemetry/src/lib.rs"
    });
    assert!(
        found.is_empty(),
        "the environment is read outside libs/config:\n{}",
        found.join("\n")
    );
    let ours = Regex::new(r#"env::var(_os)?\(\s*"AI_AGENTS_"#).unwrap();
    let in_telemetry: Vec<String> = rust_files("libs/telemetry/src")
        .into_iter()
        .filter(|(_, text)| ours.is_match(text))
        .map(|(path, _)| path)
        .collect();
    assert!(in_telemetry.is_empty(), "{in_telemetry:?}");
    // The CLIs' flags may name the variable that fills them in (clap's
    // `env = …`); nothing else may.
    let clap_env = Regex::new(r#"\benv\s*=\s*"AI_AGENTS_"#).unwrap();
    let found = offenders(&clap_env, |path| {
        path.starts_with("services/aiagents/src/cli/") || path == "bench/src/main.rs"
    });
    assert!(found.is_empty(), "{}", found.join("\n"));
}

/// The crates of the workspace, as paths from the root.
fn workspace_crates() -> Vec<String> {
    let mut crates = vec!["tests".to_owned(), "bench".to_owned()];
    for group in ["libs", "services"] {
        for entry in std::fs::read_dir(root().join(group)).unwrap().flatten() {
            if entry.path().join("Cargo.toml").exists() {
                crates.push(format!("{group}/{}", entry.file_name().to_string_lossy()));
            }
        }
    }
    crates.sort();
    crates
}

fn architecture() -> String {
    std::fs::read_to_string(root().join("ARCHITECTURE.md")).unwrap()
}

#[test]
fn the_code_map_has_one_entry_per_crate_and_no_other() {
    let map = architecture();
    let entry = Regex::new(r"(?m)^\*\*`([a-z0-9/_-]+)`\*\*").unwrap();
    let entries: Vec<&str> = entry
        .captures_iter(&map)
        .map(|caps| caps.get(1).unwrap().as_str())
        .collect();
    for krate in workspace_crates() {
        let count = entries.iter().filter(|entry| **entry == krate).count();
        assert_eq!(
            count, 1,
            "ARCHITECTURE.md's code map must have exactly one entry **`{krate}`**, found {count}"
        );
    }
    let mut seen = std::collections::HashSet::new();
    for entry in &entries {
        assert!(
            seen.insert(entry),
            "{entry} has two entries in the code map"
        );
        assert!(
            root().join(entry).exists(),
            "the code map names {entry}, which does not exist"
        );
    }
}

#[test]
fn every_route_is_in_the_code_map() {
    let map = architecture();
    let route = Regex::new(r#"\.route\(\s*"([^"]+)""#).unwrap();
    let mut missing = Vec::new();
    for (path, text) in rust_files("services") {
        if is_test_file(&path) {
            continue;
        }
        for caps in route.captures_iter(&text) {
            let route = &caps[1];
            if !map.contains(&format!("`{route}`")) {
                missing.push(format!("{path}: {route}"));
            }
        }
    }
    assert!(
        missing.is_empty(),
        "routes ARCHITECTURE.md does not list (as `route`):\n{}",
        missing.join("\n")
    );
}

#[test]
fn every_entry_point_named_in_the_code_map_exists() {
    let map = architecture();
    let section = map
        .split("## Entry points")
        .nth(1)
        .expect("ARCHITECTURE.md has an \"Entry points\" section");
    let section = section.split("\n## ").next().unwrap_or(section);
    let file = Regex::new(r"`((?:libs|services)/[a-z0-9_/.-]+\.rs)`").unwrap();
    let named: Vec<&str> = file
        .captures_iter(section)
        .map(|caps| caps.get(1).unwrap().as_str())
        .collect();
    assert!(named.len() >= 8, "the entry points name too few files");
    for path in named {
        assert!(root().join(path).exists(), "{path} does not exist");
    }
}

#[test]
fn a_library_without_a_test_harness_has_no_unit_tests() {
    for krate in workspace_crates() {
        let manifest = std::fs::read_to_string(root().join(&krate).join("Cargo.toml")).unwrap();
        let Some(lib) = manifest.split("[lib]").nth(1) else {
            continue;
        };
        let lib = lib.split("\n[").next().unwrap_or(lib);
        // `doctest = false` alone keeps the harness; only a `test = false` line skips it.
        let skips_harness = lib.lines().any(|line| {
            let line: String = line.chars().filter(|c| !c.is_whitespace()).collect();
            line == "test=false"
        });
        if !skips_harness {
            continue;
        }
        for (path, text) in rust_files(&format!("{krate}/src")) {
            assert!(
                !text.contains("#[cfg(test)]") && !text.contains("#[test]"),
                "{path} has unit tests, but {krate} skips its test harness ([lib] test = false)"
            );
        }
    }
}
