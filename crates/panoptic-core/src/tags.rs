//! Tags of a series, read back from its id.
//!
//! A tagged series is named by its id and its tags (`lib/args.js`, `taggedId`):
//! `requests{method="GET",status="200"}`, keys sorted, each a label name, values escaped as in a
//! Prometheus label value (`\\`, `\"` and `\n`). The exports and the filter language turn that
//! block back into tags. An id without a well-formed tag block at its end is an untagged id, kept
//! whole (so an untagged id that itself ends in a well-formed block, say `x{a="1"}`, reads as
//! tagged: the two cannot be told apart by their text).

use std::borrow::Cow;

/// Splits a series id into its bare id and its tags, in the order they are written (`None`, and
/// the whole id as the bare id, when the id has no well-formed tag block).
pub fn split_tags(id: &str) -> (&str, Option<Vec<(String, String)>>) {
    match block_start(id) {
        Some(start) => {
            let mut tags = Vec::new();
            scan(&id[start..], |key, raw| {
                tags.push((key.to_string(), unescape(raw).into_owned()))
            });
            (&id[..start], Some(tags))
        }
        None => (id, None),
    }
}

/// The id without its tag block (the whole id when it has none).
pub fn bare_id(id: &str) -> &str {
    block_start(id).map_or(id, |start| &id[..start])
}

/// The value of the tag `key` in the id's tag block (borrowed from the id unless it had escapes).
pub fn tag_value<'a>(id: &'a str, key: &str) -> Option<Cow<'a, str>> {
    let start = block_start(id)?;
    let mut found = None;
    scan(&id[start..], |k, raw| {
        if found.is_none() && k == key {
            found = Some(raw);
        }
    });
    found.map(unescape)
}

/// Where the tag block begins: the first `{` from which the rest of the id is one well-formed
/// block. A block's extent is fixed by its start, so the first such `{` is the one `taggedId`
/// wrote unless the bare id itself ends in a block. The common untagged id is rejected by its
/// last character; an id full of `{` costs quadratic time (ids are the application's own).
fn block_start(id: &str) -> Option<usize> {
    if !id.ends_with('}') {
        return None;
    }
    id.match_indices('{')
        .map(|(i, _)| i)
        .find(|&i| scan(&id[i..], |_, _| {}))
}

/// Reads `block` as `{key="value",...}` (at least one pair), calling `each(key, raw value)` for
/// each pair read, and says whether the whole of `block` is that. Byte-wise: the delimiters are
/// ASCII, which never occurs inside a multi-byte UTF-8 character, so every slice is on a
/// character boundary.
fn scan<'a>(block: &'a str, mut each: impl FnMut(&'a str, &'a str)) -> bool {
    let b = block.as_bytes();
    if b.first() != Some(&b'{') {
        return false;
    }
    let mut i = 1;
    loop {
        let key_start = i;
        if !matches!(b.get(i), Some(c) if c.is_ascii_alphabetic() || *c == b'_') {
            return false;
        }
        while matches!(b.get(i), Some(c) if c.is_ascii_alphanumeric() || *c == b'_') {
            i += 1;
        }
        let key = &block[key_start..i];
        if b.get(i) != Some(&b'=') || b.get(i + 1) != Some(&b'"') {
            return false;
        }
        i += 2;
        let value_start = i;
        loop {
            match b.get(i) {
                None => return false,
                Some(b'"') => break,
                Some(b'\\') => match b.get(i + 1) {
                    Some(b'\\' | b'"' | b'n') => i += 2,
                    _ => return false,
                },
                Some(_) => i += 1,
            }
        }
        each(key, &block[value_start..i]);
        i += 1;
        match b.get(i) {
            Some(b',') => i += 1,
            Some(b'}') => return i + 1 == b.len(),
            _ => return false,
        }
    }
}

/// A raw (escaped) value as text: `\\`, `\"` and `\n` undone. `scan` let no other escape through.
fn unescape(raw: &str) -> Cow<'_, str> {
    if !raw.contains('\\') {
        return Cow::Borrowed(raw);
    }
    let mut out = String::with_capacity(raw.len());
    let mut chars = raw.chars();
    while let Some(c) = chars.next() {
        out.push(match c {
            '\\' => match chars.next() {
                Some('n') => '\n',
                Some(other) => other,
                None => break,
            },
            c => c,
        });
    }
    Cow::Owned(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// What lib/args.js's taggedId writes (keys sorted, Prometheus escapes).
    fn tagged(id: &str, tags: &[(String, String)]) -> String {
        let mut tags = tags.to_vec();
        tags.sort();
        let pairs: Vec<String> = tags
            .iter()
            .map(|(k, v)| {
                let v = v
                    .replace('\\', "\\\\")
                    .replace('"', "\\\"")
                    .replace('\n', "\\n");
                format!("{k}=\"{v}\"")
            })
            .collect();
        format!("{id}{{{}}}", pairs.join(","))
    }

    fn pairs(list: &[(&str, &str)]) -> Vec<(String, String)> {
        list.iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn tagged_ids_split_into_id_and_tags() {
        let (id, tags) = split_tags(r#"requests{method="GET",status="200"}"#);
        assert_eq!(id, "requests");
        assert_eq!(tags, Some(pairs(&[("method", "GET"), ("status", "200")])));
        assert_eq!(bare_id(r#"requests{method="GET"}"#), "requests");
        assert_eq!(
            tag_value(r#"requests{method="GET",status="200"}"#, "status"),
            Some(Cow::Borrowed("200"))
        );
        assert_eq!(tag_value(r#"requests{method="GET"}"#, "status"), None);
        assert_eq!(tag_value("requests", "method"), None);
    }

    #[test]
    fn escapes_are_undone() {
        let id = r#"q{a="x\"y",b="back\\slash",c="new\nline",d="{k=\"v\"}"}"#;
        let (bare, tags) = split_tags(id);
        assert_eq!(bare, "q");
        assert_eq!(
            tags,
            Some(pairs(&[
                ("a", "x\"y"),
                ("b", "back\\slash"),
                ("c", "new\nline"),
                ("d", "{k=\"v\"}")
            ]))
        );
        assert!(matches!(tag_value(id, "c"), Some(Cow::Owned(v)) if v == "new\nline"));
    }

    #[test]
    fn ids_without_a_well_formed_block_are_bare() {
        for id in [
            "plain",
            "",
            "{}",
            "x{}",
            "x{a}",
            r#"x{a="1""#,
            r#"x{a="1"} "#,
            r#"x{a="1",}"#,
            r#"x{1a="1"}"#,
            r#"x{a="bad \q escape"}"#,
            r#"x{a="1"}}"#,
            r#"x{a='1'}"#,
            "é{}",
        ] {
            assert_eq!(split_tags(id), (id, None), "{id:?}");
            assert_eq!(bare_id(id), id);
        }
    }

    #[test]
    fn braces_in_the_bare_id_are_kept() {
        let (id, tags) = split_tags(r#"a{b{k="v"}"#);
        assert_eq!(id, "a{b");
        assert_eq!(tags, Some(pairs(&[("k", "v")])));
        let (id, tags) = split_tags(r#"a{k="v"}{j="w"}"#);
        assert_eq!(id, r#"a{k="v"}"#);
        assert_eq!(tags, Some(pairs(&[("j", "w")])));
    }

    proptest! {
        #[test]
        fn what_tagged_id_writes_splits_back(
            id in "[^{]{0,12}",
            tags in prop::collection::btree_map("[a-zA-Z_][a-zA-Z0-9_]{0,6}", "\\PC{0,10}|[\\\\\"\n{}=,]{0,6}", 1..5),
        ) {
            let tags: Vec<(String, String)> = tags.into_iter().collect();
            let text = tagged(&id, &tags);
            prop_assert_eq!(split_tags(&text), (id.as_str(), Some(tags.clone())));
            for (k, v) in &tags {
                let value = tag_value(&text, k);
                prop_assert_eq!(value.as_deref(), Some(v.as_str()));
            }
        }

        #[test]
        fn any_text_splits_without_panicking(id in "\\PC{0,40}|[{}a=\"\\\\,]{0,40}") {
            let (bare, tags) = split_tags(&id);
            prop_assert!(id.starts_with(bare));
            prop_assert_eq!(tags.is_none(), bare.len() == id.len());
        }
    }
}
