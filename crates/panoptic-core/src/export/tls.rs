//! TLS for `serve()`: a rustls server configuration made from a PEM certificate chain and key,
//! and the stream each connection is served over, plain TCP or TLS.
//!
//! # Why rustls with ring
//! rustls needs no OpenSSL (nothing to find or match on the user's machine, which a prebuilt
//! `.node` could not rely on) and is memory-safe. Its `ring` provider builds with a plain C
//! compiler (the portable zig build of glibc 2.17 included), where `aws-lc-rs`, rustls' default,
//! needs cmake and a larger C build. Only TLS 1.2 and 1.3 with rustls' safe defaults.
//!
//! # Behaviour
//! - The server offers ALPN `http/1.1` only (it speaks HTTP/1): a client offering only `h2`
//!   fails the handshake, one offering both (curl, browsers) gets HTTP/1.1.
//! - The handshake must end within the connection's header timeout (the time a connection has to
//!   send its request head), so a client that stalls it is closed like a slowloris.
//! - A client speaking plain HTTP to the TLS port gets a plain `400` saying to use `https://`
//!   and the connection is closed (TLS records start with byte 0x16, HTTP requests with a
//!   letter), instead of a bare reset that says nothing. Both are counted as TLS rejections.

use std::fmt;
use std::future::poll_fn;
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use rustls::pki_types::pem::{self, PemObject};
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::ServerConfig;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio::time::{timeout_at, Instant};
use tokio_rustls::server::TlsStream;
use tokio_rustls::TlsAcceptor;

/// The first byte of a TLS handshake record.
const HANDSHAKE_RECORD: u8 = 0x16;

/// What a plain HTTP request to the TLS port is answered (after [`PLAIN_HTTP_HEAD`]).
const PLAIN_HTTP_BODY: &str = "this server speaks HTTPS: use an https:// URL\n";
const PLAIN_HTTP_HEAD: &str = "HTTP/1.1 400 Bad Request\r\n\
Content-Type: text/plain; charset=utf-8\r\n\
Connection: close\r\n";

/// A server's TLS configuration (cheap to clone).
#[derive(Clone)]
pub struct Tls {
    acceptor: TlsAcceptor,
}

impl fmt::Debug for Tls {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Tls { .. }")
    }
}

/// Why a certificate or key can not be used. Its message names the option (`options.tls.cert`,
/// `options.tls.key`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsError {
    /// `cert` or `key`: the option at fault.
    pub option: &'static str,
    /// What is wrong, after the option's name.
    pub problem: String,
}

impl fmt::Display for TlsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "options.tls.{} {}", self.option, self.problem)
    }
}

impl std::error::Error for TlsError {}

fn error(option: &'static str, problem: impl Into<String>) -> TlsError {
    TlsError {
        option,
        problem: problem.into(),
    }
}

impl Tls {
    /// A configuration from PEM text: `cert`, the server's certificate then any intermediate
    /// ones (`-----BEGIN CERTIFICATE-----` blocks; other blocks are skipped), and `key`, its
    /// private key (PKCS#8 `PRIVATE KEY`, PKCS#1 `RSA PRIVATE KEY` or SEC1 `EC PRIVATE KEY`,
    /// unencrypted). The key must be the certificate's.
    pub fn from_pem(cert: &[u8], key: &[u8]) -> Result<Tls, TlsError> {
        let chain = CertificateDer::pem_slice_iter(cert)
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| error("cert", format!("is not valid PEM: {}", pem_problem(&e))))?;
        if chain.is_empty() {
            return Err(error(
                "cert",
                "holds no PEM certificate (a -----BEGIN CERTIFICATE----- block)",
            ));
        }
        let key = PrivateKeyDer::from_pem_slice(key).map_err(|e| match e {
            pem::Error::NoItemsFound => error(
                "key",
                "holds no PEM private key (a -----BEGIN PRIVATE KEY-----, RSA PRIVATE KEY or \
                 EC PRIVATE KEY block; encrypted keys are not read)",
            ),
            e => error("key", format!("is not valid PEM: {}", pem_problem(&e))),
        })?;
        // rustls 0.23.48 deprecated ring's provider because ring has no post-quantum key
        // exchange (X25519MLKEM768, which aws-lc-rs has): classical X25519/ECDHE stays safe
        // against today's attackers, which is what a metrics endpoint's data needs, and ring is
        // what builds everywhere the addon is built (see the module documentation).
        #[allow(deprecated)]
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut config = ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| error("cert", format!("can not be used: {e}")))?
            .with_no_client_auth()
            .with_single_cert(chain, key)
            .map_err(|e| match e {
                rustls::Error::InconsistentKeys(_) => error(
                    "key",
                    "is not the key of options.tls.cert (the first certificate)",
                ),
                e => error("key", format!("can not be used with options.tls.cert: {e}")),
            })?;
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        Ok(Tls {
            acceptor: TlsAcceptor::from(Arc::new(config)),
        })
    }
}

fn pem_problem(e: &pem::Error) -> String {
    match e {
        pem::Error::MissingSectionEnd { end_marker } => format!(
            "a block does not end (no -----END {}-----)",
            String::from_utf8_lossy(end_marker)
        ),
        pem::Error::IllegalSectionStart { line } => format!(
            "a block does not start correctly ({})",
            String::from_utf8_lossy(line)
        ),
        pem::Error::Base64Decode(e) => format!("bad base64 in a block ({e})"),
        e => format!("{e:?}"),
    }
}

/// Why a connection was closed before its first request.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum Refused {
    /// The handshake failed or did not end in time, or the client spoke plain HTTP (answered
    /// 400): counted as a TLS rejection.
    Tls,
    /// The client sent nothing before it went away or the time was up: not a rejection (as an
    /// idle plain connection).
    Silent,
}

/// `stream` as the server serves it: as is without `tls`; else once its TLS handshake succeeded
/// within `timeout` from now.
pub(super) async fn accept(
    tls: Option<&Tls>,
    mut stream: TcpStream,
    timeout: Duration,
) -> Result<Stream, Refused> {
    let Some(tls) = tls else {
        return Ok(Stream::Plain(stream));
    };
    let deadline = Instant::now() + timeout;
    let mut first = [0u8; 1];
    match timeout_at(deadline, stream.peek(&mut first)).await {
        Ok(Ok(1..)) => {}
        _ => return Err(Refused::Silent),
    }
    if first[0] != HANDSHAKE_RECORD {
        if first[0].is_ascii_alphabetic() {
            let _ = timeout_at(deadline, answer_plain_http(&mut stream)).await;
        }
        return Err(Refused::Tls);
    }
    match timeout_at(deadline, tls.acceptor.accept(stream)).await {
        Ok(Ok(stream)) => Ok(Stream::Tls(Box::new(stream))),
        _ => Err(Refused::Tls),
    }
}

/// Sends a 400 saying to use HTTPS, then reads (and drops) what the client sends until it closes:
/// closing with its request unread would reset the connection, and a reset can make the client
/// drop the answer before reading it.
async fn answer_plain_http(stream: &mut TcpStream) -> io::Result<()> {
    let answer = format!(
        "{PLAIN_HTTP_HEAD}Content-Length: {}\r\n\r\n{PLAIN_HTTP_BODY}",
        PLAIN_HTTP_BODY.len()
    );
    let mut rest = answer.as_bytes();
    while !rest.is_empty() {
        stream.writable().await?;
        match stream.try_write(rest) {
            Ok(n) => rest = &rest[n..],
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
            Err(e) => return Err(e),
        }
    }
    poll_fn(|cx| Pin::new(&mut *stream).poll_shutdown(cx)).await?;
    let mut sink = [0u8; 4096];
    loop {
        stream.readable().await?;
        match stream.try_read(&mut sink) {
            Ok(0) => return Ok(()),
            Ok(_) => {}
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
            Err(e) => return Err(e),
        }
    }
}

/// A connection's byte stream: plain TCP, or TLS over it.
pub(super) enum Stream {
    Plain(TcpStream),
    Tls(Box<TlsStream<TcpStream>>),
}

impl AsyncRead for Stream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_read(cx, buf),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_read(cx, buf),
        }
    }
}

impl AsyncWrite for Stream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_write(cx, buf),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_write(cx, buf),
        }
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_write_vectored(cx, bufs),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_write_vectored(cx, bufs),
        }
    }

    fn is_write_vectored(&self) -> bool {
        match self {
            Stream::Plain(s) => s.is_write_vectored(),
            Stream::Tls(s) => s.is_write_vectored(),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_flush(cx),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_flush(cx),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_shutdown(cx),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_shutdown(cx),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const CERT: &str = include_str!("../../../../__test__/fixtures/tls/server.pem");
    const KEY: &str = include_str!("../../../../__test__/fixtures/tls/server.key");
    const CA: &str = include_str!("../../../../__test__/fixtures/tls/ca.pem");
    const CA_KEY: &str = include_str!("../../../../__test__/fixtures/tls/ca.key");

    fn problem(cert: &str, key: &str) -> String {
        Tls::from_pem(cert.as_bytes(), key.as_bytes())
            .unwrap_err()
            .to_string()
    }

    #[test]
    fn reads_a_chain_and_its_key_in_sec1_or_pkcs8() {
        Tls::from_pem(CERT.as_bytes(), KEY.as_bytes()).unwrap();
        // The chain with its CA after it, and the CA's own PKCS#8 key with the CA.
        Tls::from_pem(format!("{CERT}{CA}").as_bytes(), KEY.as_bytes()).unwrap();
        Tls::from_pem(CA.as_bytes(), CA_KEY.as_bytes()).unwrap();
        // CRLF line ends, as a file edited on Windows has.
        let crlf = |s: &str| s.replace('\n', "\r\n");
        Tls::from_pem(crlf(CERT).as_bytes(), crlf(KEY).as_bytes()).unwrap();
    }

    #[test]
    fn names_the_option_at_fault() {
        assert_eq!(
            problem("", KEY),
            "options.tls.cert holds no PEM certificate (a -----BEGIN CERTIFICATE----- block)"
        );
        // A key given as the certificate.
        assert!(problem(KEY, KEY).starts_with("options.tls.cert holds no PEM certificate"));
        assert!(problem(CERT, "").starts_with("options.tls.key holds no PEM private key"));
        assert!(problem(CERT, CERT).starts_with("options.tls.key holds no PEM private key"));
        assert_eq!(
            problem(CERT, CA_KEY),
            "options.tls.key is not the key of options.tls.cert (the first certificate)"
        );
        let cut = &CERT[..CERT.len() / 2];
        assert!(
            problem(cut, KEY)
                .starts_with("options.tls.cert is not valid PEM: a block does not end"),
            "{}",
            problem(cut, KEY)
        );
        let garbled = CERT.replacen("MII", "M!I", 1);
        assert!(problem(&garbled, KEY).starts_with("options.tls.cert is not valid PEM"));
        // A certificate that is not DER inside its PEM: rustls finds it when matching the key.
        let junk = "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n";
        assert!(problem(junk, KEY).starts_with("options.tls.key "));
    }
}
