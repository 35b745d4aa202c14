//! Pure timing model of a flash drive (SATA SSD or NVMe): no seek, no
//! rotation, a fixed access latency and internal parallelism.
//!
//! The drive has `channels` units that each serve one request at a time,
//! and one link to the host that carries the data of one request at a time:
//!
//! ```text
//! start    = max(arrival, the earliest free channel)
//! ready    = start + latency                  (the channel reads its pages)
//! finish   = max(ready, link_free) + len / rate
//! link_free = finish; that channel is free at finish
//! ```
//!
//! So one request at a time costs `latency + len / rate` whatever its
//! address (random reads cost what sequential ones do), `channels` queued
//! requests overlap their latencies, and the link bounds the throughput of
//! any mix at `rate`.  Finish times never decrease in the order requests are
//! served, which the server relies on to reply in that order.  Flush and
//! trim wait for every channel and cost nothing themselves.

use crate::model::{Request, Service};

/// Flash model parameters.
#[derive(Clone, Debug, PartialEq)]
pub struct FlashParams {
    /// Access latency of one request in milliseconds.
    pub latency_ms: f64,
    /// Requests the drive serves at once.
    pub channels: usize,
    /// Link transfer rate in bytes per second.
    pub rate: f64,
}

impl Default for FlashParams {
    /// A SATA SSD: 80 us, 8 channels, 500 MB/s.
    fn default() -> Self {
        FlashParams {
            latency_ms: 0.08,
            channels: 8,
            rate: 500e6,
        }
    }
}

impl FlashParams {
    /// No modelled time (`--drive none`): no latency, as many requests at
    /// once as the server takes, a link no request waits for. A request
    /// costs only what serving it from the backing file costs.
    pub fn unslowed() -> Self {
        FlashParams {
            latency_ms: 0.0,
            channels: 1024,
            rate: 1e15,
        }
    }
}

/// The flash drive's state: when each channel and the link become free.
#[derive(Clone, Debug)]
pub struct Flash {
    params: FlashParams,
    latency: f64,
    /// When each channel is free (simulated seconds).
    channel_free: Vec<f64>,
    /// When the link is free: the last request's finish.
    link_free: f64,
}

impl Flash {
    /// Builds the model, checking the parameters.
    pub fn new(params: FlashParams) -> Result<Self, String> {
        if !(params.latency_ms.is_finite() && params.latency_ms >= 0.0) {
            return Err("flash latency must be >= 0".into());
        }
        if !(1..=1024).contains(&params.channels) {
            return Err("flash channels must be in 1..=1024".into());
        }
        if !(params.rate.is_finite() && params.rate > 0.0) {
            return Err("transfer rate must be positive".into());
        }
        Ok(Flash {
            latency: params.latency_ms / 1e3,
            channel_free: vec![0.0; params.channels],
            link_free: 0.0,
            params,
        })
    }

    /// Model parameters.
    pub fn params(&self) -> &FlashParams {
        &self.params
    }

    /// Serves one request that reached the drive at `arrival` (simulated
    /// seconds).  `rotation` in the result holds the access latency and
    /// `overhead` the wait for a channel; `busy` is the time it adds to the
    /// drive's busy time (the part of it during which nothing else was in
    /// service).
    pub fn service(&mut self, arrival: f64, req: &Request) -> Service {
        let arrival = if arrival.is_finite() {
            arrival.max(0.0)
        } else {
            0.0
        };
        if !req.kind.is_mechanical() {
            let start = arrival.max(self.link_free);
            return Service {
                start,
                finish: start,
                ..Service::default()
            };
        }
        // The channel free first; ties go to the lowest index.
        let (k, free) = self.channel_free.iter().copied().enumerate().fold(
            (0, f64::INFINITY),
            |best, (i, t)| {
                if t < best.1 {
                    (i, t)
                } else {
                    best
                }
            },
        );
        let start = arrival.max(free);
        let ready = start + self.latency;
        let transfer = req.len as f64 / self.params.rate;
        let finish = ready.max(self.link_free) + transfer;
        let busy = finish - start.max(self.link_free);
        self.channel_free[k] = finish;
        self.link_free = finish;
        Service {
            start,
            finish,
            overhead: start - arrival,
            rotation: self.latency,
            transfer,
            busy,
            ..Service::default()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::tests::Rng;
    use crate::model::Kind;

    fn ssd() -> Flash {
        Flash::new(FlashParams::default()).unwrap()
    }

    /// Serves `offsets` (4 KiB reads) one at a time, each arriving when
    /// the one before finished; returns the total time.
    fn one_at_a_time(f: &mut Flash, offsets: &[u64]) -> f64 {
        let mut t = 0.0;
        for &o in offsets {
            t = f.service(t, &Request::new(Kind::Read, o, 4096)).finish;
        }
        t
    }

    #[test]
    fn one_request_costs_latency_and_transfer() {
        let mut rng = Rng::new(7);
        let offsets: Vec<u64> = (0..1000).map(|_| rng.below(1 << 18) * 4096).collect();
        let t = one_at_a_time(&mut ssd(), &offsets);
        let each = 80e-6 + 4096.0 / 500e6;
        assert!((t / 1000.0 - each).abs() < 1e-9, "{} per read", t / 1000.0);
    }

    #[test]
    fn address_order_does_not_matter() {
        let mut rng = Rng::new(3);
        let random: Vec<u64> = (0..500).map(|_| rng.below(1 << 18) * 4096).collect();
        let mut sorted = random.clone();
        sorted.sort_unstable();
        let (a, b) = (
            one_at_a_time(&mut ssd(), &random),
            one_at_a_time(&mut ssd(), &sorted),
        );
        assert!((a - b).abs() < 1e-9, "random {a} sorted {b}");
    }

    #[test]
    fn queued_requests_overlap_on_the_channels() {
        // 800 random 4 KiB reads queued at once: 8 channels serve them in
        // about 100 latencies, 8 times faster than one at a time.
        let mut rng = Rng::new(11);
        let offsets: Vec<u64> = (0..800).map(|_| rng.below(1 << 18) * 4096).collect();
        let serial = one_at_a_time(&mut ssd(), &offsets);
        let mut f = ssd();
        let mut last = 0.0f64;
        let mut busy = 0.0;
        for &o in &offsets {
            let s = f.service(0.0, &Request::new(Kind::Read, o, 4096));
            assert!(s.finish >= last, "finish times go back");
            last = s.finish;
            busy += s.busy;
        }
        let ratio = serial / last;
        assert!(
            (7.0..=8.0).contains(&ratio),
            "queued {last} s, serial {serial} s: {ratio}x"
        );
        // Busy time never counts overlapping service twice.
        assert!((busy - last).abs() < 1e-9, "busy {busy}, elapsed {last}");
    }

    #[test]
    fn the_unslowed_drive_adds_no_time() {
        // Queued at once or one at a time, random or not, a read finishes
        // when it arrives, to within a microsecond.
        let mut f = Flash::new(FlashParams::unslowed()).unwrap();
        let mut rng = Rng::new(5);
        for i in 0..5000u64 {
            let arrival = (i / 100) as f64 * 1e-3;
            let len = 4096 << rng.below(5);
            let s = f.service(
                arrival,
                &Request::new(Kind::Read, rng.below(1 << 18) * 4096, len),
            );
            assert!(
                s.finish - arrival < 1e-6,
                "read {i}: {} s late",
                s.finish - arrival
            );
        }
    }

    #[test]
    fn large_requests_run_at_the_link_rate() {
        let mut f = ssd();
        let mut last = 0.0;
        for i in 0..100u64 {
            last = f
                .service(0.0, &Request::new(Kind::Read, i << 20, 1 << 20))
                .finish;
        }
        let rate = (100u64 << 20) as f64 / last;
        assert!((rate / 500e6 - 1.0).abs() < 0.01, "{rate} B/s");
    }

    #[test]
    fn flush_waits_for_the_link_and_bad_parameters_fail() {
        let mut f = ssd();
        let r = f.service(0.0, &Request::new(Kind::Read, 0, 1 << 20));
        let fl = f.service(0.0, &Request::new(Kind::Flush, 0, 0));
        assert_eq!((fl.start, fl.finish), (r.finish, r.finish));
        for p in [
            FlashParams {
                channels: 0,
                ..FlashParams::default()
            },
            FlashParams {
                rate: 0.0,
                ..FlashParams::default()
            },
            FlashParams {
                latency_ms: -1.0,
                ..FlashParams::default()
            },
        ] {
            assert!(Flash::new(p).is_err());
        }
    }
}
