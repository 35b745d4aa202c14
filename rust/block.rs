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
use kernel::prelude::*;
use kernel::rbtree::RBTree;
use kernel::sync::Arc;

/// One request's interest in a block.
pub(crate) struct Link {
    pub(crate) request: Arc<Request>,
    /// The generation the parent recorded for the block.
    pub(crate) generation: u64,
    /// Keys of the block's subtree are below this (from the parent).
    pub(crate) upper: Key,
}

/// A copy of the block the machine may read: one per device holding one
/// (DUP's two copies on one device count once).
#[derive(Clone, Copy, Debug)]
pub(crate) struct Copy {
    pub(crate) devid: u64,
    pub(crate) mirror: u32,
    /// A read of this copy failed: the block is read from another one.
    pub(crate) failed: bool,
}

/// Where the block is in its life.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum BlockState {
    /// Queued on the device of every copy; no read started.
    Queued,
    /// A read was started on device `devid`; the end io hook will report it.
    InFlight { devid: u64 },
}

/// A tree block in the machine.
///
/// # Invariants
///
/// While `state` is `Queued`, the block is in the queue of every device in
/// `copies` whose copy has not failed, under its zone (the chunk ending at
/// `chunk_end`); once `InFlight` it is in no device queue. At least one copy
/// has not failed. `links` is never empty while the block is in the
/// machine's index.
pub(crate) struct Block {
    pub(crate) logical: u64,
    pub(crate) level: u8,
    /// The tree the block belongs to (checked when it is read).
    pub(crate) owner: u64,
    pub(crate) chunk_end: u64,
    pub(crate) copies: KVec<Copy>,
    /// By request id.
    pub(crate) links: RBTree<u64, Link>,
    pub(crate) state: BlockState,
}

impl Block {
    /// The copies not known to be bad.
    pub(crate) fn usable_copies(&self) -> impl Iterator<Item = &Copy> {
        self.copies.iter().filter(|c| !c.failed)
    }
}

impl Drop for Block {
    fn drop(&mut self) {
        crate::counters::BLOCKS_FREED.inc();
    }
}
