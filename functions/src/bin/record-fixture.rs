//! `record-fixture FUNCTION CASE [OPTIONS.json] [--out FILE]` (`make fixture FN=… CASE=…
//! [OPTIONS=file]`): run one example function once against the real API and write
//! `functions/fixtures/<FUNCTION>/<CASE>.json` with its options, the secrets it loaded (values
//! replaced by `<redacted:NAME>`), every HTTP exchange and its answer. Without OPTIONS.json the
//! options (and description) of the existing fixture are used, so a fixture can be re-recorded.
//! Review the file before committing it.

use serde_json::Value;
use std::path::PathBuf;
use std::process::ExitCode;

const USAGE: &str = "usage: record-fixture FUNCTION CASE [OPTIONS.json] [--out FILE]";

fn main() -> ExitCode {
    let mut args: Vec<String> = std::env::args().skip(1).collect();
    let mut out: Option<PathBuf> = None;
    if let Some(i) = args.iter().position(|a| a == "--out") {
        if i + 1 >= args.len() {
            eprintln!("{USAGE}");
            return ExitCode::from(2);
        }
        out = Some(PathBuf::from(args.remove(i + 1)));
        args.remove(i);
    }
    let (function, case, options_file) = match args.as_slice() {
        [f, c] => (f.clone(), c.clone(), None),
        [f, c, o] => (f.clone(), c.clone(), Some(PathBuf::from(o))),
        _ => {
            eprintln!("{USAGE}");
            return ExitCode::from(2);
        }
    };
    let valid = |s: &str| {
        !s.is_empty()
            && s.bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
            && !s.starts_with('.')
    };
    if !valid(&function) || !valid(&case) {
        eprintln!("record-fixture: FUNCTION and CASE are names (A-Z a-z 0-9 - _ .)");
        return ExitCode::from(2);
    }
    if !functions::all().function_names().contains(&function) {
        eprintln!("record-fixture: no function {function} is registered (see functions::all())");
        return ExitCode::from(2);
    }
    let out = out.unwrap_or_else(|| {
        PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .join("fixtures")
            .join(&function)
            .join(format!("{case}.json"))
    });
    let read = |p: &PathBuf| -> Result<Value, String> {
        let text = std::fs::read_to_string(p).map_err(|e| format!("{}: {e}", p.display()))?;
        serde_json::from_str(&text).map_err(|e| format!("{}: not JSON: {e}", p.display()))
    };
    let existing = read(&out).ok();
    let options = match (&options_file, &existing) {
        (Some(f), _) => read(f),
        (None, Some(e)) => Ok(e["options"].clone()),
        (None, None) => Err(format!(
            "{} does not exist yet: give the options as a JSON file (OPTIONS=file)",
            out.display()
        )),
    };
    let options = match options {
        Ok(o) => o,
        Err(e) => {
            eprintln!("record-fixture: {e}");
            return ExitCode::from(2);
        }
    };
    let description = existing
        .as_ref()
        .and_then(|e| e["description"].as_str().map(str::to_owned))
        .unwrap_or_else(|| format!("{function}: {case} (recorded)"));
    let fixture = match integrator_lambda::app::record_fixture(
        functions::all(),
        &function,
        options,
        &description,
    ) {
        Ok(f) => f,
        Err(e) => {
            eprintln!("record-fixture: {e}");
            return ExitCode::FAILURE;
        }
    };
    let text = match serde_json::to_string_pretty(&fixture) {
        Ok(t) => t + "\n",
        Err(e) => {
            eprintln!("record-fixture: {e}");
            return ExitCode::FAILURE;
        }
    };
    if let Some(dir) = out.parent()
        && let Err(e) = std::fs::create_dir_all(dir)
    {
        eprintln!("record-fixture: {}: {e}", dir.display());
        return ExitCode::FAILURE;
    }
    if let Err(e) = std::fs::write(&out, text) {
        eprintln!("record-fixture: {}: {e}", out.display());
        return ExitCode::FAILURE;
    }
    let exchanges = fixture["http"].as_array().map_or(0, Vec::len);
    println!(
        "wrote {} ({exchanges} HTTP exchange(s), secrets redacted: {})",
        out.display(),
        fixture["secrets"]
    );
    ExitCode::SUCCESS
}
