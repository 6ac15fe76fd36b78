use super::*;
use crate::export::influx::Precision;
use crate::export::view::fixture::{counter, key, Fixture};
use crate::snapshot::Value;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::sync::mpsc;

/// A request as the test server saw it: the request line, the headers (lower-case names)
/// and the body (as text, and as it came).
struct Request {
    line: String,
    headers: Vec<(String, String)>,
    body: String,
    bytes: Vec<u8>,
}

/// A real HTTP server on loopback answering each request with the next of `answers`
/// (status, extra headers, body), then 204s; one connection per request.
fn server(answers: Vec<(u16, &'static str, &'static str)>) -> (String, mpsc::Receiver<Request>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let (send, receive) = mpsc::channel();
    std::thread::spawn(move || {
        let mut answers = answers.into_iter();
        for stream in listener.incoming() {
            let Ok(stream) = stream else { return };
            let mut reader = BufReader::new(stream);
            let mut line = String::new();
            if reader.read_line(&mut line).is_err() {
                continue;
            }
            let mut headers = Vec::new();
            loop {
                let mut header = String::new();
                if reader.read_line(&mut header).is_err() || header.trim().is_empty() {
                    break;
                }
                if let Some((name, value)) = header.split_once(':') {
                    headers.push((name.trim().to_lowercase(), value.trim().to_string()));
                }
            }
            let length = (headers.iter())
                .find(|(name, _)| name == "content-length")
                .map_or(0, |(_, v)| v.parse().unwrap());
            let mut body = vec![0; length];
            let _ = reader.read_exact(&mut body);
            // Recorded before it is answered: a push the pusher counts is already here.
            let bytes = body;
            let body = String::from_utf8_lossy(&bytes).into_owned();
            let line = line.trim().to_string();
            if send
                .send(Request {
                    line,
                    headers,
                    body,
                    bytes,
                })
                .is_err()
            {
                return;
            }
            let (status, extra, text) = answers.next().unwrap_or((204, "", ""));
            let answer = format!(
                "HTTP/1.1 {status} X\r\n{extra}Content-Length: {}\r\nConnection: close\r\n\r\n{text}",
                text.len()
            );
            let _ = reader.get_mut().write_all(answer.as_bytes());
        }
    });
    (url, receive)
}

fn options(url: &str) -> InfluxOptions {
    InfluxOptions {
        url: url.into(),
        db: "metrics".into(),
        queue: QueueOptions {
            min_backoff: Duration::from_millis(5),
            max_backoff: Duration::from_millis(20),
            timeout: Duration::from_secs(5),
            ..QueueOptions::default()
        },
        ..InfluxOptions::default()
    }
}

/// Waits (10 s at most) until the pusher's stats satisfy `done`.
fn until(pusher: &Pusher, done: impl Fn(&PushStats) -> bool) -> PushStats {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let stats = pusher.stats();
        if done(&stats) {
            return stats;
        }
        assert!(Instant::now() < deadline, "timed out: {stats:?}");
        std::thread::sleep(Duration::from_millis(5));
    }
}

fn one_delivery(pusher: &Pusher, f: &mut Fixture, ids: &[&str]) {
    let series: Vec<_> = (ids.iter())
        .map(|id| (key("inc", &["http"], id), counter(1.0)))
        .collect();
    let d = f.deliver(&series, &[]);
    (pusher.subscriber())(&f.store, &d);
}

#[test]
fn pushes_batches_with_the_query_and_credentials() {
    let (url, requests) = server(vec![]);
    let mut o = options(&format!("{url}/base/"));
    o.username = Some("me".into());
    o.password = Some("secret".into());
    o.retention_policy = Some("a week".into());
    o.queue.batch_points = 2;
    let pusher = Pusher::influx(o).unwrap();
    let mut f = Fixture::new(false);
    one_delivery(&pusher, &mut f, &["a", "b", "c"]);
    let stats = until(&pusher, |s| s.pushed_batches == 2);
    assert_eq!(
        (stats.pushed_points, stats.failures, stats.queued_bytes),
        (3, 0, 0)
    );
    let first = requests.recv().unwrap();
    assert_eq!(
        first.line,
        "POST /base/write?db=metrics&precision=ms&rp=a%20week HTTP/1.1"
    );
    let header = |name: &str| {
        (first.headers.iter())
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.clone())
    };
    // "me:secret" in base64.
    assert_eq!(
        header("authorization").as_deref(),
        Some("Basic bWU6c2VjcmV0")
    );
    assert_eq!(
        first.body,
        "http.a,host=box increase=1.0,rate=1.0,total=1.0,calls=1i 1700000001000\n\
         http.b,host=box increase=1.0,rate=1.0,total=1.0,calls=1i 1700000001000\n"
    );
    let second = requests.recv().unwrap();
    assert!(second.body.starts_with("http.c,"), "{}", second.body);
    assert_eq!(pusher.stop(Duration::from_secs(1)), stats);
}

#[test]
fn refusals_are_dropped_and_server_errors_retried() {
    let (url, requests) = server(vec![
        (404, "", r#"{"error":"database not found: \"metrics\""}"#),
        (503, "", "busy"),
        (429, "Retry-After: 0\r\n", "slow down"),
    ]);
    let pusher = Pusher::influx(options(&url)).unwrap();
    let mut f = Fixture::new(false);
    one_delivery(&pusher, &mut f, &["a"]);
    let stats = until(&pusher, |s| s.dropped_batches == 1);
    assert_eq!(
        stats.last_error.as_deref(),
        Some(r#"HTTP 404: {"error":"database not found: \"metrics\""}"#)
    );
    assert_eq!(
        (stats.failures, stats.retries, stats.pushed_batches),
        (1, 0, 0)
    );
    // The next one fails twice, then goes through.
    one_delivery(&pusher, &mut f, &["b"]);
    let stats = until(&pusher, |s| s.pushed_batches == 1);
    assert_eq!((stats.failures, stats.retries), (3, 2));
    assert_eq!(stats.last_error.as_deref(), Some("HTTP 429: slow down"));
    let bodies: Vec<String> = requests.try_iter().map(|r| r.body).collect();
    assert_eq!(bodies.len(), 4);
    assert!(bodies[0].starts_with("http.a,"));
    assert!(bodies[1..].iter().all(|b| b.starts_with("http.b,")));
    pusher.stop(Duration::ZERO);
}

#[test]
fn the_queue_stays_bounded_while_the_server_is_down() {
    // A port nobody listens on (bound, then closed).
    let url = {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        format!("http://{}", listener.local_addr().unwrap())
    };
    let mut o = options(&url);
    o.queue.max_queue_bytes = 2048;
    let pusher = Pusher::influx(o).unwrap();
    let mut f = Fixture::new(false);
    let ids: Vec<String> = (0..8).map(|i| format!("series{i}")).collect();
    let ids: Vec<&str> = ids.iter().map(String::as_str).collect();
    let mut delivered = 0;
    for _ in 0..20 {
        one_delivery(&pusher, &mut f, &ids);
        delivered += ids.len() as u64;
        let stats = pusher.stats();
        assert!(stats.queued_bytes <= 2048, "{stats:?}");
    }
    let stats = until(&pusher, |s| s.failures >= 2);
    assert!(stats.dropped_points > 0, "{stats:?}");
    assert!(stats.retries >= 1, "{stats:?}");
    assert!(stats.last_error.is_some());
    // Stopping drops (and counts) what is left: every point is accounted for.
    let last = pusher.stop(Duration::from_millis(50));
    assert_eq!(last.queued_bytes, 0);
    assert_eq!(last.pushed_points, 0);
    assert_eq!(last.dropped_points, delivered);
    // A stopped pusher takes nothing more.
    one_delivery(&pusher, &mut f, &ids);
    assert_eq!(pusher.stats(), last);
}

#[test]
fn a_batch_larger_than_the_queue_is_dropped() {
    let (url, requests) = server(vec![]);
    let mut o = options(&url);
    o.queue.max_queue_bytes = 1024;
    let pusher = Pusher::influx(o).unwrap();
    let mut f = Fixture::new(false);
    let text = Value::Set {
        json: format!("\"{}\"", "x".repeat(2000)),
        at: 0.0,
    };
    let d = f.deliver(&[(key("set", &[], "big"), text)], &[]);
    (pusher.subscriber())(&f.store, &d);
    let stats = pusher.stats();
    assert_eq!((stats.dropped_batches, stats.dropped_points), (1, 1));
    assert_eq!(stats.queued_bytes, 0);
    // Smaller ones still go.
    one_delivery(&pusher, &mut f, &["a"]);
    until(&pusher, |s| s.pushed_points == 1);
    assert_eq!(requests.try_iter().count(), 1);
    pusher.stop(Duration::ZERO);
}

#[test]
fn stop_flushes_what_is_queued() {
    let (url, requests) = server(vec![]);
    let mut o = options(&url);
    o.queue.batch_points = 1;
    let pusher = Pusher::influx(o).unwrap();
    let mut f = Fixture::new(false);
    one_delivery(&pusher, &mut f, &["a", "b", "c", "d"]);
    let stats = pusher.stop(Duration::from_secs(10));
    assert_eq!((stats.pushed_batches, stats.dropped_points), (4, 0));
    assert_eq!(requests.try_iter().count(), 4);
}

/// The options a test gives: a URL and a database, changed by `f`.
fn spec(f: impl FnOnce(&mut InfluxSpec)) -> InfluxSpec {
    let mut spec = InfluxSpec {
        url: Some("http://h:1".into()),
        db: Some("d".into()),
        ..InfluxSpec::default()
    };
    f(&mut spec);
    spec
}

#[test]
fn options_are_read_and_checked() {
    let options = InfluxOptions::new(InfluxSpec {
        url: Some("http://127.0.0.1:8086/".into()),
        db: Some("metrics".into()),
        username: Some("u".into()),
        password: Some("p".into()),
        retention_policy: Some("week".into()),
        precision: Some("s".into()),
        prefix: Some("app.".into()),
        per_process: Some(true),
        tags: vec![("env".into(), "prod".into())],
        queue: QueueSpec {
            max_queue_bytes: Some(4096.0),
            batch_points: Some(10.0),
            timeout: Some(500.0),
            min_backoff: Some(5.0),
            max_backoff: Some(50.0),
        },
    })
    .unwrap();
    assert_eq!(options.base_url().unwrap(), "http://127.0.0.1:8086");
    assert_eq!(options.lines.precision, Precision::Seconds);
    assert_eq!(options.lines.tags, [("env".into(), "prod".into())]);
    assert!(options.lines.per_process);
    assert_eq!(
        (options.queue.max_queue_bytes, options.queue.batch_points),
        (4096, 10)
    );
    assert_eq!(options.queue.timeout, Duration::from_millis(500));
    assert_eq!(options.queue.max_backoff, Duration::from_millis(50));
    let base = spec(|s| s.url = Some("http://h:1/influx".into()));
    assert!(InfluxOptions::new(base).is_ok());
}

#[test]
fn bad_options_name_the_field_and_the_value() {
    let error = |f: fn(&mut InfluxSpec)| InfluxOptions::new(spec(f)).unwrap_err();
    let range = |field: &str, message: &str| PushError::Range {
        field: format!("influx.{field}"),
        message: message.into(),
    };
    assert_eq!(
        error(|s| s.url = Some("https://h:1".into())),
        range(
            "url",
            "influx.url must be an http:// URL (https is not supported: this build has no TLS), got \"https://h:1\""
        )
    );
    assert_eq!(
        error(|s| s.url = Some("ftp://h".into())),
        range("url", "influx.url must be an http:// URL, got \"ftp://h\"")
    );
    assert_eq!(
        error(|s| s.url = Some("not a url".into())),
        range(
            "url",
            "influx.url must be an http:// URL, got \"not a url\""
        )
    );
    assert_eq!(
        error(|s| s.url = Some("http://u:p@h".into())),
        range(
            "url",
            "influx.url must be a URL without credentials (give influx.username and influx.password), got \"http://u:p@h\""
        )
    );
    assert_eq!(
        error(|s| s.url = Some("http://h/?db=x".into())),
        range(
            "url",
            "influx.url must be a URL without a query or fragment, got \"http://h/?db=x\""
        )
    );
    assert_eq!(
        error(|s| s.url = None),
        range("url", "influx.url must be an http:// URL, got \"\"")
    );
    assert_eq!(
        error(|s| s.db = Some(String::new())),
        range(
            "db",
            "influx.db must be a database name, got an empty string"
        )
    );
    assert_eq!(
        error(|s| s.username = Some("u".into())),
        range(
            "password",
            "influx.password must be given with influx.username, got nothing"
        )
    );
    assert_eq!(
        error(|s| s.precision = Some("m".into())),
        range(
            "precision",
            "influx.precision must be one of 'ns', 'us', 'ms', 's', got \"m\""
        )
    );
    assert_eq!(
        error(|s| s.tags = vec![("time".into(), "x".into())]),
        range(
            "tags.time",
            "influx.tags.time must be a tag key other than '', 'time' and 'worker', got time"
        )
    );
    assert_eq!(
        error(|s| s.queue.max_queue_bytes = Some(100.0)),
        range(
            "maxQueueBytes",
            "influx.maxQueueBytes must be a number of bytes from 1024, got 100"
        )
    );
    assert_eq!(
        error(|s| s.queue.batch_points = Some(1.5)),
        range(
            "batchPoints",
            "influx.batchPoints must be a whole number from 1 to 1e9, got 1.5"
        )
    );
    for bad in [-1.0, 0.0, f64::NAN, f64::INFINITY] {
        let PushError::Range { field, .. } =
            InfluxOptions::new(spec(|s| s.queue.timeout = Some(bad))).unwrap_err()
        else {
            panic!()
        };
        assert_eq!(field, "influx.timeout", "{bad}");
    }
    assert_eq!(
        error(|s| s.queue.timeout = Some(-1.0)),
        range(
            "timeout",
            "influx.timeout must be a positive number of ms, got -1"
        )
    );
    assert_eq!(
        error(|s| {
            s.queue.min_backoff = Some(100.0);
            s.queue.max_backoff = Some(10.0);
        }),
        range(
            "maxBackoff",
            "influx.maxBackoff must be at least influx.minBackoff, got 10 ms"
        )
    );
}

#[test]
fn remote_write_posts_snappy_protobuf_with_its_headers_and_retries_429() {
    use super::targets::remote_write::WriteRequest;
    use prost::Message;
    let (url, requests) = server(vec![(429, "Retry-After: 0\r\n", "too many")]);
    let options = RemoteWriteOptions {
        url: format!("{url}/api/v1/write?tenant=a"),
        headers: vec![("X-Scope-OrgID".into(), "team".into())],
        queue: QueueOptions {
            min_backoff: Duration::from_millis(5),
            max_backoff: Duration::from_millis(20),
            ..QueueOptions::default()
        },
        ..RemoteWriteOptions::default()
    };
    let pusher = Pusher::remote_write(options).unwrap();
    let mut f = Fixture::new(false);
    one_delivery(&pusher, &mut f, &["a", "b"]);
    // Two counters and the skipped-series gauge.
    let stats = until(&pusher, |s| s.pushed_points == 3);
    assert_eq!(
        (stats.failures, stats.retries, stats.pushed_batches),
        (1, 1, 1)
    );
    let sent: Vec<Request> = requests.try_iter().collect();
    assert_eq!(sent.len(), 2);
    assert_eq!(sent[0].bytes, sent[1].bytes);
    let last = &sent[1];
    assert_eq!(last.line, "POST /api/v1/write?tenant=a HTTP/1.1");
    let header = |name: &str| {
        (last.headers.iter())
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    };
    assert_eq!(header("content-type"), Some("application/x-protobuf"));
    assert_eq!(header("content-encoding"), Some("snappy"));
    assert_eq!(header("x-prometheus-remote-write-version"), Some("0.1.0"));
    assert_eq!(header("x-scope-orgid"), Some("team"));
    let bytes = snap::raw::Decoder::new()
        .decompress_vec(&last.bytes)
        .unwrap();
    let request = WriteRequest::decode(&bytes[..]).unwrap();
    let names: Vec<&str> = (request.timeseries.iter())
        .map(|s| s.labels[0].value.as_str())
        .collect();
    assert_eq!(
        names,
        [
            "http_a_total",
            "http_b_total",
            "panoptic_export_skipped_series"
        ]
    );
    pusher.stop(Duration::ZERO);
}
