// SPDX-License-Identifier: GPL-2.0

//! The engine: the module's workqueue and the readahead state of every
//! filesystem it has worked on, and the entry points btrfs's hooks call
//! (start a request, a read that ended, unmount, the counters).

use crate::block::Arrival;
use crate::counters;
use crate::machine::{self, FsState};
use crate::request::Request;
use crate::shim::{FsInfo, SeqFile, TreeBlock, TreeRange, User, WalkCounts};
use core::ptr::null_mut;
use core::sync::atomic::{AtomicPtr, AtomicU64, Ordering};
use kernel::fs::memalloc_nofs;
use kernel::ioprio::{Class, IoPriority};
use kernel::prelude::*;
use kernel::rbtree::{RBTree, RBTreeNodeReservation};
use kernel::sync::{Arc, Mutex};
use kernel::workqueue::{Flags, OwnedQueue, Queue};
use kernel::{c_str, new_mutex};

/// The I/O priority of a detached request's reads: the module parameters,
/// or the current task's for class 0 or a class that does not exist.
pub(crate) fn detached_ioprio() -> IoPriority {
    let class = match crate::module_parameters::detached_ioprio_class.value() {
        1 => Class::RealTime,
        2 => Class::BestEffort,
        3 => Class::Idle,
        _ => return IoPriority::current(),
    };
    let level =
        u8::try_from(crate::module_parameters::detached_ioprio_level.value()).unwrap_or(u8::MAX);
    IoPriority::new(class, level)
}

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

/// The engine while the module is loaded. The module owns the engine
/// (`BtrfsReada` in the crate root); this pointer is how btrfs's hooks,
/// which carry no context of ours, reach it. It is set before the hooks are
/// registered and cleared after they are unregistered; the passes on the
/// engine's queue, its only other users, finish before the engine is freed
/// (see [`Engine`]).
static ENGINE: AtomicPtr<Engine> = AtomicPtr::new(null_mut());

/// Makes `engine` the one btrfs's hooks reach, until [`unpublish`]. The
/// engine is pinned in its box: the pointer stays valid until the box is
/// dropped, which the module does after unpublishing.
pub(crate) fn publish(engine: &Pin<KBox<Engine>>) {
    ENGINE.store(
        core::ptr::from_ref::<Engine>(engine).cast_mut(),
        Ordering::Release,
    );
}

/// Hides the engine from the hooks (called once they are unregistered).
pub(crate) fn unpublish() {
    ENGINE.store(null_mut(), Ordering::Release);
}

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
    pub(crate) fn new(module: &'static ThisModule) -> Result<Pin<KBox<Self>>> {
        KBox::pin_init(
            try_pin_init!(Engine {
                queue: OwnedQueue::new(c_str!("btrfs_reada"), Flags::percpu(), 0)?,
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

    /// Starts reading ahead `range` on `fs` for `user`, with reads at `ioprio`.
    fn start(
        &self,
        fs: &FsInfo,
        range: TreeRange,
        ioprio: IoPriority,
        user: User,
    ) -> Result<Arc<Request>> {
        let root = fs.tree_root(range.tree_id, range.commit_root)?;
        let module = self.module.try_get().ok_or(ENODEV)?;
        let id = self.next_request.fetch_add(1, Ordering::Relaxed);
        let request = Request::new(id, range, root.epoch, ioprio, user, module)?;
        let state = self.state(fs)?;
        counters::request_started(user);
        machine::start_root(&state, &request, root);
        state.kick(&self.queue);
        Ok(request)
    }

    pub(crate) fn end_io(&self, fs: &FsInfo, block: TreeBlock, result: Result) {
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

    /// Writes the counters of the module and of every filesystem it works
    /// on. Lock order: the filesystem index, then each machine.
    pub(crate) fn show_counters(&self, out: &mut SeqFile) -> core::fmt::Result {
        counters::show(out)?;
        let filesystems = self.filesystems.lock();
        for (_, state) in filesystems.iter() {
            state.show_counters(out)?;
        }
        Ok(())
    }

    /// `fs` goes away: drain its state, then forget it. The state stays
    /// findable while it drains, for the completions of its reads in flight.
    pub(crate) fn umount(&self, fs: &FsInfo) {
        if let Some(state) = self.find_state(fs) {
            // btrfs is tearing the filesystem down: no reclaim into it.
            memalloc_nofs(|| state.shutdown());
            self.filesystems.lock().remove(&fs.id());
        }
    }
}

/// Starts reading ahead `range` on `fs` for `user`, with reads at `ioprio`.
/// Runs in a NOFS allocation scope: kernel callers may hold btrfs locks
/// or a transaction that reclaim could wait for.
pub(crate) fn start(
    fs: &FsInfo,
    range: TreeRange,
    ioprio: IoPriority,
    user: User,
) -> Result<Arc<Request>> {
    if range.start >= range.end {
        return Err(EINVAL);
    }
    memalloc_nofs(|| with_engine(|engine| engine.start(fs, range, ioprio, user))).ok_or(ENODEV)?
}

/// Reads ahead `range` on `fs` for `BTRFS_IOC_READA`: waits for it,
/// reading at the caller's I/O priority, or with `detach` returns at once
/// with nothing counted yet, leaving the reads at [`detached_ioprio`].
pub(crate) fn readahead(fs: &FsInfo, range: TreeRange, detach: bool) -> Result<WalkCounts> {
    let ioprio = if detach {
        detached_ioprio()
    } else {
        IoPriority::current()
    };
    let running = start(fs, range, ioprio, User::Ioctl)?;
    if detach {
        return Ok(WalkCounts::default());
    }
    running.wait()
}
