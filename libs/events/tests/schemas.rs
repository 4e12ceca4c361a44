//! The Rust event types and the JSON Schemas in `schemas/` describe the same
//! contract: every serialised example validates against the schema of its
//! type and version, every schema has examples, and the schemas are strict
//! enough that a type change without a schema change is caught.

use std::collections::BTreeSet;
use std::path::PathBuf;

use aia_events::{EVENT_TYPES, Event, examples};
use serde_json::Value;

fn schema_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../schemas")
}

fn validator(event_type: &str, version: u64) -> jsonschema::Validator {
    let path = schema_dir().join(format!("{event_type}.v{version}.json"));
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|err| panic!("schema {} is missing: {err}", path.display()));
    let schema: Value = serde_json::from_str(&text).expect("schema is JSON");
    jsonschema::options()
        .should_validate_formats(true)
        .build(&schema)
        .unwrap_or_else(|err| panic!("schema {} is invalid: {err}", path.display()))
}

fn validate(value: &Value) -> Result<(), String> {
    let event_type = value["event_type"].as_str().expect("event_type");
    let version = value["schema_version"].as_u64().expect("schema_version");
    let errors: Vec<String> = validator(event_type, version)
        .iter_errors(value)
        .map(|err| format!("{} at {}", err, err.instance_path()))
        .collect();
    if errors.is_empty() {
        Ok(())
    } else {
        Err(errors.join("; "))
    }
}

#[test]
fn every_serialised_example_validates_against_its_schema() {
    for event in examples::all() {
        let value: Value = serde_json::from_slice(&event.to_json()).unwrap();
        if let Err(errors) = validate(&value) {
            panic!("{} does not match its schema: {errors}", event.event_type());
        }
    }
}

#[test]
fn every_event_type_has_a_schema_and_examples_and_no_schema_is_orphaned() {
    let example_types: BTreeSet<&str> = examples::all().iter().map(Event::event_type).collect();
    let known: BTreeSet<&str> = EVENT_TYPES.iter().map(|(name, _)| *name).collect();
    assert_eq!(example_types, known, "every event type needs an example");

    let files: BTreeSet<String> = std::fs::read_dir(schema_dir())
        .unwrap()
        .map(|entry| entry.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|name| name.ends_with(".json"))
        .collect();
    let expected: BTreeSet<String> = EVENT_TYPES
        .iter()
        .chain(aia_events::envelope::OLDER_VERSIONS)
        .map(|(name, version)| format!("{name}.v{version}.json"))
        .collect();
    assert_eq!(files, expected, "schemas/ and EVENT_TYPES disagree");
}

#[test]
fn examples_round_trip_through_json_unchanged() {
    for event in examples::all() {
        let decoded = Event::from_json(&event.to_json()).unwrap();
        assert_eq!(decoded, event);
    }
}

/// The schemas must be strict: an added, removed or retyped field in the Rust
/// types has to fail validation, or the agreement test above proves nothing.
#[test]
fn schemas_reject_added_missing_and_retyped_payload_fields() {
    for event in examples::all() {
        let original: Value = serde_json::from_slice(&event.to_json()).unwrap();
        let payload = original["payload"].as_object().unwrap().clone();

        let mut added = original.clone();
        added["payload"]["field_the_schema_does_not_know"] = Value::Bool(true);
        assert!(
            validate(&added).is_err(),
            "{}: extra field accepted",
            event.event_type()
        );

        for key in payload.keys() {
            let mut missing = original.clone();
            missing["payload"].as_object_mut().unwrap().remove(key);
            assert!(
                validate(&missing).is_err(),
                "{}: missing {key} accepted",
                event.event_type()
            );

            let mut retyped = original.clone();
            retyped["payload"][key] = serde_json::json!({"unexpected": "object"});
            assert!(
                validate(&retyped).is_err(),
                "{}: retyped {key} accepted",
                event.event_type()
            );
        }
    }
}

#[test]
fn envelope_violations_are_rejected_by_schema_and_decoder_alike() {
    let event = &examples::all()[0];
    let original: Value = serde_json::from_slice(&event.to_json()).unwrap();
    let cases = [
        ("tenant_id", serde_json::json!("Acme.Corp")),
        ("occurred_at", serde_json::json!("2025-11-24 16:00:00")),
        ("event_id", serde_json::json!("not-a-uuid")),
    ];
    for (field, bad) in cases {
        let mut value = original.clone();
        value[field] = bad;
        assert!(validate(&value).is_err(), "schema accepted bad {field}");
        let bytes = serde_json::to_vec(&value).unwrap();
        assert!(
            Event::from_json(&bytes).is_err(),
            "decoder accepted bad {field}"
        );
    }
}

#[test]
fn unknown_event_types_and_versions_are_refused_by_the_decoder() {
    let event = &examples::all()[0];
    let mut value: Value = serde_json::from_slice(&event.to_json()).unwrap();
    value["schema_version"] = serde_json::json!(99);
    let err = Event::from_json(&serde_json::to_vec(&value).unwrap()).unwrap_err();
    assert!(err.to_string().contains("unknown event type"), "{err}");
}

/// `event` as version 1 of its type wrote it (without `added`, a payload
/// field v2 brought), checked against the v1 schema, then read by today's
/// decoder; today's code writes v2.
fn read_as_v1(event: &Event, added: &str) -> Event {
    let written: Value = serde_json::from_slice(&event.to_json()).unwrap();
    assert_eq!(written["schema_version"], 2, "today's code writes v2");
    assert!(written["payload"].get(added).is_some(), "v2 writes {added}");
    let mut v1 = written;
    v1["schema_version"] = serde_json::json!(1);
    v1["payload"].as_object_mut().unwrap().remove(added);
    assert!(
        validate(&v1).is_ok(),
        "the v1 sample must match the v1 schema"
    );
    Event::from_json(&serde_json::to_vec(&v1).unwrap()).unwrap()
}

/// `event` as an older `version` of its type wrote it (without the payload
/// fields later versions brought), checked against that version's schema,
/// then read by today's decoder.
fn read_as_older(event: &Event, version: u64, removed: &[&str]) -> Event {
    let mut older: Value = serde_json::from_slice(&event.to_json()).unwrap();
    older["schema_version"] = serde_json::json!(version);
    for field in removed {
        assert!(
            older["payload"]
                .as_object_mut()
                .unwrap()
                .remove(*field)
                .is_some(),
            "today's version writes {field}"
        );
    }
    assert!(
        validate(&older).is_ok(),
        "the v{version} sample must match the v{version} schema"
    );
    Event::from_json(&serde_json::to_vec(&older).unwrap()).unwrap()
}

/// An event written by an older version still reads, upcast to today's type.
#[test]
fn older_enhancement_generated_events_upcast_to_v3() {
    let event = examples::all()
        .into_iter()
        .find(|event| event.event_type() == "enhancement.generated")
        .unwrap();
    let written: Value = serde_json::from_slice(&event.to_json()).unwrap();
    assert_eq!(written["schema_version"], 3, "today's code writes v3");
    let aia_events::Payload::EnhancementGenerated(v2) =
        read_as_older(&event, 2, &["note_language"]).payload
    else {
        panic!()
    };
    assert_eq!(v2.note_language, None);
    let aia_events::Payload::EnhancementGenerated(v1) =
        read_as_older(&event, 1, &["note_language", "budget_exceeded"]).payload
    else {
        panic!()
    };
    assert!(!v1.budget_exceeded);
    assert_eq!(v1.note_language, None);
}

/// A write-back recorded before it kept the posted note still reads, with
/// no posted note.
#[test]
fn writeback_completed_v1_events_upcast_to_v2() {
    let event = examples::all()
        .into_iter()
        .find(|event| {
            matches!(&event.payload, aia_events::Payload::WritebackCompleted(done) if done.posted_markdown.is_some())
        })
        .unwrap();
    let aia_events::Payload::WritebackCompleted(payload) =
        read_as_v1(&event, "posted_markdown").payload
    else {
        panic!()
    };
    assert_eq!(payload.posted_markdown, None);
}

/// A resolved ticket published before the edge decided its language still
/// reads, with no language (the projector then detects it from the words).
#[test]
fn ticket_resolved_v1_events_upcast_to_v2() {
    let event = examples::all()
        .into_iter()
        .find(|event| {
            matches!(&event.payload, aia_events::Payload::TicketResolved(resolved) if resolved.language.is_some())
        })
        .unwrap();
    let aia_events::Payload::TicketResolved(payload) = read_as_v1(&event, "language").payload
    else {
        panic!()
    };
    assert_eq!(payload.language, None);
}

/// A context gathered before similar tickets said why they matched still
/// reads, with `matched_by` unknown.
#[test]
fn older_context_gathered_events_upcast_to_v5() {
    let event = examples::all()
        .into_iter()
        .find(|event| {
            matches!(&event.payload, aia_events::Payload::ContextGathered(context)
                if !context.similar_tickets.is_empty() && context.query_rewrite.is_some()
                    && !context.related_open.is_empty() && context.language.is_some())
        })
        .unwrap();
    let written: Value = serde_json::from_slice(&event.to_json()).unwrap();
    assert_eq!(written["schema_version"], 5, "today's code writes v5");
    assert_eq!(written["payload"]["language"]["language"], "en");

    // v4: no language; it reads as none (the ticket was read in English).
    let mut v4 = written.clone();
    v4["schema_version"] = serde_json::json!(4);
    v4["payload"].as_object_mut().unwrap().remove("language");
    assert!(
        validate(&v4).is_ok(),
        "the v4 sample must match the v4 schema"
    );
    let decoded = Event::from_json(&serde_json::to_vec(&v4).unwrap()).unwrap();
    let aia_events::Payload::ContextGathered(payload) = decoded.payload else {
        panic!()
    };
    assert_eq!(payload.language, None);
    let written = v4;

    // v3: no related_open; it reads as none.
    let mut v3 = written.clone();
    v3["schema_version"] = serde_json::json!(3);
    v3["payload"]
        .as_object_mut()
        .unwrap()
        .remove("related_open");
    assert!(
        validate(&v3).is_ok(),
        "the v3 sample must match the v3 schema"
    );
    let decoded = Event::from_json(&serde_json::to_vec(&v3).unwrap()).unwrap();
    let aia_events::Payload::ContextGathered(payload) = decoded.payload else {
        panic!()
    };
    assert!(payload.related_open.is_empty());
    let mut written = written;
    written["payload"]
        .as_object_mut()
        .unwrap()
        .remove("related_open");
    assert_eq!(
        written["payload"]["similar_tickets"][0]["matched_by"],
        "both"
    );
    assert!(written["payload"]["query_rewrite"]["terms"].is_string());

    // v2: no query_rewrite.
    let mut v2 = written.clone();
    v2["schema_version"] = serde_json::json!(2);
    v2["payload"]
        .as_object_mut()
        .unwrap()
        .remove("query_rewrite");
    assert!(
        validate(&v2).is_ok(),
        "the v2 sample must match the v2 schema"
    );
    let decoded = Event::from_json(&serde_json::to_vec(&v2).unwrap()).unwrap();
    let aia_events::Payload::ContextGathered(payload) = decoded.payload else {
        panic!()
    };
    assert_eq!(payload.query_rewrite, None);
    assert_eq!(
        payload.similar_tickets[0].matched_by,
        Some(aia_events::MatchedBy::Both)
    );

    // v1: nor why a ticket matched.
    let mut v1 = v2;
    v1["schema_version"] = serde_json::json!(1);
    for ticket in v1["payload"]["similar_tickets"].as_array_mut().unwrap() {
        ticket.as_object_mut().unwrap().remove("matched_by");
    }
    assert!(
        validate(&v1).is_ok(),
        "the v1 sample must match the v1 schema"
    );
    let decoded = Event::from_json(&serde_json::to_vec(&v1).unwrap()).unwrap();
    let aia_events::Payload::ContextGathered(payload) = decoded.payload else {
        panic!()
    };
    assert_eq!(payload.similar_tickets[0].matched_by, None);
    assert_eq!(payload.query_rewrite, None);
}
