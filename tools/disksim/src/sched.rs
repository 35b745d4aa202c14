//! In-drive request queue with optional reordering (pure, no I/O).
//!
//! Requests are kept in arrival order.  `Fifo` serves the oldest one.  The
//! reordering policies pick, among the *eligible* requests, the one with the
//! shortest seek distance (`Sstf`) or the shortest positioning time, seek plus
//! rotation (`Sptf`), ties going to the oldest.  A request is eligible when
//!
//! * no `Flush` is queued before it (a flush is a full barrier: it is served
//!   only when it is the oldest request, and nothing behind it overtakes it);
//! * it does not overlap an older queued request where either of the two
//!   modifies data (read-after-write, write-after-read and write-after-write
//!   order of the same bytes is kept).
//!
//! To bound starvation, once the oldest request has been overtaken
//! `max_bypass` times it is served next.

use crate::model::{Disk, Kind, Request};
use std::collections::VecDeque;

/// Reordering policy.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Policy {
    /// Serve in arrival order.
    Fifo,
    /// Shortest seek distance first.
    Sstf,
    /// Shortest positioning (seek + rotation) time first.
    Sptf,
}

impl Policy {
    /// Parses `none|fifo|sstf|sptf`.
    pub fn parse(s: &str) -> Option<Policy> {
        match s {
            "none" | "fifo" => Some(Policy::Fifo),
            "sstf" => Some(Policy::Sstf),
            "sptf" | "satf" => Some(Policy::Sptf),
            _ => None,
        }
    }

    /// Name used in statistics.
    pub fn name(self) -> &'static str {
        match self {
            Policy::Fifo => "none",
            Policy::Sstf => "sstf",
            Policy::Sptf => "sptf",
        }
    }
}

/// Default starvation bound.
pub const DEFAULT_MAX_BYPASS: u32 = 64;

struct Entry<T> {
    req: Request,
    arrival: f64,
    bypassed: u32,
    payload: T,
}

/// A request taken off the queue.
#[derive(Debug)]
pub struct Dispatched<T> {
    /// The request.
    pub req: Request,
    /// Its arrival time at the drive (simulated seconds).
    pub arrival: f64,
    /// Caller data attached at `push`.
    pub payload: T,
}

/// The drive's command queue.
pub struct Queue<T> {
    items: VecDeque<Entry<T>>,
    policy: Policy,
    max_bypass: u32,
}

impl<T> Queue<T> {
    /// Empty queue with the given policy.
    pub fn new(policy: Policy) -> Self {
        Queue {
            items: VecDeque::new(),
            policy,
            max_bypass: DEFAULT_MAX_BYPASS,
        }
    }

    /// Changes the starvation bound (0 = strict FIFO).
    pub fn set_max_bypass(&mut self, n: u32) {
        self.max_bypass = n;
    }

    /// Number of queued requests.
    pub fn len(&self) -> usize {
        self.items.len()
    }

    /// Whether the queue is empty.
    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }

    /// Appends a request that arrived at `arrival`.
    pub fn push(&mut self, req: Request, arrival: f64, payload: T) {
        self.items.push_back(Entry {
            req,
            arrival,
            bypassed: 0,
            payload,
        });
    }

    fn eligible(&self, i: usize) -> bool {
        if i == 0 {
            return true;
        }
        let r = &self.items[i].req;
        if r.kind == Kind::Flush {
            return false;
        }
        self.items.iter().take(i).all(|older| {
            let o = &older.req;
            o.kind != Kind::Flush && !((o.kind.modifies() || r.kind.modifies()) && o.overlaps(r))
        })
    }

    /// Index of the request to serve next, if any.
    pub fn choose(&self, disk: &Disk, now: f64) -> Option<usize> {
        if self.items.is_empty() {
            return None;
        }
        if self.policy == Policy::Fifo
            || self.items.len() == 1
            || self.items[0].bypassed >= self.max_bypass
        {
            return Some(0);
        }
        let mut best: Option<(f64, usize)> = None;
        for i in 0..self.items.len() {
            if !self.eligible(i) {
                // Everything behind a flush is ineligible as well.
                if self.items[i].req.kind == Kind::Flush {
                    break;
                }
                continue;
            }
            let r = &self.items[i].req;
            let cost = match self.policy {
                Policy::Sptf => disk.positioning_estimate(now, r),
                _ if !r.kind.is_mechanical() || disk.needs_no_positioning(now, r) => 0.0,
                _ => disk.cylinder_of(r.offset).abs_diff(disk.head_cylinder()) as f64,
            };
            if best.is_none_or(|(c, _)| cost < c) {
                best = Some((cost, i));
            }
        }
        best.map(|(_, i)| i)
    }

    /// Removes and returns the request to serve next.
    /// Removes the oldest request, whatever the policy (a drive without
    /// positioning costs has nothing to reorder for).
    pub fn pop_oldest(&mut self) -> Option<Dispatched<T>> {
        let e = self.items.pop_front()?;
        Some(Dispatched {
            req: e.req,
            arrival: e.arrival,
            payload: e.payload,
        })
    }

    /// Removes and returns the request to serve next (see [`Queue::choose`]).
    pub fn pop_next(&mut self, disk: &Disk, now: f64) -> Option<Dispatched<T>> {
        let i = self.choose(disk, now)?;
        for e in self.items.iter_mut().take(i) {
            e.bypassed = e.bypassed.saturating_add(1);
        }
        let e = self.items.remove(i)?;
        Some(Dispatched {
            req: e.req,
            arrival: e.arrival,
            payload: e.payload,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::tests::Rng;
    use crate::model::Params;
    use std::collections::HashSet;

    fn disk() -> Disk {
        Disk::new(Params::default()).unwrap()
    }

    fn random_req(rng: &mut Rng, size: u64) -> Request {
        let kind = match rng.below(10) {
            0 => Kind::Flush,
            1 => Kind::Trim,
            2..=4 => Kind::Write,
            _ => Kind::Read,
        };
        // Small offset space so overlaps happen often.
        let offset = if rng.below(3) == 0 {
            rng.below(64) * 4096
        } else {
            rng.below(size / 4096) * 4096
        };
        Request::new(kind, offset, 4096 * (1 + rng.below(8)))
    }

    /// Serves everything, with random arrivals interleaved, and checks the
    /// ordering invariants on the resulting service order.
    fn run(policy: Policy, seed: u64) {
        let mut d = disk();
        let size = d.params().size;
        let mut q: Queue<usize> = Queue::new(policy);
        let mut rng = Rng::new(seed);
        let mut reqs = Vec::new();
        let mut served = Vec::new();
        let mut now = 0.0;
        let total = 3000;
        while served.len() < total {
            let burst = rng.below(20);
            for _ in 0..burst {
                if reqs.len() < total {
                    let r = random_req(&mut rng, size);
                    q.push(r, now, reqs.len());
                    reqs.push(r);
                }
            }
            for _ in 0..rng.below(10) {
                if let Some(x) = q.pop_next(&d, now) {
                    assert_eq!(x.req, reqs[x.payload]);
                    let s = d.service(x.arrival, &x.req);
                    now = now.max(s.finish);
                    served.push(x.payload);
                }
            }
            now += rng.unit() * 0.005;
        }
        assert!(q.is_empty());
        // No loss, no duplication.
        let set: HashSet<_> = served.iter().copied().collect();
        assert_eq!(set.len(), total);
        assert_eq!(served.len(), total);
        // Position of each request in the service order.
        let mut pos = vec![0; total];
        for (p, &id) in served.iter().enumerate() {
            pos[id] = p;
        }
        for (i, a) in reqs.iter().enumerate() {
            for (j, b) in reqs.iter().enumerate().skip(i + 1) {
                // Flush barrier: nothing crosses a flush in either direction.
                if a.kind == Kind::Flush || b.kind == Kind::Flush {
                    assert!(pos[i] < pos[j], "flush barrier crossed: {i} {j}");
                }
                // Conflicting overlaps keep their order.
                if (a.kind.modifies() || b.kind.modifies()) && a.overlaps(b) {
                    assert!(pos[i] < pos[j], "conflict reordered: {i} {j}");
                }
            }
        }
        if policy == Policy::Fifo {
            assert!(served.windows(2).all(|w| w[0] < w[1]));
        }
    }

    #[test]
    fn reordering_keeps_every_request_once_and_respects_barriers() {
        for seed in 1..6 {
            run(Policy::Fifo, seed);
            run(Policy::Sstf, seed);
            run(Policy::Sptf, seed);
        }
    }

    fn batch_time(policy: Policy) -> f64 {
        let mut d = disk();
        let size = d.params().size;
        let mut q: Queue<()> = Queue::new(policy);
        let mut rng = Rng::new(99);
        for _ in 0..32 {
            q.push(
                Request::new(Kind::Read, rng.below(size / 4096) * 4096, 16384),
                0.0,
                (),
            );
        }
        let mut finish = 0.0;
        let mut n = 0;
        while let Some(x) = q.pop_next(&d, finish) {
            finish = d.service(x.arrival, &x.req).finish;
            n += 1;
        }
        assert_eq!(n, 32);
        finish
    }

    #[test]
    fn reordering_beats_fifo_on_scattered_batch() {
        let fifo = batch_time(Policy::Fifo);
        let sstf = batch_time(Policy::Sstf);
        let sptf = batch_time(Policy::Sptf);
        eprintln!(
            "32 scattered 16 KiB reads: fifo {fifo:.4} s, sstf {sstf:.4} s, sptf {sptf:.4} s"
        );
        assert!(sstf < 0.8 * fifo, "sstf {sstf} fifo {fifo}");
        assert!(sptf < 0.8 * fifo, "sptf {sptf} fifo {fifo}");
    }

    #[test]
    fn starvation_is_bounded() {
        let d = disk();
        let mut q: Queue<u32> = Queue::new(Policy::Sstf);
        q.set_max_bypass(3);
        // Far request first, then a stream of near ones.
        q.push(
            Request::new(Kind::Read, d.params().size - 4096, 4096),
            0.0,
            0,
        );
        for i in 1..10 {
            q.push(Request::new(Kind::Read, i * 4096, 4096), 0.0, i as u32);
        }
        let order: Vec<u32> =
            std::iter::from_fn(|| q.pop_next(&d, 0.0).map(|x| x.payload)).collect();
        let far = order.iter().position(|&p| p == 0).unwrap();
        assert_eq!(far, 3, "{order:?}");
    }

    #[test]
    fn flush_at_head_is_served_first_and_blocks() {
        let d = disk();
        let mut q: Queue<u32> = Queue::new(Policy::Sptf);
        q.push(Request::new(Kind::Read, 1 << 30, 4096), 0.0, 0);
        q.push(Request::new(Kind::Write, 4096, 4096), 0.0, 1);
        q.push(Request::new(Kind::Flush, 0, 0), 0.0, 2);
        q.push(Request::new(Kind::Read, 0, 4096), 0.0, 3);
        let order: Vec<u32> =
            std::iter::from_fn(|| q.pop_next(&d, 0.0).map(|x| x.payload)).collect();
        assert_eq!(order[2], 2);
        assert_eq!(order[3], 3);
    }
}
