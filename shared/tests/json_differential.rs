//! Differential test of the JSON engine against Node: generated JSON texts go through our parse
//! and writer (`protocol::json::from_slice` + `protocol::json::to_vec`, what every transport
//! uses) and through Node's `JSON.stringify(JSON.parse(text))`; the outputs must be the same
//! bytes.
//!
//! The texts stress what differs between JSON engines: key order, repeated keys (`JSON.parse`
//! keeps the last value at the first key's position), number spellings (`1.0`, `1E5`, `-0`,
//! integers past 2^53 and past u64, tiny and huge exponents), escapes (`\/`, `\u00e9`, control
//! characters, U+2028, surrogate pairs), whitespace, deep nesting.
//!
//! Two inputs Node accepts cannot be held by a `serde_json::Value`: a lone surrogate escape
//! (`"\ud800"`) and a number beyond f64's range (`1e400`, which Node reads as Infinity and
//! writes as `null`); the value path refuses them (the test checks that these are its only
//! disagreements). The page path, where records nobody reads are written back from their own
//! text, must agree with Node on every text Node reads, these and deep nesting included; and
//! invalid UTF-8 must be read as Node's `Buffer` reads it.
//!
//! Runs `node` as a subprocess; skipped, with the reason printed, only when `node` is absent.

use integrator_lambda::Options;
use integrator_lambda::dispatch::kinds::{FunctionKind, PreSavePage};
use integrator_lambda::protocol::{json, scan};
use integrator_lambda::types::PreSavePageOptions;
use std::io::Write;
use std::process::{Command, Stdio};

/// Deterministic generator (xorshift64*).
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
    fn pick<'a>(&mut self, xs: &[&'a str]) -> &'a str {
        xs[self.below(xs.len() as u64) as usize]
    }
}

/// Which of the two known disagreements a text contains.
#[derive(Default, Clone, Copy)]
struct Unrepresentable {
    lone_surrogate: bool,
    out_of_range: bool,
}

const NUMBERS: &[&str] = &[
    "0",
    "-0",
    "0.0",
    "-0.0",
    "1",
    "1.0",
    "1.50",
    "100",
    "1E2",
    "1e+2",
    "1e-2",
    "0.1",
    "0.000001",
    "0.0000001",
    "1e-7",
    "1.5e-7",
    "123456789",
    "9007199254740991",
    "9007199254740993",
    "18446744073709551615",
    "18446744073709551616",
    "-9223372036854775808",
    "-9223372036854775809",
    "123456789012345678901234567890",
    "1e16",
    "1e20",
    "1e21",
    "1.5e21",
    "123456789012345680000",
    "1e308",
    "1.7976931348623157e308",
    "5e-324",
    "1e-400",
    "2.5e-5",
    "0.30000000000000004",
    "3.141592653589793238462643383279",
    "-273.15",
    "6.02214076e23",
];

const OUT_OF_RANGE: &[&str] = &["1e400", "-1e400", "1.8e308"];

const STRINGS: &[&str] = &[
    "",
    "plain",
    "Zürich",
    "中文",
    "emoji 😀",
    r"esc \/ slash",
    r#"quote \" backslash \\"#,
    r"\b\f\n\r\t",
    r"\u0000\u0001\u001f",
    r"\u007f\u0080\u00e9",
    r"\u00E9",
    "raw \u{7f} del",
    r"\u2028\u2029",
    "raw \u{2028} line sep",
    r"\ud83d\ude00",
    r"\uD83D\uDE00",
    r"\uffff\ufeff",
    "<script>&amp;</script>",
];

const LONE_SURROGATES: &[&str] = &[r"\ud800", r"a\udc00b", r"\udbff\u0041", r"\ude00\ud83d"];

const KEYS: &[&str] = &[
    "id",
    "name",
    "a",
    "b",
    "z",
    "",
    "1",
    "10",
    "2",
    "01",
    "-1",
    "4294967294",
    "4294967295",
    "é",
    r"\u0061",
    r"\u0031",
    "__proto__",
    "data",
];

fn value(r: &mut Rng, depth: u32, u: &mut Unrepresentable, out: &mut String) {
    let ws = |r: &mut Rng, out: &mut String| {
        if r.below(8) == 0 {
            out.push_str(r.pick(&[" ", "\n", "\t", "\r\n  "]));
        }
    };
    ws(r, out);
    let kind = if depth >= 5 { r.below(4) } else { r.below(7) };
    match kind {
        0 => {
            if r.below(40) == 0 {
                u.out_of_range = true;
                out.push_str(r.pick(OUT_OF_RANGE));
            } else {
                out.push_str(r.pick(NUMBERS));
            }
        }
        1 => {
            out.push('"');
            if r.below(40) == 0 {
                u.lone_surrogate = true;
                out.push_str(r.pick(LONE_SURROGATES));
            } else {
                out.push_str(r.pick(STRINGS));
            }
            out.push('"');
        }
        2 => out.push_str(r.pick(&["true", "false", "null"])),
        3 => {
            // A random double, printed with Rust's shortest round trip (may use e-notation).
            let bits = r.next();
            let f = f64::from_bits(bits);
            if f.is_finite() {
                out.push_str(&format!("{f:e}"));
            } else {
                out.push_str(&format!("{}", (bits % 1_000_000) as f64 / 8.0));
            }
        }
        4 | 5 => {
            out.push('{');
            let n = r.below(6);
            for i in 0..n {
                if i > 0 {
                    out.push(',');
                }
                ws(r, out);
                // Repeated keys are likely: KEYS is short.
                out.push('"');
                out.push_str(r.pick(KEYS));
                out.push('"');
                ws(r, out);
                out.push(':');
                value(r, depth + 1, u, out);
            }
            ws(r, out);
            out.push('}');
        }
        _ => {
            out.push('[');
            let n = r.below(5);
            for i in 0..n {
                if i > 0 {
                    out.push(',');
                }
                value(r, depth + 1, u, out);
            }
            out.push(']');
        }
    }
    ws(r, out);
}

/// `JSON.stringify(JSON.parse(text))` for each text (`None` where Node's parse throws). The
/// texts go to Node as one JSON array of strings and come back the same way, so any character
/// may appear in them.
fn node_stringify(texts: &[String]) -> Option<Vec<Option<String>>> {
    let script = r#"
const texts = JSON.parse(require('fs').readFileSync(0, 'utf8'));
const out = texts.map(t => { try { return JSON.stringify(JSON.parse(t)); } catch (e) { return null; } });
process.stdout.write(JSON.stringify(out));
"#;
    let mut child = match Command::new("node")
        .arg("-e")
        .arg(script)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
    {
        Ok(c) => c,
        Err(e) => {
            println!("SKIPPED: node is not available ({e}); the differential test needs it");
            return None;
        }
    };
    let input = serde_json::to_vec(texts).expect("texts as JSON");
    let mut stdin = child.stdin.take().expect("stdin");
    let writer = std::thread::spawn(move || stdin.write_all(&input));
    let out = child.wait_with_output().expect("node output");
    writer.join().expect("writer").expect("write to node");
    assert!(out.status.success(), "node failed: {:?}", out.status);
    Some(serde_json::from_slice(&out.stdout).expect("node's answer is a JSON array"))
}

/// The lazy path: `line` as the one record of a page (`Options::from_payload`, typed options,
/// the record written back untouched), and whether the scan found it canonical (passed through
/// as its own text).
fn ours_lazy(line: &str) -> Option<(String, bool)> {
    let page = format!(r#"{{"_flowId":"f","data":[{line}],"pageIndex":0}}"#);
    let page = bytes::Bytes::from(page);
    let options = Options::from_payload(page.clone()).ok()?;
    let o: PreSavePageOptions = PreSavePage::read_options(options).ok()?;
    // As the transports send it: in pieces, the record from the request's bytes when it passes
    // through; the same bytes as the writer in one buffer.
    let pieces = integrator_lambda::protocol::text::within(Some(page.clone()), || {
        integrator_lambda::protocol::text::to_text(&o.data)
    })
    .expect("serialize");
    let whole = json::to_vec(&o.data).expect("serialize");
    assert_eq!(pieces.to_bytes().as_ref(), whole.as_slice(), "{line}");
    let text = String::from_utf8(whole).expect("UTF-8");
    let record = text.strip_prefix('[')?.strip_suffix(']')?.to_owned();
    let canonical = scan::canonical(line.as_bytes()) == Some(true);
    Some((record, canonical))
}

fn ours(line: &str) -> Option<String> {
    let v = json::from_slice(line.as_bytes()).ok()?;
    Some(String::from_utf8(json::to_vec(&v).expect("serialize")).expect("UTF-8"))
}

#[test]
fn output_is_byte_identical_to_node_json_stringify() {
    let mut r = Rng(0x5EED_1234_ABCD_0001);
    let mut lines = Vec::new();
    let mut flags = Vec::new();
    // Hand-picked cases first: the documented duplicate-key rule and number spellings.
    for fixed in [
        r#"{"b":1,"a":2,"b":3}"#,
        r#"{"a":{"x":1},"a":{"y":2}}"#,
        r#"{"k":1,"k":2,"k":3,"j":0}"#,
        r#"[1.0,-0,1E5,1e21,1e-7,0.1e1,123456789012345678901234567890]"#,
        r#"{"s":"\/\u00e9\u2028\ud83d\ude00\u001f"}"#,
    ] {
        lines.push(fixed.to_owned());
        flags.push(Unrepresentable::default());
    }
    // What JSON.parse takes and a Value cannot hold, and nesting past serde_json's limit.
    for fixed in [
        r#"{"a":"\ud800","b":[1e999,-1E400],"c":"x\uDC00\ud83d"}"#.to_owned(),
        format!("{}1{}", "[".repeat(500), "]".repeat(500)),
        format!("{}{{}}{}", r#"{"k": ["#.repeat(200), "]}".repeat(200)),
    ] {
        lines.push(fixed);
        flags.push(Unrepresentable {
            lone_surrogate: true,
            out_of_range: true,
        });
    }
    while lines.len() < 3000 {
        let mut u = Unrepresentable::default();
        let mut text = String::new();
        // Transports parse objects and arrays; the engine itself takes any value.
        value(&mut r, 0, &mut u, &mut text);
        lines.push(text);
        flags.push(u);
    }
    let Some(node) = node_stringify(&lines) else {
        return;
    };
    assert_eq!(node.len(), lines.len(), "one answer per line from node");
    let (mut same, mut refused) = (0, 0);
    for ((line, want), u) in lines.iter().zip(&node).zip(&flags) {
        match ours(line) {
            Some(got) => {
                assert_eq!(
                    Some(&got),
                    want.as_ref(),
                    "differs from JSON.stringify for input {line}"
                );
                same += 1;
            }
            None => {
                assert!(
                    u.lone_surrogate || u.out_of_range || want.is_none(),
                    "we refused {line}, which Node reads as {want:?}"
                );
                refused += 1;
            }
        }
    }
    println!(
        "{same} texts byte-identical to Node; {refused} refused (lone surrogates, numbers past f64, or invalid for both)"
    );
    assert!(same > 2500, "too few comparable cases: {same}");

    // The lazy path (records kept as text, written back untouched) on the same texts, and on
    // Node's own output (what integrator.io sends: already `JSON.stringify`'s form, so the
    // scan should pass most of it straight through).
    let (mut lazy_same, mut passed_through, mut node_canonical, mut node_texts) = (0, 0, 0, 0);
    for (line, want) in lines.iter().zip(&node) {
        if let Some((got, canonical)) = ours_lazy(line) {
            assert_eq!(
                Some(&got),
                want.as_ref(),
                "the lazy path differs from JSON.stringify for input {line}"
            );
            lazy_same += 1;
            passed_through += usize::from(canonical);
        } else {
            assert!(
                want.is_none(),
                "the lazy path refused {line}, which Node reads"
            );
        }
        if let Some(stringified) = want {
            let Some((got, canonical)) = ours_lazy(stringified) else {
                panic!("Node's own output refused: {stringified}");
            };
            assert_eq!(&got, stringified, "Node's output was not kept as it is");
            node_texts += 1;
            node_canonical += usize::from(canonical);
        }
    }
    println!(
        "lazy path: {lazy_same} texts byte-identical to Node ({passed_through} passed through as \
         their own text); {node_canonical} of Node's {node_texts} outputs found canonical"
    );
    assert_eq!(
        lazy_same,
        node.iter().flatten().count(),
        "the lazy path refused what Node reads"
    );
    assert!(lazy_same > same, "no text only the lazy path reads");
    // Random doubles (17 digits, exponents) are common in these texts and are left to the
    // general writer, so only a part of Node's outputs qualify here.
    assert!(
        node_canonical * 3 >= node_texts,
        "too few of Node's outputs found canonical: {node_canonical} of {node_texts}"
    );
}

/// Decimals with trailing zeros in their fraction (`3.0`, `-12.500`, `0.0000010`: how Python and
/// other writers spell floats), written back untouched on the page path, must be what
/// `JSON.stringify` writes for them: the rewrite drops the zeros without reading the number
/// when what is left is plain, and reads it otherwise. Digits, signs, leading zeros of the
/// fraction and lengths around the 15-digit and 1e-6 edges are drawn at random.
#[test]
fn decimals_with_trailing_zeros_are_written_as_node_writes_them() {
    let mut r = Rng(0x5EED_0000_3000_0001);
    let digit = |r: &mut Rng| char::from(b'0' + r.below(10) as u8);
    let mut lines = Vec::new();
    for _ in 0..200 {
        let mut numbers = Vec::new();
        for _ in 0..50 {
            let mut n = String::new();
            if r.below(3) == 0 {
                n.push('-');
            }
            if r.below(3) == 0 {
                n.push('0');
            } else {
                n.push(char::from(b'1' + r.below(9) as u8));
                for _ in 0..r.below(18) {
                    n.push(digit(&mut r));
                }
            }
            n.push('.');
            for _ in 0..r.below(8) {
                n.push('0');
            }
            for _ in 0..r.below(12) {
                n.push(digit(&mut r));
            }
            for _ in 0..=r.below(4) {
                n.push('0');
            }
            numbers.push(n);
        }
        lines.push(format!("[{}]", numbers.join(", ")));
    }
    let Some(node) = node_stringify(&lines) else {
        return;
    };
    for (line, want) in lines.iter().zip(&node) {
        let (got, _) = ours_lazy(line).expect("the page path reads it");
        assert_eq!(
            Some(&got),
            want.as_ref(),
            "differs from JSON.stringify: {line}"
        );
    }
}

/// Invalid UTF-8 in a page: Node's transports decode the body with `Buffer`'s UTF-8 decoder
/// (each invalid sequence becomes U+FFFD) before `JSON.parse`; the page path reads it the same
/// way, and the record comes back as Node writes it.
#[test]
fn invalid_utf8_is_read_as_node_reads_it() {
    let records: Vec<Vec<u8>> = vec![
        b"\"a\xffb\"".to_vec(),
        b"{\"k\xc3\":\"\xe2\x82\",\"n\":1}".to_vec(),
        b"[\"\xf0\x9f\x98\",\"\xed\xa0\x80\",\"\xc0\xaf\",\"ok \xc3\xa9\"]".to_vec(),
    ];
    let pages: Vec<Vec<u8>> = records
        .iter()
        .map(|r| [&b"{\"_flowId\":\"f\",\"data\":[1,"[..], r, b"]}"].concat())
        .collect();
    let script = r#"
const pages = JSON.parse(require('fs').readFileSync(0, 'utf8'));
const out = pages.map(h => JSON.stringify(JSON.parse(Buffer.from(h, 'hex').toString('utf8')).data));
process.stdout.write(JSON.stringify(out));
"#;
    let hex: Vec<String> = pages
        .iter()
        .map(|p| p.iter().map(|b| format!("{b:02x}")).collect())
        .collect();
    let mut child = match Command::new("node")
        .arg("-e")
        .arg(script)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
    {
        Ok(c) => c,
        Err(e) => {
            println!("SKIPPED: node is not available ({e})");
            return;
        }
    };
    let mut stdin = child.stdin.take().expect("stdin");
    stdin
        .write_all(&serde_json::to_vec(&hex).expect("hex"))
        .expect("write to node");
    drop(stdin);
    let out = child.wait_with_output().expect("node output");
    assert!(out.status.success());
    let node: Vec<String> = serde_json::from_slice(&out.stdout).expect("node's answer");
    for (page, want) in pages.iter().zip(&node) {
        let options = Options::from_payload(bytes::Bytes::from(page.clone())).expect("read");
        let o: PreSavePageOptions = PreSavePage::read_options(options).expect("options");
        let got = String::from_utf8(json::to_vec(&o.data).expect("write")).expect("UTF-8");
        assert_eq!(&got, want, "{page:?}");
    }
}

/// A page past a MiB, whose record array the scan splits in two halves scanned at once (on two
/// cores or more: `protocol::scan`'s `halves`): every record, in every writer's spelling, comes
/// back as Node writes it, and in its own place.
#[test]
fn a_page_scanned_in_halves_is_written_as_node_writes_it() {
    let mut r = Rng(0x5EED_0000_4000_0001);
    let mut lines = Vec::new();
    let mut len = 0;
    while len < 2 << 20 {
        let mut text = String::new();
        value(&mut r, 1, &mut Unrepresentable::default(), &mut text);
        len += text.len() + 16;
        lines.push(text);
    }
    let Some(node) = node_stringify(&lines) else {
        return;
    };
    // Records that are objects (the halves start at a record that opens with `{`), of what Node
    // reads.
    let records: Vec<String> = lines
        .iter()
        .zip(&node)
        .enumerate()
        .filter(|(_, (_, want))| want.is_some())
        .map(|(i, (line, _))| format!(r#"{{"i":{i},"v":{line}}}"#))
        .collect();
    let data = format!("[{}]", records.join(","));
    let want = node_stringify(std::slice::from_ref(&data))
        .and_then(|mut v| v.pop().flatten())
        .expect("Node reads the page's records");
    let page = bytes::Bytes::from(format!(r#"{{"_flowId":"f","data":{data},"pageIndex":0}}"#));
    assert!(page.len() > 2 << 20, "{} bytes", page.len());
    let options = Options::from_payload(page.clone()).expect("the page is split");
    let o: PreSavePageOptions = PreSavePage::read_options(options).expect("typed options");
    assert_eq!(o.data.len(), records.len());
    let got = integrator_lambda::protocol::text::within(Some(page.clone()), || {
        integrator_lambda::protocol::text::to_text(&o.data)
    })
    .expect("serialize");
    assert!(
        got.to_bytes().as_ref() == want.as_bytes(),
        "the page differs from Node's"
    );
}
