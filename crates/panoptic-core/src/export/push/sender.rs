//! The pusher thread's HTTP side: one request per batch, and what its answer means.

use std::time::{Duration, Instant};

use base64::Engine;

use super::options::{PushError, PushOptions};
use super::queue::Shared;

/// How much of an error answer's body [`PushStats::last_error`] keeps.
pub(super) const ERROR_BODY_BYTES: u64 = 512;

/// How one attempt went.
pub(super) enum Outcome {
    Sent,
    /// Not to be sent again.
    Refused(String),
    /// To be sent again, not before the given delay when the server asked for one.
    Retry(String, Option<Duration>),
}

/// The pusher thread's HTTP side.
pub(super) struct Sender {
    pub(super) agent: ureq::Agent,
    pub(super) write_url: String,
    pub(super) query: Vec<(&'static str, String)>,
    pub(super) authorization: Option<String>,
    pub(super) timeout: Duration,
    pub(super) min_backoff: Duration,
    pub(super) max_backoff: Duration,
}

impl Sender {
    pub(super) fn new(options: &PushOptions) -> Result<Sender, PushError> {
        let write_url = format!("{}/write", options.base_url()?);
        let config = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .max_redirects(0)
            .proxy(None)
            .timeout_global(Some(options.timeout))
            .timeout_connect(Some(options.timeout))
            .user_agent("panoptic")
            .build();
        let mut query = vec![
            ("db", options.db.clone()),
            ("precision", options.lines.precision.as_query().to_string()),
        ];
        if let Some(rp) = &options.retention_policy {
            query.push(("rp", rp.clone()));
        }
        let authorization = match (&options.username, &options.password) {
            (Some(user), Some(password)) => {
                let credentials = format!("{user}:{password}");
                let encoded = base64::engine::general_purpose::STANDARD.encode(credentials);
                Some(format!("Basic {encoded}"))
            }
            _ => None,
        };
        Ok(Sender {
            agent: config.into(),
            write_url,
            query,
            authorization,
            timeout: options.timeout,
            min_backoff: options.min_backoff,
            max_backoff: options.max_backoff,
        })
    }

    /// The thread: sends the first batch until the queue is empty and the pusher stopped.
    pub(super) fn run(&self, shared: &Shared) {
        let mut backoff: Option<Duration> = None;
        loop {
            let (body, deadline) = {
                let mut state = shared.lock();
                loop {
                    if let Some(deadline) = state.deadline {
                        if state.queue.is_empty() || Instant::now() >= deadline {
                            while !state.queue.is_empty() {
                                state.drop_batch(0);
                            }
                            return;
                        }
                    }
                    if let Some(batch) = state.queue.front() {
                        let body = batch.body.clone();
                        state.sending = true;
                        if backoff.is_some() {
                            state.stats.retries += 1;
                        }
                        break (body, state.deadline);
                    }
                    state = shared.wake.wait(state).unwrap_or_else(|e| e.into_inner());
                }
            };
            let outcome = self.send(&body, deadline);
            let mut state = shared.lock();
            state.sending = false;
            let wait = match outcome {
                Outcome::Sent => {
                    if let Some(batch) = state.queue.pop_front() {
                        state.queued_bytes -= batch.body.len();
                        state.stats.pushed_batches += 1;
                        state.stats.pushed_points += batch.points;
                    }
                    backoff = None;
                    continue;
                }
                Outcome::Refused(error) => {
                    state.stats.failures += 1;
                    state.stats.last_error = Some(error);
                    state.drop_batch(0);
                    // The server answers: the next batch goes at once.
                    backoff = None;
                    continue;
                }
                Outcome::Retry(error, asked) => {
                    state.stats.failures += 1;
                    state.stats.last_error = Some(error);
                    let next = match backoff {
                        None => self.min_backoff,
                        Some(b) => (b * 2).min(self.max_backoff),
                    };
                    backoff = Some(next);
                    let half = next / 2;
                    let jitter = half.mul_f64(fastrand::f64());
                    (half + jitter).max(asked.unwrap_or_default().min(self.max_backoff))
                }
            };
            // Back off; a stop() shortens the wait to its deadline.
            let until = Instant::now() + wait;
            loop {
                let end = state.deadline.map_or(until, |d| d.min(until));
                let now = Instant::now();
                if now >= end {
                    break;
                }
                state = (shared.wake.wait_timeout(state, end - now))
                    .unwrap_or_else(|e| e.into_inner())
                    .0;
            }
        }
    }

    /// One request (its time cut to the stop deadline, if any).
    pub(super) fn send(&self, body: &[u8], deadline: Option<Instant>) -> Outcome {
        let mut request = self.agent.post(&self.write_url);
        for (key, value) in &self.query {
            request = request.query(key, value);
        }
        if let Some(authorization) = &self.authorization {
            request = request.header("Authorization", authorization);
        }
        request = request.header("Content-Type", "text/plain; charset=utf-8");
        let result = match deadline {
            Some(deadline) => {
                let left = deadline.saturating_duration_since(Instant::now());
                let budget = left.min(self.timeout).max(Duration::from_millis(1));
                (request.config().timeout_global(Some(budget)).build()).send(body)
            }
            None => request.send(body),
        };
        let mut response = match result {
            Ok(response) => response,
            // Settings InfluxDB cannot change: sending again would fail again.
            Err(e @ (ureq::Error::BadUri(_) | ureq::Error::Http(_))) => {
                return Outcome::Refused(e.to_string())
            }
            Err(e) => return Outcome::Retry(e.to_string(), None),
        };
        let status = response.status().as_u16();
        if (200..300).contains(&status) {
            // Read the (usually empty) body so the connection can be used again.
            let _ = response
                .body_mut()
                .with_config()
                .limit(1 << 16)
                .read_to_vec();
            return Outcome::Sent;
        }
        let retry_after = (response.headers().get("retry-after"))
            .and_then(|v| v.to_str().ok()?.trim().parse::<u64>().ok())
            .map(Duration::from_secs);
        let text = (response.body_mut().with_config().limit(ERROR_BODY_BYTES))
            .read_to_string()
            .unwrap_or_default();
        let error = format!("HTTP {status}: {}", text.trim());
        if status == 429 || status >= 500 {
            Outcome::Retry(error, retry_after)
        } else {
            Outcome::Refused(error)
        }
    }
}
