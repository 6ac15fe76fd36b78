//! Tracing: thin wrappers over `panoptic_core::trace`. `lib/trace/` builds `trace()`, the
//! subscriptions and the `panoptic-trace` CLI on top of these.

use napi::bindgen_prelude::Buffer;
use napi_derive::napi;
use panoptic_core::trace::frame::{self, kind, Decoder};
use panoptic_core::trace::glob::{any_matches, Glob};

use crate::error::{coded, Coded, TRACE_PATTERN, TRACE_PROTOCOL};

/// The frame kinds and limits of the trace protocol (`panoptic_core::trace::frame`).
#[napi(object)]
pub struct TraceProtocol {
    pub version: u32,
    pub max_payload: u32,
    pub hello: u32,
    pub subscribed: u32,
    pub trace: u32,
    pub event: u32,
    pub stdio: u32,
    pub error: u32,
    pub dropped: u32,
    pub cleanup: u32,
    pub cleaned: u32,
}

/// The protocol's constants, so the JS sides never restate them.
#[napi]
pub fn trace_protocol() -> TraceProtocol {
    TraceProtocol {
        version: frame::VERSION.into(),
        max_payload: frame::MAX_PAYLOAD as u32,
        hello: kind::HELLO.into(),
        subscribed: kind::SUBSCRIBED.into(),
        trace: kind::TRACE.into(),
        event: kind::EVENT.into(),
        stdio: kind::STDIO.into(),
        error: kind::ERROR.into(),
        dropped: kind::DROPPED.into(),
        cleanup: kind::CLEANUP.into(),
        cleaned: kind::CLEANED.into(),
    }
}

fn kind_byte(kind: u32) -> Result<u8, Coded> {
    u8::try_from(kind)
        .map_err(|_| coded(TRACE_PROTOCOL, format!("frame kind {kind} is not a byte")))
}

/// Whether any of `patterns` matches `subject` (anchored, case-insensitive, `*` = one or more
/// characters). Fails with PANOPTIC_TRACE_PATTERN on an empty pattern.
#[napi(catch_unwind)]
pub fn trace_match(patterns: Vec<String>, subject: String) -> Result<bool, Coded> {
    let globs = patterns
        .iter()
        .map(|p| Glob::new(p))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| coded(TRACE_PATTERN, e.to_string()))?;
    Ok(any_matches(&globs, &subject))
}

/// `payload` framed as `kind` (the tracer's side of the socket).
#[napi(catch_unwind)]
pub fn trace_encode(kind: u32, payload: String) -> Result<Buffer, Coded> {
    frame::encode(kind_byte(kind)?, payload.as_bytes())
        .map(Buffer::from)
        .map_err(|e| coded(TRACE_PROTOCOL, e.to_string()))
}

/// One frame read by a [`TraceDecoder`].
#[napi(object)]
pub struct TraceFrame {
    pub kind: u32,
    pub payload: String,
}

/// Splits the bytes a tracer reads from a process's socket into frames.
#[napi]
pub struct TraceDecoder {
    inner: Decoder,
}

#[napi]
impl TraceDecoder {
    /// A decoder with nothing buffered.
    #[napi(constructor)]
    #[allow(clippy::new_without_default)]
    pub fn new() -> TraceDecoder {
        TraceDecoder {
            inner: Decoder::new(),
        }
    }

    /// Adds `chunk` and returns the frames completed by it. Fails with PANOPTIC_TRACE_PROTOCOL
    /// (and keeps failing) once the stream is not valid framing.
    #[napi(catch_unwind)]
    pub fn push(&mut self, chunk: Buffer) -> Result<Vec<TraceFrame>, Coded> {
        self.inner.push(&chunk);
        let mut frames = Vec::new();
        while let Some(f) = self
            .inner
            .next_frame()
            .map_err(|e| coded(TRACE_PROTOCOL, format!("protocol error: {e}")))?
        {
            frames.push(TraceFrame {
                kind: f.kind.into(),
                payload: f.payload,
            });
        }
        Ok(frames)
    }
}

#[cfg(unix)]
pub use server::*;

#[cfg(unix)]
mod server {
    use super::*;
    use crate::error::{TRACE_FOLDER, TRACE_SOCKET};
    use napi::bindgen_prelude::FnArgs;
    use napi::threadsafe_function::{ThreadsafeFunction, ThreadsafeFunctionCallMode};
    use napi::Status;
    use panoptic_core::socket as dir;
    use panoptic_core::trace::server::{Event, Limits, ListenError, Server, Sink};
    use std::sync::{Arc, OnceLock};

    /// Receives `(conn, kind, payload)`; kind 0 means the connection closed. Weak (unreferenced):
    /// an attached tracer must not keep the traced process alive. Its queue is bounded, so a
    /// flooding peer is closed instead of growing the process.
    type OnEvent = ThreadsafeFunction<Args, (), Args, Status, false, true, 256>;
    /// Spread as three arguments (a bare tuple would reach JS as one array).
    type Args = FnArgs<(u32, u32, String)>;

    static SERVER: OnceLock<Server> = OnceLock::new();

    fn listen_error(e: ListenError) -> Coded {
        let code = match e {
            ListenError::Folder(_) => TRACE_FOLDER,
            ListenError::Socket(_) => TRACE_SOCKET,
        };
        coded(code, e.to_string())
    }

    /// Creates (mode 0700) and checks the trace folder `dir`: it must be ours and private.
    /// Fails with PANOPTIC_TRACE_FOLDER.
    #[napi(catch_unwind)]
    pub fn trace_prepare_dir(dir: String) -> Result<(), Coded> {
        dir::prepare(dir.as_ref(), "trace folder").map_err(|e| coded(TRACE_FOLDER, e.to_string()))
    }

    /// Makes this process attachable at `<dir>/<pid>.sock`; frames and closes reach `on_event`
    /// on the JS thread. Returns the socket's path. Listening again returns the same path.
    #[napi(catch_unwind)]
    pub fn trace_listen(
        dir: String,
        pid: u32,
        #[napi(ts_arg_type = "(conn: number, kind: number, payload: string) => void")]
        on_event: OnEvent,
    ) -> Result<String, Coded> {
        if let Some(s) = SERVER.get() {
            return Ok(s.path().to_string_lossy().into_owned());
        }
        let sink: Sink = Arc::new(move |event| {
            let args = match event {
                Event::Frame { conn, frame } => (conn, frame.kind.into(), frame.payload),
                Event::Closed { conn } => (conn, 0, String::new()),
            };
            on_event.call(args.into(), ThreadsafeFunctionCallMode::NonBlocking) == Status::Ok
        });
        let server =
            Server::listen(dir.as_ref(), pid, Limits::default(), sink).map_err(listen_error)?;
        let path = server.path().to_string_lossy().into_owned();
        if let Err(loser) = SERVER.set(server) {
            // Another thread listened first (JS allows only the main thread: not expected).
            loser.shutdown();
        }
        Ok(path)
    }

    /// Queues a frame for connection `conn`: 0 queued, 1 dropped (the queue is full; the tracer
    /// is told how many), 2 payload too large, 3 no such connection.
    #[napi(catch_unwind)]
    pub fn trace_send(conn: u32, kind: u32, payload: String) -> Result<u32, Coded> {
        let kind = kind_byte(kind)?;
        Ok(match SERVER.get() {
            Some(s) => s.send(conn, kind, payload.as_bytes()) as u32,
            None => 3,
        })
    }

    /// Closes connection `conn` once its queued frames are written.
    #[napi]
    pub fn trace_close(conn: u32) {
        if let Some(s) = SERVER.get() {
            s.close(conn);
        }
    }

    /// Stops listening and removes the socket, gives the tracers up to a second to read what is
    /// queued for them, and closes every connection (at process exit). Returns the frames they
    /// did not read in time.
    #[napi]
    pub fn trace_shutdown() -> f64 {
        // A count of frames, exact in an f64 far beyond what 16 queues of 8 MiB can hold.
        SERVER.get().map_or(0.0, |s| s.shutdown() as f64)
    }
}
