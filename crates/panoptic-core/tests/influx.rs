//! Pushes to a real InfluxDB 1.x (Debian's `influxdb`, installed and started on loopback by
//! `node scripts/backends.js serve influxdb`), read back with InfluxQL: every kind of series, hostile names,
//! an InfluxDB restart with a bounded queue, and a database that does not exist.

use std::io::{BufRead, BufReader, Write};
use std::path::PathBuf;
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use panoptic_core::export::push::{InfluxOptions, PushStats, Pusher, QueueOptions};
use panoptic_core::export::{Exporter, Origin};
use panoptic_core::gather::tree::Format;
use panoptic_core::gather::Gathering;
use panoptic_core::snapshot::{Entry, SeriesKey, Snapshot, Value};
use panoptic_core::stats::histogram::{Distribution, HistogramOptions};
use panoptic_core::stats::summary::Summary;
use serde_json::{json, Value as Json};

/// influxd run by the helper script; stopped and its data removed when dropped.
struct Influx {
    child: Child,
    commands: Option<ChildStdin>,
    answers: BufReader<ChildStdout>,
    url: String,
}

impl Influx {
    fn start() -> Influx {
        let script: PathBuf = [
            env!("CARGO_MANIFEST_DIR"),
            "..",
            "..",
            "scripts",
            "backends.js",
        ]
        .iter()
        .collect();
        let mut child = Command::new("node")
            .arg(script)
            .args(["serve", "influxdb"])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .expect("node runs scripts/backends.js");
        let commands = child.stdin.take();
        let mut answers = BufReader::new(child.stdout.take().unwrap());
        let mut line = String::new();
        answers.read_line(&mut line).unwrap();
        let started: Json = serde_json::from_str(&line)
            .unwrap_or_else(|_| panic!("scripts/backends.js serve influxdb printed {line:?}"));
        let url = started["url"].as_str().unwrap().to_string();
        Influx {
            child,
            commands,
            answers,
            url,
        }
    }

    /// Sends `stop` or `start` and waits for the answer.
    fn command(&mut self, command: &str, answer: &str) {
        let stdin = self.commands.as_mut().unwrap();
        writeln!(stdin, "{command}").unwrap();
        let mut line = String::new();
        self.answers.read_line(&mut line).unwrap();
        assert_eq!(line.trim(), answer);
    }

    /// Runs InfluxQL; returns the first statement's result.
    fn query(&self, q: &str) -> Json {
        let mut response = ureq::post(format!("{}/query", self.url))
            .query("db", "panoptic")
            .query("epoch", "ms")
            .config()
            .http_status_as_error(false)
            .build()
            .send_form([("q", q)])
            .unwrap();
        let status = response.status();
        let answer = response.body_mut().read_to_string().unwrap();
        assert_eq!(status, 200, "{q}: {answer}");
        let answer: Json = serde_json::from_str(&answer).unwrap();
        answer["results"][0].clone()
    }

    /// The rows of a query as JSON objects (column -> value), in series then time order.
    fn rows(&self, q: &str) -> Vec<Json> {
        let result = self.query(q);
        let mut rows = Vec::new();
        for series in result["series"].as_array().into_iter().flatten() {
            let columns = series["columns"].as_array().unwrap();
            for values in series["values"].as_array().unwrap() {
                let mut row = serde_json::Map::new();
                if let Some(name) = series["name"].as_str() {
                    row.insert("name".into(), json!(name));
                }
                for (c, v) in columns.iter().zip(values.as_array().unwrap()) {
                    if !v.is_null() {
                        row.insert(c.as_str().unwrap().into(), v.clone());
                    }
                }
                for (k, v) in series["tags"].as_object().into_iter().flatten() {
                    row.insert(k.clone(), v.clone());
                }
                rows.push(numbers_as_floats(Json::Object(row)));
            }
        }
        rows
    }
}

/// Every number as an f64 (InfluxDB writes `2` for the float 2.0), to compare rows.
fn numbers_as_floats(value: Json) -> Json {
    match value {
        Json::Number(n) => json!(n.as_f64().unwrap()),
        Json::Object(map) => Json::Object(
            map.into_iter()
                .map(|(k, v)| (k, numbers_as_floats(v)))
                .collect(),
        ),
        other => other,
    }
}

/// Asserts that the query's rows are `expected` (numbers compared as f64).
fn assert_rows(influx: &Influx, q: &str, expected: Vec<Json>) {
    let expected: Vec<Json> = expected.into_iter().map(numbers_as_floats).collect();
    assert_eq!(influx.rows(q), expected, "{q}");
}

impl Drop for Influx {
    fn drop(&mut self) {
        drop(self.commands.take()); // end of stdin: the helper stops influxd and cleans up
        let _ = self.child.wait();
    }
}

fn key(method: &str, path: &[&str], id: &str) -> Arc<SeriesKey> {
    Arc::new(SeriesKey {
        method: method.into(),
        path: path.iter().map(|p| p.to_string()).collect(),
        id: id.into(),
    })
}

/// An exporter fed by hand: interval k ends at `START + (k + 1) s`.
struct Feed {
    gathering: Gathering,
    exporter: Exporter,
    k: f64,
}

const START: f64 = 1_700_000_000_000.0;

impl Feed {
    fn new() -> Feed {
        let origin = Origin {
            host: "box".into(),
            pid: 10,
            interval: 1000.0,
            scale_factor: 1.0,
            ..Origin::default()
        };
        Feed {
            gathering: Gathering::default(),
            exporter: Exporter::new(origin),
            k: 0.0,
        }
    }

    fn deliver(&mut self, series: &[(Arc<SeriesKey>, Value)]) {
        let k = self.k;
        self.k += 1.0;
        let entries = series.iter().map(|(key, value)| Entry {
            key: key.clone(),
            value: value.clone(),
        });
        self.gathering.keep_local(
            Snapshot {
                k,
                pid: 10,
                entries: entries.collect(),
                ..Snapshot::default()
            },
            &[],
        );
        let format = Format {
            interval: 1000.0,
            scale_factor: 1.0,
            time_stamp: START + (k + 1.0) * 1000.0,
            percentiles: Arc::from([50.0, 99.0]),
        };
        self.exporter.add(self.gathering.deliver(k, format));
        self.exporter.flush();
    }
}

fn options(url: &str, db: &str) -> InfluxOptions {
    InfluxOptions {
        url: url.into(),
        db: db.into(),
        queue: QueueOptions {
            min_backoff: Duration::from_millis(20),
            max_backoff: Duration::from_millis(200),
            timeout: Duration::from_secs(5),
            ..QueueOptions::default()
        },
        ..InfluxOptions::default()
    }
}

/// Waits (30 s at most) until the stats satisfy `done`.
fn until(pusher: &Pusher, done: impl Fn(&PushStats) -> bool) -> PushStats {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let stats = pusher.stats();
        if done(&stats) {
            return stats;
        }
        assert!(Instant::now() < deadline, "timed out: {stats:?}");
        std::thread::sleep(Duration::from_millis(10));
    }
}

fn counter(total: f64) -> Value {
    Value::Counter { count: 1.0, total }
}

#[test]
fn pushes_reach_influxdb_and_survive_its_restart() {
    let mut influx = Influx::start();
    assert_eq!(
        influx.query("CREATE DATABASE panoptic")["error"],
        Json::Null
    );

    // Every kind, and names that need escaping.
    let mut feed = Feed::new();
    let pusher = Pusher::influx(options(&influx.url, "panoptic")).unwrap();
    feed.exporter.subscribe(pusher.subscriber());
    let requests = key(
        "inc",
        &["http"],
        r#"requests{method="GET",path="/a b,c=d"}"#,
    );
    let mut s = Summary::default();
    [1.0, 2.0, 6.0].iter().for_each(|&x| s.push(x));
    let mut h = Distribution::new(&HistogramOptions::default(), 1);
    h.record_all(&[1.0, 2.0, 3.0, 4.0], 0.0);
    let hostile = key("gauge", &["we ird,path"], r#"x=y\z"#);
    feed.deliver(&[(requests.clone(), counter(2.0))]);
    feed.deliver(&[
        (requests.clone(), counter(3.0)),
        (key("sample", &["db"], "query"), Value::Summary(s)),
        (
            key("histogram", &["db"], "time"),
            Value::Histogram(Box::new(h)),
        ),
        (key("gauge", &["mem"], "rss"), Value::Gauge(Some(1.5e9))),
        (key("gauge", &["mem"], "broken"), Value::Gauge(None)),
        (
            key("set", &["app"], "state"),
            Value::Set {
                json: r#""up \"now\"""#.into(),
                at: 0.0,
            },
        ),
        (hostile, Value::Gauge(Some(7.0))),
    ]);
    let stats = until(&pusher, |s| s.pushed_points == 7);
    assert_eq!((stats.failures, stats.dropped_points), (0, 0), "{stats:?}");

    let t1 = START + 1000.0;
    let t2 = START + 2000.0;
    assert_rows(
        &influx,
        r#"SELECT * FROM "http.requests""#,
        vec![
            json!({ "name": "http.requests", "time": t1, "increase": 2, "rate": 2, "total": 2,
                    "calls": 1, "host": "box", "method": "GET", "path": "/a b,c=d" }),
            json!({ "name": "http.requests", "time": t2, "increase": 3, "rate": 3, "total": 5,
                    "calls": 2, "host": "box", "method": "GET", "path": "/a b,c=d" }),
        ],
    );
    assert_rows(
        &influx,
        r#"SELECT * FROM "db.query""#,
        vec![
            json!({ "name": "db.query", "time": t2, "count": 3, "sum": 9, "min": 1, "max": 6,
                 "mean": 3, "sigma": 7f64.sqrt(), "host": "box" }),
        ],
    );
    assert_rows(
        &influx,
        r#"SELECT * FROM "db.time""#,
        vec![
            json!({ "name": "db.time", "time": t2, "count": 4, "sum": 10, "min": 1, "max": 4,
                 "mean": 2.5, "stddev": 1.2909944487358056, "p50": 2, "p99": 4,
                 "host": "box" }),
        ],
    );
    assert_rows(
        &influx,
        r#"SELECT value FROM "mem.rss""#,
        vec![json!({ "name": "mem.rss", "time": t2, "value": 1.5e9 })],
    );
    assert_rows(&influx, r#"SELECT * FROM "mem.broken""#, vec![]);
    assert_rows(
        &influx,
        r#"SELECT json FROM "app.state""#,
        vec![json!({ "name": "app.state", "time": t2, "json": r#""up \"now\"""# })],
    );
    // The hostile measurement name comes back whole.
    assert_rows(
        &influx,
        // (InfluxQL escapes the backslash in a quoted identifier.)
        r#"SELECT value FROM "we ird,path.x=y\\z""#,
        vec![json!({ "name": r#"we ird,path.x=y\z"#, "time": t2, "value": 7 })],
    );
    // Integer fields are integers, the others floats.
    let types = influx.rows(r#"SHOW FIELD KEYS FROM "http.requests""#);
    let types: Vec<_> = (types.iter())
        .map(|r| {
            (
                r["fieldKey"].as_str().unwrap(),
                r["fieldType"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        types,
        [
            ("calls", "integer"),
            ("increase", "float"),
            ("rate", "float"),
            ("total", "float")
        ]
    );
    pusher.stop(Duration::from_secs(5));

    // InfluxDB goes away: the queue stays within its bound and drops the oldest batches.
    let mut feed = Feed::new();
    feed.k = 10.0;
    let mut o = options(&influx.url, "panoptic");
    o.queue.max_queue_bytes = 4096;
    o.queue.batch_points = 4;
    let pusher = Pusher::influx(o).unwrap();
    feed.exporter.subscribe(pusher.subscriber());
    influx.command("stop", "stopped");
    let series: Vec<_> = (0..8)
        .map(|i| (key("inc", &["load"], &format!("s{i}")), counter(1.0)))
        .collect();
    let mut delivered = 0;
    for _ in 0..30 {
        feed.deliver(&series);
        delivered += series.len() as u64;
        let stats = pusher.stats();
        assert!(stats.queued_bytes <= 4096, "{stats:?}");
    }
    let down = until(&pusher, |s| s.failures >= 2 && s.retries >= 1);
    assert!(down.dropped_points > 0, "{down:?}");
    assert_eq!(down.pushed_points, 0);
    assert!(down.last_error.is_some());

    // Back: what is queued, and what comes next, arrives (nothing more is dropped).
    influx.command("start", "started");
    until(&pusher, |s| s.queued_bytes == 0);
    feed.deliver(&series);
    delivered += series.len() as u64;
    let stats = until(&pusher, |s| {
        s.queued_bytes == 0 && s.pushed_points + s.dropped_points == delivered
    });
    assert_eq!(stats.dropped_points, down.dropped_points, "{stats:?}");
    assert!(stats.pushed_points > series.len() as u64, "{stats:?}");
    let last_time = START + feed.k * 1000.0;
    let rows = influx.rows(&format!(
        r#"SELECT increase FROM /^load\./ WHERE time = {}ms"#,
        last_time
    ));
    assert_eq!(rows.len(), 8, "{rows:?}");
    let stored = influx.rows(r#"SELECT count(increase) FROM /^load\./"#);
    let stored: f64 = stored.iter().map(|r| r["count"].as_f64().unwrap()).sum();
    assert_eq!(stored, stats.pushed_points as f64);
    pusher.stop(Duration::from_secs(5));

    // A database that does not exist: 404, counted and dropped, never sent again.
    let mut feed = Feed::new();
    let pusher = Pusher::influx(options(&influx.url, "nowhere")).unwrap();
    feed.exporter.subscribe(pusher.subscriber());
    feed.deliver(&[(key("inc", &[], "a"), counter(1.0))]);
    feed.deliver(&[(key("inc", &[], "a"), counter(1.0))]);
    let stats = until(&pusher, |s| s.dropped_batches == 2);
    assert_eq!(
        (stats.failures, stats.retries, stats.pushed_points),
        (2, 0, 0)
    );
    let error = stats.last_error.unwrap();
    assert!(
        error.starts_with("HTTP 404:") && error.contains("database not found"),
        "{error}"
    );
    pusher.stop(Duration::ZERO);
}
