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
//! - `request.rs`: requests (`reada_control`): a key range of a tree, its
//!   count of outstanding blocks, its waiters;
//! - `block.rs`: blocks (`reada_extent`) and the per-request links on them;
//! - `zone.rs`: zones (`reada_zone`) and the zone picker;
//! - `machine.rs`: per-filesystem state, the per-device schedule, read
//!   completions, unmount; the lock order is written down there;
//! - `order.rs`: the pure orderings (keys, key spans, zone choice), also
//!   unit-tested on the host;
//! - `ioctl.rs`: `BTRFS_IOC_READA`;
//! - `counters.rs`: the counters shown in debugfs;
//! - `shim.rs`: the safe wrapper of the btrfs interface.

mod block;
mod counters;
mod ioctl;
mod machine;
mod order;
mod request;
mod shim;
mod zone;

use block::Arrival;
use core::ptr::null_mut;
use core::sync::atomic::{AtomicPtr, AtomicU64, Ordering};
use kernel::ioprio::{Class, IoPriority};
use kernel::prelude::*;
use kernel::rbtree::{RBTree, RBTreeNodeReservation};
use kernel::sync::{Arc, Mutex};
use kernel::uaccess::UserPtr;
use kernel::workqueue::{OwnedQueue, Queue};
use kernel::{c_str, new_mutex};
use machine::FsState;
use request::Request;
use shim::{FsInfo, SeqFile, TreeBlock, TreeRange, WalkCounts};

module! {
    type: BtrfsReada,
    name: "btrfs_reada",
    author: "The btrfs readahead developers",
    description: "Btrfs tree readahead in on-disk order across all devices",
    license: "GPL",
}

kernel::module_param_uint! {
    /// Tree block reads in flight per device at most (clamped to 1..=64).
    max_in_flight: default 6, perm 0o644, desc "Tree block reads in flight per device (1-64, default 6)"
}

kernel::module_param_uint! {
    /// Seconds a waiter waits with none of its request's blocks ending
    /// before the module reports the request as stalled (0: never).
    stall_warn_secs: default 120, perm 0o644, desc "Report a readahead waited on with no progress for this many seconds (0: never, default 120)"
}

kernel::module_param_uint! {
    /// The I/O priority class of a detached request's reads: 1 real time,
    /// 2 best effort, 3 idle (the default); 0 gives them the priority of
    /// the task that detached, as a waited request's reads have.
    detached_ioprio_class: default 3, perm 0o644, desc "I/O priority class of detached readahead (0: the caller's, 1 rt, 2 be, 3 idle; default 3)"
}

kernel::module_param_uint! {
    /// The level within `detached_ioprio_class` (0 most urgent to 7).
    detached_ioprio_level: default 7, perm 0o644, desc "I/O priority level of detached readahead (0-7, default 7; not used by the idle class)"
}

/// The I/O priority of a detached request's reads: the module parameters,
/// or the current task's for class 0 or a class that does not exist.
fn detached_ioprio() -> IoPriority {
    let class = match detached_ioprio_class.get() {
        1 => Class::RealTime,
        2 => Class::BestEffort,
        3 => Class::Idle,
        _ => return IoPriority::current(),
    };
    let level = u8::try_from(detached_ioprio_level.get()).unwrap_or(u8::MAX);
    IoPriority::new(class, level)
}

/// The module's version, set by the build from `git describe`.
const VERSION: &str = match option_env!("BTRFS_READA_VERSION") {
    Some(v) => v,
    None => "unknown",
};

/// The module's engine: its workqueue and the state of every filesystem it
/// has worked on.
///
/// # Invariants
///
/// `queue` is the first field, so that dropping the engine first waits for
/// every pass on it while the rest of the engine is intact.
#[pin_data]
pub(crate) struct Engine {
    queue: OwnedQueue,
    #[pin]
    /// By fs_info address (see `FsInfo::id`).
    filesystems: Mutex<RBTree<usize, Arc<FsState>>>,
    next_request: AtomicU64,
    module: &'static ThisModule,
}

/// The engine while the module is loaded. It is set before btrfs's hooks
/// are registered and cleared after they are unregistered; the passes on
/// the engine's queue, its only other users, finish before the engine is
/// freed (see [`Engine`]).
static ENGINE: AtomicPtr<Engine> = AtomicPtr::new(null_mut());

/// Runs `f` on the engine, if the module is not being unloaded.
pub(crate) fn with_engine<R>(f: impl FnOnce(&Engine) -> R) -> Option<R> {
    let engine = ENGINE.load(Ordering::Acquire);
    if engine.is_null() {
        return None;
    }
    // SAFETY: a non-null `ENGINE` points to the engine owned by the loaded
    // module, which outlives every caller: hook calls (unregistered, and
    // waited for, before the engine is dropped) and passes (waited for by
    // the engine's drop before anything else of it goes).
    Some(f(unsafe { &*engine }))
}

impl Engine {
    fn new(module: &'static ThisModule) -> Result<Pin<KBox<Self>>> {
        KBox::pin_init(
            try_pin_init!(Engine {
                queue: OwnedQueue::new(c_str!("btrfs_reada"), 0, 0)?,
                filesystems <- new_mutex!(RBTree::new(), "Engine::filesystems"),
                next_request: AtomicU64::new(1),
                module,
            }),
            GFP_KERNEL,
        )
    }

    pub(crate) fn queue(&self) -> &Queue {
        &self.queue
    }

    /// The state of `fs`, created on first use.
    fn state(&self, fs: &FsInfo) -> Result<Arc<FsState>> {
        if let Some(state) = self.find_state(fs) {
            return Ok(state);
        }
        let state = FsState::new(fs)?;
        let node = RBTreeNodeReservation::new(GFP_KERNEL)?;
        let mut filesystems = self.filesystems.lock();
        if let Some(other) = filesystems.get(&fs.id()) {
            // Created meanwhile by another caller.
            return Ok(other.clone());
        }
        filesystems.insert(node.into_node(fs.id(), state.clone()));
        Ok(state)
    }

    /// The state of `fs`, if the module has one.
    fn find_state(&self, fs: &FsInfo) -> Option<Arc<FsState>> {
        self.filesystems.lock().get(&fs.id()).cloned()
    }

    /// Starts reading ahead `range` on `fs`, with reads at `ioprio`.
    fn start(&self, fs: &FsInfo, range: TreeRange, ioprio: IoPriority) -> Result<Arc<Request>> {
        let root = fs.tree_root(range.tree_id, range.commit_root)?;
        let module = self.module.try_get().ok_or(ENODEV)?;
        let id = self.next_request.fetch_add(1, Ordering::Relaxed);
        let request = Request::new(id, range, root.epoch, ioprio, module)?;
        let state = self.state(fs)?;
        counters::REQUESTS_STARTED.inc();
        machine::start_root(&state, &request, root);
        state.kick(&self.queue);
        Ok(request)
    }

    fn end_io(&self, fs: &FsInfo, block: TreeBlock, result: Result) {
        let Some(state) = self.find_state(fs) else {
            return;
        };
        // Constant work in btrfs's end io worker: record the arrival; the
        // machine's next pass processes it.
        let logical = block.bytenr();
        let arrival = match result {
            Ok(()) => Arrival::Block(block),
            Err(_) => {
                drop(block);
                Arrival::Failed
            }
        };
        state.arrive(logical, arrival);
        state.kick(&self.queue);
    }

    /// `fs` goes away: drain its state, then forget it. The state stays
    /// findable while it drains, for the completions of its reads in flight.
    /// Writes the counters of the module and of every filesystem it works
    /// on. Lock order: the filesystem index, then each machine.
    fn show_counters(&self, out: &mut SeqFile) -> core::fmt::Result {
        counters::show(out)?;
        let filesystems = self.filesystems.lock();
        for (_, state) in filesystems.iter() {
            state.show_counters(out)?;
        }
        Ok(())
    }

    fn umount(&self, fs: &FsInfo) {
        if let Some(state) = self.find_state(fs) {
            state.shutdown();
            self.filesystems.lock().remove(&fs.id());
        }
    }
}

/// Starts reading ahead `range` on `fs`, with reads at `ioprio`.
fn start(fs: &FsInfo, range: TreeRange, ioprio: IoPriority) -> Result<Arc<Request>> {
    if range.start >= range.end {
        return Err(EINVAL);
    }
    with_engine(|engine| engine.start(fs, range, ioprio)).ok_or(ENODEV)?
}

/// Reads ahead the range of `request` on `fs`: waits for it, reading at the
/// caller's I/O priority, or with `detach` returns at once with nothing
/// counted yet, leaving the reads at [`detached_ioprio`].
fn readahead(fs: &FsInfo, request: &ioctl::Request) -> Result<WalkCounts> {
    let ioctl::Mode::Readahead { detach } = request.mode else {
        return Err(EINVAL);
    };
    let ioprio = if detach {
        detached_ioprio()
    } else {
        IoPriority::current()
    };
    let running = start(fs, request.range, ioprio)?;
    if detach {
        return Ok(WalkCounts::default());
    }
    running.wait()
}

/// The loaded module. Dropping it (at `rmmod`, which is refused while any
/// request lives) unregisters the hooks, then frees the engine.
struct BtrfsReada {
    hooks: Option<shim::HookRegistration>,
    _engine: Pin<KBox<Engine>>,
}

impl kernel::Module for BtrfsReada {
    fn init(module: &'static ThisModule) -> Result<Self> {
        let engine = Engine::new(module)?;
        // The engine is pinned in its box: the pointer stays valid until
        // the box is dropped, after `ENGINE` is cleared.
        ENGINE.store(
            core::ptr::from_ref::<Engine>(&engine).cast_mut(),
            Ordering::Release,
        );
        let hooks = match shim::HookRegistration::new::<Hooks>(module) {
            Ok(hooks) => hooks,
            Err(e) => {
                ENGINE.store(null_mut(), Ordering::Release);
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
        // engine's own passes may still look at `ENGINE`.
        drop(self.hooks.take());
        ENGINE.store(null_mut(), Ordering::Release);
        pr_info!("btrfs tree readahead unloaded\n");
    }
}

/// The module's answers to btrfs's hooks.
struct Hooks;

impl shim::ReadaHooks for Hooks {
    type Request = Request;

    /// Reads start at the caller's I/O priority, which it keeps if it
    /// waits; a detached request's go on at [`detached_ioprio`].
    fn add(fs: &FsInfo, range: TreeRange) -> Result<Arc<Request>> {
        start(fs, range, IoPriority::current())
    }

    fn wait(request: Arc<Request>) -> Result<WalkCounts> {
        request.wait()
    }

    fn detach(request: Arc<Request>) {
        request.set_ioprio(detached_ioprio());
    }

    fn ioctl(fs: &FsInfo, arg: UserPtr) -> Result<i64> {
        ioctl::handle(fs, arg)
    }

    fn end_io(fs: &FsInfo, block: TreeBlock, result: Result) {
        with_engine(|engine| engine.end_io(fs, block, result));
    }

    fn umount(fs: &FsInfo) {
        with_engine(|engine| engine.umount(fs));
    }

    fn show_counters(out: &mut SeqFile) {
        // An error means the seq_file's buffer filled; seq_file notices
        // and calls us again with a bigger one.
        let _ = with_engine(|engine| engine.show_counters(out));
    }
}
