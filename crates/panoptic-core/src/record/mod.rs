//! Recording, in every process and thread: the clock that tells each instance which interval it
//! is in ([`clock`]), an instance's open interval closed into a snapshot ([`engine`]), and
//! worker threads posting their snapshots to their process's main thread ([`threads`]).

pub mod clock;
pub mod engine;
pub mod threads;
