// SPDX-License-Identifier: GPL-2.0

//! Requests (`reada_control` in the original): one caller's wish to read
//! ahead the key range `[start, end)` of one tree.
//!
//! A request counts its outstanding links: one for each block it waits for.
//! The root's link is counted when the request starts; a node's children are
//! counted before the node's own link is released, so the count reaches zero
//! exactly once, when the last branch of the range has been read, found
//! cached, failed or been cut. Waiters sleep until then; a caller may also
//! detach and let the request finish in the background.

use crate::counters;
use crate::order::tree_is_warm;
use crate::shim::{TreeBlock, TreeRange, User, WalkCounts};
use core::sync::atomic::{AtomicU64, Ordering};
use kernel::ioprio::{Class, IoPriority};
use kernel::prelude::*;
use kernel::sync::{Arc, CondVar, CondVarTimeoutResult, SpinLock};
use kernel::time::msecs_to_jiffies;
use kernel::{new_condvar, new_spinlock, ModuleRef};

/// How one of a request's blocks ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Outcome {
    /// Read from disk for this request (or by a read it joined).
    Read { bytes: u64 },
    /// Already up to date in memory: no I/O.
    Cached,
    /// The read failed or the block did not verify: its branch is cut.
    Failed,
    /// The block's generation is not the one its parent promised (the tree
    /// changed under the request): its branch is dropped.
    Stale,
    /// The block could not be queued for lack of memory.
    NoMemory,
    /// The filesystem is being unmounted.
    Cancelled,
    /// The request already waits for this block through another parent:
    /// nothing to count.
    Duplicate,
}

/// The mutable part of a request.
struct State {
    /// Links not yet processed; the request is finished at zero.
    outstanding: u64,
    /// Links released so far: the watchdog's measure of progress.
    released: u64,
    counts: WalkCounts,
    /// The root block, held until the root's link is released (the first
    /// link released): see [`crate::shim::TreeRoot::block`].
    root: Option<TreeBlock>,
    no_memory: bool,
    cancelled: bool,
}

/// One readahead request.
///
/// # Invariants
///
/// Once `state.outstanding` reaches zero it never changes again, and
/// `finished` has been notified.
#[pin_data(PinnedDrop)]
pub(crate) struct Request {
    /// Unique among the module's requests; keys the request's links.
    pub(crate) id: u64,
    pub(crate) range: TreeRange,
    /// The epoch of the root the request reads from: see
    /// [`crate::shim::TreeRoot::epoch`].
    pub(crate) epoch: u64,
    /// The I/O priority of the request's reads.
    pub(crate) ioprio: IoPriority,
    /// Who started the request, for the per-user counters.
    user: User,
    /// The blocks the fast path looked up in memory for the request and
    /// found, and those it did not: whether the request's tree is warm.
    lookups_found: AtomicU64,
    lookups_missed: AtomicU64,
    #[pin]
    state: SpinLock<State>,
    #[pin]
    finished: CondVar,
    /// Keeps the module loaded while the request lives: `rmmod` is refused.
    _module: ModuleRef,
}

impl Request {
    /// A request with one outstanding link: its root block's.
    pub(crate) fn new(
        id: u64,
        range: TreeRange,
        epoch: u64,
        ioprio: IoPriority,
        user: User,
        module: ModuleRef,
    ) -> Result<Arc<Self>> {
        let request = Arc::pin_init(
            pin_init!(Request {
                id,
                range,
                epoch,
                ioprio,
                user,
                lookups_found: AtomicU64::new(0),
                lookups_missed: AtomicU64::new(0),
                state <- new_spinlock!(
                    State {
                        outstanding: 1,
                        released: 0,
                        counts: WalkCounts::default(),
                        root: None,
                        no_memory: false,
                        cancelled: false,
                    },
                    "Request::state"
                ),
                finished <- new_condvar!("Request::finished"),
                _module: module,
            }),
            GFP_KERNEL,
        )?;
        counters::REQUESTS_CREATED.inc();
        Ok(request)
    }

    /// Holds the request's root block until its link is released: call it
    /// before queueing the root.
    pub(crate) fn hold_root(&self, block: TreeBlock) {
        let old = self.state.lock().root.replace(block);
        drop(old);
    }

    /// Whether the request's tree is warm, were `found` more of its blocks
    /// found in memory and `missed` more not: see [`tree_is_warm`].
    pub(crate) fn tree_is_warm(&self, found: u64, missed: u64) -> bool {
        tree_is_warm(
            self.lookups_found.load(Ordering::Relaxed) + found,
            self.lookups_missed.load(Ordering::Relaxed) + missed,
        )
    }

    /// Adds `found` blocks found in memory and `missed` not to the
    /// request's lookups. Only counts: a lost race skews the guess of
    /// [`Request::tree_is_warm`], never a block's fate.
    pub(crate) fn add_lookups(&self, found: u64, missed: u64) {
        self.lookups_found.fetch_add(found, Ordering::Relaxed);
        self.lookups_missed.fetch_add(missed, Ordering::Relaxed);
    }

    /// Counts `n` more outstanding links: call it before queueing children,
    /// while the parent's own link is still outstanding.
    pub(crate) fn add_outstanding(&self, n: u64) {
        self.state.lock().outstanding += n;
    }

    /// Records how one of the request's blocks ended and releases its link.
    pub(crate) fn block_done(&self, outcome: Outcome) {
        self.blocks_done(outcome, 1);
    }

    /// Records that `n` of the request's blocks ended the same way, and
    /// releases their links.
    pub(crate) fn blocks_done(&self, outcome: Outcome, n: u64) {
        if n == 0 {
            return;
        }
        let mut s = self.state.lock();
        // Dropped outside the lock: releasing a block calls into btrfs.
        let root = s.root.take();
        match outcome {
            Outcome::Read { bytes } => {
                s.counts.visited += n;
                s.counts.read += n;
                s.counts.bytes_read += bytes * n;
            }
            Outcome::Cached => {
                s.counts.visited += n;
                s.counts.cached += n;
            }
            Outcome::Failed => s.counts.errors += n,
            Outcome::Stale => s.counts.stale += n,
            Outcome::NoMemory => {
                s.counts.errors += n;
                s.no_memory = true;
            }
            Outcome::Cancelled => {
                s.counts.errors += n;
                s.cancelled = true;
            }
            Outcome::Duplicate => (),
        }
        // The links being released were counted, so this cannot underflow.
        s.outstanding = s.outstanding.saturating_sub(n);
        s.released += n;
        if s.outstanding == 0 {
            counters::request_done(self.user, &s.counts);
            self.finished.notify_all();
        }
        drop(s);
        drop(root);
    }

    /// Sleeps until the request is finished and returns what it did.
    ///
    /// Fails with `EINTR` if a signal arrives first (the request goes on in
    /// the background), `ENOMEM` if a block could not be queued, `ECANCELED`
    /// if the filesystem was unmounted under it.
    ///
    /// The sleep is interruptible, so the hung-task detector does not see a
    /// waiter whose request never ends. The watchdog here does: when
    /// `stall_warn_secs` pass without one of the request's blocks ending, it
    /// says so on the console, once per wait.
    pub(crate) fn wait(&self) -> Result<WalkCounts> {
        let mut s = self.state.lock();
        let mut released = s.released;
        let mut warned = false;
        while s.outstanding != 0 {
            let secs = crate::module_parameters::stall_warn_secs.value();
            if secs == 0 || warned {
                if self.finished.wait_interruptible(&mut s) {
                    return Err(EINTR);
                }
                continue;
            }
            let slice = msecs_to_jiffies(secs.saturating_mul(1000));
            match self.finished.wait_interruptible_timeout(&mut s, slice) {
                CondVarTimeoutResult::Signal { .. } => return Err(EINTR),
                CondVarTimeoutResult::Woken { .. } => (),
                CondVarTimeoutResult::Timeout => {
                    if s.outstanding != 0 && s.released == released {
                        pr_warn!(
                            "readahead stalled: request {} of tree {} waited {} s with no block done, {} outstanding\n",
                            self.id,
                            self.range.tree_id,
                            secs,
                            s.outstanding
                        );
                        warned = true;
                    }
                    released = s.released;
                }
            }
        }
        if s.no_memory {
            return Err(ENOMEM);
        }
        if s.cancelled {
            return Err(crate::shim::ecanceled());
        }
        Ok(s.counts)
    }
}

#[pinned_drop]
impl PinnedDrop for Request {
    fn drop(self: Pin<&mut Self>) {
        counters::REQUESTS_FREED.inc();
    }
}

/// How urgent reads at `ioprio` are, most urgent first: the class (real
/// time, then best effort or none, then idle), then the level in it.
pub(crate) fn urgency(ioprio: IoPriority) -> (u8, u8) {
    let class = match ioprio.class() {
        Some(Class::RealTime) => 0,
        Some(Class::Idle) => 2,
        _ => 1,
    };
    (class, ioprio.level())
}
