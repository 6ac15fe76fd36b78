//! The pusher thread's HTTP side: one request per batch, and what its answer means.

use std::time::{Duration, Instant};

use super::options::QueueOptions;
use super::targets::{Request, Target};

/// How much of an error answer's body [`super::PushStats::last_error`] keeps.
pub(super) const ERROR_BODY_BYTES: u64 = 512;

/// How one attempt went.
pub(super) enum Outcome {
    /// Taken; what the answer says was rejected, if anything (see [`Target::rejected`]).
    Sent(Option<(u64, String)>),
    /// Not to be sent again.
    Refused(String),
    /// To be sent again, not before the given delay when the server asked for one.
    Retry(String, Option<Duration>),
}

/// The pusher thread's HTTP side.
pub(super) struct Sender {
    pub(super) agent: ureq::Agent,
    pub(super) request: Request,
    pub(super) timeout: Duration,
}

impl Sender {
    pub(super) fn new(request: Request, options: &QueueOptions) -> Sender {
        let config = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .max_redirects(0)
            .proxy(None)
            .timeout_global(Some(options.timeout))
            .timeout_connect(Some(options.timeout))
            .user_agent("panoptic")
            .build();
        Sender {
            agent: config.into(),
            request,
            timeout: options.timeout,
        }
    }

    /// One request (its time cut to the stop deadline, if any).
    pub(super) fn send(
        &self,
        target: &dyn Target,
        body: &[u8],
        deadline: Option<Instant>,
    ) -> Outcome {
        let mut request = self.agent.post(&self.request.url);
        for (key, value) in &self.request.query {
            request = request.query(key, value);
        }
        for (name, value) in &self.request.headers {
            request = request.header(name, value);
        }
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
            // Settings the server cannot change: sending again would fail again.
            Err(e @ (ureq::Error::BadUri(_) | ureq::Error::Http(_))) => {
                return Outcome::Refused(e.to_string())
            }
            Err(e) => return Outcome::Retry(e.to_string(), None),
        };
        let status = response.status().as_u16();
        if (200..300).contains(&status) {
            // Read the (usually empty) body so the connection can be used again, and for what
            // the target finds in it.
            let answer = (response.body_mut().with_config().limit(1 << 16))
                .read_to_vec()
                .unwrap_or_default();
            return Outcome::Sent(target.rejected(&answer));
        }
        let retry_after = (response.headers().get("retry-after"))
            .and_then(|v| v.to_str().ok()?.trim().parse::<u64>().ok())
            .map(Duration::from_secs);
        let text = (response.body_mut().with_config().limit(ERROR_BODY_BYTES))
            .read_to_string()
            .unwrap_or_default();
        let error = format!("HTTP {status}: {}", text.trim());
        if target.retry(status) {
            Outcome::Retry(error, retry_after)
        } else {
            Outcome::Refused(error)
        }
    }
}
