// SPDX-License-Identifier: GPL-2.0

//! Unmount: cancel every queued block, wait for the reads in flight and the
//! running passes, then cancel the parked nodes.

use super::{unqueue, FsState, Machine};
use crate::block::{Block, BlockState};
use crate::counters;
use crate::index::Locked;
use crate::request::Outcome;
use kernel::prelude::*;

impl FsState {
    /// Unmount: cancel every queued block, wait for the reads in flight and
    /// the running passes, cancel the parked nodes; after this the
    /// filesystem is never touched again.
    pub(crate) fn shutdown(&self) {
        loop {
            let count = {
                let (mut m, ix) = self.lock();
                m.closing = true;
                ix.count_blocks()
            };
            // Room to take every queued block out at once; if memory is
            // short, one at a time. Retry if blocks came meanwhile.
            let Ok(mut taken) = KVec::with_capacity(count.max(1), GFP_KERNEL) else {
                let block = {
                    let (mut m, mut ix) = self.lock();
                    m.take_one_queued(&mut ix)
                };
                match block {
                    Some(b) => Self::cancel(b),
                    None => break,
                }
                continue;
            };
            let all = {
                let (mut m, mut ix) = self.lock();
                m.take_queued(&mut ix, &mut taken)
            };
            for b in taken {
                Self::cancel(b);
            }
            if all {
                break;
            }
        }
        {
            let mut m = self.machine.lock();
            while m.in_flight != 0 || m.passes != 0 {
                self.idle.wait(&mut m);
            }
        }
        // No pass runs any more, so none parks a node after this.
        self.cancel_parked();
    }

    fn cancel(block: KBox<Block>) {
        counters::BLOCKS_CANCELLED.inc();
        for (_, link) in block.links.iter() {
            link.request.block_done(Outcome::Cancelled);
        }
    }
}

impl Machine {
    /// Takes every queued block out of the machine into `out` while it has
    /// room; returns whether all were taken.
    fn take_queued(&mut self, ix: &mut Locked<'_>, out: &mut KVec<KBox<Block>>) -> bool {
        let mut next = ix.first_block().map(|b| (b.logical, b.state));
        while let Some((logical, state)) = next {
            next = ix.block_after(logical).map(|b| (b.logical, b.state));
            if state != BlockState::Queued {
                continue;
            }
            if out.len() == out.capacity() {
                return false;
            }
            let Some(block) = self.take_block(ix, logical) else {
                continue;
            };
            // Room was checked above: this does not allocate.
            if out.push(block, GFP_NOWAIT).is_err() {
                return false;
            }
        }
        true
    }

    /// Takes one queued block out of the index and its device queues.
    fn take_one_queued(&mut self, ix: &mut Locked<'_>) -> Option<KBox<Block>> {
        let mut next = ix.first_block().map(|b| (b.logical, b.state));
        while let Some((logical, state)) = next {
            if state == BlockState::Queued {
                return self.take_block(ix, logical);
            }
            next = ix.block_after(logical).map(|b| (b.logical, b.state));
        }
        None
    }

    /// Takes queued block `logical` out of the index and its device queues.
    fn take_block(&mut self, ix: &mut Locked<'_>, logical: u64) -> Option<KBox<Block>> {
        let block = ix.remove_block(logical)?;
        self.held = self.held.saturating_sub(1);
        unqueue(
            &mut self.devices,
            ix,
            logical,
            block.chunk_end,
            block.usable_device_set(),
        );
        Some(block)
    }
}
