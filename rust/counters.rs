// SPDX-License-Identifier: GPL-2.0

//! The module's counters, readable in `/sys/kernel/debug/btrfs_reada/counters`
//! (see `Documentation/ioctl.md`, "Counters").
//!
//! Module-wide counts since the module was loaded, one relaxed atomic each:
//! they are statistics, never used to decide anything. The same counts per
//! user (the ioctl, scrub, mount, ...: [`User`]) show what each user's
//! readahead did. Per-device counts live in the machine of each mounted
//! filesystem and are printed from there.

use crate::shim::{User, WalkCounts};
use core::fmt::Write;
use core::sync::atomic::{AtomicU64, Ordering};

/// A monotonic event count.
pub(crate) struct Counter(AtomicU64);

impl Counter {
    const fn new() -> Self {
        Counter(AtomicU64::new(0))
    }

    pub(crate) fn inc(&self) {
        self.add(1);
    }

    pub(crate) fn add(&self, n: u64) {
        self.0.fetch_add(n, Ordering::Relaxed);
    }

    /// Raises the count to `v` if it is below: for a peak.
    fn raise_to(&self, v: u64) {
        self.0.fetch_max(v, Ordering::Relaxed);
    }

    fn get(&self) -> u64 {
        self.0.load(Ordering::Relaxed)
    }
}

/// Requests started (ioctl and in-kernel callers such as scrub).
static REQUESTS_STARTED: Counter = Counter::new();
/// Requests whose every block has ended.
static REQUESTS_DONE: Counter = Counter::new();
/// Blocks entered into a device queue (a block wanted by several requests
/// at once is queued once).
static BLOCKS_QUEUED: Counter = Counter::new();
/// Blocks read from disk by the module.
pub(crate) static BLOCKS_READ: Counter = Counter::new();
/// Queued blocks found already in memory when their turn came: no I/O.
pub(crate) static BLOCKS_CACHED: Counter = Counter::new();
/// Blocks whose read failed or did not verify, or that could not be mapped
/// to a usable copy: their subtrees were cut.
pub(crate) static BLOCKS_FAILED: Counter = Counter::new();
/// Links to blocks whose generation was not the one the parent expected
/// (the tree changed under the request): their subtrees were cut.
pub(crate) static BLOCKS_STALE: Counter = Counter::new();
/// Queued blocks dropped because their filesystem was being unmounted.
pub(crate) static BLOCKS_CANCELLED: Counter = Counter::new();
/// Failed reads retried from another copy (another mirror's device).
pub(crate) static BLOCKS_RETRIED: Counter = Counter::new();
/// Nodes whose children were looked at for a request, by the machine's
/// pass, and by any other context (btrfs's end io worker, say): the
/// latter must stay 0.
pub(crate) static NODES_EXPANDED: Counter = Counter::new();
pub(crate) static NODES_EXPANDED_OUTSIDE_PASS: Counter = Counter::new();
/// Nodes parked because their filesystem's machine held
/// `max_queued_blocks` blocks (each counted every time it parks).
pub(crate) static NODES_PARKED: Counter = Counter::new();
/// The most blocks held at once (see [`block_queued`]).
static BLOCKS_LIVE_PEAK: Counter = Counter::new();
/// The most requests active at once (see [`request_started`]).
static REQUESTS_ACTIVE_PEAK: Counter = Counter::new();
/// Blocks freed; `blocks_queued` minus this is the blocks the module holds.
pub(crate) static BLOCKS_FREED: Counter = Counter::new();
/// Requests allocated and freed: the difference is the requests the module
/// holds (a finished request lives until its waiter has read its counts).
pub(crate) static REQUESTS_CREATED: Counter = Counter::new();
pub(crate) static REQUESTS_FREED: Counter = Counter::new();

/// What one user's requests did: requests counted when they start, blocks
/// when their request ends, as the request itself counted them (a block two
/// requests wanted counts in both).
struct UserCounts {
    requests: Counter,
    read: Counter,
    cached: Counter,
    errors: Counter,
    stale: Counter,
}

impl UserCounts {
    const fn new() -> Self {
        UserCounts {
            requests: Counter::new(),
            read: Counter::new(),
            cached: Counter::new(),
            errors: Counter::new(),
            stale: Counter::new(),
        }
    }
}

/// Indexed by [`User::index`].
static USERS: [UserCounts; User::ALL.len()] = [const { UserCounts::new() }; User::ALL.len()];

/// Counts a request started for `user`.
pub(crate) fn request_started(user: User) {
    REQUESTS_STARTED.inc();
    // Done is read after started: a race can only make the peak low by
    // the requests ended in between, never report more than were active.
    let active = REQUESTS_STARTED.get().saturating_sub(REQUESTS_DONE.get());
    REQUESTS_ACTIVE_PEAK.raise_to(active);
    if let Some(u) = USERS.get(user.index()) {
        u.requests.inc();
    }
}

/// Counts a request of `user` ended, having done `counts`.
pub(crate) fn request_done(user: User, counts: &WalkCounts) {
    REQUESTS_DONE.inc();
    if let Some(u) = USERS.get(user.index()) {
        u.read.add(counts.read);
        u.cached.add(counts.cached);
        u.errors.add(counts.errors);
        u.stale.add(counts.stale);
    }
}

/// Counts a block entered into the machine, and the peak of blocks held.
pub(crate) fn block_queued() {
    BLOCKS_QUEUED.inc();
    // Freed is read after queued: a race can only make the peak low by
    // the blocks freed in between, never report more than were held.
    let live = BLOCKS_QUEUED.get().saturating_sub(BLOCKS_FREED.get());
    BLOCKS_LIVE_PEAK.raise_to(live);
}

/// Writes the module-wide counters, one `name value` per line.
pub(crate) fn show(out: &mut impl Write) -> core::fmt::Result {
    let started = REQUESTS_STARTED.get();
    let done = REQUESTS_DONE.get();
    // `done` is read after `started`, so it may count a request started
    // after that read: never report a negative number.
    writeln!(out, "requests_active {}", started.saturating_sub(done))?;
    writeln!(out, "requests_active_peak {}", REQUESTS_ACTIVE_PEAK.get())?;
    writeln!(out, "requests_done {done}")?;
    writeln!(out, "blocks_queued {}", BLOCKS_QUEUED.get())?;
    writeln!(out, "blocks_read {}", BLOCKS_READ.get())?;
    writeln!(out, "blocks_cached {}", BLOCKS_CACHED.get())?;
    writeln!(out, "blocks_failed {}", BLOCKS_FAILED.get())?;
    writeln!(out, "blocks_stale {}", BLOCKS_STALE.get())?;
    writeln!(out, "blocks_cancelled {}", BLOCKS_CANCELLED.get())?;
    writeln!(out, "blocks_retried {}", BLOCKS_RETRIED.get())?;
    writeln!(out, "nodes_expanded {}", NODES_EXPANDED.get())?;
    writeln!(out, "nodes_parked {}", NODES_PARKED.get())?;
    writeln!(
        out,
        "nodes_expanded_outside_pass {}",
        NODES_EXPANDED_OUTSIDE_PASS.get()
    )?;
    // Freed is read first: a free counted after the read of its allocation
    // would make the difference negative.
    let freed = REQUESTS_FREED.get();
    writeln!(
        out,
        "requests_live {}",
        REQUESTS_CREATED.get().saturating_sub(freed)
    )?;
    let freed = BLOCKS_FREED.get();
    writeln!(
        out,
        "blocks_live {}",
        BLOCKS_QUEUED.get().saturating_sub(freed)
    )?;
    writeln!(out, "blocks_live_peak {}", BLOCKS_LIVE_PEAK.get())?;
    for (user, u) in User::ALL.iter().zip(USERS.iter()) {
        let name = user.name();
        writeln!(out, "user_{name}_requests {}", u.requests.get())?;
        writeln!(out, "user_{name}_blocks_read {}", u.read.get())?;
        writeln!(out, "user_{name}_blocks_cached {}", u.cached.get())?;
        writeln!(out, "user_{name}_errors {}", u.errors.get())?;
        writeln!(out, "user_{name}_stale {}", u.stale.get())?;
    }
    Ok(())
}
