//! Issue 15's JSON engine candidates on the large page (the same ~5 MB preSavePage envelope as
//! `bench/benches/large_page.rs`): time (median of 15) and MB/s for parse (+ drop) and
//! serialize, the RSS a parsed tree takes (each measured in a fresh child process), and what each
//! engine does with a repeated key (`JSON.parse` keeps the last value at the first key's place).
//! Prints a Markdown table. See Cargo.toml for the commands.

use serde_json::{Value, json};
use std::time::Instant;

#[global_allocator]
static A: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn record(i: usize) -> Value {
    json!({
        "id": format!("rec-{i:08}"),
        "name": format!("Customer {i}"),
        "email": format!("customer{i}@example.com"),
        "active": !i.is_multiple_of(3),
        "amount": (i as f64) * 1.25 + 0.5,
        "address": {"street": format!("{} Main St", i % 1000), "city": "Zürich", "zip": format!("{:05}", i % 100000)},
        "tags": ["bench", if i.is_multiple_of(2) { "even" } else { "odd" }],
    })
}

fn page() -> Vec<u8> {
    let per = serde_json::to_vec(&record(12345)).map_or(200, |v| v.len() + 1);
    let n = 5 * 1024 * 1024 / per;
    let data: Vec<Value> = (0..n).map(record).collect();
    let body = json!({"diy": true, "type": "hook", "function": "preSavePage",
        "options": {"data": data, "_integrationId": "int-1", "_flowId": "flow-1", "errors": []}});
    serde_json::to_vec(&body).expect("page")
}

fn rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("VmRSS:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        })
        .unwrap_or(0)
}

fn median<F: FnMut()>(mut f: F) -> f64 {
    let mut v: Vec<f64> = (0..15)
        .map(|_| {
            let t = Instant::now();
            f();
            t.elapsed().as_secs_f64() * 1000.0
        })
        .collect();
    v.sort_by(f64::total_cmp);
    v[7]
}

#[derive(serde::Deserialize)]
struct Env<'a> {
    #[serde(borrow)]
    options: &'a serde_json::value::RawValue,
}
#[derive(serde::Deserialize)]
struct Opts<'a> {
    #[serde(borrow)]
    data: Vec<&'a serde_json::value::RawValue>,
}

/// Child mode: parse the page file with `engine` and print the RSS the tree took, KiB.
fn tree_rss(engine: &str, path: &str) {
    let bytes = std::fs::read(path).expect("page file");
    let r0 = rss_kib();
    let kib = match engine {
        "serde_json" => {
            let v: Value = serde_json::from_slice(&bytes).expect("json");
            let k = rss_kib() - r0;
            std::hint::black_box(&v);
            k
        }
        "sonic-rs" => {
            let v: sonic_rs::Value = sonic_rs::from_slice(&bytes).expect("json");
            let k = rss_kib() - r0;
            std::hint::black_box(&v);
            k
        }
        _ => {
            let mut b = bytes.clone();
            let v = simd_json::to_owned_value(&mut b).expect("json");
            let k = rss_kib() - r0;
            std::hint::black_box(&v);
            k
        }
    };
    println!("{kib}");
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.len() == 4 && args[1] == "--tree-rss" {
        return tree_rss(&args[2], &args[3]);
    }
    let bytes = page();
    let len = bytes.len();
    let path = std::env::temp_dir().join(format!("json-candidates-{}.json", std::process::id()));
    std::fs::write(&path, &bytes).expect("write page");
    let rss = |engine: &str| -> String {
        std::process::Command::new(&args[0])
            .args(["--tree-rss", engine, &path.to_string_lossy()])
            .output()
            .ok()
            .and_then(|o| String::from_utf8(o.stdout).ok())
            .and_then(|s| s.trim().parse::<f64>().ok())
            .map_or("n/a".into(), |k| format!("{:.1}×", k * 1024.0 / len as f64))
    };
    let dup = br#"{"b":1,"a":2,"b":3}"#;
    let dup_serde =
        serde_json::to_string(&serde_json::from_slice::<Value>(dup).expect("dup")).expect("s");
    let dup_sonic =
        sonic_rs::to_string(&sonic_rs::from_slice::<sonic_rs::Value>(dup).expect("dup"))
            .expect("s");
    let dup_simd = {
        let mut b = dup.to_vec();
        simd_json::to_owned_value(&mut b)
            .ok()
            .and_then(|v| simd_json::to_string(&v).ok())
            .unwrap_or_default()
    };
    let mbs = |ms: f64| len as f64 / 1e6 / (ms / 1000.0);
    let v: Value = serde_json::from_slice(&bytes).expect("json");
    let sv: sonic_rs::Value = sonic_rs::from_slice(&bytes).expect("json");
    let mut rows: Vec<(String, f64, Option<f64>, String, String)> = Vec::new();
    let ser_serde = median(|| drop(serde_json::to_vec(&v)));
    rows.push((
        "serde_json `Value` (today's engine)".into(),
        median(|| drop(serde_json::from_slice::<Value>(&bytes))),
        Some(ser_serde),
        rss("serde_json"),
        dup_serde.clone(),
    ));
    rows.push((
        "sonic-rs parser → serde_json `Value`".into(),
        median(|| drop(sonic_rs::from_slice::<Value>(&bytes))),
        Some(median(|| drop(sonic_rs::to_vec(&v)))),
        "as serde_json".into(),
        dup_serde.clone(),
    ));
    rows.push((
        "simd-json parser → serde_json `Value`".into(),
        median(|| {
            let mut b = bytes.clone();
            drop(simd_json::serde::from_slice::<Value>(&mut b))
        }),
        None,
        "as serde_json".into(),
        dup_serde.clone(),
    ));
    rows.push((
        "simd-json `OwnedValue`".into(),
        median(|| {
            let mut b = bytes.clone();
            drop(simd_json::to_owned_value(&mut b))
        }),
        None,
        rss("simd-json"),
        dup_simd,
    ));
    rows.push((
        "sonic-rs `Value`".into(),
        median(|| drop(sonic_rs::from_slice::<sonic_rs::Value>(&bytes))),
        Some(median(|| drop(sonic_rs::to_vec(&sv)))),
        rss("sonic-rs"),
        dup_sonic,
    ));
    rows.push((
        "serde_json, records as borrowed `&RawValue` (lazy)".into(),
        median(|| {
            let e: Env = serde_json::from_slice(&bytes).expect("env");
            let o: Opts = serde_json::from_str(e.options.get()).expect("opts");
            std::hint::black_box(o.data.len());
        }),
        None,
        "~0× (borrowed from the body)".into(),
        "keeps the text (a check is needed)".into(),
    ));
    let _ = std::fs::remove_file(&path);
    println!(
        "page: {len} bytes, {} records\n",
        v["options"]["data"].as_array().map_or(0, Vec::len)
    );
    println!(
        "| engine | parse + drop ms | parse MB/s | serialize ms | serialize MB/s | tree RSS / page | `{{\"b\":1,\"a\":2,\"b\":3}}` becomes |"
    );
    println!("|---|---:|---:|---:|---:|---:|---|");
    for (name, p, s, r, d) in rows {
        let (sm, smb) = s.map_or(("n/a".into(), "n/a".into()), |s| {
            (format!("{s:.1}"), format!("{:.0}", mbs(s)))
        });
        println!(
            "| {name} | {p:.1} | {:.0} | {sm} | {smb} | {r} | `{d}` |",
            mbs(p)
        );
    }
}
