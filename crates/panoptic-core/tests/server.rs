//! The native HTTP server (export/server.rs) against raw TCP clients: what it answers, its
//! limits against hostile clients, and its event streams.

use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use panoptic_core::export::server::{Events, Handler, Limits, Reply, Request, Server};

/// How long anything that should happen may take before a test fails (generous: the machine
/// is small and shared).
const PATIENCE: Duration = Duration::from_secs(20);

/// Answers `/echo` with the request as JSON, `/big?N` with N bytes, `/slow` once released,
/// `/panic` by panicking, `/teapot` with 418, `/png` with bytes that are not text, anything else
/// 404. Counts calls running at once.
#[derive(Default)]
struct TestHandler {
    released: Mutex<bool>,
    release: Condvar,
    slow_running: AtomicUsize,
    running: AtomicUsize,
    most_running: AtomicUsize,
}

impl TestHandler {
    fn release_slow(&self) {
        *self.released.lock().unwrap() = true;
        self.release.notify_all();
    }
}

impl Handler for TestHandler {
    fn respond(&self, request: &Request) -> Reply {
        let now = self.running.fetch_add(1, Ordering::SeqCst) + 1;
        self.most_running.fetch_max(now, Ordering::SeqCst);
        let reply = |status: u16, content_type: &str, body: Vec<u8>| Reply {
            status,
            content_type: content_type.into(),
            body,
        };
        let answer = match request.path.as_str() {
            "/echo" => reply(
                200,
                "application/json",
                format!(
                    r#"{{"method":"{}","path":"{}","query":"{}","accept":"{}"}}"#,
                    request.method, request.path, request.query, request.accept
                )
                .into_bytes(),
            ),
            "/big" => reply(
                200,
                "text/plain",
                vec![b'x'; request.query.parse().unwrap()],
            ),
            "/slow" => {
                self.slow_running.fetch_add(1, Ordering::SeqCst);
                let released = self.released.lock().unwrap();
                let _released = self
                    .release
                    .wait_timeout_while(released, PATIENCE, |released| !*released)
                    .unwrap();
                reply(200, "text/plain", b"slow".to_vec())
            }
            "/panic" => {
                self.running.fetch_sub(1, Ordering::SeqCst);
                panic!("a handler bug (expected by the test)")
            }
            "/teapot" => reply(418, "text/plain", b"short and stout".to_vec()),
            "/png" => reply(200, "image/png", vec![0x89; 4096]),
            _ => reply(404, "text/plain", b"not found".to_vec()),
        };
        self.running.fetch_sub(1, Ordering::SeqCst);
        answer
    }
}

fn start(limits: Limits, events: Option<Events>) -> (Server, Arc<TestHandler>) {
    let handler = Arc::new(TestHandler::default());
    let server = Server::start("127.0.0.1", 0, handler.clone(), events, limits).unwrap();
    (server, handler)
}

/// Waits until `condition` holds, failing the test after PATIENCE.
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

#[derive(Debug)]
struct Answer {
    status: u16,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Answer {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    fn text(&self) -> &str {
        std::str::from_utf8(&self.body).unwrap()
    }
}

/// A status line and headers.
fn read_head(reader: &mut impl BufRead) -> io::Result<(u16, Vec<(String, String)>)> {
    let mut line = String::new();
    if reader.read_line(&mut line)? == 0 {
        return Err(io::ErrorKind::UnexpectedEof.into());
    }
    let status = line.split(' ').nth(1).unwrap().parse().unwrap();
    let mut headers = Vec::new();
    loop {
        line.clear();
        reader.read_line(&mut line)?;
        let line = line.trim_end();
        if line.is_empty() {
            return Ok((status, headers));
        }
        let (name, value) = line.split_once(':').unwrap();
        headers.push((name.to_owned(), value.trim().to_owned()));
    }
}

/// A response whose body has a Content-Length (none for HEAD).
fn read_answer(reader: &mut impl BufRead, head: bool) -> io::Result<Answer> {
    let (status, headers) = read_head(reader)?;
    let mut answer = Answer {
        status,
        headers,
        body: Vec::new(),
    };
    if !head {
        let length = answer.header("content-length").unwrap().parse().unwrap();
        answer.body.resize(length, 0);
        reader.read_exact(&mut answer.body)?;
    }
    Ok(answer)
}

fn request(method: &str, target: &str) -> String {
    format!("{method} {target} HTTP/1.1\r\nHost: test\r\n\r\n")
}

/// One request on a new connection.
fn get(address: SocketAddr, target: &str) -> Answer {
    let mut stream = connect(address);
    stream.write_all(request("GET", target).as_bytes()).unwrap();
    read_answer(&mut BufReader::new(stream), false).unwrap()
}

/// True once the peer closed (EOF, or a reset); false if it sent more data.
fn closed(stream: &mut TcpStream) -> bool {
    match stream.read(&mut [0; 4096]) {
        Ok(0) => true,
        Ok(_) => false,
        Err(e) if e.kind() == io::ErrorKind::ConnectionReset => true,
        Err(e) => panic!("reading: {e}"),
    }
}

#[test]
fn routes_are_answered_with_the_handlers_replies() {
    let (server, _) = start(Limits::default(), None);
    let address = server.local_addr();
    let mut stream = connect(address);
    stream
        .write_all(b"GET /echo?a=1&b=%20 HTTP/1.1\r\nHost: t\r\nAccept: text/plain\r\n\r\n")
        .unwrap();
    let echo = read_answer(&mut BufReader::new(stream), false).unwrap();
    assert_eq!(echo.status, 200);
    assert_eq!(echo.header("content-type"), Some("application/json"));
    assert_eq!(
        echo.text(),
        r#"{"method":"GET","path":"/echo","query":"a=1&b=%20","accept":"text/plain"}"#
    );
    let teapot = get(address, "/teapot");
    assert_eq!((teapot.status, teapot.text()), (418, "short and stout"));
    assert_eq!(get(address, "/nope").status, 404);
    let big = get(address, "/big?3000000");
    assert_eq!(big.header("content-length"), Some("3000000"));
    assert!(big.body.iter().all(|&b| b == b'x'));
    // Without Events, the server answers /events itself.
    let events = get(address, "/events");
    assert_eq!(events.status, 404);
    let stats = server.stats();
    assert_eq!(stats.requests, 5);
    assert_eq!(stats.connections, 5);
}

#[test]
fn keep_alive_serves_two_requests_on_one_connection() {
    let (server, _) = start(Limits::default(), None);
    let mut stream = connect(server.local_addr());
    let mut reader = BufReader::new(stream.try_clone().unwrap());
    stream
        .write_all(request("GET", "/echo?1").as_bytes())
        .unwrap();
    assert!(read_answer(&mut reader, false)
        .unwrap()
        .text()
        .contains("\"query\":\"1\""));
    stream
        .write_all(request("GET", "/echo?2").as_bytes())
        .unwrap();
    assert!(read_answer(&mut reader, false)
        .unwrap()
        .text()
        .contains("\"query\":\"2\""));
    assert_eq!(server.stats().connections, 1);
    assert_eq!(server.stats().requests, 2);
}

#[test]
fn head_sends_the_headers_without_the_body() {
    let (server, _) = start(Limits::default(), None);
    let mut stream = connect(server.local_addr());
    let mut reader = BufReader::new(stream.try_clone().unwrap());
    stream
        .write_all(request("HEAD", "/big?100").as_bytes())
        .unwrap();
    let head = read_answer(&mut reader, true).unwrap();
    assert_eq!(head.status, 200);
    assert_eq!(head.header("content-length"), Some("100"));
    assert_eq!(head.header("content-type"), Some("text/plain"));
    // Had a body been sent, it would be read here instead of the next status line.
    stream
        .write_all(request("GET", "/echo").as_bytes())
        .unwrap();
    let next = read_answer(&mut reader, false).unwrap();
    assert!(next.text().contains("\"method\":\"GET\""));
    // The handler sees HEAD.
    stream
        .write_all(request("HEAD", "/echo").as_bytes())
        .unwrap();
    let head = read_answer(&mut reader, true).unwrap();
    let length: usize = head.header("content-length").unwrap().parse().unwrap();
    assert_eq!(
        length,
        r#"{"method":"HEAD","path":"/echo","query":"","accept":""}"#.len()
    );
}

#[test]
fn other_methods_get_405_with_allow() {
    let (server, _) = start(Limits::default(), None);
    let mut stream = connect(server.local_addr());
    let mut reader = BufReader::new(stream.try_clone().unwrap());
    for method in ["POST", "DELETE", "OPTIONS"] {
        stream
            .write_all(request(method, "/echo").as_bytes())
            .unwrap();
        let answer = read_answer(&mut reader, false).unwrap();
        assert_eq!(answer.status, 405, "{method}");
        assert_eq!(answer.header("allow"), Some("GET, HEAD"));
    }
    assert_eq!(server.stats().rejected.method, 3);
}

#[test]
fn a_get_with_a_body_is_answered_and_its_body_ignored() {
    let (server, _) = start(Limits::default(), None);
    let mut stream = connect(server.local_addr());
    let mut reader = BufReader::new(stream.try_clone().unwrap());
    stream
        .write_all(b"GET /echo?x HTTP/1.1\r\nHost: t\r\nContent-Length: 5\r\n\r\nhello")
        .unwrap();
    assert!(read_answer(&mut reader, false)
        .unwrap()
        .text()
        .contains("\"query\":\"x\""));
    // The body arrived with the head: hyper dropped it and the connection is still usable.
    stream
        .write_all(request("GET", "/echo?y").as_bytes())
        .unwrap();
    assert!(read_answer(&mut reader, false)
        .unwrap()
        .text()
        .contains("\"query\":\"y\""));
}

#[test]
fn a_long_uri_gets_414() {
    let (server, _) = start(Limits::default(), None);
    let address = server.local_addr();
    let under = format!("/echo?{}", "a".repeat(8 * 1024 - 6));
    assert_eq!(get(address, &under).status, 200);
    let over = format!("/echo?{}", "a".repeat(8 * 1024));
    let answer = get(address, &over);
    assert_eq!(answer.status, 414);
    assert_eq!(server.stats().rejected.uri_too_long, 1);
}

#[test]
fn oversized_headers_get_431_and_the_connection_is_closed() {
    let (server, _) = start(Limits::default(), None);
    let address = server.local_addr();
    // Under the limit: answered.
    let mut stream = connect(address);
    let head = format!(
        "GET /echo HTTP/1.1\r\nHost: t\r\nX-Big: {}\r\n\r\n",
        "b".repeat(12 * 1024)
    );
    stream.write_all(head.as_bytes()).unwrap();
    assert_eq!(
        read_answer(&mut BufReader::new(stream), false)
            .unwrap()
            .status,
        200
    );
    // Over it: 431, then the connection is closed.
    let mut stream = connect(address);
    let head = format!(
        "GET /echo HTTP/1.1\r\nHost: t\r\nX-Big: {}\r\n\r\n",
        "b".repeat(20 * 1024)
    );
    stream.write_all(head.as_bytes()).unwrap();
    let mut reader = BufReader::new(stream.try_clone().unwrap());
    let (status, _) = read_head(&mut reader).unwrap();
    assert_eq!(status, 431);
    assert!(closed(&mut stream));
    wait_until("the 431 is counted", || {
        server.stats().rejected.headers_too_large == 1
    });
    // Too many headers: 431 too.
    let mut stream = connect(address);
    let mut head = "GET /echo HTTP/1.1\r\nHost: t\r\n".to_owned();
    for i in 0..101 {
        head.push_str(&format!("X-{i}: {i}\r\n"));
    }
    head.push_str("\r\n");
    stream.write_all(head.as_bytes()).unwrap();
    let (status, _) = read_head(&mut BufReader::new(stream)).unwrap();
    assert_eq!(status, 431);
}

#[test]
fn slow_and_idle_clients_are_closed_after_the_header_timeout() {
    let timeout = Duration::from_secs(1);
    let (server, _) = start(
        Limits {
            header_timeout: timeout,
            ..Limits::default()
        },
        None,
    );
    let address = server.local_addr();
    // Half a request head, then nothing.
    let started = Instant::now();
    let mut half = connect(address);
    half.write_all(b"GET /echo HTTP/1.1\r\nHost: t\r\n")
        .unwrap();
    // A head trickling in, a byte every 50 ms: the timeout covers the whole head.
    let mut trickle = connect(address);
    trickle
        .write_all(b"GET /echo HTTP/1.1\r\nX-Slow: ")
        .unwrap();
    let mut writer = trickle.try_clone().unwrap();
    let trickler = thread::spawn(move || {
        let until = Instant::now() + PATIENCE;
        while Instant::now() < until && writer.write_all(b"a").is_ok() {
            thread::sleep(Duration::from_millis(50));
        }
    });
    // Nothing at all.
    let mut idle = connect(address);
    for stream in [&mut half, &mut trickle, &mut idle] {
        assert!(closed(stream));
    }
    let elapsed = started.elapsed();
    assert!(elapsed >= timeout, "closed after {elapsed:?}");
    assert!(elapsed < PATIENCE / 2, "closed after {elapsed:?}");
    trickler.join().unwrap();
    // A keep-alive connection idle after a response is closed too.
    let mut stream = connect(address);
    stream
        .write_all(request("GET", "/echo").as_bytes())
        .unwrap();
    let mut reader = BufReader::new(stream.try_clone().unwrap());
    read_answer(&mut reader, false).unwrap();
    let answered = Instant::now();
    assert!(closed(&mut stream));
    // Not at once: after the timeout, counted from the end of the response (a little before
    // `answered`).
    assert!(answered.elapsed() >= timeout / 2);
    // Partial heads count as rejections, idle connections closing do not.
    wait_until("the server closed them all", || {
        server.stats().open_connections == 0
    });
    assert_eq!(server.stats().rejected.header_timeout, 2);
}

#[test]
fn a_new_connection_has_a_shorter_time_for_its_first_request_head() {
    let first = Duration::from_millis(300);
    let (server, _) = start(
        Limits {
            first_header_timeout: first,
            header_timeout: Duration::from_secs(60),
            ..Limits::default()
        },
        None,
    );
    let address = server.local_addr();
    let started = Instant::now();
    let mut silent = connect(address);
    let mut half = connect(address);
    half.write_all(b"GET /echo HTTP/1.1\r\nHost: t\r\n")
        .unwrap();
    // One that completed a request keeps its connection for the (longer) header timeout.
    let mut kept = connect(address);
    kept.write_all(request("GET", "/echo").as_bytes()).unwrap();
    let mut reader = BufReader::new(kept.try_clone().unwrap());
    read_answer(&mut reader, false).unwrap();
    assert!(closed(&mut silent));
    assert!(closed(&mut half));
    assert!(
        started.elapsed() >= first,
        "closed after {:?}",
        started.elapsed()
    );
    // Still open well past the first timeout: it answers another request.
    thread::sleep(first * 2);
    kept.write_all(request("GET", "/echo").as_bytes()).unwrap();
    assert_eq!(read_answer(&mut reader, false).unwrap().status, 200);
    // The partial head counts as a rejection, the silent connection does not.
    assert_eq!(server.stats().rejected.header_timeout, 1);
}

#[test]
fn a_full_server_closes_its_oldest_waiting_connection_for_a_new_one() {
    let (server, _) = start(
        Limits {
            max_connections: 3,
            header_timeout: Duration::from_secs(60),
            first_header_timeout: Duration::from_secs(60),
            ..Limits::default()
        },
        None,
    );
    let address = server.local_addr();
    // Oldest first: a silent connection, one sending a head slowly, one idle after a response.
    let mut silent = connect(address);
    wait_until("1 open", || server.stats().open_connections == 1);
    let mut slow = connect(address);
    slow.write_all(b"GET /echo HTTP/1.1\r\n").unwrap();
    wait_until("2 open", || server.stats().open_connections == 2);
    let mut kept = connect(address);
    kept.write_all(request("GET", "/echo").as_bytes()).unwrap();
    let mut reader = BufReader::new(kept.try_clone().unwrap());
    read_answer(&mut reader, false).unwrap();
    // A new connection is answered; the silent one yielded.
    assert_eq!(get(address, "/echo").status, 200);
    assert!(closed(&mut silent));
    // Full again (the client closed the answered connection): a newer silent one.
    wait_until("the answered one closed", || {
        server.stats().open_connections == 2
    });
    let _newer = connect(address);
    wait_until("3 open", || server.stats().open_connections == 3);
    // The slow one yields, not the one that was answered since, nor the newer one.
    assert_eq!(get(address, "/echo").status, 200);
    assert!(closed(&mut slow));
    let stats = server.stats();
    assert_eq!(stats.evicted.idle, 1);
    assert_eq!(stats.evicted.slow, 1);
    assert_eq!(stats.rejected.connections, 0);
    kept.write_all(request("GET", "/echo").as_bytes()).unwrap();
    assert_eq!(read_answer(&mut reader, false).unwrap().status, 200);
}

#[test]
fn a_new_connection_is_refused_only_when_every_place_answers_a_request() {
    let (server, handler) = start(
        Limits {
            max_connections: 3,
            ..Limits::default()
        },
        None,
    );
    let address = server.local_addr();
    let slow: Vec<_> = (0..3)
        .map(|_| thread::spawn(move || get(address, "/slow")))
        .collect();
    wait_until("3 slow renders run", || {
        handler.slow_running.load(Ordering::SeqCst) == 3
    });
    let mut refused = connect(address);
    assert!(closed(&mut refused));
    assert_eq!(server.stats().rejected.connections, 1);
    handler.release_slow();
    for request in slow {
        assert_eq!(request.join().unwrap().status, 200);
    }
    wait_until("none open", || server.stats().open_connections == 0);
    assert_eq!(get(address, "/echo").status, 200);
    assert_eq!(server.stats().evicted, Default::default());
}

#[test]
fn a_client_address_past_its_limit_gives_up_its_own_oldest_connection() {
    let (server, handler) = start(
        Limits {
            max_per_client: 2,
            first_header_timeout: Duration::from_secs(60),
            ..Limits::default()
        },
        None,
    );
    let address = server.local_addr();
    let mut oldest = connect(address);
    wait_until("1 open", || server.stats().open_connections == 1);
    let _second = connect(address);
    wait_until("2 open", || server.stats().open_connections == 2);
    assert_eq!(get(address, "/echo").status, 200);
    assert!(closed(&mut oldest));
    assert_eq!(server.stats().evicted.idle, 1);
    drop(_second);
    wait_until("none open", || server.stats().open_connections == 0);
    // Both places answering requests: the client's next connection is refused.
    let slow: Vec<_> = (0..2)
        .map(|_| thread::spawn(move || get(address, "/slow")))
        .collect();
    wait_until("2 slow renders run", || {
        handler.slow_running.load(Ordering::SeqCst) == 2
    });
    let mut refused = connect(address);
    assert!(closed(&mut refused));
    assert_eq!(server.stats().rejected.per_client, 1);
    handler.release_slow();
    for request in slow {
        assert_eq!(request.join().unwrap().status, 200);
    }
}

/// Reads a chunked event stream and splits it into events.
struct EventReader {
    reader: BufReader<TcpStream>,
    pending: Vec<u8>,
}

impl EventReader {
    fn open(address: SocketAddr) -> EventReader {
        let mut stream = connect(address);
        stream
            .write_all(request("GET", "/events").as_bytes())
            .unwrap();
        let mut reader = BufReader::new(stream);
        let (status, headers) = read_head(&mut reader).unwrap();
        assert_eq!(status, 200);
        let header = |name: &str| {
            headers
                .iter()
                .find(|(n, _)| n.eq_ignore_ascii_case(name))
                .map(|(_, v)| v.clone())
        };
        assert_eq!(header("content-type").as_deref(), Some("text/event-stream"));
        assert_eq!(header("cache-control").as_deref(), Some("no-cache"));
        assert_eq!(header("transfer-encoding").as_deref(), Some("chunked"));
        EventReader {
            reader,
            pending: Vec::new(),
        }
    }

    /// The next event's text, without its blank line; None at the end of the stream.
    fn next(&mut self) -> Option<String> {
        loop {
            if let Some(end) = self.pending.windows(2).position(|w| w == b"\n\n") {
                let event = String::from_utf8(self.pending[..end].to_vec()).unwrap();
                self.pending.drain(..end + 2);
                return Some(event);
            }
            let mut line = String::new();
            match self.reader.read_line(&mut line) {
                Ok(0) => return None,
                Err(e) if e.kind() == io::ErrorKind::ConnectionReset => return None,
                Err(e) => panic!("reading events: {e}"),
                Ok(_) => {}
            }
            let size = usize::from_str_radix(line.trim_end(), 16).unwrap();
            assert!(size > 0, "the event stream ended");
            let start = self.pending.len();
            self.pending.resize(start + size + 2, 0);
            self.reader.read_exact(&mut self.pending[start..]).unwrap();
            assert_eq!(self.pending.pop(), Some(b'\n'));
            assert_eq!(self.pending.pop(), Some(b'\r'));
        }
    }

    /// The next event that is not a heartbeat.
    fn next_message(&mut self) -> String {
        loop {
            let event = self.next().expect("an event");
            if !event.starts_with(": heartbeat") {
                return event;
            }
        }
    }
}

fn message(text: &str) -> Arc<[u8]> {
    Arc::from(text.as_bytes())
}

#[test]
fn event_clients_receive_every_message_in_order() {
    let events = Events::new();
    let (server, _) = start(Limits::default(), Some(events.clone()));
    let address = server.local_addr();
    let mut clients = [EventReader::open(address), EventReader::open(address)];
    wait_until("2 clients", || events.clients() == 2);
    assert_eq!(server.stats().event_clients, 2);
    for i in 0..20 {
        events.publish(message(&format!("{{\"n\":{i}}}")));
    }
    for client in &mut clients {
        for i in 0..20 {
            assert_eq!(client.next_message(), format!("data: {{\"n\":{i}}}"));
        }
    }
    // HEAD answers the stream's headers only.
    let mut stream = connect(address);
    stream
        .write_all(request("HEAD", "/events").as_bytes())
        .unwrap();
    let head = read_answer(&mut BufReader::new(stream), true).unwrap();
    assert_eq!(head.header("content-type"), Some("text/event-stream"));
    drop(clients);
    wait_until("the clients are gone", || events.clients() == 0);
    assert_eq!(server.stats().event_clients, 0);
}

#[test]
fn a_new_event_client_gets_the_last_message_first() {
    let events = Events::new();
    let (server, _) = start(Limits::default(), Some(events.clone()));
    events.publish(message("first"));
    events.publish(message("second\nline"));
    let mut client = EventReader::open(server.local_addr());
    assert_eq!(client.next_message(), "data: second\ndata: line");
    events.publish(message("third"));
    assert_eq!(client.next_message(), "data: third");
}

#[test]
fn idle_event_streams_send_heartbeats() {
    let events = Events::new();
    let (server, _) = start(
        Limits {
            heartbeat: Duration::from_millis(200),
            ..Limits::default()
        },
        Some(events.clone()),
    );
    let mut client = EventReader::open(server.local_addr());
    assert_eq!(client.next().unwrap(), ": heartbeat");
    events.publish(message("m"));
    assert_eq!(client.next_message(), "data: m");
    assert_eq!(client.next().unwrap(), ": heartbeat");
}

/// A message of about `size` bytes carrying its number.
#[test]
fn event_streams_have_their_own_budget_and_the_oldest_yields() {
    let events = Events::new();
    let (server, _) = start(
        Limits {
            max_connections: 1,
            max_streams: 2,
            ..Limits::default()
        },
        Some(events.clone()),
    );
    let address = server.local_addr();
    let mut first = EventReader::open(address);
    let mut second = EventReader::open(address);
    // Streams hold no place of the requests' budget (of 1 here).
    assert_eq!(get(address, "/echo").status, 200);
    assert_eq!(get(address, "/echo").status, 200);
    let mut third = EventReader::open(address);
    // The oldest stream ended; the others go on.
    assert_eq!(first.next(), None);
    events.publish(message("after"));
    assert_eq!(second.next_message(), "data: after");
    assert_eq!(third.next_message(), "data: after");
    let stats = server.stats();
    assert_eq!(stats.evicted.streams, 1);
    assert_eq!(stats.event_clients, 2);
}

fn numbered(n: usize, size: usize) -> Arc<[u8]> {
    let mut text = format!("{{\"n\":{n},\"pad\":\"");
    text.push_str(&"p".repeat(size));
    text.push_str("\"}");
    Arc::from(text.into_bytes())
}

fn number(event: &str) -> usize {
    let rest = event.strip_prefix("data: {\"n\":").unwrap();
    rest[..rest.find(',').unwrap()].parse().unwrap()
}

#[test]
fn a_lagging_event_client_is_told_what_it_missed() {
    const SIZE: usize = 512 * 1024;
    const COUNT: usize = 64;
    let events = Events::bounded(4, 64 << 20);
    let (server, _) = start(Limits::default(), Some(events.clone()));
    let mut client = EventReader::open(server.local_addr());
    wait_until("a client", || events.clients() == 1);
    // 32 MiB while the client reads nothing: more than the socket buffers hold.
    for n in 0..COUNT {
        events.publish(numbered(n, SIZE));
        let stats = events.stats();
        assert!(stats.queued_messages <= 4);
        assert!(stats.queued_bytes <= 4 * (SIZE + 64));
    }
    let mut last = None;
    let mut lags = 0;
    while last != Some(COUNT - 1) {
        let event = client.next_message();
        if let Some(missed) = event.strip_prefix("event: lagged\ndata: ") {
            lags += 1;
            let missed: usize = missed.parse().unwrap();
            let next = number(&client.next_message());
            assert_eq!(next, last.map_or(0, |l| l + 1) + missed);
            last = Some(next);
        } else {
            let n = number(&event);
            assert_eq!(n, last.map_or(0, |l| l + 1));
            last = Some(n);
        }
    }
    assert!(lags >= 1);
    assert_eq!(events.stats().lagged, lags);
}

#[test]
fn an_event_client_that_never_reads_is_dropped_and_memory_stays_bounded() {
    const SIZE: usize = 512 * 1024;
    let events = Events::bounded(8, 2 << 20);
    let (server, _) = start(
        Limits {
            write_timeout: Duration::from_secs(1),
            ..Limits::default()
        },
        Some(events.clone()),
    );
    let mut stream = connect(server.local_addr());
    stream
        .write_all(request("GET", "/events").as_bytes())
        .unwrap();
    wait_until("a client", || events.clients() == 1);
    for n in 0..64 {
        events.publish(numbered(n, SIZE));
        // The queue's bound: 2 MiB, or the last message alone.
        assert!(events.stats().queued_bytes <= (2 << 20) + SIZE + 64);
    }
    wait_until("the client is dropped", || events.clients() == 0);
    assert_eq!(server.stats().event_clients, 0);
    assert_eq!(server.stats().rejected.write_timeout, 1);
    wait_until("its connection is closed", || {
        server.stats().open_connections == 0
    });
}

#[test]
fn a_slow_render_does_not_stall_other_requests_or_event_streams() {
    let events = Events::new();
    // 52 connections from one address at once.
    let limits = Limits {
        max_per_client: 64,
        ..Limits::default()
    };
    let max_renders = limits.max_renders;
    let (server, handler) = start(limits, Some(events.clone()));
    let address = server.local_addr();
    let mut client = EventReader::open(address);
    let slow = thread::spawn(move || get(address, "/slow"));
    wait_until("the slow render runs", || {
        handler.slow_running.load(Ordering::SeqCst) == 1
    });
    let running = std::time::Instant::now();
    let fast: Vec<_> = (0..50)
        .map(|i| thread::spawn(move || get(address, &format!("/echo?{i}"))))
        .collect();
    for (i, request) in fast.into_iter().enumerate() {
        let answer = request.join().unwrap();
        assert_eq!(answer.status, 200);
        assert!(answer.text().contains(&format!("\"query\":\"{i}\"")));
    }
    events.publish(message("while slow"));
    assert_eq!(client.next_message(), "data: while slow");
    assert!(!slow.is_finished());
    let held = running.elapsed().as_secs_f64() * 1000.0;
    handler.release_slow();
    let slow = slow.join().unwrap();
    assert_eq!(slow.text(), "slow");
    // Server-Timing says how long the handler ran: at least as long as it was held.
    let timing = slow
        .header("server-timing")
        .expect("a Server-Timing header");
    let ms: f64 = timing.strip_prefix("render;dur=").unwrap().parse().unwrap();
    assert!(ms >= held, "{timing}, held {held} ms");
    let most = handler.most_running.load(Ordering::SeqCst);
    assert!(most <= max_renders, "{most} renders ran at once");
}

#[test]
fn renders_beyond_max_renders_wait_for_a_permit() {
    let (server, handler) = start(
        Limits {
            max_renders: 2,
            ..Limits::default()
        },
        None,
    );
    let address = server.local_addr();
    let slow: Vec<_> = (0..3)
        .map(|_| thread::spawn(move || get(address, "/slow")))
        .collect();
    wait_until("2 slow renders run", || {
        handler.slow_running.load(Ordering::SeqCst) == 2
    });
    // The third waits for a permit (it can not start until one is released).
    let mut fast = connect(address);
    fast.write_all(request("GET", "/echo").as_bytes()).unwrap();
    fast.set_read_timeout(Some(Duration::from_millis(300)))
        .unwrap();
    let mut byte = [0];
    let waited = fast.read(&mut byte).unwrap_err();
    assert!(matches!(
        waited.kind(),
        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
    ));
    handler.release_slow();
    for request in slow {
        assert_eq!(request.join().unwrap().status, 200);
    }
    fast.set_read_timeout(Some(PATIENCE)).unwrap();
    assert_eq!(
        read_answer(&mut BufReader::new(fast), false)
            .unwrap()
            .status,
        200
    );
    assert_eq!(handler.most_running.load(Ordering::SeqCst), 2);
}

#[test]
fn a_panicking_handler_answers_500_and_the_server_goes_on() {
    let (server, _) = start(Limits::default(), None);
    let address = server.local_addr();
    let mut stream = connect(address);
    let mut reader = BufReader::new(stream.try_clone().unwrap());
    stream
        .write_all(request("GET", "/panic").as_bytes())
        .unwrap();
    assert_eq!(read_answer(&mut reader, false).unwrap().status, 500);
    // The same connection and new ones go on.
    stream
        .write_all(request("GET", "/echo").as_bytes())
        .unwrap();
    assert_eq!(read_answer(&mut reader, false).unwrap().status, 200);
    assert_eq!(get(address, "/echo").status, 200);
    assert_eq!(server.stats().panics, 1);
}

#[test]
fn stop_closes_every_connection_and_frees_the_port() {
    let events = Events::new();
    let (server, _) = start(Limits::default(), Some(events.clone()));
    let address = server.local_addr();
    let mut client = EventReader::open(address);
    events.publish(message("before"));
    assert_eq!(client.next_message(), "data: before");
    let mut idle = connect(address);
    idle.write_all(request("GET", "/echo").as_bytes()).unwrap();
    read_answer(&mut BufReader::new(idle.try_clone().unwrap()), false).unwrap();
    server.stop();
    assert_eq!(client.next(), None);
    assert!(closed(&mut idle));
    assert_eq!(events.clients(), 0);
    TcpListener::bind(address).unwrap();
}

#[test]
fn start_reports_an_address_in_use() {
    let (server, _) = start(Limits::default(), None);
    let port = server.local_addr().port();
    let error = Server::start(
        "127.0.0.1",
        port,
        Arc::new(TestHandler::default()),
        None,
        Limits::default(),
    )
    .err()
    .unwrap();
    assert_eq!(error.kind(), io::ErrorKind::AddrInUse);
}

#[test]
fn ipv6_literal_hosts_are_served() {
    for host in ["::1", "[::1]"] {
        let server = match Server::start(
            host,
            0,
            Arc::new(TestHandler::default()),
            None,
            Limits::default(),
        ) {
            Ok(server) => server,
            // A machine without IPv6 loopback: nothing to test.
            Err(e) if e.kind() == io::ErrorKind::AddrNotAvailable => return,
            Err(e) => panic!("{host}: {e}"),
        };
        assert!(server.local_addr().is_ipv6());
        assert_eq!(get(server.local_addr(), "/echo").status, 200);
    }
}

#[test]
fn a_client_that_takes_a_response_too_slowly_is_cut_off() {
    const BODY: usize = 64 << 20;
    let (server, _) = start(
        Limits {
            write_timeout: Duration::from_secs(1),
            ..Limits::default()
        },
        None,
    );
    let mut stream = connect(server.local_addr());
    stream
        .write_all(request("GET", &format!("/big?{BODY}")).as_bytes())
        .unwrap();
    // About 5 MB/s: the whole body would take some 13 s, but each byte read now and then does
    // not extend the time a response has.
    let started = Instant::now();
    let mut total = 0;
    let mut chunk = vec![0; 256 * 1024];
    loop {
        match stream.read(&mut chunk) {
            Ok(0) => break,
            Ok(n) => total += n,
            Err(e) if e.kind() == io::ErrorKind::ConnectionReset => break,
            Err(e) => panic!("reading: {e}"),
        }
        assert!(started.elapsed() < PATIENCE, "not cut off");
        thread::sleep(Duration::from_millis(50));
    }
    assert!(total < BODY, "the whole body was sent");
    assert_eq!(server.stats().rejected.write_timeout, 1);
}

/// One GET on a new connection with these extra header lines (each ending in `\r\n`).
fn get_with(address: SocketAddr, method: &str, target: &str, headers: &str) -> Answer {
    let mut stream = connect(address);
    let request = format!("{method} {target} HTTP/1.1\r\nHost: test\r\n{headers}\r\n");
    stream.write_all(request.as_bytes()).unwrap();
    read_answer(&mut BufReader::new(stream), method == "HEAD").unwrap()
}

fn gunzip(body: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    flate2::read::GzDecoder::new(body)
        .read_to_end(&mut out)
        .unwrap();
    out
}

#[test]
fn text_answers_are_gzipped_when_the_client_accepts_gzip_and_only_then() {
    let (server, _) = start(Limits::default(), None);
    let address = server.local_addr();
    let plain = vec![b'x'; 200_000];
    for accepted in [
        "Accept-Encoding: gzip\r\n",
        "Accept-Encoding: br, deflate\r\nAccept-Encoding: x-gzip;q=0.3\r\n",
        "Accept-Encoding: identity, *;q=0.5\r\n",
    ] {
        let answer = get_with(address, "GET", "/big?200000", accepted);
        assert_eq!(answer.status, 200);
        assert_eq!(
            answer.header("content-encoding"),
            Some("gzip"),
            "{accepted:?}"
        );
        assert_eq!(answer.header("vary"), Some("accept-encoding"));
        assert_eq!(answer.header("content-type"), Some("text/plain"));
        assert!(answer.body.len() < 2_000, "{} bytes", answer.body.len());
        assert_eq!(gunzip(&answer.body), plain);
    }
    for refused in [
        "",
        "Accept-Encoding: gzip;q=0\r\n",
        "Accept-Encoding: br, identity\r\n",
        "Accept-Encoding: gzip;q=0, *\r\n",
    ] {
        let answer = get_with(address, "GET", "/big?200000", refused);
        assert_eq!(answer.header("content-encoding"), None, "{refused:?}");
        // The same URL answers differently by Accept-Encoding: caches must know.
        assert_eq!(answer.header("vary"), Some("accept-encoding"));
        assert_eq!(answer.body, plain);
    }
    // JSON too; HEAD gives the compressed length.
    let gzip = "Accept-Encoding: gzip\r\n";
    let json = get_with(address, "GET", "/echo", gzip);
    assert_eq!(json.header("content-encoding"), Some("gzip"));
    let json = String::from_utf8(gunzip(&json.body)).unwrap();
    assert_eq!(
        json,
        r#"{"method":"GET","path":"/echo","query":"","accept":""}"#
    );
    let get = get_with(address, "GET", "/big?200000", gzip);
    let head = get_with(address, "HEAD", "/big?200000", gzip);
    assert_eq!(head.header("content-encoding"), Some("gzip"));
    assert_eq!(
        head.header("content-length"),
        Some(get.body.len().to_string().as_str())
    );
    // Answers that are not text go as they are, with no Vary.
    let png = get_with(address, "GET", "/png", gzip);
    assert_eq!(png.header("content-encoding"), None);
    assert_eq!(png.header("vary"), None);
    assert_eq!(png.body, vec![0x89; 4096]);
}
