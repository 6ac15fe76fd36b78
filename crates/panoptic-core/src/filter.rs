//! The filter language: a subset of SQL (Panoptes' resource filter, with panoptic's additions)
//! that selects series, for the exports (`?filter=` on HTTP, the `filter` option) and for JS
//! (`Panopticon.filter`).
//!
//! ```text
//! expression := and ( OR and )*
//! and        := unary ( AND unary )*
//! unary      := NOT unary | '(' expression ')' | comparison
//! comparison := field ( '=' | '!=' | EQ | NE ) value
//!             | field [ NOT ] LIKE value
//!             | field [ NOT ] IN '(' value ( ',' value )* ')'
//! value      := 'text' | "text"
//! ```
//!
//! - Precedence: NOT binds tighter than AND, AND tighter than OR. Keywords and field names are
//!   case-insensitive (a tag key is not: `tags.Method` is the tag `Method`).
//! - Fields ([`Field`]): `name`, `path`, `id`, `type`, `tags.<key>`, `process.role`,
//!   `process.pid`, `process.worker`, `process.host`, `process.title`. An unknown field is a parse
//!   error that lists them.
//! - Values are always quoted text and every comparison is on text, case-sensitive: a pid or a
//!   worker id compares by its decimal form (`process.pid = '4242'`; `'04242'` matches nothing).
//! - In a value, a backslash makes the next character literal: `\'`, `\"`, `\\`, `\%`, `\_`,
//!   and `\n` is a newline; any other character after a backslash is an error.
//! - `LIKE`: `%` matches any run of characters (also none), `_` exactly one character; `\%` and
//!   `\_` match themselves. The pattern covers the whole value (`name LIKE 'http.%'`). Matching
//!   is a two-pointer scan that never backtracks further than the last `%`: time is at most
//!   pattern length times value length, never exponential.
//! - Missing fields (a tag the series does not have, `process.worker` on the master, any
//!   `process.*` of the merged cluster view, which has no process): the positive comparisons
//!   (`=`, `eq`, `LIKE`, `IN`) are false and the negative ones (`!=`, `ne`, `NOT LIKE`,
//!   `NOT IN`) are true, so `f != 'x'` is always `NOT (f = 'x')`.
//! - Hostile input (expressions come from HTTP query strings): at most [`MAX_LENGTH`] bytes and
//!   [`MAX_DEPTH`] nested groups and NOTs, each an error, never a panic or a stack overflow.
//!
//! Errors ([`FilterError`]) name the position (0-based, in characters), what was expected there
//! and what was found: `filter: at position 7: expected a value in quotes, found end of input`.

use std::borrow::Cow;
use std::fmt;

use crate::snapshot::SeriesKey;
use crate::tags;

/// The longest expression accepted, in bytes of UTF-8.
pub const MAX_LENGTH: usize = 4096;

/// The deepest nesting of `(` groups and `NOT`s accepted (together).
pub const MAX_DEPTH: usize = 64;

/// The fields a filter can test, resolved when it is parsed.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Field {
    /// `name`: the path elements and the bare id joined by `.` (`http.requests`).
    Name,
    /// `path`: the path elements joined by `.` (empty at the root).
    Path,
    /// `id`: the id without its tags.
    Id,
    /// `type`: the logger method (`inc`, `sample`, `histogram`, ...).
    Type,
    /// `tags.<key>`: the value of one tag.
    Tag(String),
    /// `process.role`: `master`, `worker` or `thread`.
    Role,
    /// `process.pid`.
    Pid,
    /// `process.worker`: the cluster worker id (missing on the master).
    Worker,
    /// `process.host`: the host name.
    Host,
    /// `process.title`: the process's title.
    Title,
}

impl Field {
    /// A field by its name in an expression (case-insensitive, except a tag's key).
    fn parse(word: &str) -> Option<Field> {
        let lower = word.to_ascii_lowercase();
        Some(match lower.as_str() {
            "name" => Field::Name,
            "path" => Field::Path,
            "id" => Field::Id,
            "type" => Field::Type,
            "process.role" => Field::Role,
            "process.pid" => Field::Pid,
            "process.worker" => Field::Worker,
            "process.host" => Field::Host,
            "process.title" => Field::Title,
            _ if lower.starts_with("tags.") => {
                // A tag key is a Prometheus label name, as `taggedId` requires.
                let key = &word["tags.".len()..];
                let mut chars = key.chars();
                let first = chars.next()?;
                let label = (first.is_ascii_alphabetic() || first == '_')
                    && chars.all(|c| c.is_ascii_alphanumeric() || c == '_');
                return label.then(|| Field::Tag(key.to_string()));
            }
            _ => return None,
        })
    }
}

/// What a filter reads a series through: the text of each field, `None` when the series lacks
/// it (see the module documentation for how comparisons treat a missing field).
pub trait Fields {
    /// The value of `field`, or `None` when the series does not have it.
    fn get(&self, field: &Field) -> Option<Cow<'_, str>>;
}

/// A compiled filter expression. Cheap to test a series with; `Clone + Send + Sync`.
#[derive(Debug, Clone)]
pub struct Filter {
    expression: String,
    root: Node,
}

#[derive(Debug, Clone)]
enum Node {
    Compare(Comparison),
    Not(Box<Node>),
    /// AND of two or more.
    All(Vec<Node>),
    /// OR of two or more.
    Any(Vec<Node>),
}

#[derive(Debug, Clone)]
struct Comparison {
    field: Field,
    test: Test,
    /// `!=`, `ne`, `NOT LIKE`, `NOT IN`.
    negated: bool,
}

#[derive(Debug, Clone)]
enum Test {
    Equal(String),
    Like(Vec<Item>),
    In(Vec<String>),
}

/// One element of a LIKE pattern.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Item {
    /// `%`: any run of characters.
    Run,
    /// `_`: one character.
    One,
    Char(char),
}

impl Filter {
    /// Compiles `expression` (see the module documentation for the language).
    pub fn parse(expression: &str) -> Result<Filter, FilterError> {
        if expression.len() > MAX_LENGTH {
            let mut end = MAX_LENGTH;
            while !expression.is_char_boundary(end) {
                end -= 1;
            }
            return Err(FilterError {
                position: expression[..end].chars().count(),
                expected: format!("an expression of at most {MAX_LENGTH} bytes"),
                found: format!("{} bytes", expression.len()),
            });
        }
        let mut parser = Parser {
            lexer: Lexer {
                text: expression,
                byte: 0,
                char: 0,
            },
            peeked: None,
        };
        let root = parser.expression(0)?;
        let end = parser.next()?;
        if end.kind != Kind::End {
            return Err(end.unexpected("AND, OR or end of input"));
        }
        Ok(Filter {
            expression: expression.to_string(),
            root,
        })
    }

    /// Whether `series` passes the filter. Generic over the series' type, `?Sized` so that a
    /// `&dyn Fields` works too.
    pub fn matches<F: Fields + ?Sized>(&self, series: &F) -> bool {
        self.root.eval(series)
    }

    /// The expression the filter was compiled from.
    pub fn expression(&self) -> &str {
        &self.expression
    }
}

impl Node {
    fn eval<F: Fields + ?Sized>(&self, series: &F) -> bool {
        match self {
            Node::Compare(c) => match series.get(&c.field) {
                None => c.negated,
                Some(value) => c.test.holds(&value) != c.negated,
            },
            Node::Not(node) => !node.eval(series),
            Node::All(nodes) => nodes.iter().all(|n| n.eval(series)),
            Node::Any(nodes) => nodes.iter().any(|n| n.eval(series)),
        }
    }
}

impl Test {
    fn holds(&self, value: &str) -> bool {
        match self {
            Test::Equal(v) => v == value,
            Test::Like(pattern) => like(pattern, value),
            Test::In(list) => list.iter().any(|v| v == value),
        }
    }
}

/// Whether `text` matches the whole of `pattern`. The classic two-pointer wildcard scan: on a
/// mismatch, go back to just after the last `%` and let it swallow one more character. Going
/// back only to the last `%` is enough (anything an earlier `%` could swallow instead, the last
/// one can too), so the time is at most `pattern.len() * text.len()` steps.
fn like(pattern: &[Item], text: &str) -> bool {
    let (mut p, mut t) = (0, 0);
    // After the last `%` seen: its pattern index + 1 and where in the text it stopped swallowing.
    let mut run: Option<(usize, usize)> = None;
    loop {
        let c = text[t..].chars().next();
        match (pattern.get(p), c) {
            (Some(Item::Run), _) => {
                p += 1;
                run = Some((p, t));
                continue;
            }
            (Some(Item::One), Some(c)) => {
                p += 1;
                t += c.len_utf8();
                continue;
            }
            (Some(Item::Char(x)), Some(c)) if *x == c => {
                p += 1;
                t += c.len_utf8();
                continue;
            }
            (None, None) => return true,
            _ => {}
        }
        let Some((after, from)) = run else {
            return false;
        };
        let Some(c) = text[from..].chars().next() else {
            return false;
        };
        run = Some((after, from + c.len_utf8()));
        p = after;
        t = from + c.len_utf8();
    }
}

/// A filter expression that could not be compiled.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FilterError {
    /// Where, in characters from 0 (the expression's length for its end).
    pub position: usize,
    /// What was expected there.
    pub expected: String,
    /// What was found (quoted as written, or `end of input`).
    pub found: String,
}

impl fmt::Display for FilterError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "filter: at position {}: expected {}, found {}",
            self.position, self.expected, self.found
        )
    }
}

impl std::error::Error for FilterError {}

/// A short quotation of the source text for `found`.
fn quote(text: &str) -> String {
    const MAX: usize = 40;
    if text.is_empty() {
        return "end of input".to_string();
    }
    match text.char_indices().nth(MAX) {
        Some((cut, _)) => format!("{:?}...", &text[..cut]),
        None => format!("{text:?}"),
    }
}

#[derive(Debug, Clone, PartialEq)]
enum Kind {
    /// A field name or a keyword.
    Word(String),
    /// A quoted value: each character and whether a backslash made it literal.
    Text(Vec<(char, bool)>),
    Open,
    Close,
    Comma,
    Equal,
    NotEqual,
    /// A character that starts no token.
    Bad,
    End,
}

#[derive(Debug, Clone)]
struct Token<'a> {
    kind: Kind,
    /// Character offset of its start.
    at: usize,
    /// Its source text.
    source: &'a str,
}

impl Token<'_> {
    fn is_keyword(&self, keyword: &str) -> bool {
        matches!(&self.kind, Kind::Word(w) if w.eq_ignore_ascii_case(keyword))
    }

    fn unexpected(&self, expected: &str) -> FilterError {
        FilterError {
            position: self.at,
            expected: expected.to_string(),
            found: quote(self.source),
        }
    }
}

struct Lexer<'a> {
    text: &'a str,
    byte: usize,
    char: usize,
}

impl<'a> Lexer<'a> {
    fn peek_char(&self) -> Option<char> {
        self.text[self.byte..].chars().next()
    }

    fn bump(&mut self) -> Option<char> {
        let c = self.peek_char()?;
        self.byte += c.len_utf8();
        self.char += 1;
        Some(c)
    }

    fn token(&mut self) -> Result<Token<'a>, FilterError> {
        while self.peek_char().is_some_and(char::is_whitespace) {
            self.bump();
        }
        let (start, at) = (self.byte, self.char);
        let kind = match self.bump() {
            None => Kind::End,
            Some('(') => Kind::Open,
            Some(')') => Kind::Close,
            Some(',') => Kind::Comma,
            Some('=') => Kind::Equal,
            Some('!') if self.peek_char() == Some('=') => {
                self.bump();
                Kind::NotEqual
            }
            Some(delimiter @ ('\'' | '"')) => Kind::Text(self.text_until(delimiter, at)?),
            Some(c) if is_word(c) => {
                while self.peek_char().is_some_and(is_word) {
                    self.bump();
                }
                Kind::Word(self.text[start..self.byte].to_string())
            }
            Some(_) => Kind::Bad,
        };
        Ok(Token {
            kind,
            at,
            source: &self.text[start..self.byte],
        })
    }

    /// The rest of a quoted value opened at character `opened` by `delimiter`.
    fn text_until(
        &mut self,
        delimiter: char,
        opened: usize,
    ) -> Result<Vec<(char, bool)>, FilterError> {
        let mut out = Vec::new();
        loop {
            let (start, at) = (self.byte, self.char);
            match self.bump() {
                None => {
                    return Err(FilterError {
                        position: self.char,
                        expected: format!(
                            "{delimiter} to close the value opened at position {opened}"
                        ),
                        found: quote(""),
                    })
                }
                Some(c) if c == delimiter => return Ok(out),
                Some('\\') => match self.bump() {
                    Some('n') => out.push(('\n', true)),
                    Some(c @ ('\\' | '\'' | '"' | '%' | '_')) => out.push((c, true)),
                    _ => {
                        return Err(FilterError {
                            position: at,
                            expected: r#"one of \\ \' \" \% \_ \n (a backslash escapes)"#
                                .to_string(),
                            found: quote(&self.text[start..self.byte]),
                        })
                    }
                },
                Some(c) => out.push((c, false)),
            }
        }
    }
}

/// Characters of field names and keywords (`tags.my_key`, `process.pid`, `AND`).
fn is_word(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_' || c == '.'
}

struct Parser<'a> {
    lexer: Lexer<'a>,
    peeked: Option<Token<'a>>,
}

/// What may start an operand of AND/OR.
const OPERAND: &str = "a field (name, path, id, type, tags.<key>, process.role, process.pid, \
                       process.worker, process.host, process.title), NOT or '('";

impl<'a> Parser<'a> {
    fn peek(&mut self) -> Result<&Token<'a>, FilterError> {
        if self.peeked.is_none() {
            self.peeked = Some(self.lexer.token()?);
        }
        Ok(self.peeked.as_ref().expect("just peeked"))
    }

    fn next(&mut self) -> Result<Token<'a>, FilterError> {
        match self.peeked.take() {
            Some(token) => Ok(token),
            None => self.lexer.token(),
        }
    }

    /// OR of ANDs; `depth` counts the groups and NOTs around it.
    fn expression(&mut self, depth: usize) -> Result<Node, FilterError> {
        let mut any = vec![self.conjunction(depth)?];
        while self.peek()?.is_keyword("or") {
            self.next()?;
            any.push(self.conjunction(depth)?);
        }
        Ok(if any.len() == 1 {
            any.pop().expect("one")
        } else {
            Node::Any(any)
        })
    }

    fn conjunction(&mut self, depth: usize) -> Result<Node, FilterError> {
        let mut all = vec![self.unary(depth)?];
        while self.peek()?.is_keyword("and") {
            self.next()?;
            all.push(self.unary(depth)?);
        }
        Ok(if all.len() == 1 {
            all.pop().expect("one")
        } else {
            Node::All(all)
        })
    }

    fn unary(&mut self, depth: usize) -> Result<Node, FilterError> {
        let token = self.next()?;
        let nests = token.is_keyword("not") || token.kind == Kind::Open;
        if nests && depth >= MAX_DEPTH {
            return Err(FilterError {
                position: token.at,
                expected: format!("at most {MAX_DEPTH} nested '(' and NOT"),
                found: format!("{} nested {} deep", quote(token.source), depth + 1),
            });
        }
        if token.is_keyword("not") {
            return Ok(Node::Not(Box::new(self.unary(depth + 1)?)));
        }
        if token.kind == Kind::Open {
            let inner = self.expression(depth + 1)?;
            let close = self.next()?;
            if close.kind != Kind::Close {
                return Err(close.unexpected("AND, OR or ')'"));
            }
            return Ok(inner);
        }
        self.comparison(token).map(Node::Compare)
    }

    fn comparison(&mut self, first: Token<'a>) -> Result<Comparison, FilterError> {
        let field = match &first.kind {
            Kind::Word(w) => Field::parse(w),
            _ => None,
        }
        .ok_or_else(|| first.unexpected(OPERAND))?;
        let op = self.next()?;
        let (negated, keyword) = match &op.kind {
            Kind::Equal => (false, "="),
            Kind::NotEqual => (true, "!="),
            _ if op.is_keyword("eq") => (false, "="),
            _ if op.is_keyword("ne") => (true, "!="),
            _ if op.is_keyword("like") => (false, "like"),
            _ if op.is_keyword("in") => (false, "in"),
            _ if op.is_keyword("not") => {
                let after = self.next()?;
                if after.is_keyword("like") {
                    (true, "like")
                } else if after.is_keyword("in") {
                    (true, "in")
                } else {
                    return Err(after.unexpected("LIKE or IN after NOT"));
                }
            }
            _ => {
                return Err(op.unexpected("an operator (=, !=, eq, ne, LIKE, NOT LIKE, IN, NOT IN)"))
            }
        };
        let test = match keyword {
            "=" | "!=" => Test::Equal(text(self.value()?)),
            "like" => Test::Like(pattern(self.value()?)),
            _ => Test::In(self.list()?),
        };
        Ok(Comparison {
            field,
            test,
            negated,
        })
    }

    fn value(&mut self) -> Result<Vec<(char, bool)>, FilterError> {
        let token = self.next()?;
        match token.kind {
            Kind::Text(chars) => Ok(chars),
            _ => Err(token.unexpected("a value in quotes")),
        }
    }

    /// `( value, ... )` after IN.
    fn list(&mut self) -> Result<Vec<String>, FilterError> {
        let open = self.next()?;
        if open.kind != Kind::Open {
            return Err(open.unexpected("'(' opening a list of values in quotes"));
        }
        let mut values = vec![text(self.value()?)];
        loop {
            let token = self.next()?;
            match token.kind {
                Kind::Comma => values.push(text(self.value()?)),
                Kind::Close => return Ok(values),
                _ => return Err(token.unexpected("',' or ')' in the list of values")),
            }
        }
    }
}

/// A value as plain text (escapes done).
fn text(chars: Vec<(char, bool)>) -> String {
    chars.into_iter().map(|(c, _)| c).collect()
}

/// A value as a LIKE pattern: unescaped `%` and `_` are wildcards; runs of `%` are one.
fn pattern(chars: Vec<(char, bool)>) -> Vec<Item> {
    let mut items: Vec<Item> = Vec::with_capacity(chars.len());
    for (c, escaped) in chars {
        let item = match c {
            '%' if !escaped => Item::Run,
            '_' if !escaped => Item::One,
            c => Item::Char(c),
        };
        if !(item == Item::Run && items.last() == Some(&Item::Run)) {
            items.push(item);
        }
    }
    items
}

/// A process's role, for `process.role`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Role {
    /// The cluster master, or a process outside a cluster.
    Master,
    /// A cluster worker.
    Worker,
    /// A worker thread feeding its process's instance.
    Thread,
}

impl Role {
    /// `master`, `worker` or `thread`.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Master => "master",
            Role::Worker => "worker",
            Role::Thread => "thread",
        }
    }
}

/// The `process.*` fields of the series of one process or thread.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProcessFields {
    /// `process.role`.
    pub role: Role,
    /// `process.pid` (a thread's is its process's).
    pub pid: u32,
    /// `process.worker`: the cluster worker id of a worker or of a worker's thread (`None` on
    /// the master and its threads: the field is missing).
    pub worker: Option<u32>,
    /// `process.host`: the host name.
    pub host: String,
    /// `process.title`.
    pub title: String,
}

/// A series as the filter sees it: its key, and its process (`None` for the merged cluster view,
/// whose `process.*` fields are all missing). The exports and the JS face read series this way.
#[derive(Debug, Clone, Copy)]
pub struct SeriesFields<'a> {
    /// Method, path and id (tagged ids are split by [`crate::tags`]).
    pub key: &'a SeriesKey,
    /// The process the series comes from.
    pub process: Option<&'a ProcessFields>,
}

impl Fields for SeriesFields<'_> {
    fn get(&self, field: &Field) -> Option<Cow<'_, str>> {
        let key = self.key;
        Some(match field {
            Field::Name => {
                let id = tags::bare_id(&key.id);
                if key.path.is_empty() {
                    Cow::Borrowed(id)
                } else {
                    let mut name = key.path.join(".");
                    name.push('.');
                    name.push_str(id);
                    Cow::Owned(name)
                }
            }
            Field::Path => match &key.path[..] {
                [] => Cow::Borrowed(""),
                [one] => Cow::Borrowed(one.as_str()),
                many => Cow::Owned(many.join(".")),
            },
            Field::Id => Cow::Borrowed(tags::bare_id(&key.id)),
            Field::Type => Cow::Borrowed(&key.method),
            Field::Tag(k) => return tags::tag_value(&key.id, k),
            Field::Role => Cow::Borrowed(self.process?.role.as_str()),
            Field::Pid => Cow::Owned(self.process?.pid.to_string()),
            Field::Worker => Cow::Owned(self.process?.worker?.to_string()),
            Field::Host => Cow::Borrowed(self.process?.host.as_str()),
            Field::Title => Cow::Borrowed(self.process?.title.as_str()),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::collections::HashMap;

    /// A series given field by field.
    #[derive(Debug, Clone, Default)]
    struct Map(HashMap<Field, String>);

    impl Fields for Map {
        fn get(&self, field: &Field) -> Option<Cow<'_, str>> {
            self.0.get(field).map(|v| Cow::Borrowed(v.as_str()))
        }
    }

    fn worker(id: u32) -> ProcessFields {
        ProcessFields {
            role: Role::Worker,
            pid: 4242,
            worker: Some(id),
            host: "box".to_string(),
            title: "node app".to_string(),
        }
    }

    fn master() -> ProcessFields {
        ProcessFields {
            role: Role::Master,
            pid: 100,
            worker: None,
            host: "box".to_string(),
            title: "node".to_string(),
        }
    }

    /// Whether `expression` matches `series`; panics on a parse error.
    fn check(expression: &str, series: &SeriesFields) -> bool {
        Filter::parse(expression)
            .unwrap_or_else(|e| panic!("{expression}: {e}"))
            .matches(series)
    }

    fn error(expression: &str) -> FilterError {
        Filter::parse(expression).expect_err(expression)
    }

    #[test]
    fn series_fields() {
        let k = SeriesKey::new(
            "inc",
            &["http", "api"],
            r#"requests{method="GET",status="200"}"#,
        );
        let w = worker(3);
        let s = SeriesFields {
            key: &k,
            process: Some(&w),
        };
        let get = |f: Field| s.get(&f).map(|v| v.into_owned());
        assert_eq!(get(Field::Name).as_deref(), Some("http.api.requests"));
        assert_eq!(get(Field::Path).as_deref(), Some("http.api"));
        assert_eq!(get(Field::Id).as_deref(), Some("requests"));
        assert_eq!(get(Field::Type).as_deref(), Some("inc"));
        assert_eq!(get(Field::Tag("status".into())).as_deref(), Some("200"));
        assert_eq!(get(Field::Tag("nope".into())), None);
        assert_eq!(get(Field::Role).as_deref(), Some("worker"));
        assert_eq!(get(Field::Pid).as_deref(), Some("4242"));
        assert_eq!(get(Field::Worker).as_deref(), Some("3"));
        assert_eq!(get(Field::Host).as_deref(), Some("box"));
        assert_eq!(get(Field::Title).as_deref(), Some("node app"));

        let root = SeriesKey::new("set", &[], "version");
        let m = master();
        let s = SeriesFields {
            key: &root,
            process: Some(&m),
        };
        assert_eq!(s.get(&Field::Name).as_deref(), Some("version"));
        assert_eq!(s.get(&Field::Path).as_deref(), Some(""));
        assert_eq!(s.get(&Field::Worker), None);
        assert_eq!(s.get(&Field::Role).as_deref(), Some("master"));
        let one = SeriesKey::new("set", &["app"], "version");
        let s = SeriesFields {
            key: &one,
            process: None,
        };
        assert!(matches!(s.get(&Field::Path), Some(Cow::Borrowed("app"))));
        for f in [
            Field::Role,
            Field::Pid,
            Field::Worker,
            Field::Host,
            Field::Title,
        ] {
            assert_eq!(s.get(&f), None, "{f:?} of the cluster view");
        }
    }

    #[test]
    fn every_operator() {
        let k = SeriesKey::new("inc", &["http"], r#"requests{method="GET",status="200"}"#);
        let w = worker(2);
        let s = SeriesFields {
            key: &k,
            process: Some(&w),
        };
        let cases = [
            ("name = 'http.requests'", true),
            ("name = 'http.request'", false),
            ("name != 'http.requests'", false),
            ("name != 'x'", true),
            ("name eq 'http.requests'", true),
            ("name eq 'x'", false),
            ("name ne 'http.requests'", false),
            ("name ne 'x'", true),
            ("name LIKE 'http.%'", true),
            ("name LIKE 'http._equests'", true),
            ("name LIKE 'http.'", false),
            ("name LIKE '%requests'", true),
            ("name LIKE '%request'", false),
            ("name NOT LIKE 'http.%'", false),
            ("name NOT LIKE 'db.%'", true),
            ("tags.status IN ('200', \"201\")", true),
            ("tags.status IN ('500')", false),
            ("tags.status NOT IN ('200', '201')", false),
            ("tags.status NOT IN ('500', '503')", true),
            ("type = 'inc'", true),
            ("id = 'requests'", true),
            ("path = 'http'", true),
            ("process.role = 'worker'", true),
            ("process.pid = '4242'", true),
            ("process.pid = '04242'", false),
            ("process.worker = '2'", true),
            ("process.host = 'box'", true),
            ("process.title LIKE 'node%'", true),
            ("tags.method = 'GET' AND tags.status = '200'", true),
            ("tags.method = 'GET' AND tags.status = '500'", false),
            ("tags.method = 'POST' OR tags.status = '200'", true),
            ("tags.method = 'POST' OR tags.status = '500'", false),
            ("NOT tags.method = 'POST'", true),
            ("NOT tags.method = 'GET'", false),
            ("NOT (tags.method = 'GET')", false),
        ];
        for (expression, expected) in cases {
            assert_eq!(check(expression, &s), expected, "{expression}");
        }
    }

    #[test]
    fn precedence_and_parentheses() {
        let k = SeriesKey::new("inc", &[], "x");
        let s = SeriesFields {
            key: &k,
            process: None,
        };
        let t = "id = 'x'";
        let f = "id = 'y'";
        // OR binds loosest: f AND f OR t = (f AND f) OR t.
        assert!(check(&format!("{f} AND {f} OR {t}"), &s));
        assert!(check(&format!("{t} OR {f} AND {f}"), &s));
        assert!(!check(&format!("({t} OR {f}) AND {f}"), &s));
        // NOT binds tightest: NOT t OR t = (NOT t) OR t.
        assert!(check(&format!("NOT {t} OR {t}"), &s));
        assert!(!check(&format!("NOT ({t} OR {t})"), &s));
        assert!(!check(&format!("NOT {t} AND {t}"), &s));
        assert!(check(&format!("NOT NOT {t}"), &s));
        assert!(check(&format!("((({t})))"), &s));
        assert!(check(&format!("NOT ({f} AND ({t} OR {f}))"), &s));
    }

    #[test]
    fn missing_fields() {
        let k = SeriesKey::new("inc", &["a"], "b");
        let m = master();
        for process in [Some(&m), None] {
            let s = SeriesFields { key: &k, process };
            for positive in [
                "tags.x = ''",
                "tags.x eq 'a'",
                "tags.x LIKE '%'",
                "tags.x IN ('', 'a')",
                "process.worker = '1'",
                "process.worker LIKE '%'",
            ] {
                assert!(!check(positive, &s), "{positive}");
                let negative = positive
                    .replacen(" = ", " != ", 1)
                    .replacen(" eq ", " ne ", 1)
                    .replacen(" LIKE ", " NOT LIKE ", 1)
                    .replacen(" IN ", " NOT IN ", 1);
                assert!(check(&negative, &s), "{negative}");
                assert!(check(&format!("NOT {positive}"), &s));
            }
        }
        let s = SeriesFields {
            key: &k,
            process: None,
        };
        for field in ["role", "pid", "host", "title"] {
            assert!(!check(&format!("process.{field} LIKE '%'"), &s));
            assert!(check(&format!("process.{field} != 'x'"), &s));
        }
    }

    #[test]
    fn quotes_and_escapes() {
        let mut map = Map::default();
        let mut is = |value: &str, expression: &str| {
            map.0.insert(Field::Id, value.to_string());
            check_map(expression, &map)
        };
        assert!(is("it's", r"id = 'it\'s'"));
        assert!(is("it's", r#"id = "it's""#));
        assert!(is(r#"say "hi""#, r#"id = "say \"hi\"""#));
        assert!(is(r#"say "hi""#, r#"id = 'say "hi"'"#));
        assert!(is(r"back\slash", r"id = 'back\\slash'"));
        assert!(is("new\nline", r"id = 'new\nline'"));
        assert!(is("", "id = ''"));
        assert!(is("é ü 字", "id = 'é ü 字'"));
        // LIKE escapes.
        assert!(is("50%", r"id LIKE '50\%'"));
        assert!(!is("500", r"id LIKE '50\%'"));
        assert!(is("500", "id LIKE '50%'"));
        assert!(is("a_b", r"id LIKE 'a\_b'"));
        assert!(!is("axb", r"id LIKE 'a\_b'"));
        assert!(is("axb", "id LIKE 'a_b'"));
        assert!(is(r"a\b", r"id LIKE 'a\\b'"));
        assert!(is("字", "id LIKE '_'"));
        assert!(!is("字字", "id LIKE '_'"));
        // `\%` in an equality is just `%`.
        assert!(is("50%", r"id = '50\%'"));
        // Whitespace around tokens and inside values.
        assert!(is(" a b ", "\n\tid\t=\n' a b '\n"));
        assert!(is("x", "id='x'"));
        assert!(is("x", "id IN('x')"));
    }

    fn check_map(expression: &str, series: &Map) -> bool {
        Filter::parse(expression)
            .unwrap_or_else(|e| panic!("{expression}: {e}"))
            .matches(series)
    }

    #[test]
    fn keywords_and_fields_are_case_insensitive() {
        let k = SeriesKey::new("inc", &["a"], r#"b{Key="v"}"#);
        let s = SeriesFields {
            key: &k,
            process: None,
        };
        assert!(check("ID = 'b' and Type EQ 'inc' Or not Name like 'x'", &s));
        assert!(check(
            "id nOt In ('x') AND PATH Ne 'x' AND name NoT LiKe 'x'",
            &s
        ));
        assert!(check("TAGS.Key = 'v'", &s));
        // A tag key is not.
        assert!(!check("tags.key = 'v'", &s));
        // Values are compared case-sensitively.
        assert!(!check("id = 'B'", &s));
        assert!(!check("id LIKE 'B'", &s));
    }

    #[test]
    fn expression_and_threads() {
        let f = Filter::parse(" name LIKE 'a%' ").unwrap();
        assert_eq!(f.expression(), " name LIKE 'a%' ");
        fn shared<T: Clone + Send + Sync + fmt::Debug>(_: &T) {}
        shared(&f);
        let dynamic: &dyn Fields = &Map::default();
        assert!(!f.matches(dynamic));
        let g = f.clone();
        std::thread::spawn(move || g.matches(&Map::default()))
            .join()
            .unwrap();
    }

    fn assert_error(expression: &str, position: usize, expected: &str, found: &str) {
        let e = error(expression);
        assert_eq!(
            (e.position, e.expected.as_str(), e.found.as_str()),
            (position, expected, found),
            "{expression}"
        );
        assert_eq!(
            e.to_string(),
            format!("filter: at position {position}: expected {expected}, found {found}")
        );
    }

    #[test]
    fn errors_say_where_what_was_expected_and_what_was_found() {
        assert_error("", 0, OPERAND, "end of input");
        assert_error("   ", 3, OPERAND, "end of input");
        assert_error("nam = 'x'", 0, OPERAND, "\"nam\"");
        assert_error("id = 'x' AND tags. = 'y'", 13, OPERAND, "\"tags.\"");
        assert_error("tags.1a = 'y'", 0, OPERAND, "\"tags.1a\"");
        assert_error(
            "tags.a-b = 'y'",
            6,
            "an operator (=, !=, eq, ne, LIKE, NOT LIKE, IN, NOT IN)",
            "\"-\"",
        );
        assert_error("= 'x'", 0, OPERAND, "\"=\"");
        assert_error("id = 'x' AND", 12, OPERAND, "end of input");
        assert_error("name =", 6, "a value in quotes", "end of input");
        assert_error("name = x", 7, "a value in quotes", "\"x\"");
        assert_error("name = 12", 7, "a value in quotes", "\"12\"");
        assert_error(
            "name 'x'",
            5,
            "an operator (=, !=, eq, ne, LIKE, NOT LIKE, IN, NOT IN)",
            "\"'x'\"",
        );
        assert_error("name == 'x'", 6, "a value in quotes", "\"=\"");
        assert_error("name NOT = 'x'", 9, "LIKE or IN after NOT", "\"=\"");
        assert_error("(name = 'x'", 11, "AND, OR or ')'", "end of input");
        assert_error(
            "((name = 'x') OR id = 'y'",
            25,
            "AND, OR or ')'",
            "end of input",
        );
        assert_error("name = 'x')", 10, "AND, OR or end of input", "\")\"");
        assert_error(
            "name = 'x' id = 'y'",
            11,
            "AND, OR or end of input",
            "\"id\"",
        );
        assert_error(
            "name = 'x' # comment",
            11,
            "AND, OR or end of input",
            "\"#\"",
        );
        assert_error("(name = 'x' id", 12, "AND, OR or ')'", "\"id\"");
        assert_error(
            "name = 'abc",
            11,
            "' to close the value opened at position 7",
            "end of input",
        );
        assert_error(
            "name = \"a'",
            10,
            "\" to close the value opened at position 7",
            "end of input",
        );
        assert_error(
            r"name = 'a\q'",
            9,
            r#"one of \\ \' \" \% \_ \n (a backslash escapes)"#,
            r#""\\q""#,
        );
        assert_error(
            "name IN 'a'",
            8,
            "'(' opening a list of values in quotes",
            "\"'a'\"",
        );
        assert_error("name IN ()", 9, "a value in quotes", "\")\"");
        assert_error("name IN ('a',)", 13, "a value in quotes", "\")\"");
        assert_error(
            "name IN ('a' 'b')",
            13,
            "',' or ')' in the list of values",
            "\"'b'\"",
        );
        assert_error(
            "name IN ('a'",
            12,
            "',' or ')' in the list of values",
            "end of input",
        );
        assert_error(
            "name NOT IN 'a'",
            12,
            "'(' opening a list of values in quotes",
            "\"'a'\"",
        );
        // Positions count characters, not bytes.
        assert_error("id = 'é' é", 9, "AND, OR or end of input", "\"é\"");
        // A long token is quoted in part.
        let long = format!("{} = 'x'", "a".repeat(100));
        assert_error(&long, 0, OPERAND, &format!("\"{}\"...", "a".repeat(40)));
    }

    #[test]
    fn too_deep_and_too_long_are_errors() {
        let ok = format!("{}id = 'x'{}", "(".repeat(MAX_DEPTH), ")".repeat(MAX_DEPTH));
        assert!(Filter::parse(&ok).is_ok());
        let nots = format!("{}id = 'x'", "NOT ".repeat(MAX_DEPTH));
        assert!(Filter::parse(&nots).is_ok());
        let deep = format!("{}id = 'x'", "(".repeat(MAX_DEPTH + 1));
        assert_error(
            &deep,
            MAX_DEPTH,
            "at most 64 nested '(' and NOT",
            "\"(\" nested 65 deep",
        );
        let mixed = format!("{}id = 'x'", "NOT (".repeat(MAX_DEPTH / 2 + 1));
        assert_error(
            &mixed,
            5 * MAX_DEPTH / 2,
            "at most 64 nested '(' and NOT",
            "\"NOT\" nested 65 deep",
        );
        // Far deeper than any stack would take, still an error (found at the 65th level).
        let very = "(".repeat(MAX_LENGTH);
        assert_eq!(error(&very).position, MAX_DEPTH);

        let at_limit = format!("id IN ('{}')", "x".repeat(MAX_LENGTH - 10));
        assert_eq!(at_limit.len(), MAX_LENGTH);
        assert!(Filter::parse(&at_limit).is_ok());
        let long = format!("id IN ('{}')", "x".repeat(MAX_LENGTH - 9));
        assert_error(
            &long,
            MAX_LENGTH,
            "an expression of at most 4096 bytes",
            "4097 bytes",
        );
        // The position is in characters, cut at a character boundary.
        let wide = "é".repeat(MAX_LENGTH);
        assert_eq!(error(&wide).position, MAX_LENGTH / 2);
        assert_eq!(error(&wide).found, format!("{} bytes", 2 * MAX_LENGTH));
    }

    #[test]
    fn like_is_not_exponential() {
        // The classic backtracking killer: a%a%a%...b against aaaa...: quadratic at worst here.
        let pattern = format!("id LIKE '{}b'", "a%".repeat(1000));
        let f = Filter::parse(&pattern).unwrap();
        let mut map = Map::default();
        map.0.insert(Field::Id, "a".repeat(3000));
        assert!(!f.matches(&map));
        map.0.insert(Field::Id, format!("{}b", "a".repeat(3000)));
        assert!(f.matches(&map));
    }

    /// Reference LIKE: plain recursion (exponential, fine on short inputs).
    fn like_reference(pattern: &[Item], text: &[char]) -> bool {
        match pattern.split_first() {
            None => text.is_empty(),
            Some((Item::Run, rest)) => (0..=text.len()).any(|i| like_reference(rest, &text[i..])),
            Some((Item::One, rest)) => !text.is_empty() && like_reference(rest, &text[1..]),
            Some((Item::Char(c), rest)) => {
                text.first() == Some(c) && like_reference(rest, &text[1..])
            }
        }
    }

    /// A random comparison over three fields and small values, with its opposite.
    fn opposites() -> impl Strategy<Value = (String, String)> {
        let field = prop::sample::select(vec!["id", "tags.k", "process.worker"]);
        let value = prop::sample::select(vec!["a", "b", "", "%", "a%", "_"]);
        let ops = prop::sample::select(vec![
            ("=", "!="),
            ("eq", "ne"),
            ("LIKE", "NOT LIKE"),
            ("IN", "NOT IN"),
        ]);
        (field, ops, value.clone(), value, any::<bool>()).prop_map(|(f, (pos, neg), v, w, flip)| {
            let (pos, neg) = if flip { (neg, pos) } else { (pos, neg) };
            let text = |op: &str| {
                if op.ends_with("IN") {
                    format!("{f} {op} ('{v}', \"{w}\")")
                } else {
                    format!("{f} {op} '{v}'")
                }
            };
            (text(pos), text(neg))
        })
    }

    /// Random expressions over those comparisons, as text.
    fn expression() -> impl Strategy<Value = String> {
        let leaf = opposites().prop_map(|(e, _)| e);
        leaf.prop_recursive(5, 32, 3, |inner| {
            prop_oneof![
                inner.clone().prop_map(|e| format!("NOT ({e})")),
                inner.clone().prop_map(|e| format!("not {e}")),
                (inner.clone(), inner.clone()).prop_map(|(a, b)| format!("{a} AND {b}")),
                (inner.clone(), inner.clone()).prop_map(|(a, b)| format!("({a}) or ({b})")),
                (inner.clone(), inner).prop_map(|(a, b)| format!("({a} OR {b})")),
            ]
        })
    }

    fn series() -> impl Strategy<Value = Map> {
        let value = || prop::option::of(prop::sample::select(vec!["a", "b", "", "ab", "%"]));
        (value(), value(), value()).prop_map(|(id, k, w)| {
            let mut map = Map::default();
            for (field, v) in [
                (Field::Id, id),
                (Field::Tag("k".into()), k),
                (Field::Worker, w),
            ] {
                if let Some(v) = v {
                    map.0.insert(field, v.to_string());
                }
            }
            map
        })
    }

    proptest! {
        #[test]
        fn not_negates(e in expression(), s in series()) {
            let a = Filter::parse(&e).unwrap();
            let not = Filter::parse(&format!("NOT ({e})")).unwrap();
            prop_assert_eq!(not.matches(&s), !a.matches(&s));
        }

        #[test]
        fn de_morgan(a in expression(), b in expression(), s in series()) {
            let both = Filter::parse(&format!("NOT (({a}) AND ({b}))")).unwrap();
            let either = Filter::parse(&format!("NOT ({a}) OR NOT ({b})")).unwrap();
            prop_assert_eq!(both.matches(&s), either.matches(&s));
            let neither = Filter::parse(&format!("NOT (({a}) OR ({b}))")).unwrap();
            let each = Filter::parse(&format!("NOT ({a}) AND NOT ({b})")).unwrap();
            prop_assert_eq!(neither.matches(&s), each.matches(&s));
        }

        #[test]
        fn and_or_are_what_they_say(a in expression(), b in expression(), s in series()) {
            let (fa, fb) = (Filter::parse(&a).unwrap(), Filter::parse(&b).unwrap());
            let and = Filter::parse(&format!("({a}) AND ({b})")).unwrap();
            let or = Filter::parse(&format!("({a}) OR ({b})")).unwrap();
            prop_assert_eq!(and.matches(&s), fa.matches(&s) && fb.matches(&s));
            prop_assert_eq!(or.matches(&s), fa.matches(&s) || fb.matches(&s));
        }

        #[test]
        fn negative_operators_negate_positive_ones((positive, negative) in opposites(), s in series()) {
            let a = Filter::parse(&positive).unwrap();
            let b = Filter::parse(&negative).unwrap();
            prop_assert_eq!(a.matches(&s), !b.matches(&s), "{} / {}", positive, negative);
        }

        #[test]
        fn like_percent_matches_every_present_value(v in "\\PC{0,30}") {
            let mut map = Map::default();
            map.0.insert(Field::Id, v);
            prop_assert!(Filter::parse("id LIKE '%'").unwrap().matches(&map));
            prop_assert!(!Filter::parse("id NOT LIKE '%%'").unwrap().matches(&map));
        }

        #[test]
        fn like_agrees_with_the_reference(
            pattern in prop::collection::vec(prop_oneof![
                Just(Item::Run), Just(Item::One), Just(Item::Char('a')), Just(Item::Char('b')),
                Just(Item::Char('é')),
            ], 0..8),
            text in "[abé]{0,10}",
        ) {
            let chars: Vec<char> = text.chars().collect();
            prop_assert_eq!(like(&pattern, &text), like_reference(&pattern, &chars));
        }

        #[test]
        fn equality_with_any_value_round_trips(v in "\\PC{0,30}") {
            // Escape a value as documented and compare it to itself.
            let escaped: String = v.chars().flat_map(|c| match c {
                '\\' | '\'' => vec!['\\', c],
                c => vec![c],
            }).collect();
            let mut map = Map::default();
            map.0.insert(Field::Id, v.clone());
            let f = Filter::parse(&format!("id = '{escaped}'")).unwrap();
            prop_assert!(f.matches(&map));
            let like: String = v.chars().flat_map(|c| match c {
                '\\' | '\'' | '%' | '_' => vec!['\\', c],
                c => vec![c],
            }).collect();
            let f = Filter::parse(&format!("id LIKE '{like}'")).unwrap();
            prop_assert!(f.matches(&map));
        }

        #[test]
        fn any_text_parses_or_fails_without_panicking(s in "\\PC{0,80}") {
            if let Err(e) = Filter::parse(&s) {
                prop_assert!(e.position <= s.chars().count());
            }
        }

        #[test]
        fn token_soup_parses_or_fails_without_panicking(
            parts in prop::collection::vec(prop::sample::select(vec![
                "(", ")", "NOT", "AND", "OR", "name", "tags.k", "process.pid", "=", "!=", "eq",
                "LIKE", "IN", ",", "'a'", "\"b\"", "'", "\\", "'%'", "é", "#",
            ]), 0..40),
        ) {
            let s = parts.join(" ");
            match Filter::parse(&s) {
                Ok(f) => { f.matches(&Map::default()); }
                Err(e) => prop_assert!(e.position <= s.chars().count(), "{}", e),
            }
        }
    }
}
