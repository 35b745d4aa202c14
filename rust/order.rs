// SPDX-License-Identifier: GPL-2.0

//! The pure orderings the readahead runs on: btrfs keys, key spans, the
//! order in which a device picks its next zone, and when a request's tree
//! counts as warm.
//!
//! Nothing here touches the kernel, so the same file is also compiled into a
//! host test crate (`tools/order-tests`) and unit-tested with `cargo test`.

/// A btrfs key in CPU byte order. Keys order as (objectid, type, offset),
/// which is the field order here, so the derived `Ord` is btrfs's order.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Debug, Default)]
pub(crate) struct Key {
    pub(crate) objectid: u64,
    pub(crate) type_: u8,
    pub(crate) offset: u64,
}

impl Key {
    /// The largest key; as an exclusive upper bound it means "no bound".
    pub(crate) const MAX: Key = Key {
        objectid: u64::MAX,
        type_: u8::MAX,
        offset: u64::MAX,
    };
}

/// Whether a subtree holding the keys `[lower, upper)` has any key in the
/// requested range `[start, end)`.
///
/// A child's span runs from its key in the parent to the next key in the
/// parent, or, for the last child, to the parent's own upper bound.
pub(crate) fn span_meets_range(lower: Key, upper: Key, start: Key, end: Key) -> bool {
    lower < end && upper > start
}

/// Where a zone stands in its device's choice of the next zone to read.
///
/// Larger is better: first a zone no mirror peer is reading now, then the
/// zone with the most queued blocks, ties broken by the zone's end (which is
/// unique per device, so no two zones of a device have the same key).
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Debug)]
pub(crate) struct ZonePick {
    pub(crate) unlocked: bool,
    pub(crate) queued: u64,
    pub(crate) end: u64,
}

impl ZonePick {
    pub(crate) fn new(locked_by_peers: u32, queued: u64, end: u64) -> Self {
        ZonePick {
            unlocked: locked_by_peers == 0,
            queued,
            end,
        }
    }
}

/// Of the blocks a request looked up in memory, the hits it needs per miss
/// while its tree counts as warm: at most one in five missed.
const WARM_HITS_PER_MISS: u64 = 4;

/// Whether a request that found `found` of its blocks in memory and missed
/// `missed` reads a warm tree, whose cached nodes the fast path expands at
/// once. A request on a cold tree sends its cached nodes through the
/// machine instead, where they are expanded in address order with the
/// blocks it reads: expanding the few cached ones at once, depth first,
/// costs a rotating disk its sweep. A request with no lookups yet is warm.
pub(crate) fn tree_is_warm(found: u64, missed: u64) -> bool {
    missed <= found / WARM_HITS_PER_MISS
}
