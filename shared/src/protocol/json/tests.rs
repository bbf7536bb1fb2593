use super::*;
use serde_json::json;

fn js(v: f64) -> String {
    let mut s = String::new();
    js_number(v, &mut s);
    s
}

#[test]
fn numbers_print_like_javascript() {
    let cases = [
        (1.0, "1"),
        (100.0, "100"),
        (2.5, "2.5"),
        (-3.25, "-3.25"),
        (0.1, "0.1"),
        (0.001, "0.001"),
        (1e-6, "0.000001"),
        (1e-7, "1e-7"),
        (1.5e-7, "1.5e-7"),
        (1e16, "10000000000000000"),
        (1e21, "1e+21"),
        (1.5e21, "1.5e+21"),
        (123456789012345680000.0, "123456789012345680000"),
        (-0.0, "0"),
        (f64::MAX, "1.7976931348623157e+308"),
        (5e-324, "5e-324"),
    ];
    for (v, want) in cases {
        assert_eq!(js(v), want, "formatting {v:e}");
    }
}

/// The general algorithm of `js_number`, without the plain-decimal shortcut.
fn js_general(v: f64) -> String {
    let mut ryu_buf = ryu::Buffer::new();
    let s = ryu_buf.format_finite(v);
    let (neg, s) = match s.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, s),
    };
    let (mantissa, exp) = match s.split_once(['e', 'E']) {
        Some((m, e)) => (m, e.parse::<i32>().unwrap()),
        None => (s, 0),
    };
    let (int_part, frac_part) = mantissa.split_once('.').unwrap_or((mantissa, ""));
    let digits: String = int_part.chars().chain(frac_part.chars()).collect();
    let n0 = int_part.len() as i32 + exp;
    let lead = digits.len() - digits.trim_start_matches('0').len();
    let digits = digits[lead..].trim_end_matches('0').to_owned();
    let n = n0 - lead as i32;
    let k = digits.len() as i32;
    let mut out = String::from(if neg { "-" } else { "" });
    if k <= n && n <= 21 {
        out.push_str(&digits);
        out.extend(std::iter::repeat_n('0', (n - k) as usize));
    } else if 0 < n && n <= 21 {
        out.push_str(&format!(
            "{}.{}",
            &digits[..n as usize],
            &digits[n as usize..]
        ));
    } else if -6 < n && n <= 0 {
        out.push_str("0.");
        out.extend(std::iter::repeat_n('0', (-n) as usize));
        out.push_str(&digits);
    } else {
        let e = n - 1;
        let frac = if k > 1 {
            format!(".{}", &digits[1..])
        } else {
            String::new()
        };
        out.push_str(&format!(
            "{}{frac}e{}{}",
            &digits[..1],
            if e < 0 { '-' } else { '+' },
            e.abs()
        ));
    }
    out
}

#[test]
fn plain_decimal_shortcut_agrees_with_the_general_algorithm() {
    let mut vals = vec![
        0.5, 1.25, 3.0, 123.456, 1e15, 9.999e15, 1e16, 1.5e16, 1e-4, 1.5e-5,
    ];
    // Deterministic spread over many magnitudes (xorshift).
    let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
    for _ in 0..20_000 {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        let mantissa = (x >> 11) as f64 / (1u64 << 53) as f64;
        let exp = (x % 60) as i32 - 30;
        vals.push(mantissa * 10f64.powi(exp));
        vals.push((x % 1_000_000) as f64 * 0.25);
    }
    for v in vals {
        for v in [v, -v] {
            if v != 0.0 {
                assert_eq!(js(v), js_general(v), "formatting {v:e}");
                let mut out = Vec::new();
                JsFormatter.write_f64(&mut out, v).unwrap();
                assert_eq!(String::from_utf8(out).unwrap(), js_general(v));
            }
        }
    }
}

#[test]
fn compact_output_keeps_key_order_and_js_escapes() {
    let v: Value = serde_json::from_str(
        r#"{"b":1,"a":[1.0,2.50,-0.0],"s":"q\"b\\s/t\tn\nc\u0001d\u007f","ls":"a\u2028b"}"#,
    )
    .unwrap();
    assert_eq!(
        to_string(&v).unwrap(),
        "{\"b\":1,\"a\":[1,2.5,0],\"s\":\"q\\\"b\\\\s/t\\tn\\nc\\u0001d\u{7f}\",\"ls\":\"a\u{2028}b\"}"
    );
}

/// What `JSON.stringify` writes for an object built from these entries in this order:
/// array-index keys ascending first, then the others in insertion order.
#[test]
fn typed_maps_with_integer_keys_are_written_in_javascripts_key_order() {
    use std::collections::{BTreeMap, HashMap};
    // Enough keys that hash order is all but certainly not ascending.
    let m: HashMap<u32, u32> = (0..64u32).map(|k| (k * 7 % 64, k)).collect();
    let want = format!(
        "{{{}}}",
        (0..64u32)
            .map(|k| format!("\"{k}\":{}", m[&k]))
            .collect::<Vec<_>>()
            .join(",")
    );
    assert_eq!(to_string(&m).unwrap(), want);
    // Every integer width; a negative or too-large key is an ordinary (string) key, written
    // after the index keys. JSON.stringify({"-1":"a","4294967295":"b","7":"c"}) is
    // {"7":"c","-1":"a","4294967295":"b"}.
    let signed: BTreeMap<i64, &str> = BTreeMap::from([(-1, "a"), (4_294_967_295, "b"), (7, "c")]);
    assert_eq!(
        to_string(&signed).unwrap(),
        r#"{"7":"c","-1":"a","4294967295":"b"}"#
    );
    let small: BTreeMap<i8, u8> = BTreeMap::from([(-3, 1), (2, 2)]);
    assert_eq!(to_string(&small).unwrap(), r#"{"2":2,"-3":1}"#);
    let u16s: HashMap<u16, bool> = HashMap::from([(300, true), (20, false), (1, true)]);
    assert_eq!(
        to_string(&u16s).unwrap(),
        r#"{"1":true,"20":false,"300":true}"#
    );
    // Inside a record (struct field), beside string keys.
    #[derive(serde::Serialize)]
    struct Page {
        counts: HashMap<u64, u64>,
    }
    let page = Page {
        counts: HashMap::from([(10, 1), (9, 2)]),
    };
    assert_eq!(to_string(&page).unwrap(), r#"{"counts":{"9":2,"10":1}}"#);
}

/// A key is a string in JavaScript: a `u64` key above 2^53 keeps its digits (only a number
/// *value* above 2^53 becomes the nearest double).
#[test]
fn integer_keys_above_2_pow_53_keep_every_digit() {
    use std::collections::BTreeMap;
    let big = (1u64 << 53) + 1;
    let m: BTreeMap<u64, u64> = BTreeMap::from([(big, big), (u64::MAX, 1)]);
    assert_eq!(
        to_string(&m).unwrap(),
        r#"{"9007199254740993":9007199254740992,"18446744073709551615":1}"#
    );
    let m: BTreeMap<i64, u8> = BTreeMap::from([(i64::MIN, 1)]);
    assert_eq!(to_string(&m).unwrap(), r#"{"-9223372036854775808":1}"#);
    let m: BTreeMap<u128, u8> = BTreeMap::from([(u128::MAX, 1)]);
    assert_eq!(
        to_string(&m).unwrap(),
        r#"{"340282366920938463463374607431768211455":1}"#
    );
    let m: BTreeMap<i128, u8> = BTreeMap::from([(i128::MIN, 1)]);
    assert_eq!(
        to_string(&m).unwrap(),
        r#"{"-170141183460469231731687303715884105728":1}"#
    );
}

#[test]
fn utf16_length_counts_surrogate_pairs() {
    assert_eq!(utf16_len(&to_string(&json!(["é€😀"])).unwrap()), 8);
    assert_eq!(utf16_len("null"), 4);
    assert_eq!(utf16_len(""), 0);
    assert_eq!(utf16_len("中文"), 2);
}
