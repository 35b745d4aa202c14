//! Per-disk statistics and their JSON form.

use crate::model::{Kind, Service};
use std::fmt::Write as _;

/// Counters accumulated by the disk worker.  Times are simulated seconds
/// unless the name says `wall`.
#[derive(Clone, Debug, Default)]
pub struct Stats {
    /// Completed reads (including failed ones).
    pub reads: u64,
    /// Completed writes.
    pub writes: u64,
    /// Completed flushes.
    pub flushes: u64,
    /// Completed trims.
    pub trims: u64,
    /// Completed write-zeroes.
    pub write_zeroes: u64,
    /// Bytes returned by successful reads.
    pub bytes_read: u64,
    /// Bytes written (writes and write-zeroes).
    pub bytes_written: u64,
    /// Sum of service times.
    pub busy: f64,
    /// Sum of seek times.
    pub seek: f64,
    /// Sum of rotational latencies.
    pub rotation: f64,
    /// Sum of transfer times.
    pub transfer: f64,
    /// Sum of un-hidden command overheads.
    pub overhead: f64,
    /// Sum of seek distances over mechanical requests.
    pub seek_distance_sum: u128,
    /// Number of mechanical requests (reads, writes, write-zeroes).
    pub mechanical: u64,
    /// Mechanical requests served as streaming continuations.
    pub sequential: u64,
    /// Reads served from the drive's buffer without positioning.
    pub buffered: u64,
    /// Reads failed by fault injection.
    pub injected_errors: u64,
    /// Requests that failed for other reasons (I/O errors on the backing file).
    pub io_errors: u64,
    /// Deepest queue observed (requests waiting, excluding the one in service).
    pub max_queue: usize,
    /// Sum of queueing delays (start - arrival).
    pub queue_wait: f64,
}

impl Stats {
    /// Accounts one served request.
    pub fn record(&mut self, kind: Kind, len: u64, arrival: f64, s: &Service) {
        match kind {
            Kind::Read => self.reads += 1,
            Kind::Write => {
                self.writes += 1;
                self.bytes_written += len;
            }
            Kind::Flush => self.flushes += 1,
            Kind::Trim => self.trims += 1,
            Kind::WriteZeroes => {
                self.write_zeroes += 1;
                self.bytes_written += len;
            }
        }
        self.busy += s.busy;
        self.seek += s.seek;
        self.rotation += s.rotation;
        self.transfer += s.transfer;
        self.overhead += s.overhead;
        self.queue_wait += (s.start - arrival).max(0.0);
        if kind.is_mechanical() {
            self.mechanical += 1;
            self.seek_distance_sum += u128::from(s.seek_distance);
            if s.sequential {
                self.sequential += 1;
            }
            if s.buffered {
                self.buffered += 1;
            }
        }
    }

    /// Total requests.
    pub fn requests(&self) -> u64 {
        self.reads + self.writes + self.flushes + self.trims + self.write_zeroes
    }

    /// Mean seek distance in cylinders over mechanical requests.
    pub fn mean_seek_distance(&self) -> f64 {
        if self.mechanical == 0 {
            0.0
        } else {
            self.seek_distance_sum as f64 / self.mechanical as f64
        }
    }

    /// One JSON object.  `extra` holds already-formatted `"key": value` pairs
    /// (name, configuration, wall-clock data).
    pub fn to_json(
        &self,
        name: &str,
        elapsed_wall: f64,
        speed_factor: f64,
        extra: &[(&str, String)],
    ) -> String {
        let mut s = String::from("{");
        let _ = write!(s, "\"name\": {}", json_string(name));
        let _ = write!(
            s,
            ", \"requests\": {{\"total\": {}, \"reads\": {}, \"writes\": {}, \"flushes\": {}, \
             \"trims\": {}, \"write_zeroes\": {}}}",
            self.requests(),
            self.reads,
            self.writes,
            self.flushes,
            self.trims,
            self.write_zeroes
        );
        let num = |v: f64| {
            if v.is_finite() {
                format!("{v:.6}")
            } else {
                "null".into()
            }
        };
        let busy_wall = self.busy * speed_factor;
        let util = if elapsed_wall > 0.0 {
            busy_wall / elapsed_wall
        } else {
            0.0
        };
        let fields: [(&str, String); 19] = [
            ("bytes_read", self.bytes_read.to_string()),
            ("bytes_written", self.bytes_written.to_string()),
            ("busy_s", num(self.busy)),
            ("busy_wall_s", num(busy_wall)),
            ("elapsed_wall_s", num(elapsed_wall)),
            ("utilization", num(util)),
            ("mean_seek_cylinders", num(self.mean_seek_distance())),
            ("seek_s", num(self.seek)),
            ("rotation_s", num(self.rotation)),
            ("transfer_s", num(self.transfer)),
            ("overhead_s", num(self.overhead)),
            ("queue_wait_s", num(self.queue_wait)),
            ("mechanical_requests", self.mechanical.to_string()),
            ("sequential_requests", self.sequential.to_string()),
            ("buffered_reads", self.buffered.to_string()),
            ("injected_read_errors", self.injected_errors.to_string()),
            ("io_errors", self.io_errors.to_string()),
            ("max_queue_depth", self.max_queue.to_string()),
            ("speed_factor", num(speed_factor)),
        ];
        for (k, v) in fields.iter().chain(extra.iter()) {
            let _ = write!(s, ", {}: {}", json_string(k), v);
        }
        s.push('}');
        s
    }

    /// One-line human summary.
    pub fn summary(&self, name: &str, elapsed_wall: f64) -> String {
        format!(
            "disksim {name}: {} req ({} rd, {} wr, {} flush), {:.1} MiB read, {:.1} MiB written, \
             busy {:.3} s (seek {:.3}, rot {:.3}, xfer {:.3}), mean seek {:.1} cyl, {} sequential, \
             {} buffered, wall {:.3} s",
            self.requests(),
            self.reads,
            self.writes,
            self.flushes,
            self.bytes_read as f64 / 1048576.0,
            self.bytes_written as f64 / 1048576.0,
            self.busy,
            self.seek,
            self.rotation,
            self.transfer,
            self.mean_seek_distance(),
            self.sequential,
            self.buffered,
            elapsed_wall
        )
    }
}

/// JSON string literal with escapes.
pub fn json_string(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_shape() {
        let mut st = Stats::default();
        let s = Service {
            start: 1.0,
            finish: 1.01,
            seek: 0.005,
            rotation: 0.004,
            transfer: 0.001,
            seek_distance: 10,
            busy: 0.01,
            ..Service::default()
        };
        st.record(Kind::Read, 4096, 1.0, &s);
        st.bytes_read += 4096;
        let j = st.to_json("a\"b", 2.0, 1.0, &[("reorder", json_string("none"))]);
        assert!(j.starts_with("{\"name\": \"a\\\"b\""));
        assert!(j.contains("\"reads\": 1"));
        assert!(j.contains("\"mean_seek_cylinders\": 10.000000"));
        assert!(j.ends_with("\"reorder\": \"none\"}"));
    }
}
