//! The crate's layout rules, checked on its sources (test code aside):
//!
//! 1. the top-level modules use each other in one direction only: each uses modules of its
//!    own layer or the layers listed before it ([`LAYERS`]), and no two import each other;
//! 2. the AWS SDK crates (`aws_sdk_*`, `aws_config`, `aws_smithy_*`) are named only under `aws/`;
//! 3. the environment is read only in the startup module (`app/`);
//! 4. outside `aws/`, only `app/` names `crate::aws`;
//! 5. `transport` imports neither `incoming` nor `worker` (they are mounted on it);
//! 6. no source file under `shared/src/`, `functions/` or `bench/src/` is over [`MAX_LINES`]
//!    lines (files by role); test files (`tests.rs`, `*_tests.rs`, anything under a `tests/`
//!    folder) are exempt.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// The layers, lowest first.
const LAYERS: &[&[&str]] = &[
    &[
        "time",
        "telemetry",
        "metrics",
        "memory",
        "custom_metrics",
        "xray",
        "log_buffer",
    ],
    &["protocol"],
    &["codec"],
    &["store", "jobs", "outgoing"],
    &["dispatch"],
    &["utilities"],
    &["transport"],
    &["worker", "incoming"],
    &["aws"],
    &["app"],
];

/// The longest a non-test source file may be, in lines.
const MAX_LINES: usize = 600;

/// The folders (from the workspace root) whose source files [`MAX_LINES`] bounds.
const SIZED_DIRS: &[&str] = &["shared/src", "functions", "bench/src"];

const SDK_CRATES: &[&str] = &["aws_sdk_", "aws_config", "aws_smithy_"];
const ENV_READS: &[&str] = &["env::var", "env::vars", "env!(", "option_env!("];

/// One source file: its top-level module and its code without comments, string literals and
/// test modules.
struct Source {
    path: String,
    module: String,
    depth: usize,
    code: String,
}

/// `text` without comments and the contents of string and char literals (so a string such as
/// `"aws_smithy=debug"` or a doc example is not taken for code).
fn strip(text: &str) -> String {
    let b = text.as_bytes();
    let mut out = String::with_capacity(text.len());
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'/' if b.get(i + 1) == Some(&b'/') => {
                while i < b.len() && b[i] != b'\n' {
                    i += 1;
                }
            }
            b'/' if b.get(i + 1) == Some(&b'*') => {
                let mut depth = 0;
                while i < b.len() {
                    if b[i] == b'/' && b.get(i + 1) == Some(&b'*') {
                        depth += 1;
                        i += 2;
                    } else if b[i] == b'*' && b.get(i + 1) == Some(&b'/') {
                        depth -= 1;
                        i += 2;
                        if depth == 0 {
                            break;
                        }
                    } else {
                        i += 1;
                    }
                }
            }
            b'r' if matches!(b.get(i + 1), Some(b'"' | b'#'))
                && (i == 0 || !(b[i - 1].is_ascii_alphanumeric() || b[i - 1] == b'_')) =>
            {
                // Raw string r"…" / r#"…"#.
                let mut j = i + 1;
                let mut hashes = 0;
                while b.get(j) == Some(&b'#') {
                    hashes += 1;
                    j += 1;
                }
                if b.get(j) != Some(&b'"') {
                    out.push('r');
                    i += 1;
                    continue;
                }
                j += 1;
                loop {
                    if j >= b.len() {
                        break;
                    }
                    if b[j] == b'"' && (0..hashes).all(|h| b.get(j + 1 + h) == Some(&b'#')) {
                        j += 1 + hashes;
                        break;
                    }
                    j += 1;
                }
                out.push_str("\"\"");
                i = j;
            }
            b'"' => {
                i += 1;
                while i < b.len() && b[i] != b'"' {
                    if b[i] == b'\\' {
                        i += 1;
                    }
                    i += 1;
                }
                i += 1;
                out.push_str("\"\"");
            }
            b'\'' if b.get(i + 2) == Some(&b'\'') || b.get(i + 1) == Some(&b'\\') => {
                // A char literal ('x', '\n', '\u{1f}'); lifetimes ('a) are left alone.
                i += 1;
                while i < b.len() && b[i] != b'\'' {
                    if b[i] == b'\\' {
                        i += 1;
                    }
                    i += 1;
                }
                i += 1;
                out.push_str("' '");
            }
            c => {
                out.push(c as char);
                i += 1;
            }
        }
    }
    out
}

/// `code` without `#[cfg(test)]` items (a `mod tests { … }` block or a `mod tests;` line).
fn without_tests(code: &str) -> String {
    let mut out = String::with_capacity(code.len());
    let mut rest = code;
    while let Some(at) = rest.find("#[cfg(test)]") {
        out.push_str(&rest[..at]);
        let after = &rest[at..];
        // The item ends at its first `;` before any `{`, or at the matching `}`.
        let semi = after.find(';');
        let brace = after.find('{');
        let end = match (semi, brace) {
            (Some(s), Some(b)) if s < b => s + 1,
            (Some(s), None) => s + 1,
            (_, Some(b)) => {
                let mut depth = 0usize;
                let mut end = after.len();
                for (k, ch) in after[b..].char_indices() {
                    match ch {
                        '{' => depth += 1,
                        '}' => {
                            depth -= 1;
                            if depth == 0 {
                                end = b + k + 1;
                                break;
                            }
                        }
                        _ => {}
                    }
                }
                end
            }
            (None, None) => after.len(),
        };
        rest = &after[end..];
    }
    out.push_str(rest);
    out
}

/// Every `.rs` file under `dir` (a `target/` folder aside), in path order.
fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let mut entries: Vec<_> = std::fs::read_dir(dir)
        .expect("read src")
        .map(|e| e.expect("entry").path())
        .collect();
    entries.sort();
    for p in entries {
        if p.is_dir() {
            if p.file_name().is_some_and(|n| n != "target") {
                rust_files(&p, out);
            }
        } else if p.extension().is_some_and(|e| e == "rs") {
            out.push(p);
        }
    }
}

fn sources(root: &Path) -> Vec<Source> {
    let mut files = Vec::new();
    rust_files(root, &mut files);
    files
        .into_iter()
        .filter_map(|p| {
            let rel = p.strip_prefix(root).expect("under src").to_path_buf();
            let parts: Vec<String> = rel
                .components()
                .map(|c| c.as_os_str().to_string_lossy().into_owned())
                .collect();
            // Test-only files.
            if parts.last().is_some_and(|f| f == "tests.rs") {
                return None;
            }
            let module = parts[0].trim_end_matches(".rs").to_owned();
            let text = std::fs::read_to_string(&p).expect("read source");
            Some(Source {
                path: rel.to_string_lossy().into_owned(),
                depth: parts.len(),
                code: without_tests(&strip(&text)),
                module,
            })
        })
        .collect()
}

/// The top-level modules `s` names: `crate::x`, and `super::x` / `super::super::x` where that
/// reaches the crate root.
fn uses(s: &Source, modules: &BTreeSet<String>) -> BTreeSet<String> {
    let mut found = BTreeSet::new();
    let mut prefixes = vec!["crate::".to_owned()];
    let own_dir_root = s.depth == 2 && s.path.ends_with("mod.rs");
    match s.depth {
        1 => prefixes.push("super::".into()),
        2 if own_dir_root => prefixes.push("super::".into()),
        2 => prefixes.push("super::super::".into()),
        3 => prefixes.push("super::super::super::".into()),
        _ => {}
    }
    for prefix in &prefixes {
        for (at, _) in s.code.match_indices(prefix.as_str()) {
            // `super::super::` also contains `super::`: only take whole prefixes.
            let before = &s.code[..at];
            if before.ends_with("super::") || before.ends_with("crate::") {
                continue;
            }
            let name: String = s.code[at + prefix.len()..]
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                .collect();
            if modules.contains(&name) && name != s.module {
                found.insert(name);
            }
        }
    }
    // `use crate::{a, b::c}` groups.
    for (at, _) in s.code.match_indices("crate::{") {
        let group = &s.code[at + "crate::{".len()..];
        let mut depth = 1usize;
        let mut token = String::new();
        for ch in group.chars() {
            match ch {
                '{' => depth += 1,
                '}' => {
                    depth -= 1;
                    if depth == 0 {
                        break;
                    }
                }
                _ => {}
            }
            if depth == 1 && (ch.is_ascii_alphanumeric() || ch == '_') {
                token.push(ch);
            } else {
                if modules.contains(&token) && token != s.module {
                    found.insert(token.clone());
                }
                token.clear();
            }
        }
    }
    found
}

fn layer_of(module: &str) -> Option<usize> {
    LAYERS.iter().position(|l| l.contains(&module))
}

/// Every broken rule, one line each.
fn violations(root: &Path) -> Vec<String> {
    let files = sources(root);
    let modules: BTreeSet<String> = files
        .iter()
        .map(|s| s.module.clone())
        .filter(|m| m != "lib")
        .collect();
    let mut problems = Vec::new();
    for m in &modules {
        if layer_of(m).is_none() {
            problems.push(format!("module `{m}` is in no layer of tests/layout.rs"));
        }
    }
    let mut graph: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for s in files.iter().filter(|s| s.module != "lib") {
        let used = uses(s, &modules);
        for u in &used {
            if let (Some(from), Some(to)) = (layer_of(&s.module), layer_of(u))
                && to > from
            {
                problems.push(format!(
                    "{}: `{}` uses `{u}`, a later layer",
                    s.path, s.module
                ));
            }
        }
        if s.module == "transport" {
            for forbidden in ["incoming", "worker"] {
                if used.contains(forbidden) {
                    problems.push(format!(
                        "{}: transport imports `{forbidden}` (mount it instead)",
                        s.path
                    ));
                }
            }
        }
        if !matches!(s.module.as_str(), "aws" | "app") && used.contains("aws") {
            problems.push(format!("{}: names `crate::aws` (only app/ may)", s.path));
        }
        if s.module != "aws" {
            for sdk in SDK_CRATES {
                if s.code.contains(sdk) {
                    problems.push(format!("{}: names the AWS SDK (`{sdk}…`)", s.path));
                }
            }
        }
        if s.module != "app" {
            for read in ENV_READS {
                if s.code.contains(read) {
                    problems.push(format!(
                        "{}: reads the environment (`{read}`): only app/ may",
                        s.path
                    ));
                }
            }
        }
        graph.entry(s.module.clone()).or_default().extend(used);
    }
    problems.extend(cycles(&graph));
    problems
}

/// One line per import cycle between top-level modules.
fn cycles(graph: &BTreeMap<String, BTreeSet<String>>) -> Vec<String> {
    fn visit(
        node: &str,
        graph: &BTreeMap<String, BTreeSet<String>>,
        path: &mut Vec<String>,
        done: &mut BTreeSet<String>,
        found: &mut BTreeSet<String>,
    ) {
        if let Some(at) = path.iter().position(|p| p == node) {
            let mut cycle = path[at..].to_vec();
            cycle.push(node.to_owned());
            found.insert(format!("import cycle: {}", cycle.join(" → ")));
            return;
        }
        if done.contains(node) {
            return;
        }
        path.push(node.to_owned());
        for next in graph.get(node).into_iter().flatten() {
            visit(next, graph, path, done, found);
        }
        path.pop();
        done.insert(node.to_owned());
    }
    let mut found = BTreeSet::new();
    let mut done = BTreeSet::new();
    for node in graph.keys() {
        visit(node, graph, &mut Vec::new(), &mut done, &mut found);
    }
    found.into_iter().collect()
}

/// Is `rel` (a path under one of [`SIZED_DIRS`]) test code: a `tests.rs`, a `*_tests.rs` (a
/// `#[path]` test module) or a file under a `tests/` folder?
fn is_test_file(rel: &Path) -> bool {
    let name = rel.file_name().map(|n| n.to_string_lossy().into_owned());
    name.as_deref() == Some("tests.rs")
        || name.as_deref().is_some_and(|n| n.ends_with("_tests.rs"))
        || rel.components().any(|c| c.as_os_str() == "tests")
}

/// One line per non-test `.rs` file under `workspace`'s [`SIZED_DIRS`] longer than
/// [`MAX_LINES`], naming the file and its length.
fn oversized(workspace: &Path) -> Vec<String> {
    let mut problems = Vec::new();
    for dir in SIZED_DIRS {
        let mut files = Vec::new();
        rust_files(&workspace.join(dir), &mut files);
        for p in files {
            let rel = p.strip_prefix(workspace).expect("under the workspace");
            if is_test_file(rel.strip_prefix(dir).expect("under its folder")) {
                continue;
            }
            let lines = std::fs::read_to_string(&p)
                .expect("read source")
                .lines()
                .count();
            if lines > MAX_LINES {
                problems.push(format!(
                    "{}: {lines} lines, over {MAX_LINES}: split it by role (test code aside)",
                    rel.display()
                ));
            }
        }
    }
    problems
}

#[test]
fn no_source_file_is_over_six_hundred_lines() {
    // LAYOUT_CHECK_WORKSPACE points the check at another checkout's root.
    let workspace = std::env::var_os("LAYOUT_CHECK_WORKSPACE")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            Path::new(env!("CARGO_MANIFEST_DIR"))
                .parent()
                .expect("the workspace root")
                .to_path_buf()
        });
    let problems = oversized(&workspace);
    assert!(
        problems.is_empty(),
        "source files too long:\n  {}",
        problems.join("\n  ")
    );
}

/// The size check itself: a long file is named, test files and short files are not.
#[test]
fn the_size_check_names_a_long_file_and_spares_test_code() {
    let dir = std::env::temp_dir().join(format!("layout-size-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let write = |rel: &str, lines: usize| {
        let p = dir.join(rel);
        std::fs::create_dir_all(p.parent().expect("parent")).expect("mkdir");
        std::fs::write(p, "fn f() {}\n".repeat(lines)).expect("write");
    };
    write("shared/src/dispatch/long.rs", MAX_LINES + 1);
    write("shared/src/dispatch/short.rs", MAX_LINES);
    write("shared/src/dispatch/tests.rs", 2 * MAX_LINES);
    write("shared/src/protocol/scan_tests.rs", 2 * MAX_LINES);
    write("functions/tests/long.rs", 2 * MAX_LINES);
    write("functions/src/long.rs", MAX_LINES + 5);
    write("bench/src/driver/long.rs", MAX_LINES + 9);
    let problems = oversized(&dir);
    let _ = std::fs::remove_dir_all(&dir);
    assert_eq!(
        problems,
        [
            "shared/src/dispatch/long.rs: 601 lines, over 600: split it by role (test code aside)",
            "functions/src/long.rs: 605 lines, over 600: split it by role (test code aside)",
            "bench/src/driver/long.rs: 609 lines, over 600: split it by role (test code aside)",
        ]
    );
}

#[test]
fn the_crate_keeps_its_layout_rules() {
    // LAYOUT_CHECK_ROOT points the check at another tree (e.g. an older checkout's src/).
    let root = std::env::var_os("LAYOUT_CHECK_ROOT")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("src"));
    let problems = violations(&root);
    assert!(
        problems.is_empty(),
        "layout rules broken:\n  {}",
        problems.join("\n  ")
    );
}

/// The checker itself: a small tree breaking every rule is caught, rule by rule.
#[test]
fn the_checker_catches_each_broken_rule() {
    let dir = std::env::temp_dir().join(format!("layout-check-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let write = |rel: &str, text: &str| {
        let p = dir.join(rel);
        std::fs::create_dir_all(p.parent().expect("parent")).expect("mkdir");
        std::fs::write(p, text).expect("write");
    };
    write("lib.rs", "pub mod store; pub mod jobs;");
    // store → jobs → store: a cycle; store also reads the environment and names the SDK.
    write(
        "store/mod.rs",
        "use crate::jobs::X; fn f() { let _ = std::env::var(\"A\"); let _ = aws_sdk_dynamodb::Client::new; }",
    );
    write("jobs/mod.rs", "use crate::{store::Y, time};");
    // transport imports incoming and names crate::aws.
    write(
        "transport/http.rs",
        "use super::super::incoming::App; use crate::aws::x;",
    );
    write("incoming/mod.rs", "");
    write("aws/mod.rs", "use aws_config::SdkConfig;");
    write("time.rs", "");
    // Comments, strings and test modules do not count.
    write(
        "codec.rs",
        "// crate::app std::env::var\nconst S: &str = \"aws_smithy=debug crate::app\";\n#[cfg(test)]\nmod tests { use crate::app::X; }",
    );
    write("app/mod.rs", "fn f() { let _ = std::env::var(\"A\"); }");
    let problems = violations(&dir);
    let _ = std::fs::remove_dir_all(&dir);
    let has = |needle: &str| problems.iter().any(|p| p.contains(needle));
    assert!(
        has("store/mod.rs: `store` uses `jobs`") || has("import cycle"),
        "{problems:?}"
    );
    assert!(has("import cycle: jobs → store → jobs"), "{problems:?}");
    assert!(has("store/mod.rs: reads the environment"), "{problems:?}");
    assert!(has("store/mod.rs: names the AWS SDK"), "{problems:?}");
    assert!(has("transport imports `incoming`"), "{problems:?}");
    assert!(has("transport/http.rs: names `crate::aws`"), "{problems:?}");
    assert!(
        has("transport/http.rs: `transport` uses `aws`, a later layer"),
        "{problems:?}"
    );
    assert!(
        !problems.iter().any(|p| p.starts_with("codec.rs")),
        "{problems:?}"
    );
    assert!(
        !problems.iter().any(|p| p.starts_with("app/")),
        "{problems:?}"
    );
    assert!(
        !problems.iter().any(|p| p.starts_with("aws/")),
        "{problems:?}"
    );
}
