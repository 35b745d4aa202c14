// SPDX-License-Identifier: GPL-2.0

//! `BTRFS_IOC_READA`: userspace's way to ask for a readahead.
//!
//! The argument (`struct btrfs_ioctl_reada_args` in
//! `include/uapi/linux/btrfs.h`) names a tree, a key range `[start, end)`, a
//! mode and flags; the kernel fills in what it did. btrfs has checked
//! `CAP_SYS_ADMIN` before calling us. The argument is copied in once,
//! validated completely before anything runs, and written back once, with
//! every output field set explicitly so nothing of the kernel's leaks out.
//!
//! The four modes are timed the same way, here: the module's readahead, and
//! for comparison the plain walk (one synchronous read at a time) and the
//! stock search with `READA_FORWARD` or with `READA_FORWARD_ALWAYS`, all
//! three of which btrfs implements.

use crate::engine;
use crate::shim::{FsInfo, Key, TreeRange, Walk, WalkCounts};
use core::mem::size_of;
use kernel::prelude::*;
use kernel::time::Ktime;
use kernel::types::{AsBytes, FromBytes};
use kernel::uaccess::{UserPtr, UserSlice};
use kernel::uapi;

/// The ioctl's argument as userspace lays it out.
#[repr(transparent)]
#[derive(Default)]
struct ReadaArgs(uapi::btrfs_ioctl_reada_args);

// The argument has no padding: its size is the sum of its fields' sizes.
// Userspace's copy of the layout is tested against the same header.
const _: () = assert!(size_of::<uapi::btrfs_ioctl_reada_key>() == 8 + 8 + 1 + 7);
const _: () = assert!(size_of::<ReadaArgs>() == 8 + 2 * 24 + 4 + 4 + 4 * 8 + 6 * 8 + 2 * 8);

// SAFETY: the struct holds only integers and arrays of integers and has no
// padding (asserted above), so every byte pattern is a valid value.
unsafe impl FromBytes for ReadaArgs {}
// SAFETY: no padding (asserted above), so no byte of it is uninitialised.
unsafe impl AsBytes for ReadaArgs {}

/// How to go through the range.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Mode {
    /// The module's readahead; `detach` returns at once.
    Readahead { detach: bool },
    /// A walk without the readahead, for comparison.
    Walk(Walk),
}

/// A validated call: the range, and how to go through it.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Command {
    pub(crate) range: TreeRange,
    pub(crate) mode: Mode,
}

fn key_from_user(k: &uapi::btrfs_ioctl_reada_key) -> Result<Key> {
    if k.reserved.iter().any(|&b| b != 0) {
        return Err(EINVAL);
    }
    Ok(Key {
        objectid: k.objectid,
        type_: k.type_,
        offset: k.offset,
    })
}

/// Checks every input field; `EINVAL` for anything not understood: nonzero
/// reserved fields, unknown mode or flags, detach outside readahead mode, or
/// an empty or inverted range (`start >= end`). The tree id is checked when
/// the tree is looked up (`EINVAL` if it cannot name a tree, `ENOENT` if
/// there is no such tree).
fn parse(args: &uapi::btrfs_ioctl_reada_args) -> Result<Command> {
    if args.reserved_in.iter().any(|&v| v != 0) {
        return Err(EINVAL);
    }
    if args.flags & !uapi::BTRFS_READA_FLAGS_MASK != 0 {
        return Err(EINVAL);
    }
    let detach = args.flags & uapi::BTRFS_READA_FLAG_DETACH != 0;
    let mode = match args.mode {
        uapi::BTRFS_READA_MODE_READAHEAD => Mode::Readahead { detach },
        uapi::BTRFS_READA_MODE_PLAIN if !detach => Mode::Walk(Walk::Plain),
        uapi::BTRFS_READA_MODE_FORWARD if !detach => Mode::Walk(Walk::Forward),
        uapi::BTRFS_READA_MODE_FORWARD_ALWAYS if !detach => Mode::Walk(Walk::ForwardAlways),
        _ => return Err(EINVAL),
    };
    let start = key_from_user(&args.start)?;
    let end = key_from_user(&args.end)?;
    if start >= end {
        return Err(EINVAL);
    }
    Ok(Command {
        range: TreeRange {
            tree_id: args.tree_id,
            start,
            end,
            commit_root: args.flags & uapi::BTRFS_READA_FLAG_COMMIT_ROOT != 0,
        },
        mode,
    })
}

/// Sets every output field.
fn set_results(args: &mut uapi::btrfs_ioctl_reada_args, counts: &WalkCounts, elapsed_ns: u64) {
    args.blocks_visited = counts.visited;
    args.blocks_read = counts.read;
    args.blocks_cached = counts.cached;
    args.bytes_read = counts.bytes_read;
    args.elapsed_ns = elapsed_ns;
    args.errors = counts.errors;
    args.blocks_stale = counts.stale;
    args.reserved_out = [0; 1];
}

/// Serves one `BTRFS_IOC_READA` call.
pub(crate) fn handle(fs: &FsInfo, arg: UserPtr) -> Result<i64> {
    let (mut reader, mut writer) = UserSlice::new(arg, size_of::<ReadaArgs>()).reader_writer();
    let mut args: ReadaArgs = reader.read()?;
    let command = parse(&args.0)?;

    let began = Ktime::ktime_get();
    let counts = match command.mode {
        Mode::Walk(how) => fs.walk(&command.range, how)?,
        Mode::Readahead { detach } => engine::readahead(fs, command.range, detach)?,
    };
    let elapsed = (Ktime::ktime_get() - began).to_ns();

    set_results(&mut args.0, &counts, u64::try_from(elapsed).unwrap_or(0));
    writer.write(&args)?;
    Ok(0)
}
