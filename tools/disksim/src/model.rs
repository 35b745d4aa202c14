//! Pure timing model of a rotating disk, after Ruemmler & Wilkes (1994),
//! "An introduction to disk drive modeling".
//!
//! The model never sleeps and never looks at a real clock: every call takes
//! the simulated time (seconds, `f64`) at which a request reached the drive
//! and returns when the drive started and finished it.  The server maps
//! simulated time to wall-clock time (scaled by the speed factor).
//!
//! Service time of a mechanical request (read, write, write-zeroes):
//!
//! ```text
//! start    = max(arrival, busy_until)
//! ready    = max(arrival + overhead, busy_until)      (command overhead overlaps
//!                                                      the previous transfer)
//! seek     = seek_curve(|cyl(offset) - head_cyl|)
//! rotation = time until the platter angle (t * rpm/60 mod 1) equals the
//!            target angle (offset mod track_bytes) / track_bytes, t = ready + seek
//! transfer = len / rate
//! finish   = ready + seek + rotation + transfer
//! ```
//!
//! A request that starts exactly where the previous one ended, and arrives
//! while the drive's read-ahead would still be running (gap since the drive
//! went idle <= readahead / rate), is *streaming*: the head is on the right
//! track and lined up (track/cylinder skew hides switches), so seek and
//! rotation are zero and back-to-back sequential requests run at the media
//! rate.  A streaming read after a read also gets the read-ahead credit: the
//! drive kept reading after the previous request finished, so
//!
//! ```text
//! finish = max(ready, busy_until + len / rate)
//! ```
//!
//! (a streaming write, or a read after a write: `finish = ready + len/rate`).
//!
//! The drive's buffer.  After a read ends at byte `e` at time `F`, an idle
//! drive keeps reading the following bytes into a segment of its buffer, up
//! to `readahead` bytes: by time `t` it holds `[start, e + min(readahead,
//! (t - F) * rate))`.  The look-ahead stops when the head leaves for a
//! request the buffer cannot serve; the segment is then kept as it is, and
//! the buffer holds the `cache_segments` most recent segments (the one being
//! filled included).  A read that lies wholly in a kept segment is served
//! from the buffer at `ready`.  A read that starts in the segment being
//! filled, and ends within its `readahead` bytes (or arrives while the
//! look-ahead still runs), waits only for the media to reach its end:
//!
//! ```text
//! finish = max(ready, F + (offset + len - e) / rate)
//! ```
//!
//! unless positioning afresh would be quicker.  So a request for a block the
//! head has just passed, arriving a little late, is a buffer hit, as on a
//! real drive, where without the buffer it would wait for a whole
//! revolution.  Writes, write-zeroes and trims drop the segments they
//! overlap and stop the look-ahead.  `cache_segments = 0` gives the drive no
//! buffer: only a request continuing the previous one exactly streams.
//!
//! Geometry.  The export is a region of a drive of `capacity` bytes,
//! starting at `region_start`; `cyl(x)` maps the drive byte `region_start +
//! x` linearly onto the cylinders, of which there are `capacity /
//! (heads * bytes per track)` unless given.  The seek curve spans the whole
//! drive, so a small export on a big drive seeks across a few hundred
//! cylinders at most, as a filesystem in a partition of a multi-terabyte
//! disk does.  By default the drive is the export (capacity = export size,
//! one head): the whole stroke spans the export.

/// Sector size used for fault-injection ranges and alignment.
pub const SECTOR: u64 = 512;

/// Model parameters (all times in milliseconds as on the command line).
#[derive(Clone, Debug, PartialEq)]
pub struct Params {
    /// Export size in bytes.
    pub size: u64,
    /// Spindle speed in revolutions per minute.
    pub rpm: f64,
    /// Sustained media transfer rate in bytes per second.
    pub rate: f64,
    /// Seek time for a distance of one cylinder.
    pub track_to_track_ms: f64,
    /// Mean seek time over uniformly random pairs of cylinders.
    pub avg_seek_ms: f64,
    /// Seek time over the whole disk (distance cylinders - 1).
    pub full_stroke_ms: f64,
    /// Number of cylinders; `None` = capacity / (heads * bytes per track),
    /// at least 64.
    pub cylinders: Option<u64>,
    /// Capacity of the whole drive in bytes; `None` = the export size.
    pub capacity: Option<u64>,
    /// Recording surfaces (tracks per cylinder).
    pub heads: u64,
    /// Where the export starts on the drive, in bytes.
    pub region_start: u64,
    /// Per-command controller overhead (hidden when the drive is busy).
    pub overhead_ms: f64,
    /// Drive read-ahead segment in bytes: how far the drive keeps reading
    /// after a read, which also bounds the idle gap a sequential stream may
    /// have (gap <= readahead / rate).  0: only queued requests stream.
    pub readahead: u64,
    /// Segments the drive's buffer holds (see the module comment); 0: no
    /// buffer, only exact continuations stream.
    pub cache_segments: u64,
}

impl Default for Params {
    fn default() -> Self {
        Params {
            size: 8 << 30,
            rpm: 7200.0,
            rate: 150e6,
            track_to_track_ms: 0.8,
            avg_seek_ms: 8.5,
            full_stroke_ms: 16.0,
            cylinders: None,
            capacity: None,
            heads: 1,
            region_start: 0,
            overhead_ms: 0.1,
            readahead: 2 << 20,
            cache_segments: 16,
        }
    }
}

/// Largest supported cylinder count (the seek fit sums over all distances).
pub const MAX_CYLINDERS: u64 = 20_000_000;
/// Smallest cylinder count used when it is derived from the geometry.
pub const MIN_DEFAULT_CYLINDERS: u64 = 64;

/// Kind of a request as the drive sees it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Kind {
    /// Read data.
    Read,
    /// Write data.
    Write,
    /// Cache flush: a barrier, no mechanical cost.
    Flush,
    /// Discard: accepted, no mechanical cost.
    Trim,
    /// Write zeroes: timed like a write of the same length.
    WriteZeroes,
}

impl Kind {
    /// Whether the request moves the head and transfers data.
    pub fn is_mechanical(self) -> bool {
        matches!(self, Kind::Read | Kind::Write | Kind::WriteZeroes)
    }

    /// Whether the request changes the contents of the disk.
    pub fn modifies(self) -> bool {
        matches!(self, Kind::Write | Kind::Trim | Kind::WriteZeroes)
    }
}

/// One request: byte offset and length on the export.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Request {
    /// What the request does.
    pub kind: Kind,
    /// First byte.
    pub offset: u64,
    /// Length in bytes.
    pub len: u64,
}

impl Request {
    /// Convenience constructor.
    pub fn new(kind: Kind, offset: u64, len: u64) -> Self {
        Request { kind, offset, len }
    }

    /// Whether the byte ranges of two requests intersect.
    pub fn overlaps(&self, other: &Request) -> bool {
        let a_end = self.offset.saturating_add(self.len);
        let b_end = other.offset.saturating_add(other.len);
        self.offset < b_end && other.offset < a_end
    }
}

/// Timing of one served request (seconds of simulated time).
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Service {
    /// When the drive started working on the request.
    pub start: f64,
    /// When the last byte was transferred.
    pub finish: f64,
    /// Command overhead that was not hidden behind the previous request.
    pub overhead: f64,
    /// Seek time.
    pub seek: f64,
    /// Rotational latency.
    pub rotation: f64,
    /// Media transfer time.
    pub transfer: f64,
    /// Seek distance in cylinders.
    pub seek_distance: u64,
    /// Served as a streaming continuation of the previous request.
    pub sequential: bool,
    /// A read served from the drive's buffer (wholly, or waiting only for
    /// the look-ahead to reach its end), without positioning the head.
    pub buffered: bool,
    /// Time the request adds to the drive's busy time: `finish - start` on
    /// a disk, which serves one request at a time; on a flash drive only
    /// the part during which no earlier request was in service.
    pub busy: f64,
}

impl Service {
    /// `finish - start`.
    pub fn service_time(&self) -> f64 {
        self.finish - self.start
    }
}

/// Seek time as a function of distance `d` in cylinders:
///
/// ```text
/// t(0) = 0
/// t(d) = a + b * sqrt(d)   for 1 <= d <= B        (arm accelerates then brakes)
/// t(d) = c + e * d         for B <  d <= D        (arm coasts at full speed)
/// ```
///
/// with `D = cylinders - 1` and the boundary `B = D / 3`.  The four
/// coefficients solve the linear system
///
/// ```text
/// t(1) = track_to_track
/// t(D) = full_stroke
/// a + b sqrt(B) = c + e B                        (continuity at B)
/// sum_d P(d) t(d) = average                      (random-seek mean)
/// ```
///
/// where `P(0) = 1/C`, `P(d) = 2 (C - d) / C^2` is the distance distribution
/// of two independent uniformly random cylinders.
#[derive(Clone, Debug, PartialEq)]
pub struct SeekCurve {
    /// Constant of the short-seek part (seconds).
    pub a: f64,
    /// sqrt coefficient of the short-seek part (seconds per sqrt(cylinder)).
    pub b: f64,
    /// Constant of the long-seek part (seconds).
    pub c: f64,
    /// Slope of the long-seek part (seconds per cylinder).
    pub e: f64,
    /// Boundary distance B between the two parts.
    pub boundary: f64,
    /// Largest distance D = cylinders - 1.
    pub max_distance: u64,
}

impl SeekCurve {
    /// Fits the curve; times in seconds.
    pub fn fit(
        cylinders: u64,
        track_to_track: f64,
        average: f64,
        full: f64,
    ) -> Result<Self, String> {
        if !(4..=MAX_CYLINDERS).contains(&cylinders) {
            return Err(format!(
                "cylinder count {cylinders} out of range 4..={MAX_CYLINDERS}"
            ));
        }
        let ok = |x: f64| x.is_finite() && x > 0.0;
        if !(ok(track_to_track) && ok(average) && ok(full)) {
            return Err("seek times must be positive".into());
        }
        if !(track_to_track < average && average < full) {
            return Err("seek times must satisfy track-to-track < average < full-stroke".into());
        }
        let max_d = cylinders - 1;
        let d_max = max_d as f64;
        let boundary = d_max / 3.0;
        let cyl = cylinders as f64;
        // Moments of the random-seek distance distribution, split at B.
        let (mut ia, mut ib, mut ic, mut ie) = (0.0f64, 0.0f64, 0.0f64, 0.0f64);
        for d in 1..=max_d {
            let df = d as f64;
            let p = 2.0 * (cyl - df) / (cyl * cyl);
            if df <= boundary {
                ia += p;
                ib += p * df.sqrt();
            } else {
                ic += p;
                ie += p * df;
            }
        }
        // Unknowns x = [a, b, c, e].
        let mut m = [
            [1.0, 1.0, 0.0, 0.0, track_to_track],
            [0.0, 0.0, 1.0, d_max, full],
            [1.0, boundary.sqrt(), -1.0, -boundary, 0.0],
            [ia, ib, ic, ie, average],
        ];
        let x = solve4(&mut m).ok_or("seek parameters give a singular system")?;
        let curve = SeekCurve {
            a: x[0],
            b: x[1],
            c: x[2],
            e: x[3],
            boundary,
            max_distance: max_d,
        };
        // a may be negative (few cylinders): t(1) = a + b > 0 and b >= 0 keep
        // the curve positive and increasing.
        if !x.iter().all(|v| v.is_finite()) || curve.b < 0.0 || curve.e < 0.0 {
            return Err(format!(
                "seek parameters ({:.3}/{:.3}/{:.3} ms) cannot be fitted by a monotone \
                 sqrt/linear curve (a={:.6} b={:.6} c={:.6} e={:.9})",
                track_to_track * 1e3,
                average * 1e3,
                full * 1e3,
                curve.a,
                curve.b,
                curve.c,
                curve.e
            ));
        }
        Ok(curve)
    }

    /// Seek time in seconds for a distance in cylinders.
    pub fn time(&self, d: u64) -> f64 {
        if d == 0 {
            return 0.0;
        }
        let df = d.min(self.max_distance) as f64;
        if df <= self.boundary {
            self.a + self.b * df.sqrt()
        } else {
            self.c + self.e * df
        }
    }

    /// Mean seek time over uniformly random cylinder pairs (for checking).
    pub fn random_mean(&self) -> f64 {
        let cyl = (self.max_distance + 1) as f64;
        (1..=self.max_distance)
            .map(|d| 2.0 * (cyl - d as f64) / (cyl * cyl) * self.time(d))
            .sum()
    }
}

/// Gaussian elimination with partial pivoting on an augmented 4x5 matrix.
fn solve4(m: &mut [[f64; 5]; 4]) -> Option<[f64; 4]> {
    for col in 0..4 {
        let pivot = (col..4).max_by(|&i, &j| m[i][col].abs().total_cmp(&m[j][col].abs()))?;
        if m[pivot][col].abs() < 1e-300 {
            return None;
        }
        m.swap(col, pivot);
        let pivot_row = m[col];
        for (row, r) in m.iter_mut().enumerate() {
            if row != col {
                let f = r[col] / pivot_row[col];
                for (x, p) in r.iter_mut().zip(pivot_row.iter()).skip(col) {
                    *x -= f * p;
                }
            }
        }
    }
    Some([
        m[0][4] / m[0][0],
        m[1][4] / m[1][1],
        m[2][4] / m[2][2],
        m[3][4] / m[3][3],
    ])
}

/// Bytes `[start, end)` of the export held in a segment of the drive's
/// buffer.
#[derive(Clone, Copy, Debug, PartialEq)]
struct Segment {
    start: u64,
    end: u64,
}

/// The segment the drive is filling: it holds `[start, from)`, and from
/// time `at` the head, idle, reads on from `from`, up to `readahead` bytes.
#[derive(Clone, Copy, Debug, PartialEq)]
struct LookAhead {
    start: u64,
    from: u64,
    at: f64,
}

/// The drive: geometry, seek curve and mechanical state.
#[derive(Clone, Debug)]
pub struct Disk {
    params: Params,
    curve: SeekCurve,
    cylinders: u64,
    /// Bytes of the whole drive (>= region_start + export size).
    capacity: u64,
    /// Bytes passing under the head in one revolution.
    track_bytes: f64,
    /// Seconds per revolution.
    rev: f64,
    overhead: f64,
    head_cyl: u64,
    prev_end: Option<u64>,
    prev_kind: Option<Kind>,
    busy_until: f64,
    /// When the host finished receiving the last reply (>= busy_until).
    delivered: f64,
    /// Kept segments of the buffer, oldest first; at most `cache_segments
    /// - 1` of them beside the one being filled.
    segments: std::collections::VecDeque<Segment>,
    /// The segment being filled after the last read, if any.
    look_ahead: Option<LookAhead>,
}

impl Disk {
    /// Builds a drive from parameters, fitting the seek curve.
    pub fn new(params: Params) -> Result<Self, String> {
        if params.size == 0 {
            return Err("disk size must be positive".into());
        }
        if !(params.rpm.is_finite() && params.rpm > 0.0) {
            return Err("rpm must be positive".into());
        }
        if !(params.rate.is_finite() && params.rate > 0.0) {
            return Err("transfer rate must be positive".into());
        }
        if !(params.overhead_ms.is_finite() && params.overhead_ms >= 0.0) {
            return Err("overhead must be >= 0".into());
        }
        if params.heads == 0 {
            return Err("heads must be positive".into());
        }
        let capacity = params.capacity.unwrap_or(params.size);
        match params.region_start.checked_add(params.size) {
            Some(end) if end <= capacity => {}
            _ => {
                return Err(format!(
                "the export ({} bytes from byte {}) does not fit on a drive of {capacity} bytes",
                params.size, params.region_start
            ))
            }
        }
        let rev = 60.0 / params.rpm;
        let track_bytes = params.rate * rev;
        let cylinders = match params.cylinders {
            Some(c) => c,
            None => ((capacity as f64 / (track_bytes * params.heads as f64)).ceil() as u64)
                .clamp(MIN_DEFAULT_CYLINDERS, MAX_CYLINDERS),
        };
        let curve = SeekCurve::fit(
            cylinders,
            params.track_to_track_ms / 1e3,
            params.avg_seek_ms / 1e3,
            params.full_stroke_ms / 1e3,
        )?;
        Ok(Disk {
            overhead: params.overhead_ms / 1e3,
            params,
            curve,
            cylinders,
            capacity,
            track_bytes,
            rev,
            head_cyl: 0,
            prev_end: None,
            prev_kind: None,
            delivered: 0.0,
            busy_until: 0.0,
            segments: std::collections::VecDeque::new(),
            look_ahead: None,
        })
    }

    /// Model parameters.
    pub fn params(&self) -> &Params {
        &self.params
    }

    /// Fitted seek curve.
    pub fn curve(&self) -> &SeekCurve {
        &self.curve
    }

    /// Number of cylinders actually used.
    pub fn cylinders(&self) -> u64 {
        self.cylinders
    }

    /// Seconds per revolution.
    pub fn revolution(&self) -> f64 {
        self.rev
    }

    /// Bytes per track.
    pub fn track_bytes(&self) -> f64 {
        self.track_bytes
    }

    /// Cylinder the head is on.
    pub fn head_cylinder(&self) -> u64 {
        self.head_cyl
    }

    /// Simulated time at which the drive becomes idle.
    pub fn busy_until(&self) -> f64 {
        self.busy_until
    }

    /// Cylinder holding byte `offset` of the export (linear map of the
    /// drive's bytes onto the cylinders; offsets past the drive's end map to
    /// the last cylinder).
    pub fn cylinder_of(&self, offset: u64) -> u64 {
        let at = self.params.region_start as u128 + offset as u128;
        let c = (at * self.cylinders as u128) / self.capacity as u128;
        (c.min(u64::MAX as u128) as u64).min(self.cylinders - 1)
    }

    /// Platter angle (fraction of a revolution, in [0, 1)) at time `t`.
    pub fn angle_at(&self, t: f64) -> f64 {
        (t / self.rev).rem_euclid(1.0)
    }

    /// Angular position (fraction of a revolution) of byte `offset` of the
    /// export in its track.
    pub fn target_angle(&self, offset: u64) -> f64 {
        ((self.params.region_start as f64) + offset as f64).rem_euclid(self.track_bytes)
            / self.track_bytes
    }

    /// Time from `t` until `offset` passes under the head, in [0, rev).
    pub fn rotational_wait(&self, t: f64, offset: u64) -> f64 {
        let mut x = self.target_angle(offset) - self.angle_at(t);
        if x < 0.0 {
            x += 1.0;
        }
        if !(0.0..1.0).contains(&x) {
            x = 0.0;
        }
        x * self.rev
    }

    /// Whether `req`, arriving at `arrival`, continues the previous transfer.
    pub fn is_streaming(&self, arrival: f64, req: &Request) -> bool {
        req.kind.is_mechanical()
            && self.prev_end == Some(req.offset)
            && (arrival - self.busy_until.max(self.delivered)) * self.params.rate
                <= self.params.readahead as f64
    }

    /// Tells the model that the reply of the last request reached the host
    /// only at `t` (the server sends a reply after the simulated finish, and
    /// pushing a large read through the socket takes real time).  The idle
    /// gap that decides whether a sequential request still streams is then
    /// measured from `t`, so the simulator's own delivery time does not count
    /// as host think time.
    pub fn delivered(&mut self, t: f64) {
        if t.is_finite() && t > self.delivered {
            self.delivered = t;
        }
    }

    /// Whether `req`, arriving at `arrival`, needs no positioning: it
    /// continues the previous transfer or the drive's buffer serves it.
    pub fn needs_no_positioning(&self, arrival: f64, req: &Request) -> bool {
        self.is_streaming(arrival, req)
            || self
                .buffered_finish(arrival, self.ready(arrival), req)
                .is_some()
    }

    /// When the head can start moving for a request arriving at `arrival`:
    /// the command overhead overlaps the previous request.
    fn ready(&self, arrival: f64) -> f64 {
        (arrival + self.overhead).max(self.busy_until)
    }

    /// The cylinder the head is on at `t`: where the look-ahead has taken
    /// it, if one runs.
    fn head_at(&self, t: f64) -> u64 {
        match &self.look_ahead {
            Some(la) => self.cylinder_of(self.filled(la, t).saturating_sub(1).max(la.start)),
            None => self.head_cyl,
        }
    }

    /// The end of what the look-ahead `la` has read by time `t`.
    fn filled(&self, la: &LookAhead, t: f64) -> u64 {
        let got = ((t - la.at) * self.params.rate).clamp(0.0, self.params.readahead as f64);
        la.from.saturating_add(got as u64)
    }

    /// When the drive's buffer delivers the read `req`, arriving at
    /// `arrival` and served from `ready` on; `None` if the buffer cannot
    /// serve it.
    fn buffered_finish(&self, arrival: f64, ready: f64, req: &Request) -> Option<f64> {
        if req.kind != Kind::Read || self.params.cache_segments == 0 {
            return None;
        }
        let end = req.offset.saturating_add(req.len);
        let held = |s: &Segment| s.start <= req.offset && end <= s.end;
        if self.segments.iter().any(held) {
            return Some(ready);
        }
        let la = self.look_ahead.as_ref()?;
        let reach = la.from.saturating_add(self.params.readahead);
        if req.offset < la.start || req.offset > reach {
            return None;
        }
        // As for streaming, the look-ahead is taken to run for readahead /
        // rate after the reply reached the host.
        let running = (arrival - la.at.max(self.delivered)) * self.params.rate
            <= self.params.readahead as f64;
        if end > reach && !running {
            return None;
        }
        let media = end.saturating_sub(la.from) as f64 / self.params.rate;
        Some(ready.max(la.at + media))
    }

    /// Stops the look-ahead as the head leaves at `t`, keeping what it read.
    fn stop_look_ahead(&mut self, t: f64) {
        self.head_cyl = self.head_at(t);
        if let Some(la) = self.look_ahead.take() {
            let end = self.filled(&la, t);
            if end > la.start {
                self.keep_segment(Segment {
                    start: la.start,
                    end,
                });
            }
        }
    }

    /// Keeps `seg` in the buffer, dropping the oldest segment when full.
    fn keep_segment(&mut self, seg: Segment) {
        let room = self.params.cache_segments.saturating_sub(1) as usize;
        self.segments.push_back(seg);
        while self.segments.len() > room {
            self.segments.pop_front();
        }
    }

    /// Drops every buffered byte that `req`, which changes the disk,
    /// overlaps, and stops the look-ahead.
    fn invalidate(&mut self, t: f64, req: &Request) {
        self.stop_look_ahead(t);
        let end = req.offset.saturating_add(req.len);
        self.segments
            .retain(|s| end <= s.start || s.end <= req.offset);
    }

    /// Positioning time (seek + rotation) the request would need if served
    /// next at time `now`; used by shortest-positioning-time scheduling.
    pub fn positioning_estimate(&self, now: f64, req: &Request) -> f64 {
        if !req.kind.is_mechanical() || self.needs_no_positioning(now, req) {
            return 0.0;
        }
        self.positioning_from(now.max(self.busy_until), req)
    }

    /// Serves one request that reached the drive at simulated time `arrival`
    /// and returns its timing.  Updates the head position and busy time.
    pub fn service(&mut self, arrival: f64, req: &Request) -> Service {
        let arrival = if arrival.is_finite() {
            arrival.max(0.0)
        } else {
            0.0
        };
        let start = arrival.max(self.busy_until);
        if !req.kind.is_mechanical() {
            // Flush/trim: ordered behind earlier requests, no mechanical cost.
            if req.kind.modifies() {
                self.invalidate(start, req);
            }
            self.busy_until = start;
            return Service {
                start,
                finish: start,
                ..Service::default()
            };
        }
        let ready = self.ready(arrival);
        let media = req.len as f64 / self.params.rate;
        if let Some(finish) = self.buffered_finish(arrival, ready, req) {
            // Ties go to the buffer: the head need not move.
            if finish <= ready + self.positioning_from(ready, req) + media + 1e-9 {
                return self.serve_buffered(start, ready, finish, req);
            }
        }
        if req.kind.modifies() {
            self.invalidate(ready, req);
        } else {
            self.stop_look_ahead(ready);
        }
        let sequential = self.is_streaming(arrival, req);
        let (seek_distance, seek, rotation, transfer) = if sequential {
            let read_ahead = req.kind == Kind::Read && self.prev_kind == Some(Kind::Read);
            let transfer = if read_ahead {
                // Media reading continued from busy_until without a pause.
                (self.busy_until + media - ready).max(0.0)
            } else {
                media
            };
            (0, 0.0, 0.0, transfer)
        } else {
            let d = self.cylinder_of(req.offset).abs_diff(self.head_cyl);
            let seek = self.curve.time(d);
            (
                d,
                seek,
                self.rotational_wait(ready + seek, req.offset),
                media,
            )
        };
        let finish = ready + seek + rotation + transfer;
        let end = req.offset.saturating_add(req.len);
        let busy = finish - start;
        self.head_cyl = self.cylinder_of(end.saturating_sub(1).max(req.offset));
        self.prev_end = Some(end);
        self.prev_kind = Some(req.kind);
        self.busy_until = finish;
        if req.kind == Kind::Read && self.params.cache_segments > 0 {
            self.look_ahead = Some(LookAhead {
                start: req.offset,
                from: end,
                at: finish,
            });
        }
        Service {
            start,
            finish,
            overhead: ready - start,
            seek,
            rotation,
            transfer,
            seek_distance,
            sequential,
            buffered: false,
            busy,
        }
    }

    /// Seek and rotation to reach `req` from the head's place at `ready`.
    fn positioning_from(&self, ready: f64, req: &Request) -> f64 {
        let head = self.head_at(ready);
        let seek = self.curve.time(self.cylinder_of(req.offset).abs_diff(head));
        seek + self.rotational_wait(ready + seek, req.offset)
    }

    /// Serves the read `req` from the buffer, finishing at `finish`: the
    /// look-ahead, if the read waited for it, goes on from the read's end.
    fn serve_buffered(&mut self, start: f64, ready: f64, finish: f64, req: &Request) -> Service {
        let end = req.offset.saturating_add(req.len);
        let sequential = self.prev_end == Some(req.offset);
        if let Some(la) = self.look_ahead {
            // Only a read that waited for the media moves the look-ahead on;
            // one wholly in what it has read leaves it running.
            if end > self.filled(&la, ready) && req.offset >= la.start {
                // The segment keeps at most readahead bytes behind the
                // head, like a ring.
                let keep = end.saturating_sub(self.params.readahead);
                self.look_ahead = Some(LookAhead {
                    start: la.start.max(keep).min(req.offset),
                    from: end,
                    at: finish,
                });
                self.prev_end = Some(end);
                self.prev_kind = Some(Kind::Read);
            }
        }
        self.busy_until = finish;
        Service {
            start,
            finish,
            overhead: ready - start,
            transfer: finish - ready,
            sequential,
            buffered: true,
            busy: finish - start,
            ..Service::default()
        }
    }
}

/// The time a disk takes to serve `extents` (byte offset, length) in one
/// ascending sweep, all of them queued at time 0, head starting at
/// cylinder 0: what an ideal scheduler that knew every block in advance
/// achieves on this layout.  Overlapping or repeated extents are served
/// once each as given (the caller dedupes); the result is in simulated
/// seconds.
pub fn ascending_sweep(params: Params, extents: &mut [(u64, u64)]) -> Result<f64, String> {
    let mut disk = Disk::new(params)?;
    extents.sort_unstable();
    let mut finish = 0.0;
    for &(offset, len) in extents.iter() {
        finish = disk
            .service(0.0, &Request::new(Kind::Read, offset, len))
            .finish;
    }
    Ok(finish)
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// Small xorshift64* PRNG so tests are deterministic without dependencies.
    pub(crate) struct Rng(u64);

    impl Rng {
        pub(crate) fn new(seed: u64) -> Self {
            Rng(seed.max(1))
        }
        pub(crate) fn next(&mut self) -> u64 {
            let mut x = self.0;
            x ^= x >> 12;
            x ^= x << 25;
            x ^= x >> 27;
            self.0 = x;
            x.wrapping_mul(0x2545_f491_4f6c_dd1d)
        }
        pub(crate) fn below(&mut self, n: u64) -> u64 {
            self.next() % n.max(1)
        }
        pub(crate) fn unit(&mut self) -> f64 {
            (self.next() >> 11) as f64 / (1u64 << 53) as f64
        }
    }

    fn disk() -> Disk {
        Disk::new(Params::default()).unwrap()
    }

    #[test]
    fn seek_curve_shape() {
        for &cyl in &[64u64, 1000, 6872, 100_000] {
            let c = SeekCurve::fit(cyl, 0.8e-3, 8.5e-3, 16e-3).unwrap();
            assert_eq!(c.time(0), 0.0);
            assert!((c.time(1) - 0.8e-3).abs() < 1e-9, "t(1) = {}", c.time(1));
            assert!((c.time(cyl - 1) - 16e-3).abs() < 1e-9);
            assert!(
                (c.random_mean() - 8.5e-3).abs() < 1e-7,
                "mean {}",
                c.random_mean()
            );
            let mut prev = 0.0;
            for d in 0..cyl {
                let t = c.time(d);
                assert!(t >= prev, "not monotone at {d}");
                prev = t;
            }
            // Continuity at the boundary: both formulas agree at B.
            let b = c.boundary;
            let short = c.a + c.b * b.sqrt();
            let long = c.c + c.e * b;
            assert!((short - long).abs() < 1e-9, "{short} vs {long}");
            // And the curve has no jump across it.
            let lo = b.floor() as u64;
            assert!(c.time(lo + 1) - c.time(lo) < 0.01e-3 + c.e * 2.0 + c.b);
        }
    }

    #[test]
    fn seek_fit_rejects_nonsense() {
        assert!(SeekCurve::fit(1000, 8e-3, 2e-3, 16e-3).is_err());
        assert!(SeekCurve::fit(2, 0.8e-3, 8.5e-3, 16e-3).is_err());
        assert!(SeekCurve::fit(1000, 0.8e-3, 15.9e-3, 16e-3).is_err());
    }

    #[test]
    fn sequential_queued_runs_at_media_rate() {
        let mut d = disk();
        let len = 128 * 1024;
        let first = d.service(0.0, &Request::new(Kind::Read, 1 << 30, len));
        let mut last = first;
        let n = 2000u64;
        for i in 1..n {
            last = d.service(0.0, &Request::new(Kind::Read, (1 << 30) + i * len, len));
            assert!(last.sequential);
        }
        let rate = ((n - 1) * len) as f64 / (last.finish - first.finish);
        eprintln!("sequential queued 128 KiB: {:.2} MB/s", rate / 1e6);
        assert!((rate / 150e6 - 1.0).abs() < 0.01, "rate {rate}");
    }

    #[test]
    fn sequential_qd1_runs_at_media_rate() {
        // One request at a time, each submitted when the previous completed
        // (plus a small host gap): 1 MiB requests, overhead not hidden.
        let mut d = disk();
        let len = 1 << 20;
        let mut t = 0.0;
        let first = d.service(t, &Request::new(Kind::Read, 0, len));
        t = first.finish + 20e-6;
        let n = 500u64;
        let mut last = first;
        for i in 1..n {
            last = d.service(t, &Request::new(Kind::Read, i * len, len));
            t = last.finish + 20e-6;
        }
        let rate = ((n - 1) * len) as f64 / (last.finish - first.finish);
        eprintln!("sequential QD1 1 MiB: {:.2} MB/s", rate / 1e6);
        assert!((rate / 150e6 - 1.0).abs() < 0.03, "rate {rate}");
    }

    #[test]
    fn random_16k_reads_match_average() {
        let mut d = disk();
        let mut rng = Rng::new(42);
        let len = 16 * 1024;
        let sectors = (d.params().size - len) / 4096;
        let n = 20_000;
        let mut t = 0.0;
        let mut total = 0.0;
        for _ in 0..n {
            let off = rng.below(sectors) * 4096;
            let s = d.service(t, &Request::new(Kind::Read, off, len));
            total += s.service_time();
            t = s.finish;
        }
        let mean = total / n as f64;
        let expect = 8.5e-3 + 0.5 * 60.0 / 7200.0 + len as f64 / 150e6 + 0.1e-3;
        eprintln!(
            "random 16 KiB: mean {:.3} ms, expected {:.3} ms",
            mean * 1e3,
            expect * 1e3
        );
        assert!(
            (mean / expect - 1.0).abs() < 0.05,
            "mean {mean} expect {expect}"
        );
    }

    #[test]
    fn timing_is_sane_for_random_and_adversarial_input() {
        let mut rng = Rng::new(7);
        for round in 0..20 {
            let p = Params {
                size: 512 * (1 + rng.below(1 << 24)),
                rpm: 3600.0 + rng.unit() * 12000.0,
                rate: 1e6 + rng.unit() * 300e6,
                cylinders: if round % 2 == 0 {
                    None
                } else {
                    Some(4 + rng.below(50_000))
                },
                overhead_ms: rng.unit(),
                ..Params::default()
            };
            let mut d = Disk::new(p.clone()).unwrap();
            let mut prev_finish = 0.0;
            let mut clock = 0.0;
            for i in 0..3000 {
                let kind = match rng.below(6) {
                    0 => Kind::Flush,
                    1 => Kind::Trim,
                    2 => Kind::WriteZeroes,
                    3 => Kind::Write,
                    _ => Kind::Read,
                };
                let offset = match rng.below(5) {
                    0 => 0,
                    1 => p.size - 1,
                    2 => u64::MAX - rng.below(10),
                    _ => rng.below(p.size),
                };
                let len = match rng.below(4) {
                    0 => 0,
                    1 => rng.below(1 << 25),
                    _ => 512 * rng.below(256),
                };
                // Arrival times jitter, sometimes in the past, sometimes NaN.
                let arrival = match i % 7 {
                    0 => f64::NAN,
                    1 => clock - 1.0,
                    _ => clock + rng.unit() * 0.02,
                };
                clock += rng.unit() * 0.01;
                let s = d.service(arrival, &Request::new(kind, offset, len));
                assert!(s.finish >= s.start, "{s:?}");
                assert!(s.start >= prev_finish, "time went backwards {s:?}");
                for v in [s.overhead, s.seek, s.rotation, s.transfer] {
                    assert!(v >= 0.0 && v.is_finite(), "{s:?}");
                }
                assert!(s.rotation < d.revolution());
                let parts = s.overhead + s.seek + s.rotation + s.transfer;
                assert!((parts - s.service_time()).abs() < 1e-9, "{s:?}");
                prev_finish = s.finish;
            }
        }
    }

    #[test]
    fn rotation_lines_up() {
        let d = disk();
        // A sector at angle 0 is under the head at t = 0 and every revolution.
        assert!(d.rotational_wait(0.0, 0) < 1e-12);
        let half = (d.track_bytes() / 2.0) as u64;
        let w = d.rotational_wait(0.0, half);
        assert!((w - d.revolution() / 2.0).abs() < 1e-6);
        // Just missed it: almost a full revolution.
        let w = d.rotational_wait(1e-6, 0);
        assert!((w - (d.revolution() - 1e-6)).abs() < 1e-9);
    }

    /// The 4 TB drive of `--drive hdd-4tb`, exporting `size` bytes from
    /// `start`.
    fn big_drive(size: u64, start: u64) -> Disk {
        Disk::new(Params {
            size,
            rate: 250e6,
            capacity: Some(4_000_000_000_000),
            heads: 8,
            region_start: start,
            ..Params::default()
        })
        .unwrap()
    }

    #[test]
    fn export_on_a_big_drive_seeks_short() {
        // Crossing a 256 MiB chunk of a 2 GiB export: on a drive that is the
        // export, an eighth of the full stroke; on a 4 TB drive, some 16 of
        // its 240,000 cylinders, about a track-to-track seek.
        let chunk = 256u64 << 20;
        let small = Disk::new(Params {
            size: 2 << 30,
            rate: 250e6,
            ..Params::default()
        })
        .unwrap();
        let big = big_drive(2 << 30, 0);
        assert!(
            (200_000..280_000).contains(&big.cylinders()),
            "{}",
            big.cylinders()
        );
        let d_small = small.cylinder_of(chunk);
        let d_big = big.cylinder_of(chunk);
        let (t_small, t_big) = (small.curve().time(d_small), big.curve().time(d_big));
        assert!(t_small > 5e-3, "small drive: {t_small}");
        assert!(t_big < 2e-3, "4 TB drive: {t_big}");
        // The whole export fits in well under a percent of the stroke.
        assert!(big.cylinder_of((2 << 30) - 1) < big.cylinders() / 100);
        // The curve still spans the drive: a random seek averages 8.5 ms.
        assert!((big.curve().random_mean() - 8.5e-3).abs() < 0.1e-3);
    }

    #[test]
    fn export_region_maps_onto_its_cylinders() {
        let mid = 2_000_000_000_000u64;
        let d = big_drive(1 << 30, mid);
        let c0 = d.cylinder_of(0);
        assert!(
            c0.abs_diff(d.cylinders() / 2) <= 1,
            "{c0} of {}",
            d.cylinders()
        );
        assert!(d.cylinder_of(1 << 30) > c0);
        // A request in the export starts where its drive byte is on the
        // platter.
        let t = d.track_bytes();
        let want = ((mid as f64) + 4096.0).rem_euclid(t) / t;
        assert!((d.target_angle(4096) - want).abs() < 1e-9);
        // Default: the drive is the export.
        let e = disk();
        assert_eq!(e.cylinder_of(e.params().size - 1), e.cylinders() - 1);
        // An export past the drive's end is refused.
        assert!(Disk::new(Params {
            size: 1 << 30,
            capacity: Some(1 << 30),
            region_start: 4096,
            ..Params::default()
        })
        .is_err());
        assert!(Disk::new(Params {
            heads: 0,
            ..Params::default()
        })
        .is_err());
    }

    #[test]
    fn long_gap_breaks_streaming() {
        // Without a buffer, a continuation arriving long after the drive
        // went idle is positioned again.
        let mut d = Disk::new(Params {
            cache_segments: 0,
            ..Params::default()
        })
        .unwrap();
        let a = d.service(0.0, &Request::new(Kind::Read, 0, 4096));
        let b = d.service(a.finish + 1.0, &Request::new(Kind::Read, 4096, 4096));
        assert!(!b.sequential && !b.buffered);
        assert_eq!(b.seek_distance, 0);
        // With one, the look-ahead read those bytes meanwhile; a read
        // reaching past its segment is positioned again.
        let mut d = disk();
        let a = d.service(0.0, &Request::new(Kind::Read, 0, 4096));
        let b = d.service(a.finish + 1.0, &Request::new(Kind::Read, 4096, 4096));
        assert!(b.buffered, "{b:?}");
        assert!((b.service_time() - 1e-4).abs() < 1e-9, "{b:?}");
        let c = d.service(b.finish + 1.0, &Request::new(Kind::Read, 4096, 4 << 20));
        assert!(!c.buffered && !c.sequential, "{c:?}");
    }

    #[test]
    fn buffer_serves_a_block_the_head_just_passed() {
        // A 16 KiB read, then one for the block 20 KiB further on, arriving
        // 1 ms after the first finished: the head passed it 0.9 ms ago.
        let late = |cache_segments| {
            let mut d = Disk::new(Params {
                cache_segments,
                ..Params::default()
            })
            .unwrap();
            let a = d.service(0.0, &Request::new(Kind::Read, 1 << 30, 16384));
            d.service(
                a.finish + 1e-3,
                &Request::new(Kind::Read, (1 << 30) + 36864, 16384),
            )
        };
        let rev = disk().revolution();
        let without = late(0);
        assert!(!without.buffered);
        assert!(without.rotation > 0.75 * rev, "{without:?}");
        let with = late(16);
        assert!(with.buffered, "{with:?}");
        assert!((with.service_time() - 1e-4).abs() < 1e-9, "{with:?}");
        // A read queued ahead of the look-ahead waits only for the media
        // to reach its end, never longer than positioning would take.
        let mut d = disk();
        let base = 100 * 1_250_000;
        let a = d.service(0.0, &Request::new(Kind::Read, base, 16384));
        let gap = 256 << 10;
        let b = d.service(
            a.finish,
            &Request::new(Kind::Read, base + 16384 + gap, 16384),
        );
        assert!(b.buffered, "{b:?}");
        let want = a.finish + (gap + 16384) as f64 / 150e6;
        assert!((b.finish - want).abs() < 1e-9, "{b:?}, want {want}");
    }

    #[test]
    fn buffer_keeps_the_most_recent_segments() {
        // A read, 20 ms idle (the look-ahead fills its 2 MiB), then `others`
        // reads elsewhere: a read 1 MiB after the first is a buffer hit
        // while fewer than `cache_segments` segments came after it.
        let after = |cache_segments, others: u64| {
            let mut d = Disk::new(Params {
                cache_segments,
                ..Params::default()
            })
            .unwrap();
            let mut t = d.service(0.0, &Request::new(Kind::Read, 0, 16384)).finish + 20e-3;
            for i in 0..others {
                let s = d.service(t, &Request::new(Kind::Read, (i + 1) << 30, 16384));
                assert!(!s.buffered);
                t = s.finish + 1e-3;
            }
            d.service(t, &Request::new(Kind::Read, 1 << 20, 16384))
                .buffered
        };
        assert!(after(2, 1));
        assert!(!after(1, 1));
        assert!(after(4, 3));
        assert!(!after(4, 4));
        assert!(after(16, 15));
        assert!(!after(0, 0));
    }

    #[test]
    fn changes_drop_the_buffered_bytes_they_overlap() {
        for kind in [Kind::Write, Kind::WriteZeroes, Kind::Trim] {
            let mut d = disk();
            let a = d.service(0.0, &Request::new(Kind::Read, 0, 16384));
            let w = d.service(a.finish + 20e-3, &Request::new(kind, 65536, 4096));
            let r = d.service(w.finish + 1e-3, &Request::new(Kind::Read, 65536, 4096));
            assert!(!r.buffered, "{kind:?}: {r:?}");
        }
        // A write elsewhere leaves the segment in the buffer.
        let mut d = disk();
        let a = d.service(0.0, &Request::new(Kind::Read, 0, 16384));
        let w = d.service(a.finish + 20e-3, &Request::new(Kind::Write, 1 << 30, 4096));
        let r = d.service(w.finish + 1e-3, &Request::new(Kind::Read, 65536, 4096));
        assert!(r.buffered, "{r:?}");
    }

    #[test]
    fn read_ahead_hides_short_gaps() {
        let mut d = disk();
        let len = 1 << 20;
        let a = d.service(0.0, &Request::new(Kind::Read, 0, len));
        // Arrives 5 ms after the drive went idle (< 2 MiB / 150 MB/s).
        let b = d.service(a.finish + 5e-3, &Request::new(Kind::Read, len, len));
        assert!(b.sequential);
        let media = len as f64 / 150e6;
        assert!((b.finish - (a.finish + media)).abs() < 1e-9, "{b:?}");
        // A write continuing a write streams without the credit.
        let c = d.service(b.finish, &Request::new(Kind::Write, 2 * len, len));
        let e = d.service(c.finish + 1e-3, &Request::new(Kind::Write, 3 * len, len));
        assert!(e.sequential);
        assert!((e.service_time() - (1e-4 + media)).abs() < 1e-9, "{e:?}");
        // With read-ahead disabled a gap costs positioning again.
        let mut d = Disk::new(Params {
            readahead: 0,
            ..Params::default()
        })
        .unwrap();
        let a = d.service(0.0, &Request::new(Kind::Read, 0, len));
        let b = d.service(a.finish + 1e-3, &Request::new(Kind::Read, len, len));
        assert!(!b.sequential);
        // Queued requests still stream.
        let c = d.service(0.0, &Request::new(Kind::Read, 2 * len, len));
        assert!(c.sequential);
    }

    #[test]
    fn ascending_sweep_streams_and_beats_random_order() {
        let p = Params {
            size: 2 << 30,
            ..Params::default()
        };
        // 64 MiB in contiguous 4 KiB pieces, listed backwards: sorted, it
        // streams at the media rate (plus the first positioning).
        let mut packed: Vec<(u64, u64)> = (0..16384u64).rev().map(|i| (i * 4096, 4096)).collect();
        let t = ascending_sweep(p.clone(), &mut packed).unwrap();
        let media = (64 << 20) as f64 / p.rate;
        assert!(
            t >= media && t < media + 0.03,
            "packed sweep {t} s, media {media} s"
        );
        // 2000 scattered blocks: the sweep is no slower than serving them
        // in random order, and never faster than their transfer time.
        let mut rng = Rng::new(7);
        let scattered: Vec<(u64, u64)> = (0..2000)
            .map(|_| (rng.below((2 << 30) / 4096) * 4096, 4096))
            .collect();
        let mut d = Disk::new(p.clone()).unwrap();
        let random = scattered
            .iter()
            .map(|&(o, l)| d.service(0.0, &Request::new(Kind::Read, o, l)).finish)
            .fold(0.0, f64::max);
        let mut sorted = scattered.clone();
        let sweep = ascending_sweep(p.clone(), &mut sorted).unwrap();
        assert!(sweep >= 2000.0 * 4096.0 / p.rate);
        assert!(
            sweep < random / 2.0,
            "sweep {sweep} s, random order {random} s"
        );
        assert!(sorted.windows(2).all(|w| w[0] <= w[1]));
    }
}
