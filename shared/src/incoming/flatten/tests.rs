//! Unit tests of flattening, measuring and canonical values, and their property tests.

use super::*;
use serde_json::json;

/// A repeated key is weighed at each occurrence by `measure` (the text as written), while
/// the parsed value keeps one: refused on the text, it would have fit once parsed. Found by
/// the `flatten` fuzz target; conservative on purpose (never the other way round).
#[test]
fn a_repeated_key_is_weighed_at_each_occurrence() {
    let big = "x".repeat(60);
    let text = format!(r#"{{"a":"{big}","a":"{big}"}}"#);
    let parsed: Value = serde_json::from_str(&text).unwrap();
    // One entry: 1 + "a" (1) + 4 + 62 = 68 bytes; two: 130.
    assert!(flatten_within(&parsed, 100).is_ok());
    assert!(matches!(
        measure(text.as_bytes(), 100),
        Err(Measure::TooLarge(_))
    ));
    assert!(measure(&serde_json::to_vec(&parsed).unwrap(), 100).is_ok());
}

#[test]
fn flattens_objects_and_arrays_by_index() {
    let v = json!({
        "a": {"b": [{"c": 1}, {"c": [true, null]}]},
        "s": "x",
        "n": {"m": {"o": 2.5}}
    });
    assert_eq!(
        Value::Object(flatten(&v)),
        json!({"a.b.0.c": 1, "a.b.1.c.0": true, "a.b.1.c.1": null, "s": "x", "n.m.o": 2.5})
    );
    // Document order is kept.
    let keys: Vec<String> = flatten(&v).keys().cloned().collect();
    assert_eq!(keys, ["a.b.0.c", "a.b.1.c.0", "a.b.1.c.1", "s", "n.m.o"]);
}

#[test]
fn keeps_empty_containers_as_values() {
    let v = json!({"e": {}, "l": [], "x": {"y": {}, "z": [[]]}});
    assert_eq!(
        Value::Object(flatten(&v)),
        json!({"e": {}, "l": [], "x.y": {}, "x.z.0": []})
    );
    assert_eq!(Value::Object(flatten(&json!({}))), json!({}));
}

#[test]
fn flat_input_is_unchanged() {
    let v = json!({"a": 1, "b": "two", "c": null});
    assert_eq!(Value::Object(flatten(&v)), v);
}

#[test]
fn later_keys_win_on_collision() {
    let v = json!({"a.b": 1, "a": {"b": 2}});
    assert_eq!(Value::Object(flatten(&v)), json!({"a.b": 2}));
}

#[test]
fn the_bound_is_a_lower_bound_of_the_json_text() {
    let samples = [
        json!({"a": {"b": [{"c": 1}, {"c": [true, null, false]}]}, "s": "x\"y", "e": {}}),
        json!([1, [2, [3, []]]]),
        json!("scalar"),
        json!({"k\u{1}": "\u{e9}\n", "n": -1.5e300}),
    ];
    for v in samples {
        let full = flatten(&v);
        let text = serde_json::to_string(&full).unwrap();
        // Exactly the text's length fits; a byte less may not, never more than the text.
        assert_eq!(flatten_within(&v, text.len()), Ok(full), "{v}");
    }
}

#[test]
fn stops_at_the_first_entry_past_the_limit() {
    // 1,000-char key, 100,000 elements: unbounded this is ~100 MB of keys.
    let key = "k".repeat(1000);
    let v = json!({ key: vec![0; 100_000] });
    let limit = 256 * 1024;
    assert_eq!(flatten_within(&v, limit), Err(TooLarge { limit }));
    // The first entry that does not fit stops it: a 300-entry object is refused at 10 KB.
    let small = json!({ "k".repeat(1000): vec![0; 300] });
    assert_eq!(
        flatten_within(&small, 10_000),
        Err(TooLarge { limit: 10_000 })
    );
    assert_eq!(flatten_within(&small, usize::MAX).map(|m| m.len()), Ok(300));
}

#[test]
fn measure_agrees_with_flatten_within() {
    let samples = [
        r#"{"a": {"b": [{"c": 1}, {"c": [true, null, false]}]}, "s": "x\"y", "e": {}, "l": []}"#,
        r#"[1, [2, [3, []]], {}]"#,
        r#""scalar""#,
        r#"{}"#,
        r#"{"":{"":[{"":1}]}}"#,
        r#"{"k\u0001": "\u00e9\n", "n": -1.5e300, "big": 123456789012345678901234567890}"#,
        r#"[0,1,2,3,4,5,6,7,8,9,10,11]"#,
    ];
    for text in samples {
        let v: Value = serde_json::from_str(text).unwrap();
        let exact = serde_json::to_string(&flatten(&v)).unwrap().len();
        for limit in [0, 1, 2, 5, 10, 20, 40, 80, exact] {
            assert_eq!(
                measure(text.as_bytes(), limit).is_ok(),
                flatten_within(&v, limit).is_ok(),
                "{text} at {limit}"
            );
        }
        assert!(measure(text.as_bytes(), exact).is_ok(), "{text}");
    }
    assert!(matches!(
        measure(b"{\"a\":[0,0", 1000),
        Err(Measure::Json(_))
    ));
    assert!(matches!(measure(b"{} x", 1000), Err(Measure::Json(_))));
}

#[test]
fn measure_stops_at_the_limit_without_building_values() {
    let mut body = format!("{{\"{}\":[", "k".repeat(1000));
    body.push_str(&vec!["0"; 1_000_000].join(","));
    body.push_str("]}");
    let limit = 256 * 1024;
    assert!(matches!(
        measure(body.as_bytes(), limit),
        Err(Measure::TooLarge(TooLarge { limit: 262_144 }))
    ));
}

#[test]
fn paths_and_canonical_form() {
    let v = json!({"a": {"b": [{"c": 1}]}});
    assert_eq!(get_path(&v, "a.b.0.c"), Some(&json!(1)));
    assert_eq!(get_path(&v, "a.b.1.c"), None);
    assert_eq!(get_path(&v, "a.x"), None);
    let x: Value = serde_json::from_str(r#"{"b": 1, "a": {"d": 2, "c": 3}}"#).unwrap();
    let y: Value = serde_json::from_str(r#"{"a": {"c": 3, "d": 2}, "b": 1}"#).unwrap();
    assert_ne!(x.to_string(), y.to_string());
    assert_eq!(canonical(&x).to_string(), canonical(&y).to_string());
}

/// Property tests (proptest, from crates.io; `cargo fuzz` is not set up here): the measuring
/// walk over outside bytes agrees with flattening the parsed value, on generated documents.
#[cfg(test)]
mod properties {
    use super::*;
    use proptest::prelude::*;

    fn json() -> impl Strategy<Value = Value> {
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::Bool),
            any::<i64>().prop_map(Value::from),
            any::<f64>()
                .prop_filter("finite", |f| f.is_finite())
                .prop_map(Value::from),
            ".{0,12}".prop_map(Value::String),
        ];
        leaf.prop_recursive(4, 48, 6, |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
                prop::collection::vec((".{0,8}", inner), 0..6)
                    .prop_map(|kv| Value::Object(kv.into_iter().collect())),
            ]
        })
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

        #[test]
        fn measure_agrees_with_flatten_within(v in json(), limit in 0usize..600) {
            let text = serde_json::to_string(&v).unwrap();
            prop_assert_eq!(
                measure(text.as_bytes(), limit).is_ok(),
                flatten_within(&v, limit).is_ok()
            );
        }

        #[test]
        fn the_bound_never_refuses_what_fits(v in json()) {
            let flat = flatten(&v);
            // Colliding keys count twice (see `flatten_within`): collision-free documents only.
            prop_assume!(count_entries(&v) == flat.len());
            let exact = serde_json::to_string(&flat).unwrap().len();
            prop_assert!(flatten_within(&v, exact).is_ok());
        }

        #[test]
        fn measure_never_panics_on_arbitrary_bytes(bytes in prop::collection::vec(any::<u8>(), 0..256), limit in 0usize..1000) {
            let _ = measure(&bytes, limit);
        }
    }

    /// How many entries flattening produces (collisions included).
    fn count_entries(v: &Value) -> usize {
        match v {
            Value::Object(m) if !m.is_empty() => m.values().map(count_entries).sum(),
            Value::Array(a) if !a.is_empty() => a.iter().map(count_entries).sum(),
            _ => 1,
        }
    }
}
