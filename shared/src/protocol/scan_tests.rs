//! The scan's tests (kept beside `scan.rs`).
use super::*;

#[test]
fn what_json_stringify_writes_is_canonical() {
    for t in [
        r#"{"a":1,"b":[true,false,null],"c":{"d":"x\ny\u001f"},"e":-1.5,"f":0.000001}"#,
        r#"{"0":1,"2":2,"b":3}"#,
        r#""é😀 \"q\" \\ / \u0000""#,
        "123456789012345",
        "0.1",
        "-0.25",
        "[]",
        "{}",
    ] {
        assert_eq!(canonical(t.as_bytes()), Some(true), "{t}");
    }
}

#[test]
fn anything_stringify_would_write_differently_is_not() {
    for t in [
        r#"{"a": 1}"#,
        " 1",
        r#"{"a":1,"a":2}"#,
        r#"{"b":1,"0":2}"#,
        r#"{"2":1,"1":2}"#,
        r#""\/""#,
        r#""\u0041""#,
        r#""\u000a""#,
        r#""\u001F""#,
        "1.0",
        "1e2",
        "-0",
        "1234567890123456",
        "0.0000001",
        "1.2345678901234567",
    ] {
        assert_eq!(canonical(t.as_bytes()), Some(false), "{t}");
    }
}

#[test]
fn what_the_general_parser_may_refuse_is_suspicious() {
    for t in [r#""\ud800""#, "1e400", &"[".repeat(120), &"9".repeat(400)] {
        assert_eq!(canonical(t.as_bytes()), None, "{t}");
    }
}

#[test]
fn what_serde_json_refuses_is_never_split() {
    for t in [
        &b"{\"a\":\"\x01\"}"[..],
        b"{\"a\":\"\xff\"}",
        br#"{"a":"\u+123"}"#,
        br#"{"a":"\x"}"#,
        br#"{"a":[1,]}"#,
        br#"{"a":1,}"#,
        br#"{"a":01}"#,
        br#"{"a":1.}"#,
        br#"{"a":-}"#,
        br#"{"a":tru}"#,
        br#"{"a":1} x"#,
        br#"{"a" 1}"#,
        br#"{a:1}"#,
    ] {
        assert!(serde_json::from_slice::<serde_json::Value>(t).is_err());
        let want = if std::str::from_utf8(t).is_ok() {
            NotSplit::Suspicious
        } else {
            NotSplit::NotUtf8
        };
        assert_eq!(split_options(t), Err(want), "{t:?}");
    }
}

#[test]
fn options_split_into_fields_and_records() {
    let t = br#"{"data":[{"a":1},{"b": 2}],"_flowId":"f","data":[1,{"c":3}],"x":{"data":[]}}"#;
    let f = split_options(t).unwrap();
    assert_eq!(
        f.iter().map(|f| f.key.as_str()).collect::<Vec<_>>(),
        ["data", "_flowId", "x"]
    );
    let records = f[0].records.as_ref().unwrap();
    let texts: Vec<&[u8]> = records.iter().map(|r| &t[r.range()]).collect();
    assert_eq!(texts, [&b"1"[..], br#"{"c":3}"#]);
    assert!(records.iter().all(|r| r.canonical));
    assert!(f[2].records.is_none());
    assert_eq!(&t[f[1].start..f[1].end], br#""f""#);
    assert_eq!(split_options(b"[1]"), Err(NotSplit::NotObject));
    let body = br#"{"function":"f","options":{"data":[{"a":1}],"x":2},"diy":true}"#;
    let f = split_body(body).unwrap();
    let inner = f[1].fields.as_ref().unwrap();
    assert_eq!(inner[0].records.as_ref().unwrap().len(), 1);
    assert_eq!(&body[inner[1].start..inner[1].end], b"2");
    assert!(f[0].fields.is_none() && f[0].records.is_none());
    assert_eq!(
        split_options(br#"{"x":["\ud800"]}"#),
        Err(NotSplit::Suspicious)
    );
}

/// What `JSON.parse` takes and serde_json may refuse, inside a record: that record is not
/// canonical (it is rewritten on its own), and the page still splits.
#[test]
fn inside_a_record_what_json_parse_takes_only_makes_it_not_canonical() {
    let deep = format!("{}1{}", "[".repeat(500), "]".repeat(500));
    let deep_obj = format!("{}1{}", r#"{"a":["#.repeat(300), "]}".repeat(300));
    for rec in [r#""\ud800""#, "1e999", &"9".repeat(400), &deep, &deep_obj] {
        let t = format!(r#"{{"data":[{{"ok":1}},{rec},2],"x":1}}"#);
        let f = split_options(t.as_bytes()).unwrap_or_else(|e| panic!("{e:?}: {rec}"));
        let records = f[0].records.as_ref().unwrap();
        let spans: Vec<_> = records
            .iter()
            .map(|r| (&t[r.range()], r.canonical))
            .collect();
        assert_eq!(spans, [(r#"{"ok":1}"#, true), (rec, false), ("2", true)]);
    }
    // Beyond MAX_RECORD_DEPTH, or malformed deep down: the general path decides.
    let too_deep = format!(
        "{}{}",
        "[".repeat(MAX_RECORD_DEPTH + 10),
        "]".repeat(MAX_RECORD_DEPTH + 10)
    );
    let bad_deep = format!("{}1,{}", "[".repeat(200), "]".repeat(200));
    for rec in [too_deep, bad_deep] {
        let t = format!(r#"{{"data":[{rec}]}}"#);
        assert_eq!(split_options(t.as_bytes()), Err(NotSplit::Suspicious));
    }
}

/// The scan tells the rewrite when a record's keys are already in JavaScript's order, in
/// records that are not canonical too; it never claims it for keys it cannot compare by their
/// text (an escape other than `JSON.stringify`'s: `"\u0061"` is `"a"`).
#[test]
fn records_say_whether_their_keys_are_in_javascripts_order() {
    let t = concat!(
        r#"{"data":[{"a": 1.0, "b": {"0":1, "1":2}}, {"a":1,"b":2,"a":3}, "#,
        r#"{"b":1,"0":2}, {"\u0061":1,"a":2}, {"\n":1,"\n":2}, {"x":{"y":1,"y":2}}, "#,
        r#"{"a\n":1,"a":2}],"x":1}"#
    );
    let f = split_options(t.as_bytes()).unwrap();
    let verdicts: Vec<(bool, bool)> = f[0]
        .records
        .as_ref()
        .unwrap()
        .iter()
        .map(|r| (r.canonical, r.keys_in_order))
        .collect();
    assert_eq!(
        verdicts,
        [
            (false, true),
            (false, false),
            (false, false),
            (false, false),
            (false, false),
            (false, false),
            (true, true),
        ]
    );
}

#[test]
fn only_escapes_json_stringify_writes_keep_a_keys_text_its_only_spelling() {
    for k in ["", "a", r#"a\"b\\c"#, r"\b\f\n\r\t", r"\u0000\u001f\u000b"] {
        assert!(chars::escaped_as_node_writes(k.as_bytes()), "{k}");
    }
    for k in [
        r"\/", r"\u0061", r"\u001F", r"\u000a", r"\u0008", r"\ud800", r"x\u00e9",
    ] {
        assert!(!chars::escaped_as_node_writes(k.as_bytes()), "{k}");
    }
}

proptest::proptest! {
    /// The eight-bytes-at-a-time search finds what a byte-by-byte one finds, and sees the same
    /// bytes past ASCII before it, wherever the stop falls in a word.
    #[test]
    fn the_string_stop_agrees_with_a_byte_by_byte_search(
        b in proptest::collection::vec(proptest::prop_oneof![
            0x20u8..0x7f, 0x80u8..=0xff, proptest::strategy::Just(b'"'),
            proptest::strategy::Just(b'\\'), 0u8..0x20,
        ], 0..40)
    ) {
        let naive = b
            .iter()
            .position(|&c| c == b'"' || c == b'\\' || c < 0x20)
            .map(|at| (at, !b[..at].is_ascii()));
        proptest::prop_assert_eq!(string_stop(&b), naive);
    }

    /// A string read a word at a time up to its closing quote ends where the general reading
    /// of it ends, with the same verdict (escapes, bytes past ASCII checked as UTF-8, control
    /// characters refused), wherever its end falls in a word.
    #[test]
    fn a_string_read_a_word_at_a_time_agrees_with_the_general_reading(
        b in proptest::collection::vec(proptest::prop_oneof![
            0x20u8..0x7f, 0x80u8..=0xff, proptest::strategy::Just(b'"'),
            proptest::strategy::Just(b'\\'), proptest::strategy::Just(b'n'), 0u8..0x20,
        ], 0..40)
    ) {
        let mut text = vec![b'"'];
        text.extend_from_slice(&b);
        let mut fast = Scanner::new(&text);
        let read = fast.string();
        let mut general = Scanner::new(&text);
        general.i = 1;
        proptest::prop_assert_eq!(read, general.string_rest(1));
        if read.is_ok() {
            proptest::prop_assert_eq!(fast.i, general.i);
            proptest::prop_assert_eq!(fast.canon, general.canon);
        }
    }

    /// Whitespace skipped eight bytes at a time ends where a byte-by-byte skip ends, from any
    /// start.
    #[test]
    fn whitespace_is_skipped_as_a_byte_by_byte_skip_does(
        b in proptest::collection::vec(proptest::prop_oneof![
            proptest::strategy::Just(b' '), proptest::strategy::Just(b'\n'),
            proptest::strategy::Just(b'\r'), proptest::strategy::Just(b'\t'), proptest::num::u8::ANY,
        ], 0..40),
        start in 0usize..40,
    ) {
        let start = start.min(b.len());
        let naive = b[start..]
            .iter()
            .position(|c| !matches!(c, b' ' | b'\t' | b'\n' | b'\r'))
            .map_or(b.len(), |at| start + at);
        proptest::prop_assert_eq!(skip_ws(&b, start), naive);
    }
}

#[test]
fn invalid_utf8_anywhere_is_not_utf8_and_valid_text_past_ascii_splits() {
    let bad: [&[u8]; 5] = [
        b"\xff",
        b"\xc3",
        b"\xc0\x80",
        b"\xed\xa0\x80",
        b"\xf4\x90\x80\x80",
    ];
    for seq in bad {
        let at = |before: &[u8], after: &[u8]| [before, seq, after].concat();
        for t in [
            // In a record's string, short and past the first eight bytes.
            at(br#"{"data":[{"a":""#, br#""}]}"#),
            at(br#"{"data":[{"a":"Zurich and a long way "#, br#" on"}]}"#),
            // In a key, in a field that is not records, and outside any string.
            at(br#"{"data":[{""#, br#"":1}]}"#),
            at(br#"{"_flowId":"abcdefghij"#, br#""}"#),
            at(br#"{"data":[1,"#, br#"]}"#),
            at(br#"{"a":1}"#, b""),
        ] {
            assert_eq!(split_options(&t), Err(NotSplit::NotUtf8), "{t:?}");
            assert_eq!(canonical(&t), None, "{t:?}");
        }
    }
    let good = r#"{"data":[{"city":"Zürich, a long way from 東京 😀"}]}"#;
    let f = split_options(good.as_bytes()).unwrap();
    assert!(f[0].records.as_ref().unwrap()[0].canonical);
}

/// `text` with a space, a newline or a tab after each `{`, `[`, `:` and `,` outside strings.
fn spaced_out(text: &str) -> String {
    let (mut out, mut in_string, mut escaped) = (String::new(), false, false);
    for (n, c) in text.chars().enumerate() {
        out.push(c);
        if in_string {
            (in_string, escaped) = (escaped || c != '"', !escaped && c == '\\');
        } else if c == '"' {
            in_string = true;
        } else if matches!(c, '{' | '[' | ':' | ',') {
            out.push_str(["\n  ", " ", "\t"][n % 3]);
        }
    }
    out
}

#[test]
fn a_record_canonical_but_for_whitespace_is_spaced_and_rewritten_by_dropping_it() {
    for canonical in [
        r#"{"a":1,"b":[true,false,null],"c":{"d":"x\ny\u001f, {[:"},"e":-1.5,"f":0.000001}"#,
        r#"{"0":1,"2":2,"b":"q\"uo\\te\"","c":[[],{}]}"#,
        r#"[{"Zürich":"東京 😀"},"\\"]"#,
    ] {
        let spaced = spaced_out(canonical);
        assert_ne!(spaced, canonical);
        let t = format!(r#"{{"data":[ {spaced} ]}}"#);
        let f = split_options(t.as_bytes()).unwrap();
        let r = f[0].records.as_ref().unwrap()[0];
        assert_eq!((r.canonical, r.shape()), (false, Shape::Spaced), "{spaced}");
        let mut out = Vec::new();
        let scratch = &mut crate::protocol::rewrite::Scratch::default();
        crate::protocol::rewrite::rewrite_with(
            &t.as_bytes()[r.range()],
            r.shape(),
            scratch,
            &mut out,
        )
        .unwrap();
        assert_eq!(String::from_utf8(out).unwrap(), canonical);
    }
    // Whitespace and anything else not canonical: not merely spaced.
    for other in [
        r#"{"a": 1.0}"#,
        r#"{"b": 1, "a": 2, "b": 3}"#,
        r#"{"a": "\/"}"#,
        r#"{"1": 1, "0": 2}"#,
    ] {
        let t = format!(r#"{{"data":[{other}]}}"#);
        let f = split_options(t.as_bytes()).unwrap();
        assert_ne!(
            f[0].records.as_ref().unwrap()[0].shape(),
            Shape::Spaced,
            "{other}"
        );
    }
}
