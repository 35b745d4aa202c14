// SPDX-License-Identifier: GPL-2.0

//! The machine's indexes, on XArrays: the blocks in the machine by logical
//! address, each device's queue by logical address, and each device's zones
//! by end (the original's `reada_tree`, `reada_extents` and `reada_zones`
//! radix trees).
//!
//! # Index layout
//!
//! A block's index is its logical address divided by the node size. Tree
//! blocks are one node long and never overlap, so this is one-to-one and
//! keeps address order even for a block that is not node-aligned; and the
//! blocks of a metadata chunk land in consecutive indices, which is what
//! keeps an XArray shallow and dense (indexing by sector would leave 31 of
//! every 32 slots empty with 16 KiB nodes).
//!
//! Device queues and zones are one XArray each for the whole filesystem,
//! the device's slot (numbered as devices are first seen) in the top
//! `log2(nodesize)` bits of the index and the block index below it: each
//! device owns one contiguous range of the array, in which its queue is in
//! address order. One array rather than one per device lets an admission
//! reserve its queue entries before the machine lock without holding a
//! reference to a device, which lives under that lock. With nodes of at
//! least 4 KiB, a filesystem has room for 4096 device slots.
//!
//! # Locks
//!
//! [`Index::lock`] takes the three arrays' locks, always after the machine
//! lock and in the order blocks, queues, zones; each array has a lock class
//! of its own. Reservations ([`Index::reserve_block`] and friends) take one
//! array's lock alone, with no other lock held.
//!
//! Entries are added, removed and changed only with the machine lock held;
//! the arrays' own locks make each access safe, the machine lock makes the
//! indexes agree with each other and with the machine.

use crate::block::Block;
use crate::machine::zone::Zone;
use kernel::new_xarray;
use kernel::prelude::*;
use kernel::types::ForeignOwnable;
use kernel::xarray::{Guard, Reservation, Value, XArray};

// Indices are `logical >> shift` with room for a device slot above them.
const _: () = assert!(usize::BITS == 64);

/// The machine's three indexes of one filesystem.
///
/// # Invariants
///
/// `shift` is `log2(nodesize)`, at least 12. `blocks` holds each block in
/// the machine at [`Index::block_index`] of its address. `queues` holds a
/// value entry at [`Index::device_index`] of a device slot and a block's
/// address exactly while that block is queued on that device (see
/// [`Block`]). `zones` holds each device's zones at the device index of
/// their last byte.
#[pin_data]
pub(crate) struct Index {
    shift: u32,
    #[pin]
    blocks: XArray<KBox<Block>>,
    #[pin]
    queues: XArray<Value>,
    #[pin]
    zones: XArray<KBox<Zone>>,
}

/// The mark of a block queued on a device.
const QUEUED: usize = 0;

impl Index {
    /// Empty indexes for a filesystem whose node size is `nodesize` (a power
    /// of two of at least 4 KiB, as btrfs guarantees).
    pub(crate) fn new(nodesize: u32) -> Result<impl PinInit<Self>> {
        if !nodesize.is_power_of_two() || nodesize < 4096 {
            return Err(EINVAL);
        }
        Ok(pin_init!(Index {
            shift: nodesize.trailing_zeros(),
            blocks <- new_xarray!("btrfs_reada.blocks"),
            queues <- new_xarray!("btrfs_reada.queues"),
            zones <- new_xarray!("btrfs_reada.zones"),
        }))
    }

    /// The index of the block at `logical` in `blocks`.
    fn block_index(&self, logical: u64) -> usize {
        // Lossless: `usize` has 64 bits.
        (logical >> self.shift) as usize
    }

    /// The index of `logical` in device slot `slot`'s range of `queues` or
    /// `zones`, or `None` if the slot is out of range.
    fn device_index(&self, slot: usize, logical: u64) -> Option<usize> {
        let low_bits = 64 - self.shift;
        if slot >> self.shift != 0 {
            return None;
        }
        Some((slot << low_bits) | self.block_index(logical))
    }

    /// The index of the zone of device slot `slot` ending at `end`: that
    /// of its last byte.
    fn zone_index(&self, slot: usize, end: u64) -> Option<usize> {
        self.device_index(slot, end.saturating_sub(1))
    }

    /// Device slots there is room for.
    pub(crate) fn device_slots(&self) -> usize {
        1 << self.shift
    }

    /// Reserves the entry of the block at `logical`.
    pub(crate) fn reserve_block(&self, logical: u64) -> Result<Reservation<'_, KBox<Block>>> {
        self.blocks.reserve(self.block_index(logical), GFP_KERNEL)
    }

    /// Reserves the entry of the block at `logical` in the queue of device
    /// slot `slot`.
    pub(crate) fn reserve_queued(
        &self,
        slot: usize,
        logical: u64,
    ) -> Result<Reservation<'_, Value>> {
        let index = self.device_index(slot, logical).ok_or(EINVAL)?;
        self.queues.reserve(index, GFP_KERNEL)
    }

    /// Reserves the entry of the zone ending at `end` of device slot `slot`.
    pub(crate) fn reserve_zone(
        &self,
        slot: usize,
        end: u64,
    ) -> Result<Reservation<'_, KBox<Zone>>> {
        let index = self.zone_index(slot, end).ok_or(EINVAL)?;
        self.zones.reserve(index, GFP_KERNEL)
    }

    /// Locks the indexes; the caller holds the machine lock.
    pub(crate) fn lock(&self) -> Locked<'_> {
        let blocks = self.blocks.lock();
        let queues = self.queues.lock();
        let zones = self.zones.lock();
        Locked {
            index: self,
            blocks,
            queues,
            zones,
        }
    }
}

/// The three indexes, locked (see [`Index::lock`]).
pub(crate) struct Locked<'a> {
    index: &'a Index,
    blocks: Guard<'a, KBox<Block>>,
    queues: Guard<'a, Value>,
    zones: Guard<'a, KBox<Zone>>,
}

impl Locked<'_> {
    /// The block at `logical`.
    pub(crate) fn block(&self, logical: u64) -> Option<&Block> {
        let block = self.blocks.get(self.index.block_index(logical))?;
        (block.logical == logical).then_some(block)
    }

    /// The block at `logical`, to change.
    pub(crate) fn block_mut(&mut self, logical: u64) -> Option<&mut Block> {
        let block = self.blocks.get_mut(self.index.block_index(logical))?;
        (block.logical == logical).then_some(block)
    }

    /// The first block by address.
    pub(crate) fn first_block(&self) -> Option<&Block> {
        self.blocks.find(0, usize::MAX).map(|(_, b)| b)
    }

    /// The first block after the block at `logical`, by address.
    pub(crate) fn block_after(&self, logical: u64) -> Option<&Block> {
        let after = self.index.block_index(logical);
        self.blocks.find_after(after, usize::MAX).map(|(_, b)| b)
    }

    /// How many blocks are in the machine.
    pub(crate) fn count_blocks(&self) -> usize {
        count_entries(&self.blocks, 0, usize::MAX)
    }

    /// Takes the block at `logical` out.
    pub(crate) fn remove_block(&mut self, logical: u64) -> Option<KBox<Block>> {
        self.block(logical)?;
        self.blocks.remove(self.index.block_index(logical))
    }

    /// Puts `block` into the entry `reservation` holds, unless a block is
    /// there: then, or if memory is short (see [`Guard::fill`]), `block`
    /// comes back.
    pub(crate) fn insert_block(
        &mut self,
        reservation: Reservation<'_, KBox<Block>>,
        block: KBox<Block>,
    ) -> Result<(), KBox<Block>> {
        let index = self.index.block_index(block.logical);
        fill_empty(&mut self.blocks, Some(index), reservation, block)
    }

    /// Gives up a block entry reservation.
    pub(crate) fn release_block(&mut self, reservation: Reservation<'_, KBox<Block>>) {
        self.blocks.release(reservation);
    }

    /// Puts the block at `logical` in the queue of device slot `slot`, into
    /// the entry `reservation` holds if it is that one (else allocating,
    /// without sleeping). Fails only if memory is short.
    pub(crate) fn queue(
        &mut self,
        slot: usize,
        logical: u64,
        reservation: Option<Reservation<'_, Value>>,
    ) -> Result {
        let index = self.index.device_index(slot, logical).ok_or(EINVAL)?;
        let value = Value::new(QUEUED).ok_or(EINVAL)?;
        match reservation {
            Some(r) if r.index() == index => {
                self.queues.fill(r, value)?;
            }
            other => {
                if let Some(r) = other {
                    self.queues.release(r);
                }
                self.queues.store(index, value, GFP_NOWAIT)?;
            }
        }
        Ok(())
    }

    /// Gives up a queue entry reservation.
    pub(crate) fn release_queued(&mut self, reservation: Reservation<'_, Value>) {
        self.queues.release(reservation);
    }

    /// Takes the block at `logical` out of the queue of device slot `slot`;
    /// returns whether it was there.
    pub(crate) fn unqueue(&mut self, slot: usize, logical: u64) -> bool {
        match self.index.device_index(slot, logical) {
            Some(index) => self.queues.remove(index).is_some(),
            None => false,
        }
    }

    /// The address of the first block queued on device slot `slot` at or
    /// after `from` and before `end`. A queue entry without a block (which
    /// cannot happen) is dropped on the way.
    pub(crate) fn next_queued(&mut self, slot: usize, from: u64, end: u64) -> Option<u64> {
        if from >= end {
            return None;
        }
        let first = self.index.device_index(slot, from)?;
        let last = self.index.device_index(slot, end - 1)?;
        let mask = (1usize << (64 - self.index.shift)) - 1;
        loop {
            let found = self.queues.find_index(first, last)?;
            match self.blocks.get(found & mask) {
                Some(block) => return (block.logical < end).then_some(block.logical),
                None => drop(self.queues.remove(found)),
            }
        }
    }

    /// How many blocks are queued on device slot `slot`.
    pub(crate) fn count_queued(&self, slot: usize) -> usize {
        let (Some(first), Some(last)) = (
            self.index.device_index(slot, 0),
            self.index.device_index(slot, u64::MAX),
        ) else {
            return 0;
        };
        count_entries(&self.queues, first, last)
    }

    /// Gives up a zone entry reservation.
    pub(crate) fn release_zone(&mut self, reservation: Reservation<'_, KBox<Zone>>) {
        self.zones.release(reservation);
    }

    /// The zone of device slot `slot` ending at `end`.
    pub(crate) fn zone(&self, slot: usize, end: u64) -> Option<&Zone> {
        let zone = self.zones.get(self.index.zone_index(slot, end)?)?;
        (zone.end == end).then_some(zone)
    }

    /// The zone of device slot `slot` ending at `end`, to change.
    pub(crate) fn zone_mut(&mut self, slot: usize, end: u64) -> Option<&mut Zone> {
        let zone = self.zones.get_mut(self.index.zone_index(slot, end)?)?;
        (zone.end == end).then_some(zone)
    }

    /// Adds `zone` to device slot `slot` through `reservation`, unless the
    /// device has it already: then, or if memory is short, `zone` comes
    /// back.
    pub(crate) fn insert_zone(
        &mut self,
        slot: usize,
        reservation: Reservation<'_, KBox<Zone>>,
        zone: KBox<Zone>,
    ) -> Result<(), KBox<Zone>> {
        let index = self.index.zone_index(slot, zone.end);
        fill_empty(&mut self.zones, index, reservation, zone)
    }
}

/// How many entries `xa` holds at indices in `first..=last`.
fn count_entries<T: ForeignOwnable>(xa: &Guard<'_, T>, first: usize, last: usize) -> usize {
    let mut count = 0;
    let mut next = xa.find_index(first, last);
    while let Some(i) = next {
        count += 1;
        next = i.checked_add(1).and_then(|n| xa.find_index(n, last));
    }
    count
}

/// Fills `reservation` with `value` if it holds index `expected` and that
/// index is empty; else releases it and gives `value` back, as when memory
/// is short (see [`Guard::fill`]).
fn fill_empty<T: 'static>(
    xa: &mut Guard<'_, KBox<T>>,
    expected: Option<usize>,
    reservation: Reservation<'_, KBox<T>>,
    value: KBox<T>,
) -> Result<(), KBox<T>> {
    if expected != Some(reservation.index()) || xa.get(reservation.index()).is_some() {
        xa.release(reservation);
        return Err(value);
    }
    xa.fill(reservation, value).map(|_| ()).map_err(|e| e.value)
}
