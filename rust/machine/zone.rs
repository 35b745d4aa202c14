// SPDX-License-Identifier: GPL-2.0

//! Zones (`reada_zone` in the original): one chunk as seen from one device,
//! and the zone picker that chooses which zone a device reads next.
//!
//! A device reads one zone at a time, in ascending address order, so that
//! it streams. When its zone runs dry it takes the zone with the most queued
//! blocks, preferring zones that no mirror peer is reading right now, and
//! locks the peers' copies of it: two mirrors then read different parts of
//! the filesystem instead of both sides of one chunk.
//!
//! The picker keeps each device's zones that have queued blocks in a
//! red-black tree ordered by [`ZonePick`], so picking the best zone and
//! refiling a zone whose count or lock changed are O(log n) in the number of
//! zones. Each zone owns exactly one tree node, allocated with the zone, so
//! refiling never allocates (and may run under a spinlock).

use super::{Limits, Machine};
use crate::index::Locked;
use crate::order::ZonePick;
use kernel::prelude::*;
use kernel::rbtree::{RBTree, RBTreeNodeReservation};

/// One chunk on one device.
///
/// # Invariants
///
/// Exactly one of `filed` and `spare` is `Some`: the zone is in its device's
/// picker under the key `filed` (then `queued > 0`), or it is not and keeps
/// its picker node in `spare`.
pub(crate) struct Zone {
    /// Logical range of the chunk.
    pub(crate) start: u64,
    pub(crate) end: u64,
    /// Blocks queued on this device in this zone.
    pub(crate) queued: u64,
    /// Other devices holding copies of this chunk.
    pub(crate) peers: KVec<u64>,
    /// How many peers are reading their copy of this chunk right now.
    pub(crate) locked_by: u32,
    filed: Option<ZonePick>,
    spare: Option<RBTreeNodeReservation<ZonePick, ()>>,
}

impl Zone {
    /// A zone with nothing queued, owning its picker node. Allocates.
    pub(crate) fn new(start: u64, end: u64, peers: KVec<u64>) -> Result<Self> {
        Ok(Zone {
            start,
            end,
            queued: 0,
            peers,
            locked_by: 0,
            filed: None,
            spare: Some(RBTreeNodeReservation::new(GFP_KERNEL)?),
        })
    }

    fn pick_key(&self) -> ZonePick {
        ZonePick::new(self.locked_by, self.queued, self.end)
    }
}

/// A device's zones with queued blocks, best last.
pub(crate) struct ZonePicker {
    tree: RBTree<ZonePick, ()>,
}

impl ZonePicker {
    pub(crate) fn new() -> Self {
        ZonePicker {
            tree: RBTree::new(),
        }
    }

    /// Refiles `zone` after its count or lock changed: takes it out of the
    /// picker, and puts it back under its new key if it has queued blocks.
    /// Never allocates.
    pub(crate) fn refile(&mut self, zone: &mut Zone) {
        let node = match zone.filed.take() {
            Some(key) => self.tree.remove_node(&key).map(|n| n.into_reservation()),
            None => zone.spare.take(),
        };
        // By the invariant of `Zone`, the zone had exactly one node.
        let Some(node) = node else { return };
        if zone.queued > 0 {
            let key = zone.pick_key();
            // Keys are unique per device (they contain the zone's end).
            self.tree.insert(node.into_node(key, ()));
            zone.filed = Some(key);
        } else {
            zone.spare = Some(node);
        }
    }

    /// The end of the best zone with queued blocks, if any.
    pub(crate) fn best(&mut self) -> Option<u64> {
        self.tree.cursor_back().map(|c| c.current().0.end)
    }
}

impl Machine {
    /// The next block device `devid` should read, if it has a free slot
    /// (by its limit in `limits`): the first queued block at or after its
    /// read pointer in its current zone; when the zone runs dry, the best
    /// zone of its picker.
    pub(super) fn next_for_device(
        &mut self,
        ix: &mut Locked<'_>,
        devid: u64,
        limits: Limits,
    ) -> Option<u64> {
        let mut entered = None;
        loop {
            let dev = self.devices.get_mut(&devid)?;
            if dev.in_flight >= limits.of(dev) {
                return None;
            }
            if let Some(zone_end) = dev.current {
                if let Some(logical) = ix.next_queued(dev.slot, dev.cursor, zone_end) {
                    return Some(logical);
                }
                if entered == Some(zone_end) {
                    // Just entered, and nothing is queued in it: its count
                    // is wrong (cannot happen). Repair it rather than pick
                    // it forever.
                    if let Some(zone) = ix.zone_mut(dev.slot, zone_end) {
                        zone.queued = 0;
                        dev.picker.refile(zone);
                    }
                }
                self.leave_zone(ix, devid);
                continue;
            }
            let zone_end = dev.picker.best()?;
            if !self.enter_zone(ix, devid, zone_end) {
                return None;
            }
            entered = Some(zone_end);
        }
    }

    /// Makes `zone_end` the current zone of `devid` and locks the peers'
    /// copies of the chunk; false if the device has no such zone.
    fn enter_zone(&mut self, ix: &mut Locked<'_>, devid: u64, zone_end: u64) -> bool {
        let Some(dev) = self.devices.get_mut(&devid) else {
            return false;
        };
        let Some(zone) = ix.zone(dev.slot, zone_end) else {
            return false;
        };
        dev.current = Some(zone_end);
        dev.cursor = zone.start;
        self.lock_peers(ix, devid, zone_end, true);
        true
    }

    /// Leaves the current zone of `devid`, unlocking the peers' copies.
    fn leave_zone(&mut self, ix: &mut Locked<'_>, devid: u64) {
        let Some(zone_end) = self.devices.get_mut(&devid).and_then(|d| d.current.take()) else {
            return;
        };
        self.lock_peers(ix, devid, zone_end, false);
    }

    fn lock_peers(&mut self, ix: &mut Locked<'_>, devid: u64, zone_end: u64, lock: bool) {
        let Some(slot) = self.devices.get(&devid).map(|d| d.slot) else {
            return;
        };
        let mut i = 0;
        loop {
            let peer = match ix.zone(slot, zone_end).and_then(|z| z.peers.get(i)) {
                Some(p) => *p,
                None => return,
            };
            i += 1;
            let Some(pdev) = self.devices.get_mut(&peer) else {
                continue;
            };
            let Some(zone) = ix.zone_mut(pdev.slot, zone_end) else {
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
}
