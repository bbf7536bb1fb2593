//! The machine the run measured on (the report's first table).

use std::process::Command;

pub(super) fn machine() -> Vec<(String, String)> {
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let model = cpuinfo
        .lines()
        .find_map(|l| l.strip_prefix("model name"))
        .map(|v| v.trim_start_matches([' ', '\t', ':']).to_owned())
        .unwrap_or_else(|| "unknown".into());
    let meminfo = std::fs::read_to_string("/proc/meminfo").unwrap_or_default();
    let mem = meminfo
        .lines()
        .find_map(|l| l.strip_prefix("MemTotal:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
        .map(|k| format!("{:.1} GiB", k / 1024.0 / 1024.0))
        .unwrap_or_default();
    let nproc = std::thread::available_parallelism().map_or(0, |n| n.get());
    let cmd = |c: &str, a: &[&str]| {
        Command::new(c)
            .args(a)
            .output()
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
            .unwrap_or_default()
    };
    vec![
        ("nproc".into(), nproc.to_string()),
        ("CPU".into(), model),
        ("memory".into(), mem),
        ("kernel".into(), cmd("uname", &["-srm"])),
        ("rustc".into(), cmd("rustc", &["--version"])),
        ("node".into(), cmd("node", &["--version"])),
        (
            "wrk".into(),
            cmd("wrk", &["-v"]).lines().next().unwrap_or("").to_owned(),
        ),
    ]
}
