// SPDX-License-Identifier: GPL-2.0

//! Blocks (`reada_extent` in the original): one tree block to fetch.
//!
//! A block is shared: however many requests want it, it is queued once and
//! read once. Each request that wants it hangs a [`Link`] on it, which
//! remembers the generation that request's parent promised and the upper
//! bound of the block's key span, so that the children's spans can be
//! computed when the block arrives.

use crate::order::Key;
use crate::request::Request;
use crate::shim::TreeBlock;
use kernel::prelude::*;
use kernel::rbtree::{RBTree, RBTreeNodeReservation};
use kernel::sync::Arc;

/// One request's interest in a block.
pub(crate) struct Link {
    pub(crate) request: Arc<Request>,
    /// The generation the parent recorded for the block.
    pub(crate) generation: u64,
    /// The block's key span, from its parent: its subtree holds the keys
    /// in `[lower, upper)`. For a leftmost child `lower` is the parent's
    /// own lower bound, not the child's first key: a search for a key below
    /// that first key lands in this child too.
    pub(crate) lower: Key,
    pub(crate) upper: Key,
}

/// How a read of the block ended, as recorded by the end io hook for the
/// machine's next pass.
pub(crate) enum Arrival {
    /// The block is up to date.
    Block(TreeBlock),
    /// The read failed or the block did not verify.
    Failed,
    /// The read was not started: the tree may have changed since the block
    /// was reached (never recorded by the hook; see `FsInfo::read_block`).
    Stale,
}

/// A copy of the block the machine may read. DUP's two copies are on one
/// device: the block is queued there once and read from the first copy
/// that has not failed, so a failed read is retried from the other.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Copy {
    pub(crate) devid: u64,
    pub(crate) mirror: u32,
    /// A read of this copy failed: the block is read from another one.
    pub(crate) failed: bool,
    /// The device was not rotational when the block was mapped.
    pub(crate) nonrot: bool,
}

/// Where the block is in its life.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum BlockState {
    /// Queued on the device of every copy; no read started.
    Queued,
    /// A read of copy `mirror` was started on device `devid`; the end io
    /// hook will report it.
    InFlight { devid: u64, mirror: u32 },
}

/// The index of blocks whose read ended, by logical address, and the node a
/// block brings for its entry there.
pub(crate) type Arrived = RBTree<u64, ()>;
pub(crate) type ArrivedNode = RBTreeNodeReservation<u64, ()>;

/// A tree block in the machine.
///
/// # Invariants
///
/// While `state` is `Queued`, the block is in the queue of every device
/// holding a copy that has not failed (once per device), under its zone (the chunk ending at
/// `chunk_end`); once `InFlight` it is in no device queue. At least one copy
/// has not failed. `links` is never empty while the block is in the
/// machine's index. `arrival` is set only while the block is in flight and
/// in the machine's arrived index, which took `arrived_node`; otherwise
/// `arrived_node` is there to take.
pub(crate) struct Block {
    pub(crate) logical: u64,
    pub(crate) level: u8,
    /// The tree the block belongs to (checked when it is read).
    pub(crate) owner: u64,
    /// The generation the first parent recorded for the block.
    pub(crate) generation: u64,
    pub(crate) chunk_end: u64,
    pub(crate) copies: KVec<Copy>,
    /// By request id.
    pub(crate) links: RBTree<u64, Link>,
    pub(crate) state: BlockState,
    /// How the read ended, until the machine processes it.
    pub(crate) arrival: Option<Arrival>,
    /// The node of the block's entry in the arrived index, while unused.
    pub(crate) arrived_node: Option<ArrivedNode>,
}

/// Most copies a block can have (RAID1C4).
pub(crate) const MAX_COPIES: usize = 4;

/// The devices of a block's usable copies, each once: a small set that
/// needs no allocation.
#[derive(Clone, Copy)]
pub(crate) struct DeviceSet {
    devids: [u64; MAX_COPIES],
    len: usize,
}

impl DeviceSet {
    pub(crate) fn iter(&self) -> impl Iterator<Item = u64> + '_ {
        self.devids.iter().take(self.len).copied()
    }
}

impl Block {
    /// The devices of [`Block::usable_devices`], as a set (at most
    /// [`MAX_COPIES`]; a block never has more).
    pub(crate) fn usable_device_set(&self) -> DeviceSet {
        let mut set = DeviceSet {
            devids: [0; MAX_COPIES],
            len: 0,
        };
        for (slot, devid) in set.devids.iter_mut().zip(self.usable_devices()) {
            *slot = devid;
            set.len += 1;
        }
        set
    }

    /// The copies not known to be bad.
    pub(crate) fn usable_copies(&self) -> impl Iterator<Item = &Copy> {
        self.copies.iter().filter(|c| !c.failed)
    }

    /// The devices holding a copy not known to be bad, each once.
    pub(crate) fn usable_devices(&self) -> impl Iterator<Item = u64> + '_ {
        self.copies.iter().enumerate().filter_map(|(i, c)| {
            let earlier = self.copies.get(..i).unwrap_or(&[]);
            let seen = earlier.iter().any(|p| !p.failed && p.devid == c.devid);
            (!c.failed && !seen).then_some(c.devid)
        })
    }
}

impl Drop for Block {
    fn drop(&mut self) {
        crate::counters::BLOCKS_FREED.inc();
    }
}
