// SPDX-License-Identifier: GPL-2.0

//! Completion: a read that ended, and the expansion of a node's children.
//!
//! btrfs's end io hook only records the arrival ([`FsState::arrive`]) and
//! kicks the machine. The next pass takes the block out of the machine
//! ([`FsState::finish`]), retries a failed read from another copy, and
//! gives each linked request its outcome; for a node that is still what the
//! request's parent pointed to (checked under the node's tree lock), each
//! child whose key span meets the request's range is queued for it.

use super::{FsState, Machine, Want};
use crate::block::{Arrival, Block, BlockState, Copy, Link, MAX_COPIES};
use crate::counters;
use crate::index::Locked;
use crate::order::span_meets_range;
use crate::request::{Outcome, Request};
use crate::shim::{InMemory, TreeBlock};
use kernel::alloc::KVVec;
use kernel::prelude::*;
use kernel::sync::Arc;
use kernel::xarray::{Reservation, Value};

impl FsState {
    /// Records that the read of in-flight block `logical` ended, for the
    /// next pass: the end io hook's only work besides kicking the machine.
    /// Takes no allocation (the block brought its node) and does not sleep.
    pub(crate) fn arrive(&self, logical: u64, arrival: Arrival) {
        let (mut m, mut ix) = self.lock();
        let arrived = &mut m.arrived;
        let unclaimed = match ix.block_mut(logical) {
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
        drop(ix);
        drop(m);
        // Dropped outside the lock: releasing a block calls into btrfs.
        drop(unclaimed);
    }

    /// The read of `logical`, started by a pass, ended: with the block,
    /// failed, or not started as stale. `read` tells whether I/O happened
    /// (an arrival from the end io hook) or the block was found up to date.
    ///
    /// A node's children found up to date in memory are expanded at once,
    /// at most `cached` of them (see [`FsState::queue_wants`]).
    pub(super) fn finish(&self, logical: u64, arrival: Arrival, read: bool, cached: &mut usize) {
        let failed = matches!(arrival, Arrival::Failed);
        // A failed read is retried from another copy, if there is one: the
        // queue entries that requeueing takes are reserved before the lock.
        let mut spare = KVec::new();
        if failed {
            self.reserve_retry(logical, &mut spare);
        }
        let (block, devid) = {
            let (mut m, mut ix) = self.lock();
            if failed {
                if let Some(BlockState::InFlight { devid, mirror }) =
                    ix.block(logical).map(|b| b.state)
                {
                    if let Some(dev) = m.devices.get_mut(&devid) {
                        dev.errors += 1;
                    }
                    let retried = !m.closing
                        && m.requeue_elsewhere(&mut ix, logical, devid, mirror, &mut spare);
                    for (_, r) in spare {
                        if let Some(r) = r {
                            ix.release_queued(r);
                        }
                    }
                    if retried {
                        counters::BLOCKS_RETRIED.inc();
                        drop(ix);
                        self.release_slot(&mut m, devid);
                        return;
                    }
                }
            }
            // Take the block out of the index; its device slot stays taken
            // until its links are processed, so that unmount waits for us.
            match m.take_in_flight(&mut ix, logical) {
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
        let done = if read {
            Outcome::Read {
                bytes: self.nodesize,
            }
        } else {
            Outcome::Cached
        };
        for (_, link) in block.links.iter() {
            let outcome = match &tree_block {
                None => lost,
                Some(tb) => match self.queue_children(tb, &block, link, done, cached) {
                    Err(outcome) => outcome,
                    Ok(Expansion::Done) => done,
                    // The parked node holds the link now.
                    Ok(Expansion::Parked) => continue,
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

    /// Reserves the queue entries requeueing the in-flight block `logical`
    /// on its other copies would take, as many as it can: the entries that
    /// could not be reserved are allocated without sleeping, if at all.
    fn reserve_retry<'a>(
        &'a self,
        logical: u64,
        spare: &mut KVec<(usize, Option<Reservation<'a, Value>>)>,
    ) {
        let mut slots = [None; MAX_COPIES];
        {
            let (m, ix) = self.lock();
            let Some(block) = ix.block(logical) else {
                return;
            };
            for (slot, devid) in slots.iter_mut().zip(block.usable_devices()) {
                *slot = m.devices.get(&devid).map(|d| d.slot);
            }
        }
        for slot in slots.into_iter().flatten() {
            let Ok(r) = self.index.reserve_queued(slot, logical) else {
                return;
            };
            if spare.push((slot, Some(r)), GFP_KERNEL).is_err() {
                return;
            }
        }
    }

    /// Queues the children of `tb` (the block `block` arrived as) that
    /// `link`'s request wants, expanding at once at most `cached` of those
    /// up to date in memory. While the machine is full, a node is parked
    /// instead, to end as `done` when it is expanded (see `park.rs`). Fails
    /// with [`Outcome::Stale`] if the block is no longer what the link's
    /// parent pointed to, or [`Outcome::NoMemory`].
    fn queue_children(
        &self,
        tb: &TreeBlock,
        block: &Block,
        link: &Link,
        done: Outcome,
        cached: &mut usize,
    ) -> Result<Expansion, Outcome> {
        // Only the machine's own pass expands nodes; the end io hook never
        // does (it runs in btrfs's end io worker). Counted, not assumed.
        if !self.work.is_running_here() {
            counters::NODES_EXPANDED_OUTSIDE_PASS.inc();
        }
        let parent = Want {
            logical: block.logical,
            level: block.level,
            owner: block.owner,
            generation: link.generation,
            lower: link.lower,
            upper: link.upper,
        };
        let request = &link.request;
        // A parked node takes the link over; if memory is short for it,
        // the node is expanded now.
        let parent = if parent.level > 0 && self.full() {
            match self.park(request, parent, Some(done)) {
                Ok(()) => {
                    counters::NODES_PARKED.inc();
                    return Ok(Expansion::Parked);
                }
                Err(parent) => parent,
            }
        } else {
            parent
        };
        let mut wants = KVVec::new();
        let n = Self::wanted_children(tb, &parent, request, &mut wants)?;
        counters::NODES_EXPANDED.inc();
        // Counted before the parent's own link is released.
        request.add_outstanding(n);
        self.queue_wants(request, wants, cached);
        Ok(Expansion::Done)
    }

    /// Queues `wants` (each counted outstanding already) for `request`;
    /// but a block up to date in memory is dealt with here at once: a leaf
    /// always, a node while `cached` lasts, its wanted children then dealt
    /// with the same way.
    ///
    /// This is the fast path of a tree that is mostly in memory: a cached
    /// block costs a lookup (and a node its node lock), where queueing it
    /// would map it to its copies, reserve its index entries, enter it into
    /// the machine and start a read that finds it in memory. A block is
    /// checked against its parent's pointer either way: a node under its
    /// node lock, since its pointers are read; a leaf, from which nothing
    /// is read, without it (see [`FsInfo::check_cached`]).
    ///
    /// `cached` bounds the work of one pass: it counts the blocks found in
    /// memory, and once it is spent the nodes left are parked for the next
    /// pass (see `park.rs`), not queued, so that a tree wholly in memory
    /// never goes through the machine. The leaves left, at most one node's
    /// children, are still looked up.
    ///
    /// A cached node is expanded here only while the request's tree is warm
    /// (see [`crate::order::tree_is_warm`]). On a cold tree it is queued:
    /// the machine then expands it in address order with the blocks it
    /// reads, where expanding it here would put its children before the
    /// rest, out of the disks' sweep.
    ///
    /// Unlike a block in the machine, a cached block does not hold a link:
    /// a request that reaches one block through two parents (the tree
    /// changed between reading them) counts it twice.
    ///
    /// While the machine is full, a node is parked instead of being looked
    /// up.
    ///
    /// [`FsInfo::check_cached`]: crate::shim::FsInfo::check_cached
    pub(super) fn queue_wants(
        &self,
        request: &Arc<Request>,
        mut wants: KVVec<Want>,
        cached: &mut usize,
    ) {
        // Blocks found in memory and not, of those found the ones dealt
        // with here (checked against their parent's pointer), and of those
        // the nodes, for the counters and the request's lookups, added
        // once.
        let (mut found, mut missed, mut expanded, mut nodes) = (0, 0, 0, 0);
        // Cached nodes queued because the tree is cold: hits all the same.
        let mut found_queued = 0;
        while let Some(want) = wants.pop() {
            if want.level == 0 {
                let fs = self.fs.get();
                match fs.check_cached(want.logical, want.owner, want.generation, 0) {
                    InMemory::Yes => {
                        *cached = cached.saturating_sub(1);
                        found += 1;
                        expanded += 1;
                    }
                    InMemory::Stale => {
                        found += 1;
                        counters::BLOCKS_STALE.inc();
                        request.block_done(Outcome::Stale);
                    }
                    InMemory::No => {
                        missed += 1;
                        self.queue_block(request, want);
                    }
                }
                continue;
            }
            let full = self.full();
            let want = if full || *cached == 0 {
                match self.park(request, want, None) {
                    Ok(()) => {
                        if full {
                            counters::NODES_PARKED.inc();
                        }
                        continue;
                    }
                    Err(want) => want,
                }
            } else {
                want
            };
            let tb = match *cached {
                0 => None,
                _ => self.fs.get().find_block(want.logical),
            };
            let Some(tb) = tb else {
                if *cached > 0 {
                    missed += 1;
                }
                self.queue_block(request, want);
                continue;
            };
            if !request.tree_is_warm(found + found_queued, missed) {
                drop(tb);
                found_queued += 1;
                self.queue_block(request, want);
                continue;
            }
            *cached -= 1;
            found += 1;
            // The children go on the stack, and are counted before any of
            // them can end and before this block's own link is released.
            match Self::wanted_children(&tb, &want, request, &mut wants) {
                Ok(n) => request.add_outstanding(n),
                Err(outcome) => {
                    if outcome == Outcome::Stale {
                        counters::BLOCKS_STALE.inc();
                    }
                    request.block_done(outcome);
                    continue;
                }
            }
            drop(tb);
            // Released together below: a release put off never lets the
            // request finish early.
            expanded += 1;
            nodes += 1;
        }
        counters::BLOCKS_CACHED.add(found);
        counters::NODES_EXPANDED.add(nodes);
        request.add_lookups(found + found_queued, missed);
        request.blocks_done(Outcome::Cached, expanded);
    }

    /// Appends to `wants` the children of `tb`, reached as `parent`, whose
    /// key span meets the range of `request`, read under the node's tree
    /// lock, and returns how many: the lock is dropped before anything is
    /// queued, since queueing maps blocks and may wait. Appends nothing on
    /// failure.
    pub(super) fn wanted_children(
        tb: &TreeBlock,
        parent: &Want,
        request: &Request,
        wants: &mut KVVec<Want>,
    ) -> Result<u64, Outcome> {
        let node = tb
            .lock_node(parent.owner, parent.generation, parent.level)
            .map_err(|_| Outcome::Stale)?;
        if parent.level == 0 {
            return Ok(0);
        }
        let range = request.range;
        let nritems = node.nritems();
        // Room for every child, so that the pushes below cannot fail.
        wants
            .reserve(nritems as usize, GFP_KERNEL)
            .map_err(|_| Outcome::NoMemory)?;
        let mut next = match node.child(0) {
            Ok(c) => c,
            Err(_) => return Ok(0),
        };
        let mut n = 0;
        for slot in 0..nritems {
            let child = next;
            // A search for a key below the node's first key lands in its
            // first child: that child's span starts at the node's own.
            let lower = if slot == 0 { parent.lower } else { child.key };
            let upper = if slot + 1 < nritems {
                match node.child(slot + 1) {
                    Ok(c) => {
                        next = c;
                        c.key
                    }
                    Err(_) => parent.upper,
                }
            } else {
                parent.upper
            };
            if lower >= range.end {
                break;
            }
            if !span_meets_range(lower, upper, range.start, range.end) {
                continue;
            }
            let want = Want {
                logical: child.bytenr,
                level: parent.level - 1,
                owner: range.tree_id,
                generation: child.generation,
                lower,
                upper,
            };
            // Room was reserved above: this does not allocate.
            if wants.push(want, GFP_NOWAIT).is_err() {
                for _ in 0..n {
                    wants.pop();
                }
                return Err(Outcome::NoMemory);
            }
            n += 1;
        }
        Ok(n)
    }
}

/// What became of a node's expansion.
enum Expansion {
    /// Its wanted children are queued or expanded.
    Done,
    /// It is parked (the machine is full), and holds its link.
    Parked,
}

impl Machine {
    /// Takes the first arrival for processing: the block's node goes back
    /// to the block, which stays in flight until processed.
    pub(super) fn take_arrival(&mut self, ix: &mut Locked<'_>) -> Option<(u64, Arrival)> {
        let cursor = self.arrived.cursor_front()?;
        let logical = *cursor.current().0;
        let (_, node) = cursor.remove_current();
        let block = ix.block_mut(logical)?;
        block.arrived_node = Some(node.into_reservation());
        block.arrival.take().map(|a| (logical, a))
    }

    /// Takes in-flight block `logical` out of the index, with the device
    /// whose read slot it holds.
    fn take_in_flight(&mut self, ix: &mut Locked<'_>, logical: u64) -> Option<(KBox<Block>, u64)> {
        let BlockState::InFlight { devid, .. } = ix.block(logical)?.state else {
            return None;
        };
        let block = ix.remove_block(logical)?;
        self.held = self.held.saturating_sub(1);
        Some((block, devid))
    }

    /// The read of in-flight block `logical` from copy `mirror` on `devid`
    /// failed: marks that copy failed and queues the block again on the
    /// devices of its other copies (the same device for DUP's other copy),
    /// through the entries `spare` reserved where it has them. Returns
    /// false, changing nothing, if there is no other copy or memory is
    /// short.
    fn requeue_elsewhere(
        &mut self,
        ix: &mut Locked<'_>,
        logical: u64,
        devid: u64,
        mirror: u32,
        spare: &mut KVec<(usize, Option<Reservation<'_, Value>>)>,
    ) -> bool {
        let Some(block) = ix.block_mut(logical) else {
            return false;
        };
        let is_read = |c: &Copy| c.devid == devid && c.mirror == mirror;
        if !block.usable_copies().any(|c| !is_read(c)) {
            return false;
        }
        for c in block.copies.as_mut_slice() {
            if is_read(c) {
                c.failed = true;
            }
        }
        let (on, chunk_end) = (block.usable_device_set(), block.chunk_end);
        let mut ok = true;
        for d in on.iter() {
            let Some(dev) = self.devices.get(&d) else {
                continue;
            };
            let slot = dev.slot;
            let r = spare
                .iter_mut()
                .find(|(s, r)| *s == slot && r.is_some())
                .and_then(|(_, r)| r.take());
            if ix.queue(slot, logical, r).is_err() {
                ok = false;
                break;
            }
        }
        let Some(block) = ix.block_mut(logical) else {
            return false;
        };
        if !ok {
            // Undo: the block stays in flight, its read failed.
            for c in block.copies.as_mut_slice() {
                if is_read(c) {
                    c.failed = false;
                }
            }
            self.forget_queued(ix, logical, on);
            return false;
        }
        block.state = BlockState::Queued;
        self.count_in_zones(ix, chunk_end, on);
        true
    }
}
