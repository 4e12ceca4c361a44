//! Partial changes of a tenant's settings and integrations, as a JSON
//! merge patch (RFC 7396): a member given replaces that member, an object
//! is merged member by member, `null` removes (resets to the default);
//! whatever is not named stays as it was.

use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;

use super::AdminError;

/// Applies `patch` to `target` as RFC 7396 says.
pub fn merge_patch(target: &mut Value, patch: &Value) {
    let Value::Object(members) = patch else {
        *target = patch.clone();
        return;
    };
    if !target.is_object() {
        *target = Value::Object(serde_json::Map::new());
    }
    let object = target.as_object_mut().expect("an object");
    for (name, value) in members {
        if value.is_null() {
            object.remove(name);
        } else {
            merge_patch(object.entry(name.clone()).or_insert(Value::Null), value);
        }
    }
}

/// The merge patch that turns `before` into `after`: the members that
/// changed (objects member by member), `null` for those `after` lacks.
/// What a form's save sends, so that it changes what the person changed
/// and nothing that changed meanwhile.
pub fn diff(before: &Value, after: &Value) -> Value {
    match (before, after) {
        (Value::Object(before), Value::Object(after)) => {
            let mut patch = serde_json::Map::new();
            for (name, now) in after {
                match before.get(name) {
                    Some(was) if was == now => {}
                    // A member that is null now is removed by `null`.
                    Some(was) if was.is_object() && now.is_object() => {
                        patch.insert(name.clone(), diff(was, now));
                    }
                    _ => {
                        patch.insert(name.clone(), now.clone());
                    }
                }
            }
            for name in before.keys() {
                if !after.contains_key(name) {
                    patch.insert(name.clone(), Value::Null);
                }
            }
            Value::Object(patch)
        }
        _ => after.clone(),
    }
}

/// `current` with `patch` applied. A top-level name `T` does not have is
/// refused (a typo would otherwise change nothing and say nothing), as is
/// a result that does not read as `T`. `T`'s names are those its default
/// writes, and `also_known` (fields not written when unset).
pub fn patched<T: Serialize + DeserializeOwned + Default>(
    what: &str,
    current: &T,
    patch: &Value,
    also_known: &[&str],
) -> Result<T, AdminError> {
    let Value::Object(members) = patch else {
        return Err(AdminError::Invalid(format!(
            "{what}: expected a JSON object"
        )));
    };
    let known = serde_json::to_value(T::default()).expect("serialises");
    let known = known.as_object().expect("an object");
    let unknown: Vec<&str> = members
        .keys()
        .map(String::as_str)
        .filter(|name| !known.contains_key(*name) && !also_known.contains(name))
        .collect();
    if !unknown.is_empty() {
        return Err(AdminError::Invalid(format!(
            "{what}: no such field {}",
            unknown.join(", ")
        )));
    }
    let mut value = serde_json::to_value(current).expect("serialises");
    merge_patch(&mut value, patch);
    serde_json::from_value(value).map_err(|err| AdminError::Invalid(format!("{what}: {err}")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use aia_store::TenantSettings;
    use serde_json::json;

    /// The examples of RFC 7396, appendix A.
    #[test]
    fn the_rfcs_examples() {
        for (target, patch, result) in [
            (json!({"a": "b"}), json!({"a": "c"}), json!({"a": "c"})),
            (
                json!({"a": "b"}),
                json!({"b": "c"}),
                json!({"a": "b", "b": "c"}),
            ),
            (json!({"a": "b"}), json!({"a": null}), json!({})),
            (
                json!({"a": "b", "b": "c"}),
                json!({"a": null}),
                json!({"b": "c"}),
            ),
            (json!({"a": ["b"]}), json!({"a": "c"}), json!({"a": "c"})),
            (json!({"a": "c"}), json!({"a": ["b"]}), json!({"a": ["b"]})),
            (
                json!({"a": {"b": "c"}}),
                json!({"a": {"b": "d", "c": null}}),
                json!({"a": {"b": "d"}}),
            ),
            (
                json!({"a": [{"b": "c"}]}),
                json!({"a": [1]}),
                json!({"a": [1]}),
            ),
            (json!(["a", "b"]), json!(["c", "d"]), json!(["c", "d"])),
            (json!({"a": "b"}), json!(["c"]), json!(["c"])),
            (json!({"a": "foo"}), json!(null), json!(null)),
            (json!({"a": "foo"}), json!("bar"), json!("bar")),
            (
                json!({"e": null}),
                json!({"a": 1}),
                json!({"e": null, "a": 1}),
            ),
            (
                json!([1, 2]),
                json!({"a": "b", "c": null}),
                json!({"a": "b"}),
            ),
            (
                json!({}),
                json!({"a": {"bb": {"ccc": null}}}),
                json!({"a": {"bb": {}}}),
            ),
        ] {
            let mut value = target.clone();
            merge_patch(&mut value, &patch);
            assert_eq!(value, result, "{target} + {patch}");
        }
    }

    /// A diff applied to what it was taken from gives what it was taken to.
    #[test]
    fn a_diff_applied_gives_the_changed_value_back() {
        for (before, after) in [
            (
                json!({"a": 1, "b": {"c": 2, "d": 3}}),
                json!({"a": 1, "b": {"c": 5, "d": 3}}),
            ),
            (json!({"a": 1, "b": 2}), json!({"a": 1})),
            (json!({"a": [1, 2]}), json!({"a": [2]})),
            (json!({"a": "x"}), json!({"a": {"b": 1}})),
            (json!({"a": 1}), json!({"a": 1, "n": {"m": 2}})),
        ] {
            let patch = diff(&before, &after);
            let mut value = before.clone();
            merge_patch(&mut value, &patch);
            assert_eq!(value, after, "{before} → {after} by {patch}");
        }
        assert_eq!(
            diff(
                &json!({"a": 1, "b": {"c": 2}}),
                &json!({"a": 1, "b": {"c": 3}})
            ),
            json!({"b": {"c": 3}}),
            "only what changed"
        );
    }

    #[test]
    fn a_partial_change_keeps_every_other_setting() {
        let mut current = TenantSettings {
            allow_static_secret: true,
            knowledge_base_url: Some("https://kb.example.com".into()),
            ..TenantSettings::default()
        };
        current.incidents.threshold = 5;
        let changed: TenantSettings = patched(
            "settings",
            &current,
            &json!({"max_note_words": 300, "incidents": {"quiet_minutes": 60}}),
            &[],
        )
        .unwrap();
        assert_eq!(changed.max_note_words, 300);
        assert_eq!(changed.incidents.quiet_minutes, 60);
        assert_eq!(changed.incidents.threshold, 5, "the object is merged");
        assert!(changed.allow_static_secret);
        assert_eq!(changed.knowledge_base_url, current.knowledge_base_url);
        let reset: TenantSettings = patched(
            "settings",
            &current,
            &json!({"knowledge_base_url": null}),
            &[],
        )
        .unwrap();
        assert_eq!(reset.knowledge_base_url, None);
    }

    #[test]
    fn an_unknown_field_or_a_wrong_type_is_refused() {
        let current = TenantSettings::default();
        let err = patched("settings", &current, &json!({"max_note_wrods": 300}), &[]).unwrap_err();
        assert!(err.to_string().contains("max_note_wrods"), "{err}");
        let err = patched(
            "settings",
            &current,
            &json!({"max_note_words": "many"}),
            &[],
        )
        .unwrap_err();
        assert!(matches!(err, AdminError::Invalid(_)), "{err}");
        assert!(patched("settings", &current, &json!([1]), &[]).is_err());
    }
}
