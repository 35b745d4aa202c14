//! `disksim`: an NBD server whose export behaves like a rotating disk.
//!
//! * [`model`]: pure timing model (seek curve, rotation, transfer).
//! * [`flash`]: pure timing model of an SSD or NVMe drive.
//! * [`sched`]: the drive's command queue with optional reordering.
//! * [`server`]: NBD protocol, backing file I/O, real-time sleeps.
//! * [`config`], [`stats`]: command line and statistics.

pub mod config;
pub mod flash;
pub mod model;
pub mod sched;
pub mod server;
pub mod stats;
