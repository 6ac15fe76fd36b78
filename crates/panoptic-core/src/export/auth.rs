//! Authentication for `serve()`: every request (the live page and `/events` included) must carry
//! `Authorization: Bearer <token>` or `Authorization: Basic <base64 of user:password>` matching
//! the server's, else it is answered 401 with a `WWW-Authenticate` challenge for each scheme the
//! server takes (`Basic` makes a browser ask for a user and password, and then send them with the
//! page's own requests, its event stream included).
//!
//! Secrets are compared in constant time (the `subtle` crate): how long a comparison takes
//! depends on the length of the server's secret only, never on how much of a guess was right.

use std::fmt;

use base64::alphabet::STANDARD;
use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};
use base64::Engine;
use subtle::ConstantTimeEq;

/// What a server takes as credentials: a bearer token, a user and password, or either.
#[derive(Clone)]
pub struct Auth {
    bearer: Option<Vec<u8>>,
    /// `user:password`, as Basic credentials decode.
    basic: Option<Vec<u8>>,
}

impl fmt::Debug for Auth {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Never the secrets.
        f.debug_struct("Auth")
            .field("bearer", &self.bearer.is_some())
            .field("basic", &self.basic.is_some())
            .finish()
    }
}

/// Basic credentials' base64, with or without its padding (clients differ).
const BASE64: GeneralPurpose = GeneralPurpose::new(
    &STANDARD,
    GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
);

impl Auth {
    /// Credentials from the `auth` option: `bearer` (visible ASCII, no spaces: what a header can
    /// carry), `basic` (a user without `:` nor control characters, a password without control
    /// characters; neither empty), at least one of them. The error is the message of a
    /// `RangeError`, naming the option.
    pub fn new(bearer: Option<&str>, basic: Option<(&str, &str)>) -> Result<Auth, String> {
        if bearer.is_none() && basic.is_none() {
            return Err("options.auth must have bearer or basic (or both)".into());
        }
        if let Some(token) = bearer {
            if token.is_empty() || !token.bytes().all(|b| b.is_ascii_graphic()) {
                return Err(format!(
                    "options.auth.bearer must be a non-empty token of visible ASCII characters \
                     without spaces, got {} characters",
                    token.chars().count()
                ));
            }
        }
        if let Some((user, password)) = basic {
            if user.is_empty() || user.contains(':') || user.chars().any(char::is_control) {
                // The user is no secret: it is shown.
                return Err(format!(
                    "options.auth.basic.user must be non-empty, without ':' nor control \
                     characters, got {user:?}"
                ));
            }
            if password.is_empty() || password.chars().any(char::is_control) {
                return Err(format!(
                    "options.auth.basic.password must be non-empty, without control characters, \
                     got {} characters",
                    password.chars().count()
                ));
            }
        }
        Ok(Auth {
            bearer: bearer.map(|token| token.as_bytes().to_vec()),
            basic: basic.map(|(user, password)| format!("{user}:{password}").into_bytes()),
        })
    }

    /// Whether one of the `Authorization` header values carries the server's credentials.
    pub fn allows<'a>(&self, authorizations: impl IntoIterator<Item = &'a [u8]>) -> bool {
        authorizations.into_iter().any(|value| self.accepts(value))
    }

    fn accepts(&self, authorization: &[u8]) -> bool {
        let text = trim(authorization);
        let split = text.iter().position(|&b| b == b' ').unwrap_or(text.len());
        let (scheme, credentials) = (&text[..split], trim(&text[split..]));
        if scheme.eq_ignore_ascii_case(b"bearer") {
            return self
                .bearer
                .as_ref()
                .is_some_and(|token| same(credentials, token));
        }
        if scheme.eq_ignore_ascii_case(b"basic") {
            let Some(expected) = &self.basic else {
                return false;
            };
            return BASE64
                .decode(credentials)
                .is_ok_and(|given| same(&given, expected));
        }
        false
    }

    /// The `WWW-Authenticate` values of a 401: one per scheme taken, Basic first (a browser
    /// answers the first it knows).
    pub fn challenges(&self) -> Vec<&'static str> {
        let mut out = Vec::new();
        if self.basic.is_some() {
            out.push(r#"Basic realm="panoptic", charset="UTF-8""#);
        }
        if self.bearer.is_some() {
            out.push(r#"Bearer realm="panoptic""#);
        }
        out
    }
}

fn trim(bytes: &[u8]) -> &[u8] {
    let start = bytes.iter().position(|&b| b != b' ' && b != b'\t');
    let end = bytes.iter().rposition(|&b| b != b' ' && b != b'\t');
    match (start, end) {
        (Some(start), Some(end)) => &bytes[start..=end],
        _ => &[],
    }
}

/// Whether `given` equals `expected`, in a time that depends on `expected.len()` only.
fn same(given: &[u8], expected: &[u8]) -> bool {
    let mut equal = (given.len() as u64).ct_eq(&(expected.len() as u64));
    for (i, e) in expected.iter().enumerate() {
        // Past the end of a shorter guess, any byte: the lengths differ already.
        let g = given.get(i).copied().unwrap_or(0);
        equal &= g.ct_eq(e);
    }
    bool::from(equal)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn basic(user_password: &str) -> Vec<u8> {
        format!("Basic {}", BASE64.encode(user_password)).into_bytes()
    }

    #[test]
    fn takes_the_right_credentials_only() {
        let auth = Auth::new(Some("s3cr3t-T0ken"), Some(("prom", "pässwörd"))).unwrap();
        let allows = |value: &[u8]| auth.allows([value]);
        assert!(allows(b"Bearer s3cr3t-T0ken"));
        assert!(allows(b"bearer   s3cr3t-T0ken  "));
        assert!(allows(&basic("prom:pässwörd")));
        // Without padding, and the scheme in capitals.
        let unpadded = format!(
            "BASIC {}",
            BASE64.encode("prom:pässwörd").trim_end_matches('=')
        );
        assert!(allows(unpadded.as_bytes()));
        for wrong in [
            &b"Bearer s3cr3t-T0ke"[..],
            b"Bearer s3cr3t-T0ken0",
            b"Bearer S3cr3t-T0ken",
            b"Bearer",
            b"s3cr3t-T0ken",
            b"Token s3cr3t-T0ken",
            b"",
            &basic("prom:passwörd"),
            &basic("prom:pässwörd "),
            &basic("Prom:pässwörd"),
            &basic("prom"),
            b"Basic !!!",
            // The token as Basic credentials, and Basic ones as a token.
            &basic("s3cr3t-T0ken"),
        ] {
            assert!(!allows(wrong), "{}", String::from_utf8_lossy(wrong));
        }
        // Any of several headers.
        assert!(auth.allows([&b"Bearer nope"[..], b"Bearer s3cr3t-T0ken"]));
        assert!(!auth.allows(std::iter::empty()));
    }

    #[test]
    fn a_scheme_not_configured_is_refused() {
        let bearer_only = Auth::new(Some("t"), None).unwrap();
        assert!(!bearer_only.allows([&basic("t:t")[..]]));
        assert_eq!(bearer_only.challenges(), [r#"Bearer realm="panoptic""#]);
        let basic_only = Auth::new(None, Some(("u", "p"))).unwrap();
        assert!(!basic_only.allows([&b"Bearer u:p"[..]]));
        assert!(basic_only.allows([&basic("u:p")[..]]));
        // A password may hold ':' (only the user may not).
        let colon = Auth::new(None, Some(("u", "p:q"))).unwrap();
        assert!(colon.allows([&basic("u:p:q")[..]]));
        assert_eq!(colon.challenges().len(), 1);
    }

    #[test]
    fn bad_credentials_name_the_option_and_hide_the_secret() {
        let problem = |bearer, basic| Auth::new(bearer, basic).unwrap_err();
        assert_eq!(
            problem(None, None),
            "options.auth must have bearer or basic (or both)"
        );
        assert!(problem(Some(""), None).starts_with("options.auth.bearer must be"));
        let spaced = problem(Some("my secret"), None);
        assert!(spaced.ends_with("got 9 characters") && !spaced.contains("secret"));
        assert!(problem(None, Some(("a:b", "p"))).starts_with("options.auth.basic.user"));
        assert!(problem(None, Some(("", "p"))).starts_with("options.auth.basic.user"));
        assert!(problem(None, Some(("u", ""))).starts_with("options.auth.basic.password"));
        let newline = problem(None, Some(("u", "hidden\n")));
        assert!(newline.starts_with("options.auth.basic.password") && !newline.contains("hidden"));
        assert!(!format!("{:?}", Auth::new(Some("tok"), None).unwrap()).contains("tok"));
    }

    #[test]
    fn compares_whole_secrets() {
        assert!(same(b"abc", b"abc"));
        assert!(!same(b"abc", b"abd"));
        assert!(!same(b"ab", b"abc"));
        assert!(!same(b"abc\0", b"abc"));
        assert!(!same(b"", b"a"));
        assert!(same(b"", b""));
    }
}
