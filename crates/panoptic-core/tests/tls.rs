//! The native HTTP server (export/server.rs) with TLS (export/tls.rs) and credentials
//! (export/auth.rs), against a rustls client and raw TCP clients: what a TLS client gets, how
//! handshakes that stall or are not TLS end, and what the counters say. Real clients (curl, Node,
//! Prometheus, Chromium) are in __test__/tls.test.js.

use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use panoptic_core::export::auth::Auth;
use panoptic_core::export::server::{Handler, Limits, Reply, Request, Security, Server};
use panoptic_core::export::tls::Tls;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName};
use rustls::{ClientConfig, ClientConnection, RootCertStore, StreamOwned};

const CERT: &str = include_str!("../../../__test__/fixtures/tls/server.pem");
const KEY: &str = include_str!("../../../__test__/fixtures/tls/server.key");
const CA: &str = include_str!("../../../__test__/fixtures/tls/ca.pem");

/// How long anything that should happen may take before a test fails (generous: the machine
/// is small and shared).
const PATIENCE: Duration = Duration::from_secs(20);

/// Answers every request with its path.
struct Echo;

impl Handler for Echo {
    fn respond(&self, request: &Request) -> Reply {
        Reply {
            status: 200,
            content_type: "text/plain".into(),
            body: request.path.clone().into_bytes(),
        }
    }
}

fn start(limits: Limits, auth: Option<Auth>) -> Server {
    let security = Security {
        tls: Some(Tls::from_pem(CERT.as_bytes(), KEY.as_bytes()).unwrap()),
        auth,
    };
    Server::start_secure("127.0.0.1", 0, Arc::new(Echo), None, limits, security).unwrap()
}

fn wait_until(what: &str, mut condition: impl FnMut() -> bool) {
    let deadline = Instant::now() + PATIENCE;
    while !condition() {
        assert!(Instant::now() < deadline, "timed out waiting until {what}");
        thread::sleep(Duration::from_millis(5));
    }
}

fn connect(address: SocketAddr) -> TcpStream {
    let stream = TcpStream::connect(address).unwrap();
    stream.set_read_timeout(Some(PATIENCE)).unwrap();
    stream
}

/// A TLS client trusting the test CA only, offering `alpn`.
fn client(address: SocketAddr, alpn: &[&[u8]]) -> StreamOwned<ClientConnection, TcpStream> {
    let mut roots = RootCertStore::empty();
    roots
        .add(CertificateDer::from_pem_slice(CA.as_bytes()).unwrap())
        .unwrap();
    #[allow(deprecated)] // ring's provider, as the server's (tls.rs says why)
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
    let name = ServerName::try_from("localhost").unwrap();
    let connection = ClientConnection::new(Arc::new(config), name).unwrap();
    StreamOwned::new(connection, connect(address))
}

/// GETs `path` with `headers` (lines without CR LF) over `stream`; the whole answer as text.
fn get(stream: &mut impl ReadWrite, path: &str, headers: &[&str]) -> io::Result<String> {
    let mut request = format!("GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n");
    for header in headers {
        request.push_str(header);
        request.push_str("\r\n");
    }
    request.push_str("\r\n");
    stream.write_all(request.as_bytes())?;
    let mut answer = Vec::new();
    match stream.read_to_end(&mut answer) {
        Ok(_) => {}
        // rustls: the server closed without close_notify after a complete answer.
        Err(e) if e.kind() == io::ErrorKind::UnexpectedEof && !answer.is_empty() => {}
        Err(e) => return Err(e),
    }
    Ok(String::from_utf8(answer).unwrap())
}

trait ReadWrite: Read + Write {}
impl<T: Read + Write> ReadWrite for T {}

#[test]
fn a_tls_client_is_served_http_1_1() {
    let server = start(Limits::default(), None);
    let mut tls = client(server.local_addr(), &[b"h2", b"http/1.1"]);
    let answer = get(&mut tls, "/metrics", &[]).unwrap();
    assert!(answer.starts_with("HTTP/1.1 200 OK\r\n"), "{answer}");
    assert!(answer.ends_with("\r\n\r\n/metrics"), "{answer}");
    assert_eq!(tls.conn.alpn_protocol(), Some(&b"http/1.1"[..]));
    // Without ALPN too.
    let answer = get(&mut client(server.local_addr(), &[]), "/x", &[]).unwrap();
    assert!(answer.starts_with("HTTP/1.1 200 OK\r\n"), "{answer}");
    assert_eq!(server.stats().rejected.tls, 0);
}

#[test]
fn an_h2_only_client_fails_the_handshake() {
    let server = start(Limits::default(), None);
    let error = get(&mut client(server.local_addr(), &[b"h2"]), "/", &[]).unwrap_err();
    assert!(
        error.to_string().contains("NoApplicationProtocol"),
        "{error}"
    );
    wait_until("the failure is counted", || {
        server.stats().rejected.tls == 1
    });
}

#[test]
fn plain_http_gets_a_400_that_says_to_use_https() {
    let server = start(Limits::default(), None);
    let answer = get(&mut connect(server.local_addr()), "/metrics", &[]).unwrap();
    assert_eq!(
        answer,
        "HTTP/1.1 400 Bad Request\r\nContent-Type: text/plain; charset=utf-8\r\n\
         Connection: close\r\nContent-Length: 46\r\n\r\n\
         this server speaks HTTPS: use an https:// URL\n"
    );
    wait_until("the refusal is counted", || {
        server.stats().rejected.tls == 1
    });
    // Bytes that are neither: closed without an answer (unread bytes make it a reset), counted
    // the same.
    let mut junk = connect(server.local_addr());
    junk.write_all(&[0u8; 64]).unwrap();
    let mut rest = Vec::new();
    if let Err(e) = junk.read_to_end(&mut rest) {
        assert_eq!(e.kind(), io::ErrorKind::ConnectionReset);
    }
    assert!(rest.is_empty());
    wait_until("the junk is counted", || server.stats().rejected.tls == 2);
    assert_eq!(server.stats().requests, 0);
}

#[test]
fn a_stalled_handshake_is_closed_at_the_header_timeout_and_a_silent_one_is_not_counted() {
    let limits = Limits {
        header_timeout: Duration::from_millis(300),
        ..Limits::default()
    };
    let server = start(limits, None);
    // A TLS record header, then nothing.
    let mut stalled = connect(server.local_addr());
    stalled.write_all(&[0x16, 0x03, 0x01, 0x00, 0x40]).unwrap();
    let mut silent = connect(server.local_addr());
    let started = Instant::now();
    let mut rest = Vec::new();
    // Closed by the server (EOF or a reset), not by the test's read timeout.
    let _ = stalled.read_to_end(&mut rest);
    let _ = silent.read_to_end(&mut rest);
    let took = started.elapsed();
    assert!(took >= Duration::from_millis(250), "{took:?}");
    assert!(took < PATIENCE / 2, "{took:?}");
    wait_until("both connections are gone", || {
        server.stats().open_connections == 0
    });
    assert_eq!(server.stats().rejected.tls, 1, "{:?}", server.stats());
}

#[test]
fn credentials_are_asked_for_over_tls() {
    let auth = Auth::new(Some("t0ken"), None).unwrap();
    let server = start(Limits::default(), Some(auth));
    let address = server.local_addr();
    let refused = get(&mut client(address, &[]), "/metrics", &[]).unwrap();
    assert!(
        refused.starts_with("HTTP/1.1 401 Unauthorized\r\n"),
        "{refused}"
    );
    assert!(refused.contains("\r\nwww-authenticate: Bearer realm=\"panoptic\"\r\n"));
    let wrong = get(
        &mut client(address, &[]),
        "/",
        &["Authorization: Bearer t0ke"],
    )
    .unwrap();
    assert!(wrong.starts_with("HTTP/1.1 401 "), "{wrong}");
    let right = get(
        &mut client(address, &[]),
        "/",
        &["Authorization: Bearer t0ken"],
    )
    .unwrap();
    assert!(right.starts_with("HTTP/1.1 200 "), "{right}");
    let stats = server.stats();
    assert_eq!((stats.rejected.unauthorized, stats.requests), (2, 3));
}
