// SPDX-License-Identifier: GPL-2.0

//! The machine: per-filesystem state, the per-device schedule, completions.
//!
//! Each filesystem the module has worked on has an [`FsState`]: an index of
//! its queued and in-flight blocks by logical address, and per device a
//! queue of blocks by logical address, its zones (these three on XArrays,
//! see `index.rs`) and its zone picker. A *pass* of the machine (a work
//! item on the module's own workqueue, [`FsState::pass`]) processes the
//! reads that ended, then gives every device with fewer than
//! `max_in_flight` reads in flight its next blocks and starts the reads.
//!
//! What a reader looks for is in the submodules:
//! - `admit`: queueing a block for a request: mapping it to its copies,
//!   reserving its index entries, entering it into the machine, or hanging
//!   the request's link on the block if it is there already;
//! - `schedule`: a round of starts: per device in turn, the next block at
//!   or after its read pointer, marked in flight, read outside the lock;
//! - `zone`: the zones and the zone picker: which zone a device reads next,
//!   and the locks on mirror peers' copies of it;
//! - `complete`: a read that ended: the end io hook only records the
//!   arrival and kicks the machine (it runs in btrfs's end io worker and
//!   must not hold up the completions behind it); the next pass takes the
//!   block out, retries a failed read from another copy, gives each linked
//!   request its outcome, and queues the children of a node that is still
//!   what the request's parent pointed to (checked under the node's tree
//!   lock) and whose key span meets the request's range; children already
//!   up to date in memory are expanded there and then, not queued;
//! - `park`: the bound on the blocks the machine holds: while it is full,
//!   nodes are parked instead of expanded, and expanded again, deepest
//!   first, once it has room;
//! - `shutdown`: unmount: cancel what is queued, wait for what is in flight.
//!
//! A pass processes arrivals first, then expands a parked node if the machine
//! has room, then starts reads. It does a bounded amount of work and
//! requeues itself, so a tree that is wholly in memory spreads over the
//! workqueue instead of pinning a CPU.
//!
//! # Locks
//!
//! In this order, and nothing else is taken while one is held:
//! 1. `Engine::filesystems` (a mutex; see `engine.rs`);
//! 2. [`FsState::machine`] (a spinlock): every block, device and zone of one
//!    filesystem;
//! 3. the indexes' XArray locks, blocks, queues then zones (see `index.rs`),
//!    taken together by [`FsState::lock`];
//! 4. a request's state (a spinlock; see `request.rs`).
//!
//! [`FsState::parked`] (a mutex; see `park.rs`) is taken with no other
//! lock held, and nothing else is taken while it is held but a request's
//! state.
//!
//! Nothing that can fail is allocated under the spinlocks: every node and
//! index entry a change needs is reserved before the lock is taken. (A
//! retried read's queue entries are the exception: those not reserved are
//! allocated without sleeping, and if that fails the block is not retried.)
//! Functions that expect the machine lock take `&mut Machine`, which only
//! the lock's guard gives out, and the locked indexes.

mod admit;
mod complete;
mod park;
mod schedule;
mod shutdown;
pub(crate) mod zone;

use crate::block::{Arrived, DeviceSet};
use crate::index::{Index, Locked};
use crate::order::Key;
use crate::request::Request;
use crate::shim::{FsHandle, FsInfo, Fsid, TreeRoot};
use kernel::fs::memalloc_nofs;
use kernel::prelude::*;
use kernel::rbtree::RBTree;
use kernel::sync::lock::{spinlock::SpinLockBackend, Guard};
use kernel::sync::{Arc, CondVar, Mutex, SpinLock};
use kernel::workqueue::{impl_has_work, new_work, Queue, Work, WorkItem};
use kernel::{new_condvar, new_mutex, new_spinlock};
use park::Parked;
use schedule::Starts;
use zone::ZonePicker;

/// Reads in flight per device at most: the `max_in_flight` module
/// parameter (default 6, as in the original) for a rotational device,
/// `max_in_flight_nonrot` (default 32) for one without seeks, each kept
/// within 1..=64.
#[derive(Clone, Copy)]
struct Limits {
    rotational: u32,
    nonrot: u32,
}

impl Limits {
    fn now() -> Self {
        use crate::module_parameters::{max_in_flight, max_in_flight_nonrot};
        Limits {
            rotational: max_in_flight.value().clamp(1, 64),
            nonrot: max_in_flight_nonrot.value().clamp(1, 64),
        }
    }

    fn of(self, dev: &Device) -> u32 {
        if dev.nonrot {
            self.nonrot
        } else {
            self.rotational
        }
    }
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

/// Blocks found in memory that a pass expands at once, without queueing
/// them (see `complete.rs`), before it requeues itself.
const CACHED_PER_PASS: usize = 4096;

/// One device of a filesystem, as the machine schedules it.
struct Device {
    /// Where the device's queue and zones are in the indexes.
    slot: usize,
    /// Reads started on this device and not yet processed.
    in_flight: u32,
    /// The most reads this device ever had in flight at once.
    peak_in_flight: u32,
    /// The block layer said, when a block on it was last mapped, that the
    /// device is not rotational: it gets the deeper queue of [`Limits`].
    nonrot: bool,
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
    fn new(slot: usize, nonrot: bool) -> Self {
        Device {
            slot,
            in_flight: 0,
            peak_in_flight: 0,
            nonrot,
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
    /// By devid. Devices and zones are only ever added while the state
    /// lives, so what was seen to exist still exists after relocking.
    devices: RBTree<u64, Device>,
    /// The index slot the next new device gets.
    next_slot: usize,
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
    /// Blocks in the index, queued or in flight: what `park.rs` bounds.
    held: usize,
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
    /// The blocks, device queues and zones (see `index.rs`).
    #[pin]
    index: Index,
    /// Notified when `in_flight` or `passes` drop to zero, for unmount.
    #[pin]
    idle: CondVar,
    /// Nodes whose expansion waits for room in the machine (`park.rs`).
    #[pin]
    parked: Mutex<Parked>,
    #[pin]
    work: Work<FsState>,
}

impl_has_work! {
    impl HasWork<Self> for FsState { self.work }
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
        let index = Index::new(fs.nodesize())?;
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
                        devices: RBTree::new(),
                        next_slot: 0,
                        arrived: RBTree::new(),
                        in_flight: 0,
                        passes: 0,
                        round_robin: 0,
                        tree_reads: [0; TREE_SLOTS],
                        held: 0,
                    },
                    "FsState::machine"
                ),
                index <- index,
                idle <- new_condvar!("FsState::idle"),
                parked <- new_mutex!(Parked::new(), "FsState::parked"),
                work <- new_work!("FsState::work"),
            }),
            GFP_KERNEL,
        )
    }

    /// Takes the machine lock, then the indexes' locks.
    fn lock(&self) -> (Guard<'_, Machine, SpinLockBackend>, Locked<'_>) {
        let m = self.machine.lock();
        (m, self.index.lock())
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
        let (m, ix) = self.lock();
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
            let queued = ix.count_queued(dev.slot);
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

    /// One pass: process the arrivals, and start reads for every device
    /// with room. Returns whether it stopped for its budget with more to
    /// do. Arrivals are processed even while unmounting, which waits for
    /// them.
    fn pass(&self) -> bool {
        self.machine.lock().passes += 1;
        let mut done = 0;
        let mut cached = CACHED_PER_PASS;
        let mut more = false;
        loop {
            let arrival = {
                let (mut m, mut ix) = self.lock();
                m.take_arrival(&mut ix)
            };
            if let Some((logical, arrival)) = arrival {
                self.finish(logical, arrival, true, &mut cached);
                done += 1;
            } else if self.unpark_one(&mut cached) {
                done += 1;
            } else {
                let mut starts = Starts::new();
                {
                    let (mut m, mut ix) = self.lock();
                    if m.closing {
                        break;
                    }
                    m.take_starts(&mut ix, &mut starts, self.nodesize, Limits::now());
                }
                let count = starts.count();
                if count == 0 {
                    break;
                }
                done += count;
                self.start_reads(starts, &mut cached);
            }
            if done >= PASS_BUDGET || cached == 0 {
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
}

impl Machine {
    /// Counts a block of chunk `chunk_end`, just queued on the devices
    /// `on`, in their zones.
    fn count_in_zones(&mut self, ix: &mut Locked<'_>, chunk_end: u64, on: DeviceSet) {
        for d in on.iter() {
            let Some(dev) = self.devices.get_mut(&d) else {
                continue;
            };
            if let Some(zone) = ix.zone_mut(dev.slot, chunk_end) {
                zone.queued += 1;
                dev.picker.refile(zone);
            }
        }
    }

    /// Takes block `logical` out of the queues of the devices `on` without
    /// counting it out of their zones: undoes a queueing that failed half
    /// way, before [`Machine::count_in_zones`].
    fn forget_queued(&self, ix: &mut Locked<'_>, logical: u64, on: DeviceSet) {
        for d in on.iter() {
            if let Some(dev) = self.devices.get(&d) {
                ix.unqueue(dev.slot, logical);
            }
        }
    }
}

/// Takes block `logical` of chunk `chunk_end` out of the queues of the
/// devices `on`.
fn unqueue(
    devices: &mut RBTree<u64, Device>,
    ix: &mut Locked<'_>,
    logical: u64,
    chunk_end: u64,
    on: DeviceSet,
) {
    for d in on.iter() {
        let Some(dev) = devices.get_mut(&d) else {
            continue;
        };
        if !ix.unqueue(dev.slot, logical) {
            continue;
        }
        if let Some(zone) = ix.zone_mut(dev.slot, chunk_end) {
            zone.queued = zone.queued.saturating_sub(1);
            dev.picker.refile(zone);
        }
    }
}

impl WorkItem for FsState {
    type Pointer = Arc<FsState>;

    fn run(this: Arc<FsState>) {
        // A pass works for btrfs: what it allocates must not recurse into
        // filesystem reclaim.
        if memalloc_nofs(|| this.pass()) {
            crate::engine::with_engine(|engine| this.kick(engine.queue()));
        }
    }
}

/// Starts the read of a request's root block.
pub(crate) fn start_root(state: &Arc<FsState>, request: &Arc<Request>, root: TreeRoot) {
    request.hold_root(root.block);
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
