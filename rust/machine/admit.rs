// SPDX-License-Identifier: GPL-2.0

//! Admission: queueing a block for a request.
//!
//! If the block is in the machine already (queued or in flight for another
//! request), the request's link hangs on it. Otherwise the block is mapped
//! to its copies (which may sleep), everything entering it needs is
//! reserved (its memory, its entries in the block index, the arrived index
//! and each device queue, the devices and zones not seen yet), and then,
//! under the machine lock, it is entered unless another request was faster.

use super::zone::Zone;
use super::{Device, FsState, Machine, Want};
use crate::block::{ArrivedNode, Block, BlockState, Copy, Link};
use crate::counters;
use crate::index::Locked;
use crate::request::{Outcome, Request};
use core::mem::MaybeUninit;
use kernel::prelude::*;
use kernel::rbtree::{RBTree, RBTreeNodeReservation};
use kernel::sync::Arc;
use kernel::xarray::{Reservation, Value};

/// What queueing a block needs allocated before the machine lock is taken.
struct Reservations<'a> {
    /// The block's memory and its entry in the block index.
    boxed: KBox<MaybeUninit<Block>>,
    entry: Reservation<'a, KBox<Block>>,
    /// The block's entry in the arrived index, for when its read ends.
    arrived: ArrivedNode,
    /// Per device with a usable copy, its slot and the block's entry in its
    /// queue.
    queue: KVec<(usize, Reservation<'a, Value>)>,
    /// Zones that did not exist when looked at: device slot, entry, zone.
    zones: KVec<(usize, Reservation<'a, KBox<Zone>>, KBox<Zone>)>,
}

impl Reservations<'_> {
    /// Gives up the index entries reserved; the memory is freed on drop.
    fn release(self, ix: &mut Locked<'_>) {
        ix.release_block(self.entry);
        for (_, r) in self.queue {
            ix.release_queued(r);
        }
        for (_, r, _) in self.zones {
            ix.release_zone(r);
        }
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
    ix: &mut Locked<'_>,
    logical: u64,
    node: RBTreeNodeReservation<u64, Link>,
    link: Link,
) -> Hung {
    let Some(block) = ix.block_mut(logical) else {
        return Hung::NoBlock(node, link);
    };
    let id = link.request.id;
    if block.links.get(&id).is_some() {
        return Hung::Done(Err(Outcome::Duplicate));
    }
    block.links.insert(node.into_node(id, link));
    Hung::Done(Ok(()))
}

impl FsState {
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
        let link_node = RBTreeNodeReservation::new(GFP_KERNEL).map_err(|_| Outcome::NoMemory)?;

        // Fast path: the block is already queued or in flight for another
        // request; hang this request's link on it.
        let (link_node, link) = {
            let (m, mut ix) = self.lock();
            if m.closing {
                return Err(Outcome::Cancelled);
            }
            match hang_link(&mut ix, want.logical, link_node, link) {
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
                        nonrot: c.nonrot,
                    },
                    GFP_KERNEL,
                )
                .map_err(|_| Outcome::NoMemory)?;
        }
        if copies.is_empty() {
            // Every copy is on a missing device or a replace target.
            return Err(Outcome::Failed);
        }
        let res = self
            .reserve(want.logical, &copies, chunk.start, chunk.end)
            .map_err(|_| Outcome::NoMemory)?;

        let (mut m, mut ix) = self.lock();
        if m.closing {
            res.release(&mut ix);
            return Err(Outcome::Cancelled);
        }
        let (link_node, link) = match hang_link(&mut ix, want.logical, link_node, link) {
            Hung::Done(result) => {
                res.release(&mut ix);
                return result;
            }
            Hung::NoBlock(node, link) => (node, link),
        };
        let mut links = RBTree::new();
        links.insert(link_node.into_node(request.id, link));
        let Reservations {
            boxed,
            entry,
            arrived,
            queue,
            zones,
        } = res;
        let block = KBox::write(
            boxed,
            Block {
                logical: want.logical,
                level: want.level,
                owner: want.owner,
                generation: want.generation,
                chunk_end: chunk.end,
                copies,
                links,
                state: BlockState::Queued,
                arrival: None,
                arrived_node: Some(arrived),
            },
        );
        counters::block_queued();
        let failed = m.insert_queued(&mut ix, block, entry, queue, zones).err();
        drop(ix);
        drop(m);
        // Memory was short after all (see `Locked::queue`): the block is
        // freed outside the locks, and the caller releases the link.
        match failed {
            Some(block) => {
                drop(block);
                Err(Outcome::NoMemory)
            }
            None => Ok(()),
        }
    }

    /// The distinct devices of `copies` with their index slots, adding the
    /// devices the machine has not seen yet (devices are only ever added).
    /// Each device takes whether it is rotational from this mapping.
    fn device_slots(&self, copies: &[Copy]) -> Result<KVec<(u64, usize)>> {
        let mut slots = KVec::with_capacity(copies.len(), GFP_KERNEL)?;
        let mut missing = KVec::with_capacity(copies.len(), GFP_KERNEL)?;
        {
            let mut m = self.machine.lock();
            for c in copies {
                let seen = |other: &&Copy| other.devid == c.devid;
                if slots.iter().any(|&(d, _)| d == c.devid) || missing.iter().any(seen) {
                    continue;
                }
                // Capacity was reserved above: these do not allocate.
                match m.devices.get_mut(&c.devid) {
                    Some(dev) => {
                        dev.nonrot = c.nonrot;
                        slots.push((c.devid, dev.slot), GFP_NOWAIT)?
                    }
                    None => missing.push(c, GFP_NOWAIT)?,
                }
            }
        }
        if missing.is_empty() {
            return Ok(slots);
        }
        let mut nodes = KVec::with_capacity(missing.len(), GFP_KERNEL)?;
        for _ in missing.iter() {
            nodes.push(RBTreeNodeReservation::new(GFP_KERNEL)?, GFP_KERNEL)?;
        }
        let mut m = self.machine.lock();
        for (c, node) in missing.iter().zip(nodes) {
            let devid = c.devid;
            let slot = match m.devices.get(&devid) {
                Some(dev) => dev.slot,
                None => {
                    let slot = m.next_slot;
                    if slot >= self.index.device_slots() {
                        return Err(ENOSPC);
                    }
                    m.next_slot += 1;
                    m.devices
                        .insert(node.into_node(devid, Device::new(slot, c.nonrot)));
                    slot
                }
            };
            slots.push((devid, slot), GFP_NOWAIT)?;
        }
        Ok(slots)
    }

    /// Reserves what queueing the block at `logical` with `copies` in chunk
    /// `[start, end)` needs: its memory, its entries in the block index, the
    /// arrived index and each device queue, and the zones not seen yet.
    fn reserve(
        &self,
        logical: u64,
        copies: &[Copy],
        start: u64,
        end: u64,
    ) -> Result<Reservations<'_>> {
        let slots = self.device_slots(copies)?;
        let mut res = Reservations {
            boxed: KBox::new_uninit(GFP_KERNEL)?,
            entry: self.index.reserve_block(logical)?,
            arrived: RBTreeNodeReservation::new(GFP_KERNEL)?,
            queue: KVec::with_capacity(slots.len(), GFP_KERNEL)?,
            zones: KVec::new(),
        };
        for &(_, slot) in slots.iter() {
            // Capacity was reserved above: this does not allocate.
            res.queue.push(
                (slot, self.index.reserve_queued(slot, logical)?),
                GFP_NOWAIT,
            )?;
        }
        // Which zones are missing? They are only ever added, so what exists
        // now still exists when the lock is retaken.
        let mut missing = KVec::with_capacity(slots.len(), GFP_KERNEL)?;
        {
            let ix = self.index.lock();
            for &(_, slot) in slots.iter() {
                missing.push(ix.zone(slot, end).is_none(), GFP_NOWAIT)?;
            }
        }
        for (&(devid, slot), &gap) in slots.iter().zip(missing.iter()) {
            if !gap {
                continue;
            }
            let mut peers = KVec::with_capacity(slots.len(), GFP_KERNEL)?;
            for &(peer, _) in slots.iter().filter(|&&(p, _)| p != devid) {
                peers.push(peer, GFP_KERNEL)?;
            }
            let zone = KBox::new(Zone::new(start, end, peers)?, GFP_KERNEL)?;
            let entry = self.index.reserve_zone(slot, end)?;
            res.zones.push((slot, entry, zone), GFP_KERNEL)?;
        }
        Ok(res)
    }
}

impl Machine {
    /// Enters a new queued block into the index, its devices' queues and
    /// zones, with the entries reserved for it. If memory was short after
    /// all (a shared reservation emptied meanwhile, see [`Locked::queue`]),
    /// changes nothing and gives the block back.
    fn insert_queued(
        &mut self,
        ix: &mut Locked<'_>,
        block: KBox<Block>,
        entry: Reservation<'_, KBox<Block>>,
        queue: KVec<(usize, Reservation<'_, Value>)>,
        zones: KVec<(usize, Reservation<'_, KBox<Zone>>, KBox<Zone>)>,
    ) -> Result<(), KBox<Block>> {
        // Zones first: a zone with nothing queued in it is harmless. A zone
        // given back is one the device has already.
        for (slot, r, zone) in zones {
            drop(ix.insert_zone(slot, r, zone));
        }
        let logical = block.logical;
        let on = block.usable_device_set();
        let mut ok = queue
            .iter()
            .all(|&(slot, _)| ix.zone(slot, block.chunk_end).is_some());
        for (slot, r) in queue {
            if ok {
                ok = ix.queue(slot, logical, Some(r)).is_ok();
            } else {
                ix.release_queued(r);
            }
        }
        let block = if ok {
            match ix.insert_block(entry, block) {
                Ok(()) => None,
                Err(block) => Some(block),
            }
        } else {
            ix.release_block(entry);
            Some(block)
        };
        if let Some(block) = block {
            self.forget_queued(ix, logical, on);
            return Err(block);
        }
        self.held += 1;
        let chunk_end = ix.block(logical).map_or(0, |b| b.chunk_end);
        self.count_in_zones(ix, chunk_end, on);
        Ok(())
    }
}
