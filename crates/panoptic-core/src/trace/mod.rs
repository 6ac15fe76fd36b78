//! Dynamic tracing (jstrace's probes, inside panoptic): the native half.
//!
//! A traced process listens on a Unix domain socket in a per-user folder ([`crate::socket`]), served by
//! native threads ([`server`]) that speak a small framed protocol ([`frame`]) with bounded,
//! drop-counting output queues ([`queue`]). Probe names, process titles and host names are
//! matched with [`glob`] patterns. The JS side (`lib/trace/`) gives the frames their meaning:
//! subscriptions, trace objects, remote scripts.

pub mod frame;
pub mod glob;
pub mod queue;
#[cfg(unix)]
pub mod server;
