//! Numbers as both text formats write them: sample values and `le`/`quantile` label values.

use std::io::Write as _;

/// A number as an `le` or `quantile` label value, in both formats: OpenMetrics' canonical form,
/// Go's `%g` shortest form with `.0` added when it has no point or exponent (`1.0`, `0.25`,
/// `100000.0`, `1e+06`). Label values are text to Prometheus 2.x: one spelling in both formats
/// keeps `le="5.0"` the same series whichever format a scrape negotiates (and it is the form
/// Prometheus 3 normalizes these labels to).
pub(super) fn label_number(x: f64) -> String {
    let mut out = Vec::new();
    push_go_float(x, &mut out);
    let mut s = String::from_utf8(out).unwrap_or_default();
    if x.is_finite() && !s.contains(['.', 'e']) {
        s.push_str(".0");
    }
    s
}

/// Appends a sample value: `NaN`, `+Inf`, `-Inf`, an integer without a point (below 10^15 in
/// magnitude), or Go's `%g` shortest form.
pub(super) fn push_value(x: f64, out: &mut Vec<u8>) {
    if x.fract() == 0.0 && x.abs() < 1e15 {
        // itoa, not `write!`: counters are mostly integers, and formatting machinery costs more
        // than the rest of their line.
        out.extend_from_slice(itoa::Buffer::new().format(x as i64).as_bytes());
    } else {
        push_go_float(x, out);
    }
}

/// Appends Go's `strconv.FormatFloat(x, 'g', -1, 64)`: the shortest digits that read back as
/// `x`, in exponent form (`1.5e+06`, `1e-05`: a sign and at least two exponent digits) when
/// the exponent is below -4 or at least 6, else in plain form; `NaN`, `+Inf`, `-Inf`.
pub(super) fn push_go_float(x: f64, out: &mut Vec<u8>) {
    if x.is_nan() {
        out.extend_from_slice(b"NaN");
        return;
    }
    if x.is_infinite() {
        out.extend_from_slice(if x > 0.0 { b"+Inf" } else { b"-Inf" });
        return;
    }
    // Rust's `{:e}` gives the shortest round-trip digits: `-1.2345e-7`, `5e0`.
    let mut buf = [0u8; 40];
    let len = {
        let mut cursor = std::io::Cursor::new(&mut buf[..]);
        let _ = write!(cursor, "{:e}", x);
        cursor.position() as usize
    };
    let text = &buf[..len];
    let (negative, text) = match text.split_first() {
        Some((b'-', rest)) => (true, rest),
        _ => (false, text),
    };
    let e = text.iter().position(|&c| c == b'e').unwrap_or(text.len());
    let digits: Vec<u8> = text[..e].iter().copied().filter(|&c| c != b'.').collect();
    let exp: i32 = std::str::from_utf8(text.get(e + 1..).unwrap_or(b"0"))
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    if negative {
        out.push(b'-');
    }
    if !(-4..6).contains(&exp) {
        out.push(digits[0]);
        if digits.len() > 1 {
            out.push(b'.');
            out.extend_from_slice(&digits[1..]);
        }
        let _ = write!(out, "e{}{:02}", if exp < 0 { '-' } else { '+' }, exp.abs());
    } else if exp >= 0 {
        let whole = exp as usize + 1;
        for i in 0..whole {
            out.push(*digits.get(i).unwrap_or(&b'0'));
        }
        if digits.len() > whole {
            out.push(b'.');
            out.extend_from_slice(&digits[whole..]);
        }
    } else {
        out.extend_from_slice(b"0.");
        out.extend(std::iter::repeat_n(b'0', (-exp - 1) as usize));
        out.extend_from_slice(&digits);
    }
}
