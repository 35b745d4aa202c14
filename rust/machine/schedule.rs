// SPDX-License-Identifier: GPL-2.0

//! The per-device schedule: a round of starts.
//!
//! Devices take turns in devid order, each taking the next queued block at
//! or after its read pointer in its current zone (see `zone.rs` for how the
//! zone is chosen) while it has fewer than `max_in_flight` reads in flight.
//! A block is taken once, by whichever device reaches it first, marked in
//! flight and read from that device's copy; the reads start outside the
//! lock.

use super::{tree_slot, unqueue, FsState, Limits, Machine};
use crate::block::{Arrival, BlockState};
use crate::index::Locked;
use crate::request::urgency;
use crate::shim::{estale, BlockRead, ReadStart};
use kernel::ioprio::IoPriority;

/// A block a pass took from a device's queue, to read outside the lock.
pub(super) struct Start {
    devid: u64,
    read: BlockRead,
}

/// Reads a pass starts per round at most. A round's starts live on the
/// stack, so that scheduling reads never allocates (and so never fails).
const STARTS_PER_ROUND: usize = 16;

/// One round's starts: a block is marked in flight only by filling a free
/// slot here ([`Machine::start_block`]), so no started block can be lost.
pub(super) struct Starts {
    items: [Option<Start>; STARTS_PER_ROUND],
}

impl Starts {
    pub(super) fn new() -> Self {
        Starts {
            items: [const { None }; STARTS_PER_ROUND],
        }
    }

    /// The first free slot, if any.
    fn free_slot(&mut self) -> Option<&mut Option<Start>> {
        self.items.iter_mut().find(|s| s.is_none())
    }

    pub(super) fn count(&self) -> usize {
        self.items.iter().filter(|s| s.is_some()).count()
    }
}

impl FsState {
    /// Starts the reads a round took. A read that cannot start ends its
    /// block here: found in memory, stale (see [`FsInfo::read_block`]) or
    /// failed. `cached` is the pass's budget for [`FsState::finish`].
    pub(super) fn start_reads(&self, starts: Starts, cached: &mut usize) {
        for s in starts.items.into_iter().flatten() {
            match self.fs.get().read_block(&s.read) {
                Ok(ReadStart::Started) => {
                    let mut m = self.machine.lock();
                    m.count_read(s.devid, s.read.owner, self.nodesize);
                }
                Ok(ReadStart::Cached(block)) => {
                    self.finish(s.read.logical, Arrival::Block(block), false, cached)
                }
                Err(e) if e == estale() => {
                    self.finish(s.read.logical, Arrival::Stale, false, cached)
                }
                Err(_) => self.finish(s.read.logical, Arrival::Failed, false, cached),
            }
        }
    }
}

impl Machine {
    /// Takes the next block for every device with a free read slot and
    /// marks it in flight in a free slot of `starts`. Nothing here
    /// allocates.
    pub(super) fn take_starts(
        &mut self,
        ix: &mut Locked<'_>,
        starts: &mut Starts,
        nodesize: u64,
        limits: Limits,
    ) {
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
                let Some(logical) = self.next_for_device(ix, d, limits) else {
                    break;
                };
                if !self.start_block(ix, logical, d, nodesize, slot) {
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

    /// The first device at or after `devid`, wrapping round to the first.
    fn next_devid(&mut self, devid: u64) -> Option<u64> {
        if let Some(c) = self.devices.cursor_lower_bound(&devid) {
            return Some(*c.current().0);
        }
        self.devices.cursor_front().map(|c| *c.current().0)
    }

    /// Takes queued block `logical` out of every device queue, marks it in
    /// flight on `devid` and fills `slot` with how to read it there. Every
    /// lookup comes before any change: if one fails (the device's queue
    /// holds a block the index does not, which cannot happen), the stray
    /// queue entry is dropped and nothing else changes.
    fn start_block(
        &mut self,
        ix: &mut Locked<'_>,
        logical: u64,
        devid: u64,
        nodesize: u64,
        slot: &mut Option<Start>,
    ) -> bool {
        let Some(dev_slot) = self.devices.get(&devid).map(|d| d.slot) else {
            return false;
        };
        let Some(block) = ix.block_mut(logical) else {
            ix.unqueue(dev_slot, logical);
            return false;
        };
        let Some(mirror) = block
            .usable_copies()
            .find(|c| c.devid == devid)
            .map(|c| c.mirror)
        else {
            ix.unqueue(dev_slot, logical);
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
            .map(|l| l.request.ioprio)
            .min_by_key(|p| urgency(*p))
            .unwrap_or(IoPriority::DEFAULT);
        block.state = BlockState::InFlight { devid, mirror };
        let read = BlockRead {
            logical,
            owner: block.owner,
            generation: block.generation,
            level: block.level,
            mirror,
            epoch,
            ioprio,
        };
        let (on, chunk_end) = (block.usable_device_set(), block.chunk_end);
        unqueue(&mut self.devices, ix, logical, chunk_end, on);
        *slot = Some(Start { devid, read });
        if let Some(dev) = self.devices.get_mut(&devid) {
            dev.in_flight += 1;
            dev.peak_in_flight = dev.peak_in_flight.max(dev.in_flight);
            dev.cursor = logical.saturating_add(nodesize);
        }
        self.in_flight += 1;
        true
    }
}
