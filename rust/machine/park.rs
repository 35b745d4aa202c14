// SPDX-License-Identifier: GPL-2.0

//! The bound on what one filesystem's machine holds: parked nodes.
//!
//! A request over a tree far larger than memory must not queue the whole
//! tree at once. While the machine of a filesystem holds `max_queued_blocks`
//! blocks (queued or in flight) or more, a node (level 1 and up) that would
//! be expanded or queued is parked instead: its want is kept, with its
//! request's link. A pass expands parked nodes again once the machine holds
//! fewer, deepest first, so that what is parked drains into leaves before
//! more nodes are opened.
//!
//! The machine then holds at most the bound plus one node's children: only
//! a node expanded while the machine is below the bound adds blocks, at most
//! its children. What is parked is nodes only, never leaves: per request at
//! most the tree's nodes, about one block in a hundred or more (a node has
//! up to 121 children with 4 KiB nodes, 493 with 16 KiB), each parked at
//! about half the memory of a queued block.
//!
//! A pass that has spent its budget for blocks found in memory parks the
//! nodes it has left the same way (see `FsState::queue_wants`), for the
//! next pass to expand, rather than queueing blocks that are in memory.
//!
//! A parked node is looked up in memory when it is expanded (it was just
//! read, or found there) and expanded on the fast path; if it is not in
//! memory (it was evicted, or parked before it was read), it is queued.

use super::{FsState, Want};
use crate::counters;
use crate::request::{Outcome, Request};
use kernel::alloc::KVVec;
use kernel::prelude::*;
use kernel::sync::Arc;

/// Tree levels (btrfs's `BTRFS_MAX_LEVEL`).
const LEVELS: usize = 8;

/// The bound: the `max_queued_blocks` module parameter (0: none).
fn max_queued_blocks() -> usize {
    usize::try_from(crate::module_parameters::max_queued_blocks.value()).unwrap_or(usize::MAX)
}

/// A node whose expansion waits for room in the machine.
struct ParkedNode {
    request: Arc<Request>,
    want: Want,
    /// How the node's link ends once it is expanded: `Some` for a node that
    /// arrived (read, or found in memory, and counted so), `None` for one
    /// parked before it was looked up.
    outcome: Option<Outcome>,
}

/// A filesystem's parked nodes: a stack per level.
pub(super) struct Parked {
    levels: [KVec<ParkedNode>; LEVELS],
}

impl Parked {
    pub(super) const fn new() -> Self {
        Parked {
            levels: [const { KVec::new() }; LEVELS],
        }
    }

    /// Takes out the last node parked at the lowest level.
    fn pop_deepest(&mut self) -> Option<ParkedNode> {
        self.levels.iter_mut().find_map(|l| l.pop())
    }
}

impl FsState {
    /// Whether the machine holds as many blocks as it may: nodes park.
    pub(super) fn full(&self) -> bool {
        let limit = max_queued_blocks();
        limit != 0 && self.machine.lock().held >= limit
    }

    /// Parks node `want`, taking over its link of `request`; gives the want
    /// back if memory is short, for the caller to go on without parking.
    /// The caller counts a node parked for the bound in `nodes_parked`; one
    /// parked because a pass spent its budget is not counted.
    pub(super) fn park(
        &self,
        request: &Arc<Request>,
        want: Want,
        outcome: Option<Outcome>,
    ) -> Result<(), Want> {
        let level = usize::from(want.level).min(LEVELS - 1);
        let mut parked = self.parked.lock();
        let stack = &mut parked.levels[level];
        if stack.reserve(1, GFP_KERNEL).is_err() {
            return Err(want);
        }
        let node = ParkedNode {
            request: request.clone(),
            want,
            outcome,
        };
        // Room was reserved above: this does not allocate.
        if stack.push(node, GFP_NOWAIT).is_err() {
            // Cannot happen; the want went with the node.
            drop(parked);
            request.block_done(Outcome::NoMemory);
            return Ok(());
        }
        Ok(())
    }

    /// Expands the deepest parked node if the machine has room; false if
    /// it has none, nothing is parked, or the filesystem is unmounting.
    /// `cached` is the pass's budget for the fast path.
    pub(super) fn unpark_one(&self, cached: &mut usize) -> bool {
        if self.full() || self.machine.lock().closing {
            return false;
        }
        let Some(node) = self.parked.lock().pop_deepest() else {
            return false;
        };
        let ParkedNode {
            request,
            want,
            outcome,
        } = node;
        let Some(tb) = self.fs.get().find_block(want.logical) else {
            self.queue_block(&request, want);
            return true;
        };
        let outcome = outcome.unwrap_or_else(|| {
            counters::BLOCKS_CACHED.inc();
            Outcome::Cached
        });
        let mut children = KVVec::new();
        match Self::wanted_children(&tb, &want, &request, &mut children) {
            Ok(n) => {
                drop(tb);
                counters::NODES_EXPANDED.inc();
                request.add_outstanding(n);
                self.queue_wants(&request, children, cached);
                request.block_done(outcome);
            }
            Err(lost) => {
                if lost == Outcome::Stale {
                    counters::BLOCKS_STALE.inc();
                }
                request.block_done(lost);
            }
        }
        true
    }

    /// Unmount: ends the link of every parked node as cancelled.
    pub(super) fn cancel_parked(&self) {
        loop {
            let Some(node) = self.parked.lock().pop_deepest() else {
                return;
            };
            node.request.block_done(Outcome::Cancelled);
        }
    }
}
