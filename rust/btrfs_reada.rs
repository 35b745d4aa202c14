// SPDX-License-Identifier: GPL-2.0

//! Btrfs tree readahead.
//!
//! Prefetches the tree blocks of a key range of a btrfs B-tree in ascending
//! on-disk order, per device, on all devices at once, so that a tree walk or
//! a scrub that follows finds its metadata in memory instead of seeking once
//! per block. See `Documentation/design.md` for the model (requests, blocks,
//! zones and the per-device machine).
//!
//! The module talks to btrfs only through the hook table and the shim that
//! this project's kernel patch series adds to `fs/btrfs`; `shim.rs` is the
//! only file that calls into C.
//!
//! Files, one per concept:
//! - `engine.rs`: the module's workqueue, every filesystem's state, and
//!   what btrfs's hooks call;
//! - `request.rs`: requests (`reada_control`): a key range of a tree, its
//!   count of outstanding blocks, its waiters;
//! - `block.rs`: blocks (`reada_extent`) and the per-request links on them;
//! - `index.rs`: the indexes of blocks, device queues and zones, on
//!   XArrays;
//! - `machine.rs`: per-filesystem state and its passes; the lock order is
//!   written down there; in `machine/`: `admit.rs` (queueing a block),
//!   `schedule.rs` (the per-device schedule), `zone.rs` (zones,
//!   `reada_zone`, and the zone picker), `complete.rs` (read completions
//!   and children), `shutdown.rs` (unmount);
//! - `order.rs`: the pure orderings (keys, key spans, zone choice), also
//!   unit-tested on the host;
//! - `ioctl.rs`: `BTRFS_IOC_READA`;
//! - `counters.rs`: the counters shown in debugfs;
//! - `shim.rs`: the safe wrapper of the btrfs interface.

mod block;
mod counters;
mod engine;
mod index;
mod ioctl;
mod machine;
mod order;
mod request;
mod shim;

use engine::Engine;
use kernel::ioprio::IoPriority;
use kernel::prelude::*;
use kernel::sync::Arc;
use kernel::uaccess::UserPtr;
use request::Request;
use shim::{FsInfo, SeqFile, TreeBlock, TreeRange, User, WalkCounts};

module! {
    type: BtrfsReada,
    name: "btrfs_reada",
    author: "The btrfs readahead developers",
    description: "Btrfs tree readahead in on-disk order across all devices",
    license: "GPL",
    params: {
        // Tree block reads in flight per device at most (clamped to 1..=64).
        max_in_flight: u32 {
            default: 6,
            permissions: 0o644,
            description: "Tree block reads in flight per device (1-64, default 6)",
        },
        // The same for a device the block layer says is not rotational:
        // with no seeks to save, it is kept busy with a deeper queue.
        max_in_flight_nonrot: u32 {
            default: 32,
            permissions: 0o644,
            description: "Tree block reads in flight per non-rotational device (1-64, default 32)",
        },
        // Blocks one filesystem's readahead holds queued or in flight
        // before it parks nodes instead of expanding them (0: no bound).
        max_queued_blocks: u32 {
            default: 16384,
            permissions: 0o644,
            description: "Tree blocks a filesystem's readahead holds queued or in flight before nodes wait (default 16384; 0: no bound)",
        },
        // Seconds a waiter waits with none of its request's blocks ending
        // before the module reports the request as stalled (0: never).
        stall_warn_secs: u32 {
            default: 120,
            permissions: 0o644,
            description: "Report a readahead waited on with no progress for this many seconds (0: never, default 120)",
        },
        // The I/O priority class of a detached request's reads: 1 real
        // time, 2 best effort, 3 idle (the default); 0 gives them the
        // priority of the task that detached, as a waited request's reads
        // have.
        detached_ioprio_class: u32 {
            default: 3,
            permissions: 0o644,
            description: "I/O priority class of detached readahead (0: the caller's, 1 rt, 2 be, 3 idle; default 3)",
        },
        // The level within `detached_ioprio_class` (0 most urgent to 7).
        detached_ioprio_level: u32 {
            default: 7,
            permissions: 0o644,
            description: "I/O priority level of detached readahead (0-7, default 7; not used by the idle class)",
        },
    },
}

/// The module's version, set by the build from `git describe`.
const VERSION: &str = match option_env!("BTRFS_READA_VERSION") {
    Some(v) => v,
    None => "unknown",
};

/// The loaded module. Dropping it (at `rmmod`, which is refused while any
/// request lives) unregisters the hooks, then frees the engine.
struct BtrfsReada {
    hooks: Option<shim::HookRegistration>,
    _engine: Pin<KBox<Engine>>,
}

impl kernel::Module for BtrfsReada {
    fn init(module: &'static ThisModule) -> Result<Self> {
        let engine = Engine::new(module)?;
        engine::publish(&engine);
        let hooks = match shim::HookRegistration::new::<Hooks>(module) {
            Ok(hooks) => hooks,
            Err(e) => {
                engine::unpublish();
                return Err(e);
            }
        };
        pr_info!("btrfs tree readahead {} loaded\n", VERSION);
        Ok(BtrfsReada {
            hooks: Some(hooks),
            _engine: engine,
        })
    }
}

impl Drop for BtrfsReada {
    fn drop(&mut self) {
        // Unregistering waits for hook calls in progress; then only the
        // engine's own passes may still reach the engine.
        drop(self.hooks.take());
        engine::unpublish();
        pr_info!("btrfs tree readahead unloaded\n");
    }
}

/// The module's answers to btrfs's hooks.
struct Hooks;

#[vtable]
impl shim::ReadaHooks for Hooks {
    type Request = Request;

    /// Reads run at the I/O priority of the caller of `btrfs_reada_add`,
    /// whether it then waits or detaches: a kernel caller that detaches
    /// (mount, a quota rescan, send, a truncate) searches the same blocks
    /// right after and would wait behind idle-class reads. The ioctl's
    /// detached requests, which nobody waits for, read at
    /// [`engine::detached_ioprio`] (see [`engine::readahead`]).
    fn add(fs: &FsInfo, range: TreeRange, user: User) -> Result<Arc<Request>> {
        engine::start(fs, range, IoPriority::current(), user)
    }

    fn wait(request: Arc<Request>) -> Result<WalkCounts> {
        request.wait()
    }

    fn detach(request: Arc<Request>) {
        // The engine holds the request until it ends; only the caller's
        // handle goes.
        drop(request);
    }

    fn ioctl(fs: &FsInfo, arg: UserPtr) -> Result<i64> {
        ioctl::handle(fs, arg)
    }

    fn end_io(fs: &FsInfo, block: TreeBlock, result: Result) {
        engine::with_engine(|engine| engine.end_io(fs, block, result));
    }

    fn umount(fs: &FsInfo) {
        engine::with_engine(|engine| engine.umount(fs));
    }

    fn show_counters(out: &mut SeqFile) {
        // An error means the seq_file's buffer filled; seq_file notices
        // and calls us again with a bigger one.
        let _ = engine::with_engine(|engine| engine.show_counters(out));
    }
}
