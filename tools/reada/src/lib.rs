//! `reada`: the command-line front end of btrfs tree readahead.
//!
//! The binary (`main.rs`) is a thin shell around this library:
//! - [`uapi`]: the ioctl ABI (`struct btrfs_ioctl_reada_args`, `BTRFS_IOC_READA`);
//! - [`key`]: tree names and btrfs keys as typed on the command line;
//! - [`args`]: argument parsing and the usage text;
//! - [`report`]: summary lines, JSON, error messages and the progress line;
//! - [`expect`]: the outcome the ioctl must give each argument (for
//!   `reada-fuzz`).

pub mod args;
pub mod expect;
pub mod key;
pub mod report;
pub mod uapi;

pub use args::{parse_args, Command, Mode, Options, USAGE};
pub use key::Key;

/// Exit status for a failed open() or ioctl.
pub const EXIT_FAILURE: i32 = 1;
/// Exit status for a usage error.
pub const EXIT_USAGE: i32 = 2;
