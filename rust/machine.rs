// SPDX-License-Identifier: GPL-2.0

//! The machine: per-filesystem state, the per-device schedule, completions.
//!
//! Each filesystem the module has worked on has an [`FsState`]: a global
//! index of its queued and in-flight blocks by logical address, and per
//! device a queue of blocks by logical address, its zones and its zone
//! picker. A *pass* of the machine (a work item on the module's own
//! workqueue) gives every device with fewer than `max_in_flight` reads in
//! flight the next queued block at or after its read pointer in its current
//! zone, moving to the best zone when the current one runs dry, and starts
//! the reads. A block is taken once, by whichever device reaches it first,
//! and read from that device's copy.
//!
//! When a read ends, btrfs's end io hook only records the arrival and kicks
//! the machine: the hook runs in btrfs's end io worker and must not hold up
//! the completions behind it. The next pass processes arrivals first (and
//! blocks found up to date at once): the block leaves the index and each
//! request linked to it gets its outcome; for a node that is still what the
//! request's parent pointed to (checked under the node's tree lock), each
//! child whose key span meets the request's range is queued for that
//! request.
//!
//! A pass does a bounded amount of work and requeues itself, so a tree that
//! is wholly in memory spreads over the workqueue instead of pinning a CPU.
//!
//! # Locks
//!
//! In this order, and nothing else is taken while one is held:
//! 1. `Engine::filesystems` (a mutex; see `btrfs_reada.rs`);
//! 2. [`FsState::machine`] (a spinlock): every block, device and zone of one
//!    filesystem;
//! 3. a request's state (a spinlock; see `request.rs`).
//!
//! Nothing is allocated under the spinlocks: every node a change needs is
//! reserved before the lock is taken, so a change under the lock cannot
//! fail. Functions that expect the machine lock take `&mut Machine`, which
//! only the lock's guard gives out.

use crate::block::{Arrival, Arrived, ArrivedNode, Block, BlockState, Copy, Link};
use crate::counters;
use crate::order::{span_meets_range, Key};
use crate::request::{urgency, Outcome, Request};
use crate::shim::{estale, BlockRead, FsHandle, FsInfo, Fsid, ReadStart, TreeBlock, TreeRoot};
use crate::zone::{Zone, ZonePicker};
use kernel::alloc::KVVec;
use kernel::ioprio::IoPriority;
use kernel::prelude::*;
use kernel::rbtree::{Entry, RBTree, RBTreeNodeReservation};
use kernel::sync::{Arc, CondVar, SpinLock};
use kernel::workqueue::{impl_has_work, new_work, Queue, Work, WorkItem};
use kernel::{new_condvar, new_spinlock};

/// Reads in flight per device at most: the `max_in_flight` module
/// parameter (default 6, as in the original), kept within 1..=64.
fn max_in_flight() -> u32 {
    crate::max_in_flight.get().clamp(1, 64)
}

/// Per-tree read counts: one slot for each tree id below this, and the
/// last for every subvolume (and any tree id above).
const TREE_SLOTS: usize = 13;

/// The slot of tree `owner` in [`Machine::tree_reads`].
fn tree_slot(owner: u64) -> usize {
    usize::try_from(owner).map_or(TREE_SLOTS - 1, |o| o.min(TREE_SLOTS - 1))
}

/// Blocks a pass starts before it requeues itself.
const PASS_BUDGET: usize = 256;

/// One device of a filesystem, as the machine schedules it.
struct Device {
    /// Reads started on this device and not yet processed.
    in_flight: u32,
    /// The most reads this device ever had in flight at once.
    peak_in_flight: u32,
    /// Queued blocks this device holds a copy of, by logical address.
    queue: RBTree<u64, ()>,
    /// This device's zones, by zone end.
    zones: RBTree<u64, Zone>,
    picker: ZonePicker,
    /// The zone being read (its end), and the read pointer in it.
    current: Option<u64>,
    cursor: u64,
    /// Reads issued to this device (blocks found in memory are not
    /// counted), and their bytes.
    reads: u64,
    bytes: u64,
    /// Reads on this device that failed or did not verify.
    errors: u64,
}

impl Device {
    fn new() -> Self {
        Device {
            in_flight: 0,
            peak_in_flight: 0,
            queue: RBTree::new(),
            zones: RBTree::new(),
            picker: ZonePicker::new(),
            current: None,
            cursor: 0,
            reads: 0,
            bytes: 0,
            errors: 0,
        }
    }
}

/// Everything of one filesystem the machine lock protects.
pub(crate) struct Machine {
    /// Set by unmount: nothing new is queued or started.
    closing: bool,
    /// Queued and in-flight blocks, by logical address.
    blocks: RBTree<u64, Block>,
    /// By devid. Devices and zones are only ever added while the state
    /// lives, so what was seen to exist still exists after relocking.
    devices: RBTree<u64, Device>,
    /// Blocks whose read ended, for the next pass to process.
    arrived: Arrived,
    /// Reads started and not yet processed, on all devices.
    in_flight: u32,
    /// Passes running now.
    passes: u32,
    /// The device the next round of starts begins with.
    round_robin: u64,
    /// Reads issued, by the tree the block belongs to (see [`tree_slot`]).
    tree_reads: [u64; TREE_SLOTS],
}

/// The readahead state of one filesystem.
#[pin_data]
pub(crate) struct FsState {
    fs: FsHandle,
    /// For naming the filesystem in the counters.
    fsid: Fsid,
    nodesize: u64,
    #[pin]
    machine: SpinLock<Machine>,
    /// Notified when `in_flight` or `passes` drop to zero, for unmount.
    #[pin]
    idle: CondVar,
    #[pin]
    work: Work<FsState>,
}

impl_has_work! {
    impl HasWork<Self> for FsState { self.work }
}

/// A block a pass took from a device's queue, to read outside the lock.
struct Start {
    devid: u64,
    read: BlockRead,
}

/// Reads a pass starts per round at most. A round's starts live on the
/// stack, so that scheduling reads never allocates (and so never fails).
const STARTS_PER_ROUND: usize = 16;

/// One round's starts: a block is marked in flight only by filling a free
/// slot here ([`Machine::start_block`]), so no started block can be lost.
struct Starts {
    items: [Option<Start>; STARTS_PER_ROUND],
}

impl Starts {
    fn new() -> Self {
        Starts {
            items: [const { None }; STARTS_PER_ROUND],
        }
    }

    /// The first free slot, if any.
    fn free_slot(&mut self) -> Option<&mut Option<Start>> {
        self.items.iter_mut().find(|s| s.is_none())
    }

    fn count(&self) -> usize {
        self.items.iter().filter(|s| s.is_some()).count()
    }
}

/// What queueing a block needs allocated before the machine lock is taken.
struct Reservations {
    block: RBTreeNodeReservation<u64, Block>,
    /// The block's entry in the arrived index, for when its read ends.
    arrived: ArrivedNode,
    /// One queue node per copy.
    queue: KVec<RBTreeNodeReservation<u64, ()>>,
    /// Devices and zones that did not exist when looked at.
    devices: KVec<(u64, RBTreeNodeReservation<u64, Device>)>,
    zones: KVec<(u64, RBTreeNodeReservation<u64, Zone>, Zone)>,
}

/// A block to queue for a request.
pub(crate) struct Want {
    pub(crate) logical: u64,
    pub(crate) level: u8,
    pub(crate) owner: u64,
    pub(crate) generation: u64,
    /// The block's key span, `[lower, upper)`: see [`Link::lower`].
    pub(crate) lower: Key,
    pub(crate) upper: Key,
}

impl FsState {
    /// The state of `fs`. The caller must drop every use of it before the
    /// `umount` hook for `fs` returns, which [`FsState::shutdown`] ensures.
    pub(crate) fn new(fs: &FsInfo) -> Result<Arc<Self>> {
        // SAFETY: the machine stops using the handle in `shutdown`, which
        // the `umount` hook calls before returning.
        let handle = unsafe { FsHandle::new(fs) };
        let nodesize = u64::from(fs.nodesize());
        let fsid = fs.fsid();
        Arc::pin_init(
            pin_init!(FsState {
                fs: handle,
                fsid,
                nodesize,
                machine <- new_spinlock!(
                    Machine {
                        closing: false,
                        blocks: RBTree::new(),
                        devices: RBTree::new(),
                        arrived: RBTree::new(),
                        in_flight: 0,
                        passes: 0,
                        round_robin: 0,
                        tree_reads: [0; TREE_SLOTS],
                    },
                    "FsState::machine"
                ),
                idle <- new_condvar!("FsState::idle"),
                work <- new_work!("FsState::work"),
            }),
            GFP_KERNEL,
        )
    }

    /// Queues `want` for `request`, whose link for it must already be
    /// counted as outstanding. On failure the link is released with the
    /// matching outcome, so the request never waits for a block that will
    /// not come.
    pub(crate) fn queue_block(&self, request: &Arc<Request>, want: Want) {
        if let Err(outcome) = self.try_queue_block(request, &want) {
            if outcome == Outcome::Failed {
                counters::BLOCKS_FAILED.inc();
            }
            request.block_done(outcome);
        }
    }

    fn try_queue_block(&self, request: &Arc<Request>, want: &Want) -> Result<(), Outcome> {
        let link = Link {
            request: request.clone(),
            generation: want.generation,
            lower: want.lower,
            upper: want.upper,
        };
        let link_node = RBTreeNodeReservation::new(GFP_NOFS).map_err(|_| Outcome::NoMemory)?;

        // Fast path: the block is already queued or in flight for another
        // request; hang this request's link on it.
        let (link_node, link) = {
            let mut m = self.machine.lock();
            if m.closing {
                return Err(Outcome::Cancelled);
            }
            match hang_link(&mut m, want.logical, link_node, link) {
                Hung::Done(result) => return result,
                Hung::NoBlock(node, link) => (node, link),
            }
        };

        // Slow path: map the block to its copies (may sleep), reserve what
        // inserting it needs, then insert unless someone was faster.
        let mut found = KVec::new();
        let chunk = self
            .fs
            .get()
            .map_block(want.logical, &mut found)
            .map_err(|e| {
                if e == ENOMEM {
                    Outcome::NoMemory
                } else {
                    Outcome::Failed
                }
            })?;
        let mut copies = KVec::new();
        for c in found.iter().filter(|c| c.usable) {
            copies
                .push(
                    Copy {
                        devid: c.devid,
                        mirror: c.mirror,
                        failed: false,
                    },
                    GFP_NOFS,
                )
                .map_err(|_| Outcome::NoMemory)?;
        }
        if copies.is_empty() {
            // Every copy is on a missing device or a replace target.
            return Err(Outcome::Failed);
        }
        let res = self
            .reserve(&copies, chunk.start, chunk.end)
            .map_err(|_| Outcome::NoMemory)?;

        let mut m = self.machine.lock();
        if m.closing {
            return Err(Outcome::Cancelled);
        }
        let (link_node, link) = match hang_link(&mut m, want.logical, link_node, link) {
            Hung::Done(result) => return result,
            Hung::NoBlock(node, link) => (node, link),
        };
        let mut links = RBTree::new();
        links.insert(link_node.into_node(request.id, link));
        let block = Block {
            logical: want.logical,
            level: want.level,
            owner: want.owner,
            generation: want.generation,
            chunk_end: chunk.end,
            copies,
            links,
            state: BlockState::Queued,
            arrival: None,
            arrived_node: None,
        };
        m.insert_queued(block, res);
        Ok(())
    }

    /// Reserves what queueing a block with `copies` in chunk
    /// `[start, end)` needs: nodes for the index, the link and each device
    /// queue, and the devices and zones not seen yet.
    fn reserve(&self, copies: &[Copy], start: u64, end: u64) -> Result<Reservations> {
        let mut res = Reservations {
            block: RBTreeNodeReservation::new(GFP_NOFS)?,
            arrived: RBTreeNodeReservation::new(GFP_NOFS)?,
            queue: KVec::with_capacity(copies.len(), GFP_NOFS)?,
            devices: KVec::new(),
            zones: KVec::new(),
        };
        for _ in copies {
            res.queue
                .push(RBTreeNodeReservation::new(GFP_NOFS)?, GFP_NOFS)?;
        }
        // Which devices and zones are missing? They are only ever added, so
        // what exists now still exists when the lock is retaken.
        let mut missing: KVec<(bool, bool)> = KVec::with_capacity(copies.len(), GFP_NOFS)?;
        {
            let m = self.machine.lock();
            for c in copies {
                let gap = match m.devices.get(&c.devid) {
                    None => (true, true),
                    Some(d) => (false, d.zones.get(&end).is_none()),
                };
                // Capacity was reserved above: this does not allocate.
                missing.push(gap, GFP_NOWAIT)?;
            }
        }
        for (c, &(dev, zone)) in copies.iter().zip(missing.iter()) {
            if dev {
                res.devices
                    .push((c.devid, RBTreeNodeReservation::new(GFP_NOFS)?), GFP_NOFS)?;
            }
            if zone {
                let mut peers = KVec::with_capacity(copies.len(), GFP_NOFS)?;
                for p in copies.iter().filter(|p| p.devid != c.devid) {
                    peers.push(p.devid, GFP_NOFS)?;
                }
                res.zones.push(
                    (
                        c.devid,
                        RBTreeNodeReservation::new(GFP_NOFS)?,
                        Zone::new(start, end, peers)?,
                    ),
                    GFP_NOFS,
                )?;
            }
        }
        Ok(res)
    }

    /// Writes this filesystem's per-device counters, `dev.FSID.DEVID.reads`,
    /// `.bytes` and `.errors`, and its gauges `.in_flight` (reads now),
    /// `.peak_in_flight` (the most at once so far) and `.queued` (blocks
    /// waiting for it), then the reads started per tree,
    /// `tree.FSID.TREEID.reads` (`tree.FSID.subvol.reads` for every
    /// subvolume together), for the trees read from; one `name value` per
    /// line. Writing to a seq_file does not sleep, so it is done under the
    /// machine lock.
    pub(crate) fn show_counters(&self, out: &mut impl core::fmt::Write) -> core::fmt::Result {
        let m = self.machine.lock();
        for (devid, dev) in m.devices.iter() {
            writeln!(out, "dev.{}.{devid}.reads {}", self.fsid, dev.reads)?;
            writeln!(out, "dev.{}.{devid}.bytes {}", self.fsid, dev.bytes)?;
            writeln!(out, "dev.{}.{devid}.errors {}", self.fsid, dev.errors)?;
            writeln!(out, "dev.{}.{devid}.in_flight {}", self.fsid, dev.in_flight)?;
            writeln!(
                out,
                "dev.{}.{devid}.peak_in_flight {}",
                self.fsid, dev.peak_in_flight
            )?;
            let queued = dev.queue.iter().count();
            writeln!(out, "dev.{}.{devid}.queued {queued}", self.fsid)?;
        }
        for (slot, &reads) in m.tree_reads.iter().enumerate() {
            if reads == 0 {
                continue;
            }
            if slot == TREE_SLOTS - 1 {
                writeln!(out, "tree.{}.subvol.reads {reads}", self.fsid)?;
            } else {
                writeln!(out, "tree.{}.{slot}.reads {reads}", self.fsid)?;
            }
        }
        Ok(())
    }

    /// Kicks the machine: queues a pass unless one is queued already.
    pub(crate) fn kick(self: &Arc<Self>, queue: &Queue) {
        // An `Err` means a pass is already queued; it will see our work.
        let _ = queue.enqueue(self.clone());
    }

    /// Records that the read of in-flight block `logical` ended, for the
    /// next pass: the end io hook's only work besides kicking the machine.
    /// Takes no allocation (the block brought its node) and does not sleep.
    pub(crate) fn arrive(&self, logical: u64, arrival: Arrival) {
        let mut m = self.machine.lock();
        let Machine {
            blocks, arrived, ..
        } = &mut *m;
        let unclaimed = match blocks.get_mut(&logical) {
            Some(block)
                if matches!(block.state, BlockState::InFlight { .. })
                    && block.arrival.is_none()
                    && arrived.get(&logical).is_none() =>
            {
                match block.arrived_node.take() {
                    Some(node) => {
                        block.arrival = Some(arrival);
                        arrived.insert(node.into_node(logical, ()));
                        None
                    }
                    None => Some(arrival),
                }
            }
            // Not a read of ours in flight (cannot happen: only our reads
            // are flagged, each reported once).
            _ => Some(arrival),
        };
        drop(m);
        // Dropped outside the lock: releasing a block calls into btrfs.
        drop(unclaimed);
    }

    /// One pass: process the arrivals, and start reads for every device
    /// with room. Returns whether it stopped for its budget with more to
    /// do. Arrivals are processed even while unmounting, which waits for
    /// them.
    fn pass(&self) -> bool {
        self.machine.lock().passes += 1;
        let mut done = 0;
        let mut more = false;
        loop {
            let arrival = self.machine.lock().take_arrival();
            if let Some((logical, arrival)) = arrival {
                self.finish(logical, arrival, true);
                done += 1;
            } else {
                let mut starts = Starts::new();
                {
                    let mut m = self.machine.lock();
                    if m.closing {
                        break;
                    }
                    m.take_starts(&mut starts, self.nodesize, max_in_flight());
                }
                let count = starts.count();
                if count == 0 {
                    break;
                }
                done += count;
                self.start_reads(starts);
            }
            if done >= PASS_BUDGET {
                more = true;
                break;
            }
        }
        let mut m = self.machine.lock();
        m.passes -= 1;
        if m.passes == 0 && m.in_flight == 0 {
            self.idle.notify_all();
        }
        more
    }

    /// Starts the reads a round took. A read that cannot start ends its
    /// block here: found in memory, stale (see [`FsInfo::read_block`]) or
    /// failed.
    fn start_reads(&self, starts: Starts) {
        for s in starts.items.into_iter().flatten() {
            match self.fs.get().read_block(&s.read) {
                Ok(ReadStart::Started) => {
                    let mut m = self.machine.lock();
                    m.count_read(s.devid, s.read.owner, self.nodesize);
                }
                Ok(ReadStart::Cached(block)) => {
                    self.finish(s.read.logical, Arrival::Block(block), false)
                }
                Err(e) if e == estale() => self.finish(s.read.logical, Arrival::Stale, false),
                Err(_) => self.finish(s.read.logical, Arrival::Failed, false),
            }
        }
    }

    /// The read of `logical`, started by a pass, ended: with the block,
    /// failed, or not started as stale. `read` tells whether I/O happened
    /// (an arrival from the end io hook) or the block was found up to date.
    fn finish(&self, logical: u64, arrival: Arrival, read: bool) {
        let failed = matches!(arrival, Arrival::Failed);
        // A failed read is retried from another copy, if there is one: the
        // nodes that requeueing takes are reserved before the lock.
        let mut spare = KVec::new();
        if failed {
            reserve_retry_nodes(&mut spare);
        }
        let (block, devid) = {
            let mut m = self.machine.lock();
            if failed {
                if let Some(BlockState::InFlight { devid, mirror }) =
                    m.blocks.get(&logical).map(|b| b.state)
                {
                    if let Some(dev) = m.devices.get_mut(&devid) {
                        dev.errors += 1;
                    }
                    if !m.closing && m.requeue_elsewhere(logical, devid, mirror, &mut spare) {
                        counters::BLOCKS_RETRIED.inc();
                        self.release_slot(&mut m, devid);
                        return;
                    }
                }
            }
            // Take the block out of the index; its device slot stays taken
            // until its links are processed, so that unmount waits for us.
            match m.take_in_flight(logical) {
                Some(taken) => taken,
                None => return,
            }
        };

        let (tree_block, lost) = match arrival {
            Arrival::Block(tb) => (Some(tb), Outcome::Failed),
            Arrival::Failed => (None, Outcome::Failed),
            Arrival::Stale => (None, Outcome::Stale),
        };
        match (&tree_block, read) {
            (None, _) if lost == Outcome::Stale => (),
            (None, _) => counters::BLOCKS_FAILED.inc(),
            (Some(_), true) => counters::BLOCKS_READ.inc(),
            (Some(_), false) => counters::BLOCKS_CACHED.inc(),
        }
        for (_, link) in block.links.iter() {
            let outcome = match &tree_block {
                None => lost,
                Some(tb) => match self.queue_children(tb, &block, link) {
                    Err(outcome) => outcome,
                    Ok(()) if read => Outcome::Read {
                        bytes: self.nodesize,
                    },
                    Ok(()) => Outcome::Cached,
                },
            };
            if outcome == Outcome::Stale {
                counters::BLOCKS_STALE.inc();
            }
            link.request.block_done(outcome);
        }
        drop(tree_block);
        drop(block);

        let mut m = self.machine.lock();
        self.release_slot(&mut m, devid);
    }

    /// Frees the read slot a block took on `devid`, waking unmount if the
    /// machine went idle.
    fn release_slot(&self, m: &mut Machine, devid: u64) {
        if let Some(dev) = m.devices.get_mut(&devid) {
            dev.in_flight = dev.in_flight.saturating_sub(1);
        }
        m.in_flight = m.in_flight.saturating_sub(1);
        if m.in_flight == 0 && m.passes == 0 {
            self.idle.notify_all();
        }
    }

    /// Queues the children of `tb` (the block `block` arrived as) that
    /// `link`'s request wants. Fails with [`Outcome::Stale`] if the block
    /// is no longer what the link's parent pointed to, or
    /// [`Outcome::NoMemory`].
    fn queue_children(&self, tb: &TreeBlock, block: &Block, link: &Link) -> Result<(), Outcome> {
        // Only the machine's own pass expands nodes; the end io hook never
        // does (it runs in btrfs's end io worker). Counted, not assumed.
        if !self.work.is_running_here() {
            counters::NODES_EXPANDED_OUTSIDE_PASS.inc();
        }
        let wants = Self::wanted_children(tb, block, link)?;
        counters::NODES_EXPANDED.inc();
        let request = &link.request;
        // Counted before the parent's own link is released.
        request.add_outstanding(wants.len() as u64);
        for want in wants {
            self.queue_block(request, want);
        }
        Ok(())
    }

    /// The children of `tb` whose key span meets the range of `link`'s
    /// request, read under the node's tree lock: the lock is dropped before
    /// anything is queued, since queueing maps blocks and may wait.
    fn wanted_children(tb: &TreeBlock, block: &Block, link: &Link) -> Result<KVVec<Want>, Outcome> {
        let node = tb
            .lock_node(block.owner, link.generation, block.level)
            .map_err(|_| Outcome::Stale)?;
        let mut wants = KVVec::new();
        if block.level == 0 {
            return Ok(wants);
        }
        let range = link.request.range;
        let nritems = node.nritems();
        let mut next = match node.child(0) {
            Ok(c) => c,
            Err(_) => return Ok(wants),
        };
        for slot in 0..nritems {
            let child = next;
            // A search for a key below the node's first key lands in its
            // first child: that child's span starts at the node's own.
            let lower = if slot == 0 { link.lower } else { child.key };
            let upper = if slot + 1 < nritems {
                match node.child(slot + 1) {
                    Ok(c) => {
                        next = c;
                        c.key
                    }
                    Err(_) => link.upper,
                }
            } else {
                link.upper
            };
            if lower >= range.end {
                break;
            }
            if !span_meets_range(lower, upper, range.start, range.end) {
                continue;
            }
            wants
                .push(
                    Want {
                        logical: child.bytenr,
                        level: block.level - 1,
                        owner: range.tree_id,
                        generation: child.generation,
                        lower,
                        upper,
                    },
                    GFP_NOFS,
                )
                .map_err(|_| Outcome::NoMemory)?;
        }
        Ok(wants)
    }

    /// Unmount: cancel every queued block, wait for the reads in flight and
    /// the running passes; after this the filesystem is never touched again.
    pub(crate) fn shutdown(&self) {
        loop {
            let count = {
                let mut m = self.machine.lock();
                m.closing = true;
                m.blocks.iter().count()
            };
            // Room to take every queued block out at once; if memory is
            // short, one at a time. Retry if blocks came meanwhile.
            let Ok(mut taken) = KVec::with_capacity(count.max(1), GFP_NOFS) else {
                let block = self.machine.lock().take_one_queued();
                match block {
                    Some(b) => Self::cancel(b),
                    None => break,
                }
                continue;
            };
            let all = self.machine.lock().take_queued(&mut taken);
            for b in taken {
                Self::cancel(b);
            }
            if all {
                break;
            }
        }
        let mut m = self.machine.lock();
        while m.in_flight != 0 || m.passes != 0 {
            self.idle.wait(&mut m);
        }
    }

    fn cancel(block: Block) {
        counters::BLOCKS_CANCELLED.inc();
        for (_, link) in block.links.iter() {
            link.request.block_done(Outcome::Cancelled);
        }
    }
}

impl Machine {
    /// Inserts a new queued block into the index, its devices' queues and
    /// zones, creating what `res` reserved. Cannot fail.
    fn insert_queued(&mut self, mut block: Block, res: Reservations) {
        let Machine {
            blocks, devices, ..
        } = self;
        for (devid, node) in res.devices {
            if devices.get(&devid).is_none() {
                devices.insert(node.into_node(devid, Device::new()));
            }
        }
        for (devid, node, zone) in res.zones {
            if let Some(dev) = devices.get_mut(&devid) {
                if dev.zones.get(&zone.end).is_none() {
                    dev.zones.insert(node.into_node(zone.end, zone));
                }
            }
        }
        block.arrived_node = Some(res.arrived);
        let block = match blocks.entry(block.logical) {
            Entry::Vacant(slot) => slot.insert(block, res.block),
            Entry::Occupied(_) => {
                // The caller found no block here under this same lock, so
                // this cannot happen; were it to, release the links rather
                // than lose their counts.
                for (_, link) in block.links.iter() {
                    link.request.block_done(Outcome::Duplicate);
                }
                return;
            }
        };
        for (devid, node) in block.usable_devices().zip(res.queue) {
            let Some(dev) = devices.get_mut(&devid) else {
                continue;
            };
            if dev.queue.get(&block.logical).is_none() {
                dev.queue.insert(node.into_node(block.logical, ()));
            }
            if let Some(zone) = dev.zones.get_mut(&block.chunk_end) {
                zone.queued += 1;
                dev.picker.refile(zone);
            }
        }
        counters::block_queued();
    }

    /// Takes the next block for every device with a free read slot and
    /// marks it in flight in a free slot of `starts`. Nothing here
    /// allocates.
    fn take_starts(&mut self, starts: &mut Starts, nodesize: u64, limit: u32) {
        // Devices in devid order, from where the last round stopped and
        // round again, so that a full batch does not starve later devices.
        let devices = self.devices.iter().count();
        let mut devid = self.next_devid(self.round_robin);
        for _ in 0..devices {
            let Some(d) = devid else {
                return;
            };
            loop {
                let Some(slot) = starts.free_slot() else {
                    // This device may have room left: it goes first next time.
                    self.round_robin = d;
                    return;
                };
                let Some(logical) = self.next_for_device(d, limit) else {
                    break;
                };
                if !self.start_block(logical, d, nodesize, slot) {
                    break;
                }
            }
            devid = self.next_devid(d.saturating_add(1));
        }
        self.round_robin = devid.unwrap_or(0);
    }

    /// Counts a read issued on `devid` for a block of tree `owner`.
    fn count_read(&mut self, devid: u64, owner: u64, nodesize: u64) {
        if let Some(dev) = self.devices.get_mut(&devid) {
            dev.reads += 1;
            dev.bytes += nodesize;
        }
        self.tree_reads[tree_slot(owner)] += 1;
    }

    /// Takes the first arrival for processing: the block's node goes back
    /// to the block, which stays in flight until processed.
    fn take_arrival(&mut self) -> Option<(u64, Arrival)> {
        let cursor = self.arrived.cursor_front()?;
        let logical = *cursor.current().0;
        let (_, node) = cursor.remove_current();
        let block = self.blocks.get_mut(&logical)?;
        block.arrived_node = Some(node.into_reservation());
        block.arrival.take().map(|a| (logical, a))
    }

    /// Takes in-flight block `logical` out of the index, with the device
    /// whose read slot it holds.
    fn take_in_flight(&mut self, logical: u64) -> Option<(Block, u64)> {
        let BlockState::InFlight { devid, .. } = self.blocks.get(&logical)?.state else {
            return None;
        };
        let block = self.blocks.remove_node(&logical)?.to_key_value().1;
        Some((block, devid))
    }

    /// The first device at or after `devid`, wrapping round to the first.
    fn next_devid(&mut self, devid: u64) -> Option<u64> {
        if let Some(c) = self.devices.cursor_lower_bound(&devid) {
            return Some(*c.current().0);
        }
        self.devices.cursor_front().map(|c| *c.current().0)
    }

    /// The next block device `devid` should read, if it has a free slot:
    /// the first queued block at or after its read pointer in its current
    /// zone; when the zone runs dry, the best zone of its picker.
    fn next_for_device(&mut self, devid: u64, limit: u32) -> Option<u64> {
        loop {
            let dev = self.devices.get_mut(&devid)?;
            if dev.in_flight >= limit {
                return None;
            }
            if let Some(zone_end) = dev.current {
                let cursor = dev.cursor;
                let next = dev
                    .queue
                    .cursor_lower_bound(&cursor)
                    .map(|c| *c.current().0)
                    .filter(|&l| l < zone_end);
                if let Some(logical) = next {
                    return Some(logical);
                }
                self.leave_zone(devid);
                continue;
            }
            let zone_end = dev.picker.best()?;
            self.enter_zone(devid, zone_end);
        }
    }

    /// Makes `zone_end` the current zone of `devid` and locks the peers'
    /// copies of the chunk.
    fn enter_zone(&mut self, devid: u64, zone_end: u64) {
        let Some(dev) = self.devices.get_mut(&devid) else {
            return;
        };
        let Some(zone) = dev.zones.get(&zone_end) else {
            return;
        };
        dev.current = Some(zone_end);
        dev.cursor = zone.start;
        self.lock_peers(devid, zone_end, true);
    }

    /// Leaves the current zone of `devid`, unlocking the peers' copies.
    fn leave_zone(&mut self, devid: u64) {
        let Some(zone_end) = self.devices.get_mut(&devid).and_then(|d| d.current.take()) else {
            return;
        };
        self.lock_peers(devid, zone_end, false);
    }

    fn lock_peers(&mut self, devid: u64, zone_end: u64, lock: bool) {
        let mut i = 0;
        loop {
            let peer = match self
                .devices
                .get(&devid)
                .and_then(|d| d.zones.get(&zone_end))
                .and_then(|z| z.peers.get(i))
            {
                Some(p) => *p,
                None => return,
            };
            i += 1;
            let Some(pdev) = self.devices.get_mut(&peer) else {
                continue;
            };
            let Some(zone) = pdev.zones.get_mut(&zone_end) else {
                continue;
            };
            if lock {
                zone.locked_by += 1;
            } else {
                zone.locked_by = zone.locked_by.saturating_sub(1);
            }
            pdev.picker.refile(zone);
        }
    }

    /// Takes queued block `logical` out of every device queue, marks it in
    /// flight on `devid` and fills `slot` with how to read it there. Every
    /// lookup comes before any change: if one fails (the device's queue
    /// holds a block the index does not, which cannot happen), the stray
    /// queue entry is dropped and nothing else changes.
    fn start_block(
        &mut self,
        logical: u64,
        devid: u64,
        nodesize: u64,
        slot: &mut Option<Start>,
    ) -> bool {
        let Machine {
            blocks, devices, ..
        } = self;
        let found = blocks.get_mut(&logical).and_then(|block| {
            let mirror = block.usable_copies().find(|c| c.devid == devid)?.mirror;
            Some((block, mirror))
        });
        let (Some((block, mirror)), true) = (found, devices.get(&devid).is_some()) else {
            if let Some(dev) = devices.get_mut(&devid) {
                drop(dev.queue.remove_node(&logical));
            }
            return false;
        };
        // The newest root any link reached the block from decides whether
        // it may still be read: a newer root's pointer is current there.
        let epoch = block
            .links
            .values()
            .map(|l| l.request.epoch)
            .max()
            .unwrap_or(0);
        // A block several requests want is read at the most urgent of
        // their priorities.
        let ioprio = block
            .links
            .values()
            .map(|l| l.request.ioprio())
            .min_by_key(|p| urgency(*p))
            .unwrap_or(IoPriority::DEFAULT);
        unqueue(devices, block);
        block.state = BlockState::InFlight { devid, mirror };
        *slot = Some(Start {
            devid,
            read: BlockRead {
                logical,
                owner: block.owner,
                generation: block.generation,
                level: block.level,
                mirror,
                epoch,
                ioprio,
            },
        });
        if let Some(dev) = devices.get_mut(&devid) {
            dev.in_flight += 1;
            dev.peak_in_flight = dev.peak_in_flight.max(dev.in_flight);
            dev.cursor = logical.saturating_add(nodesize);
        }
        self.in_flight += 1;
        true
    }

    /// The read of in-flight block `logical` from copy `mirror` on `devid`
    /// failed: marks that copy failed and queues the block again on the
    /// devices of its other copies (the same device for DUP's other copy),
    /// with nodes from `spare`. Returns false, changing nothing, if there is
    /// no other copy or too few spare nodes.
    fn requeue_elsewhere(
        &mut self,
        logical: u64,
        devid: u64,
        mirror: u32,
        spare: &mut KVec<Option<RBTreeNodeReservation<u64, ()>>>,
    ) -> bool {
        let Machine {
            blocks, devices, ..
        } = self;
        let Some(block) = blocks.get_mut(&logical) else {
            return false;
        };
        let is_read = |c: &Copy| c.devid == devid && c.mirror == mirror;
        let others = block.usable_copies().filter(|c| !is_read(c)).count();
        let nodes = spare.iter().filter(|n| n.is_some()).count();
        if others == 0 || nodes < others {
            return false;
        }
        for c in block.copies.as_mut_slice() {
            if is_read(c) {
                c.failed = true;
            }
        }
        for d in block.usable_devices() {
            let Some(node) = spare.as_mut_slice().iter_mut().find_map(Option::take) else {
                break;
            };
            let Some(dev) = devices.get_mut(&d) else {
                continue;
            };
            if dev.queue.get(&logical).is_none() {
                dev.queue.insert(node.into_node(logical, ()));
            }
            if let Some(zone) = dev.zones.get_mut(&block.chunk_end) {
                zone.queued += 1;
                dev.picker.refile(zone);
            }
        }
        block.state = BlockState::Queued;
        true
    }

    /// Takes every queued block out of the machine into `out` while it has
    /// room; returns whether all were taken.
    fn take_queued(&mut self, out: &mut KVec<Block>) -> bool {
        let Machine {
            blocks, devices, ..
        } = self;
        let mut cursor = blocks.cursor_front();
        while let Some(c) = cursor {
            if c.current().1.state != BlockState::Queued {
                cursor = c.move_next();
                continue;
            }
            if out.len() == out.capacity() {
                return false;
            }
            let (next, node) = c.remove_current();
            cursor = next;
            let block = node.to_key_value().1;
            unqueue(devices, &block);
            // Room was checked above: this does not allocate.
            if out.push(block, GFP_NOWAIT).is_err() {
                return false;
            }
        }
        true
    }

    /// Takes one queued block out of the index and its device queues.
    fn take_one_queued(&mut self) -> Option<Block> {
        let logical = self
            .blocks
            .iter()
            .find(|(_, b)| b.state == BlockState::Queued)
            .map(|(l, _)| *l)?;
        let block = self.blocks.remove_node(&logical)?.to_key_value().1;
        unqueue(&mut self.devices, &block);
        Some(block)
    }
}

/// What [`hang_link`] did.
enum Hung {
    /// The block is in the machine: the link hangs on it (`Ok`), or the
    /// request already has one there (`Err(Outcome::Duplicate)`).
    Done(Result<(), Outcome>),
    /// The block is not in the machine: the node and link come back.
    NoBlock(RBTreeNodeReservation<u64, Link>, Link),
}

/// Hangs `link` on block `logical` if the machine has it. A request that
/// reaches a block through two parents (the tree changed between reading
/// them) keeps its first link: a second would replace it in the block's
/// links and lose the outstanding count it carries.
fn hang_link(
    m: &mut Machine,
    logical: u64,
    node: RBTreeNodeReservation<u64, Link>,
    link: Link,
) -> Hung {
    let Some(block) = m.blocks.get_mut(&logical) else {
        return Hung::NoBlock(node, link);
    };
    let id = link.request.id;
    if block.links.get(&id).is_some() {
        return Hung::Done(Err(Outcome::Duplicate));
    }
    block.links.insert(node.into_node(id, link));
    Hung::Done(Ok(()))
}

/// Most copies a block can have (RAID1C4), so at most this many minus one
/// other copies to retry a failed read on.
const MAX_COPIES: usize = 4;

/// Reserves queue nodes for requeueing a block whose read failed, as many
/// as it can: with fewer than needed, the block is not retried.
fn reserve_retry_nodes(spare: &mut KVec<Option<RBTreeNodeReservation<u64, ()>>>) {
    for _ in 1..MAX_COPIES {
        let Ok(node) = RBTreeNodeReservation::new(GFP_NOFS) else {
            return;
        };
        if spare.push(Some(node), GFP_NOFS).is_err() {
            return;
        }
    }
}

/// Takes `block` out of the queue of every device with a usable copy.
fn unqueue(devices: &mut RBTree<u64, Device>, block: &Block) {
    for d in block.usable_devices() {
        if let Some(dev) = devices.get_mut(&d) {
            // The node is freed here; freeing under a spinlock is fine.
            drop(dev.queue.remove_node(&block.logical));
            if let Some(zone) = dev.zones.get_mut(&block.chunk_end) {
                zone.queued = zone.queued.saturating_sub(1);
                dev.picker.refile(zone);
            }
        }
    }
}

impl WorkItem for FsState {
    type Pointer = Arc<FsState>;

    fn run(this: Arc<FsState>) {
        if this.pass() {
            crate::with_engine(|engine| this.kick(engine.queue()));
        }
    }
}

/// Starts the read of a request's root block.
pub(crate) fn start_root(state: &Arc<FsState>, request: &Arc<Request>, root: TreeRoot) {
    state.queue_block(
        request,
        Want {
            logical: root.bytenr,
            level: root.level,
            owner: root.owner,
            generation: root.generation,
            lower: Key::default(),
            upper: Key::MAX,
        },
    );
}
