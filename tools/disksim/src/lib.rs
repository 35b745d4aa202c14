//! `disksim`: an NBD server whose export behaves like a rotating disk.
//!
//! * [`model`]: pure timing model (seek curve, rotation, transfer).
//! * [`sched`]: the drive's command queue with optional reordering.
//! * [`server`]: NBD protocol, backing file I/O, real-time sleeps.
//! * [`config`], [`stats`]: command line and statistics.

pub mod config;
pub mod model;
pub mod sched;
pub mod server;
pub mod stats;
