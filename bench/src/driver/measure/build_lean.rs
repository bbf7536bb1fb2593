//! Section 6, build lean: what the dependency graph links (`cargo tree`).

use crate::Args;
use std::collections::BTreeMap;
use std::process::Command;

pub(crate) fn build_lean(a: &Args) -> Vec<(String, String)> {
    let out = Command::new("cargo")
        .current_dir(&a.root)
        .args([
            "tree",
            "--workspace",
            "-e",
            "normal",
            "--prefix",
            "none",
            "-f",
            "{p}|{f}",
        ])
        .output();
    let text = out
        .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
        .unwrap_or_default();
    let mut seen: BTreeMap<String, BTreeMap<String, String>> = BTreeMap::new();
    for line in text.lines() {
        let line = line.trim_end_matches(" (*)");
        let Some((pkg, feats)) = line.split_once('|') else {
            continue;
        };
        let mut parts = pkg.split_whitespace();
        let (Some(name), Some(ver)) = (parts.next(), parts.next()) else {
            continue;
        };
        seen.entry(name.to_owned())
            .or_default()
            .insert(ver.to_owned(), feats.to_owned());
    }
    let mut rows = Vec::new();
    for crate_name in [
        "rustls",
        "aws-lc-rs",
        "ring",
        "openssl-sys",
        "native-tls",
        "hyper",
        "hyper-rustls",
        "h2",
        "reqwest",
        "aws_lambda_events",
        "lambda_runtime",
        "lambda_http",
        "tokio",
    ] {
        let cell = match seen.get(crate_name) {
            None => "absent".to_owned(),
            Some(vs) => vs
                .iter()
                .map(|(v, f)| {
                    let f = if f.is_empty() {
                        "no features"
                    } else {
                        f.as_str()
                    };
                    format!("{v} [{f}]")
                })
                .collect::<Vec<_>>()
                .join("; "),
        };
        rows.push((crate_name.to_owned(), cell));
    }
    rows
}
