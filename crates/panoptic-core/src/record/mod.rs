//! Recording, in every process and thread: the clock that tells each instance which interval it
//! is in ([`clock`]), an instance's open interval closed into a snapshot ([`engine`]),
//! worker threads posting their snapshots to their process's main thread ([`threads`]), and the
//! event-loop delay probe's pure parts ([`loop_delay`]), and the process's CPU, memory and
//! descriptors as the runtime metrics' sampler reads them ([`process`]).

pub mod clock;
pub mod engine;
pub mod loop_delay;
pub mod process;
pub mod threads;
