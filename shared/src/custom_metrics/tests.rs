use super::*;
use serde_json::Value;

fn info() -> CallInfo {
    CallInfo {
        function: "enrichRecords".into(),
        extension_point: "preMap".into(),
        stack: "Http".into(),
        request_id: "r1".into(),
        trace_id: Some("Root=1-a".into()),
    }
}

fn parse(lines: &[String]) -> Vec<Value> {
    lines
        .iter()
        .map(|l| serde_json::from_str(l).expect("json"))
        .collect()
}

/// Every named dimension and metric has its value at the top level; the limits hold.
fn check_emf(v: &Value) {
    let cw = &v["_aws"]["CloudWatchMetrics"][0];
    let sets = cw["Dimensions"].as_array().expect("Dimensions");
    for set in sets {
        let set = set.as_array().expect("set");
        assert!(set.len() <= MAX_DIMENSIONS, "{v}");
        for d in set {
            assert!(v[d.as_str().expect("name")].is_string(), "{v}");
        }
    }
    let metrics = cw["Metrics"].as_array().expect("Metrics");
    assert!(metrics.len() <= MAX_METRICS, "{} metrics", metrics.len());
    for m in metrics {
        let value = &v[m["Name"].as_str().expect("name")];
        let n = value.as_array().map_or(1, Vec::len);
        assert!(value.is_number() || value.is_array(), "{v}");
        assert!(n <= MAX_VALUES, "{n} values");
    }
}

#[test]
fn a_metric_is_written_with_the_calls_dimensions_and_its_own() {
    let values = [
        Metric::count("CustomerLookups", 1).dimension("Outcome", "hit"),
        Metric::count("CustomerLookups", 1).dimension("Outcome", "hit"),
        Metric::new("Latency", Unit::Milliseconds, 2.5).high_resolution(),
    ];
    let docs = parse(&documents(&info(), "pre-map", "NS", 7, &values));
    assert_eq!(docs.len(), 2, "{docs:?}");
    for d in &docs {
        check_emf(d);
        assert_eq!(d["Service"], "pre-map");
        assert_eq!(d["Function"], "enrichRecords");
        assert_eq!(d["RequestId"], "r1");
        assert_eq!(d["TraceId"], "Root=1-a");
    }
    let plain = &docs[0];
    assert_eq!(
        plain["_aws"]["CloudWatchMetrics"][0]["Dimensions"],
        json!([["Service", "Function"]])
    );
    assert_eq!(
        plain["_aws"]["CloudWatchMetrics"][0]["Metrics"],
        json!([{"Name": "Latency", "Unit": "Milliseconds", "StorageResolution": 1}])
    );
    let outcome = &docs[1];
    assert_eq!(
        outcome["_aws"]["CloudWatchMetrics"][0]["Dimensions"],
        json!([["Service", "Function", "Outcome"]])
    );
    assert_eq!(outcome["Outcome"], "hit");
    assert_eq!(outcome["CustomerLookups"], json!([1.0, 1.0]));
}

#[test]
fn over_a_hundred_metrics_or_values_are_split_never_dropped() {
    let mut values: Vec<Metric> = (0..250)
        .map(|i| Metric::new(format!("M{i}"), Unit::Count, i as f64))
        .collect();
    values.extend((0..230).map(|i| Metric::new("Many", Unit::Count, i as f64)));
    let docs = parse(&documents(&info(), "s", "NS", 7, &values));
    let mut seen: BTreeMap<String, Vec<f64>> = BTreeMap::new();
    for d in &docs {
        check_emf(d);
        for m in d["_aws"]["CloudWatchMetrics"][0]["Metrics"]
            .as_array()
            .expect("metrics")
        {
            let name = m["Name"].as_str().expect("name");
            let vals = match &d[name] {
                Value::Array(a) => a.iter().filter_map(Value::as_f64).collect(),
                v => vec![v.as_f64().expect("number")],
            };
            seen.entry(name.into()).or_default().extend(vals);
        }
    }
    assert_eq!(seen.len(), 251);
    for i in 0..250 {
        assert_eq!(seen[&format!("M{i}")], vec![i as f64]);
    }
    assert_eq!(seen["Many"], (0..230).map(f64::from).collect::<Vec<_>>());
    // 251 metrics: 3 lines; "Many"'s 230 values need 3 lines too.
    assert_eq!(docs.len(), 3);
}

#[test]
fn different_dimensions_go_to_different_lines_within_the_limit() {
    let wide = |prefix: &str| {
        (0..28).fold(Metric::count("Wide", 1), |m, i| {
            m.dimension(format!("{prefix}{i}"), "v")
        })
    };
    let docs = parse(&documents(&info(), "s", "NS", 7, &[wide("A"), wide("B")]));
    assert_eq!(docs.len(), 2);
    for d in &docs {
        check_emf(d);
    }
}

#[test]
fn metrics_cloudwatch_would_reject_are_refused_with_a_reason() {
    let m = Metrics::recording();
    let too_wide = (0..29).fold(Metric::count("W", 1), |m, i| {
        m.dimension(format!("D{i}"), "v")
    });
    assert_eq!(
        m.add(too_wide),
        Err(MetricError::TooManyDimensions {
            metric: "W".into(),
            count: 31
        })
    );
    assert!(matches!(
        m.add(Metric::new("X", Unit::Count, f64::NAN)),
        Err(MetricError::NotFinite(_))
    ));
    assert!(matches!(
        m.add(Metric::count("", 1)),
        Err(MetricError::InvalidName(_))
    ));
    assert!(matches!(
        m.add(Metric::count("Function", 1)),
        Err(MetricError::InvalidName(_))
    ));
    assert!(matches!(
        m.add(Metric::count("X", 1).dimension("Outcome", "")),
        Err(MetricError::InvalidDimension { .. })
    ));
    assert!(matches!(
        m.add(
            Metric::count("X", 1)
                .dimension("A", "1")
                .dimension("A", "2")
        ),
        Err(MetricError::InvalidDimension { .. })
    ));
    assert!(m.recorded().is_empty());
    m.add(Metric::count("X", 1).dimension("A", "1"))
        .expect("ok");
    assert_eq!(m.recorded().len(), 1);
    let e: crate::ExtError = MetricError::NotFinite("X".into()).into();
    assert_eq!(e.code.as_deref(), Some("invalid_metric"));
}

/// The EMF lines, byte for byte (key order, number forms, the high-resolution flag): pinned so
/// that a change to how the document is assembled cannot change what CloudWatch reads.
#[test]
fn the_emf_lines_are_written_byte_for_byte() {
    let values = [
        Metric::count("CustomerLookups", 1).dimension("Outcome", "hit"),
        Metric::count("CustomerLookups", 2).dimension("Outcome", "hit"),
        Metric::new("Latency", Unit::Milliseconds, 2.5).high_resolution(),
    ];
    let mut untraced = info();
    untraced.trace_id = None;
    assert_eq!(
        documents(&info(), "pre-map", "NS", 7, &values),
        [
            r#"{"_aws":{"Timestamp":7,"CloudWatchMetrics":[{"Namespace":"NS","Dimensions":[["Service","Function"]],"Metrics":[{"Name":"Latency","Unit":"Milliseconds","StorageResolution":1}]}]},"Service":"pre-map","Function":"enrichRecords","ExtensionPoint":"preMap","Stack":"Http","RequestId":"r1","TraceId":"Root=1-a","Latency":2.5}"#,
            r#"{"_aws":{"Timestamp":7,"CloudWatchMetrics":[{"Namespace":"NS","Dimensions":[["Service","Function","Outcome"]],"Metrics":[{"Name":"CustomerLookups","Unit":"Count"}]}]},"Service":"pre-map","Function":"enrichRecords","ExtensionPoint":"preMap","Stack":"Http","RequestId":"r1","TraceId":"Root=1-a","Outcome":"hit","CustomerLookups":[1.0,2.0]}"#,
        ]
    );
    assert_eq!(
        documents(&untraced, "pre-map", "NS", 7, &values[2..]),
        [
            r#"{"_aws":{"Timestamp":7,"CloudWatchMetrics":[{"Namespace":"NS","Dimensions":[["Service","Function"]],"Metrics":[{"Name":"Latency","Unit":"Milliseconds","StorageResolution":1}]}]},"Service":"pre-map","Function":"enrichRecords","ExtensionPoint":"preMap","Stack":"Http","RequestId":"r1","Latency":2.5}"#
        ]
    );
}
