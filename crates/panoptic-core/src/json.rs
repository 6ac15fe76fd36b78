//! JSON as JavaScript's `JSON.stringify` writes it, for the JSON text that stands for a JS value
//! (delivery trees, `/metrics.json`, `/healthz`): what a client reads over HTTP is then byte for
//! byte what `JSON.stringify` of the `'delivery'` event gives.
//! - Numbers in `Number.prototype.toString`'s form (`2000`, `0.1`, `1e+21`, `1e-7`; `-0` is `0`),
//!   not serde_json's (`2000.0`, `1e21`); non-finite ones `null`, as `JSON.stringify` writes them.
//! - Strings as serde_json escapes them: the same escapes as `JSON.stringify`'s (`\"`, `\\`,
//!   `\n`, ..., `\u001f`) for every Rust string (which cannot hold a lone surrogate).
//! - Object keys in the order a JS object enumerates them: array indexes (`"0"`, `"7"`, `"10"`:
//!   canonical integers below 2^32 - 1) first, in numeric order, then the others in the order
//!   given. `JSON.parse('{"b":1,"10":2,"9":3}')` stringifies as `{"9":3,"10":2,"b":1}`.

use std::cmp::Ordering;

/// Appends `x` as JSON.stringify writes a number.
pub fn number(x: f64, out: &mut Vec<u8>) {
    if x.is_finite() {
        out.extend_from_slice(ryu_js::Buffer::new().format_finite(x).as_bytes());
    } else {
        out.extend_from_slice(b"null");
    }
}

/// Appends `s` as a JSON string.
pub fn string(s: &str, out: &mut Vec<u8>) {
    serde_json::to_writer(&mut *out, s).expect("writing to a Vec cannot fail");
}

/// Whether a JS object takes `key` for an array index (ECMAScript's CanonicalNumericIndexString
/// of an integer from 0 to 2^32 - 2), which it enumerates before its other keys.
pub fn is_array_index(key: &str) -> bool {
    let b = key.as_bytes();
    match b {
        [] => false,
        [b'0'] => true,
        [b'0', ..] => false,
        _ if b.len() > 10 || !b.iter().all(u8::is_ascii_digit) => false,
        _ => key.parse::<u64>().is_ok_and(|n| n < u64::from(u32::MAX)),
    }
}

/// Orders two keys as a JS object enumerates them: array indexes first, by value; other keys
/// keep their order (Equal, for a stable sort).
pub fn key_order(a: &str, b: &str) -> Ordering {
    match (is_array_index(a), is_array_index(b)) {
        // Canonical integers: the shorter is smaller, then the text order is the numeric one.
        (true, true) => a.len().cmp(&b.len()).then_with(|| a.cmp(b)),
        (true, false) => Ordering::Less,
        (false, true) => Ordering::Greater,
        (false, false) => Ordering::Equal,
    }
}

/// Appends `value` as `JSON.stringify(JSON.parse(text of value))` writes it: every number as a
/// JS number (integers beyond 2^53 round as JSON.parse rounds them), keys in a JS object's
/// order.
pub fn value(value: &serde_json::Value, out: &mut Vec<u8>) {
    use serde_json::Value;
    match value {
        Value::Null => out.extend_from_slice(b"null"),
        Value::Bool(b) => out.extend_from_slice(if *b { b"true" } else { b"false" }),
        Value::Number(n) => number(n.as_f64().unwrap_or(f64::NAN), out),
        Value::String(s) => string(s, out),
        Value::Array(items) => {
            out.push(b'[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                self::value(item, out);
            }
            out.push(b']');
        }
        Value::Object(map) => {
            let mut entries: Vec<(&String, &Value)> = map.iter().collect();
            entries.sort_by(|a, b| key_order(a.0, b.0));
            out.push(b'{');
            for (i, (key, item)) in entries.into_iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                string(key, out);
                out.push(b':');
                self::value(item, out);
            }
            out.push(b'}');
        }
    }
}

/// [`value`] as a `String`.
pub fn to_string(v: &serde_json::Value) -> String {
    let mut out = Vec::new();
    value(v, &mut out);
    String::from_utf8(out).expect("JSON text is UTF-8")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn num(x: f64) -> String {
        let mut out = Vec::new();
        number(x, &mut out);
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn numbers_as_javascript_writes_them() {
        // Expected: `String(x)` in Node (JSON.stringify writes the same; null for non-finite).
        let cases = [
            (2000.0, "2000"),
            (0.0, "0"),
            (-0.0, "0"),
            (0.1 + 0.2, "0.30000000000000004"),
            (1700000010000.0, "1700000010000"),
            (0.002, "0.002"),
            (1e-6, "0.000001"),
            (1e-7, "1e-7"),
            (1.5e-7, "1.5e-7"),
            (1e20, "100000000000000000000"),
            (1e21, "1e+21"),
            (-1.5e300, "-1.5e+300"),
            (123456789012345680000.0, "123456789012345680000"),
            (f64::MAX, "1.7976931348623157e+308"),
            (5e-324, "5e-324"),
            (f64::NAN, "null"),
            (f64::INFINITY, "null"),
            (f64::NEG_INFINITY, "null"),
        ];
        for (x, text) in cases {
            assert_eq!(num(x), text, "{x:e}");
        }
    }

    #[test]
    fn keys_in_a_js_objects_order() {
        for key in ["0", "7", "10", "4294967294"] {
            assert!(is_array_index(key), "{key}");
        }
        for key in [
            "",
            "01",
            "-1",
            "1.5",
            "4294967295",
            "99999999999",
            "a1",
            "1a",
            " 1",
            "+1",
        ] {
            assert!(!is_array_index(key), "{key}");
        }
        let parsed: serde_json::Value = serde_json::from_str(
            r#"{"b":1,"10":2,"9":3,"a":{"2":[1.0,2.5e21,"x\"\n\u001f"],"1":null},"01":true}"#,
        )
        .unwrap();
        // serde_json's map is sorted ("01", "10", "9", "a", "b"); JS puts 9 and 10 first.
        assert_eq!(
            to_string(&parsed),
            r#"{"9":3,"10":2,"01":true,"a":{"1":null,"2":[1,2.5e+21,"x\"\n\u001f"]},"b":1}"#
        );
        // Beyond 2^53, as JSON.parse rounds: JSON.stringify(JSON.parse('18446744073709551615')).
        let big: serde_json::Value = serde_json::from_str("18446744073709551615").unwrap();
        assert_eq!(to_string(&big), "18446744073709552000");
    }
}
