//! `Filter::parse`: filter expressions come from HTTP query strings (`?filter=`). The input is
//! `expression NUL value`: the expression is parsed and, when it compiles, tested against a
//! series whose every field has `value` (so `LIKE` patterns meet fuzzer-chosen text) and against
//! one with no field at all (the merged cluster view's missing `process.*`).
//!
//! Checked: no panic and no stack overflow at any depth; a compiled filter keeps its
//! expression; `NOT (e)`, when it compiles too, answers the opposite of `e` on both series.
#![no_main]

use std::borrow::Cow;

use libfuzzer_sys::fuzz_target;
use panoptic_core::filter::{Field, Fields, Filter};

/// A series whose every field is the same text, or that has none (`None`).
struct Same<'a>(Option<&'a str>);

impl Fields for Same<'_> {
    fn get(&self, _: &Field) -> Option<Cow<'_, str>> {
        self.0.map(Cow::Borrowed)
    }
}

fuzz_target!(|data: &[u8]| {
    let (expression, value) = match data.iter().position(|&b| b == 0) {
        Some(i) => (&data[..i], &data[i + 1..]),
        None => (data, &[][..]),
    };
    let (Ok(expression), Ok(value)) = (std::str::from_utf8(expression), std::str::from_utf8(value))
    else {
        return;
    };
    let Ok(filter) = Filter::parse(expression) else {
        return;
    };
    assert_eq!(filter.expression(), expression);
    let (every, none) = (Same(Some(value)), Same(None));
    let (a, b) = (filter.matches(&every), filter.matches(&none));
    if let Ok(not) = Filter::parse(&format!("NOT ({expression})")) {
        assert_eq!(
            not.matches(&every),
            !a,
            "NOT negates on a series with every field"
        );
        assert_eq!(
            not.matches(&none),
            !b,
            "NOT negates on a series with no field"
        );
    }
});
