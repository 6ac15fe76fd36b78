//! Trace patterns: `request:*`, `*:end`, `http:request:start`.
//!
//! A pattern is anchored at both ends, compared case-insensitively, and `*` matches one or more
//! characters of any kind (`:` included), as jstrace documented but did not implement (its
//! alternatives were not anchored and only some of them were case-insensitive). Every other
//! character stands for itself: a pattern is never a regular expression, so a probe name or a
//! title cannot inject one.
//!
//! Matching is the classic two-pointer wildcard walk with a single backtrack point: at most
//! O(pattern x subject) steps, no recursion, no allocation beyond the lower-cased copies.

use std::fmt;

/// Why a pattern was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GlobError {
    /// The empty pattern could only match the empty name, which no probe has.
    Empty,
}

impl fmt::Display for GlobError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            GlobError::Empty => write!(f, "a trace pattern must not be empty"),
        }
    }
}

impl std::error::Error for GlobError {}

/// One element of a compiled pattern.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Token {
    /// A character to compare (already lower-cased).
    Char(char),
    /// One character of any kind: the mandatory first character of a `*`.
    One,
    /// Any number of further characters (the rest of a `*`).
    Any,
}

/// A compiled pattern.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Glob {
    tokens: Vec<Token>,
}

/// Lower-cases the way both sides of a comparison must: per character, full Unicode mapping.
fn fold(s: &str) -> Vec<char> {
    s.chars().flat_map(char::to_lowercase).collect()
}

impl Glob {
    /// Compiles `pattern`. `*` becomes "one character, then any number": so `**` needs two.
    pub fn new(pattern: &str) -> Result<Glob, GlobError> {
        if pattern.is_empty() {
            return Err(GlobError::Empty);
        }
        let mut tokens = Vec::with_capacity(pattern.len());
        for c in fold(pattern) {
            if c == '*' {
                tokens.push(Token::One);
                tokens.push(Token::Any);
            } else {
                tokens.push(Token::Char(c));
            }
        }
        Ok(Glob { tokens })
    }

    /// Whether the whole of `subject` matches, ignoring case.
    pub fn matches(&self, subject: &str) -> bool {
        let s = fold(subject);
        let p = &self.tokens;
        let (mut i, mut j) = (0usize, 0usize);
        // Where to resume after the last `Any`: (token after it, subject position it absorbed to).
        let mut back: Option<(usize, usize)> = None;
        while i < s.len() {
            match p.get(j) {
                Some(Token::Any) => {
                    back = Some((j + 1, i));
                    j += 1;
                }
                Some(Token::One) => {
                    i += 1;
                    j += 1;
                }
                Some(Token::Char(c)) if *c == s[i] => {
                    i += 1;
                    j += 1;
                }
                _ => match back {
                    // Let the last `Any` absorb one more character and retry from there.
                    Some((bj, bi)) => {
                        back = Some((bj, bi + 1));
                        j = bj;
                        i = bi + 1;
                    }
                    None => return false,
                },
            }
        }
        p[j..].iter().all(|t| *t == Token::Any)
    }
}

/// Whether any of `patterns` matches `subject`; each pattern is anchored on its own. An empty
/// list matches nothing.
pub fn any_matches(patterns: &[Glob], subject: &str) -> bool {
    patterns.iter().any(|g| g.matches(subject))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn m(p: &str, s: &str) -> bool {
        Glob::new(p).unwrap().matches(s)
    }

    /// The definition, written as plainly as possible (exponential, for small inputs only).
    fn reference(p: &[char], s: &[char]) -> bool {
        match p.split_first() {
            None => s.is_empty(),
            Some(('*', rest)) => (1..=s.len()).any(|k| reference(rest, &s[k..])),
            Some((c, rest)) => s.first() == Some(c) && reference(rest, &s[1..]),
        }
    }

    #[test]
    fn star_is_one_or_more_characters_including_colons() {
        assert!(m("request:*", "request:start"));
        assert!(m("request:*", "request:a:b"));
        assert!(!m("request:*", "request:"));
        assert!(!m("request:*", "request"));
        assert!(m("*:end", "request:end"));
        assert!(!m("*:end", ":end"));
        assert!(m("a**b", "axyb"));
        assert!(!m("a**b", "axb"));
        assert!(m("*", "x"));
        assert!(!m("*", ""));
    }

    #[test]
    fn anchored_at_both_ends() {
        assert!(m("request:start", "request:start"));
        assert!(!m("request:start", "xrequest:start"));
        assert!(!m("request:start", "request:startx"));
        assert!(!m("start", "request:start"));
        assert!(!m("request", "request:start"));
    }

    #[test]
    fn case_insensitive_both_ways() {
        assert!(m("Request:*", "REQUEST:START"));
        assert!(m("trace-APP-*", "Trace-app-a"));
        assert!(m("ÉTÉ:*", "été:x"));
    }

    #[test]
    fn regex_characters_are_literal() {
        assert!(m("a.b", "a.b"));
        assert!(!m("a.b", "axb"));
        assert!(m("(x)|[y]+?", "(X)|[Y]+?"));
        assert!(!m("^a$", "a"));
    }

    #[test]
    fn empty_pattern_is_refused() {
        assert_eq!(Glob::new(""), Err(GlobError::Empty));
        assert_eq!(
            GlobError::Empty.to_string(),
            "a trace pattern must not be empty"
        );
    }

    #[test]
    fn any_of_several_each_anchored() {
        let globs = [Glob::new("a:*").unwrap(), Glob::new("b").unwrap()];
        assert!(any_matches(&globs, "a:1"));
        assert!(any_matches(&globs, "B"));
        assert!(!any_matches(&globs, "xb"));
        assert!(!any_matches(&globs, "b:1"));
        assert!(!any_matches(&[], "a"));
    }

    #[test]
    fn long_subjects_stay_linear_enough() {
        // Many stars against a long near-miss: the single-backtrack walk stays polynomial.
        let p = "*a*a*a*a*a*a*a*a*b";
        let s = "a".repeat(20_000);
        assert!(!m(p, &s));
    }

    proptest! {
        #[test]
        fn agrees_with_the_definition(p in "[ab:*]{1,8}", s in "[abAB:]{0,10}") {
            let lower: Vec<char> = s.to_lowercase().chars().collect();
            let pc: Vec<char> = p.chars().collect();
            prop_assert_eq!(m(&p, &s), reference(&pc, &lower));
        }

        #[test]
        fn a_literal_matches_itself_in_any_case(s in "[a-zA-Z0-9:._ -]{1,20}", any in "[^*]{1,20}") {
            prop_assert!(m(&any, &any));
            prop_assert!(m(&s.to_uppercase(), &s.to_lowercase()));
        }

        #[test]
        fn arbitrary_input_never_panics(p in ".{1,12}", s in ".{0,40}") {
            let _ = m(&p, &s);
        }
    }
}
