//! NBD server (unix socket, fixed newstyle handshake, simple replies) feeding
//! one simulated disk.
//!
//! Threads: the main thread accepts connections; every connection has a
//! reader thread that does the handshake and then reads requests into the
//! shared drive queue as fast as they arrive (QEMU pipelines up to 16); one
//! worker thread takes requests off the queue (reordering them if asked),
//! performs the I/O on the backing file, sleeps until the model's finish time
//! and sends the reply.

use crate::config::Config;
use crate::flash::Flash;
use crate::model::{Disk, Kind, Request, Service, SECTOR};
use crate::sched::Queue;
use crate::stats::{json_string, Stats};
use std::collections::VecDeque;
use std::fs::{File, OpenOptions};
use std::io::{self, BufReader, Read, Write};
use std::os::fd::AsRawFd;
use std::os::unix::fs::FileExt;
use std::os::unix::net::UnixStream;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

// Handshake.
const NBDMAGIC: u64 = 0x4e42_444d_4147_4943;
const IHAVEOPT: u64 = 0x4948_4156_454f_5054;
const OPT_REPLY_MAGIC: u64 = 0x0003_e889_0455_65a9;
const FLAG_FIXED_NEWSTYLE: u16 = 1 << 0;
const FLAG_NO_ZEROES: u16 = 1 << 1;
const FLAG_C_FIXED_NEWSTYLE: u32 = 1 << 0;
const FLAG_C_NO_ZEROES: u32 = 1 << 1;

const OPT_EXPORT_NAME: u32 = 1;
const OPT_ABORT: u32 = 2;
const OPT_LIST: u32 = 3;
const OPT_INFO: u32 = 6;
const OPT_GO: u32 = 7;

const REP_ACK: u32 = 1;
const REP_SERVER: u32 = 2;
const REP_INFO: u32 = 3;
const REP_ERR_UNSUP: u32 = 0x8000_0001;
const REP_ERR_INVALID: u32 = 0x8000_0003;

const INFO_EXPORT: u16 = 0;
const INFO_BLOCK_SIZE: u16 = 3;

// Transmission flags.
const TF_HAS_FLAGS: u16 = 1 << 0;
const TF_SEND_FLUSH: u16 = 1 << 2;
const TF_SEND_FUA: u16 = 1 << 3;
const TF_ROTATIONAL: u16 = 1 << 4;
const TF_SEND_TRIM: u16 = 1 << 5;
const TF_SEND_WRITE_ZEROES: u16 = 1 << 6;
const TRANSMISSION_FLAGS: u16 = TF_HAS_FLAGS
    | TF_SEND_FLUSH
    | TF_SEND_FUA
    | TF_ROTATIONAL
    | TF_SEND_TRIM
    | TF_SEND_WRITE_ZEROES;

// Transmission.
const REQUEST_MAGIC: u32 = 0x2560_9513;
const SIMPLE_REPLY_MAGIC: u32 = 0x6744_6698;
const CMD_READ: u16 = 0;
const CMD_WRITE: u16 = 1;
const CMD_DISC: u16 = 2;
const CMD_FLUSH: u16 = 3;
const CMD_TRIM: u16 = 4;
const CMD_WRITE_ZEROES: u16 = 6;
const CMD_FLAG_FUA: u16 = 1 << 0;

const EIO: u32 = 5;
const EINVAL: u32 = 22;

/// Largest read/write payload (advertised as the maximum block size).
pub const MAX_PAYLOAD: u32 = 32 << 20;
/// Largest option payload accepted during the handshake.
const MAX_OPTION_LEN: u32 = 64 << 10;

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panicking thread cannot leave the protected data inconsistent in a
    // way that matters here (counters and a queue), so ignore poisoning.
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// One client connection, shared between its reader and the worker.
struct Conn {
    writer: Mutex<UnixStream>,
    inflight: Mutex<usize>,
    idle: Condvar,
}

impl Conn {
    fn reply(&self, handle: u64, error: u32, data: Option<&[u8]>) {
        let mut hdr = [0u8; 16];
        hdr[0..4].copy_from_slice(&SIMPLE_REPLY_MAGIC.to_be_bytes());
        hdr[4..8].copy_from_slice(&error.to_be_bytes());
        hdr[8..16].copy_from_slice(&handle.to_be_bytes());
        let mut w = lock(&self.writer);
        // A failed reply means the client went away; the reader notices.
        if w.write_all(&hdr).is_ok() {
            if let Some(d) = data {
                let _ = w.write_all(d);
            }
        }
    }

    fn done(&self) {
        let mut n = lock(&self.inflight);
        *n = n.saturating_sub(1);
        self.idle.notify_all();
    }
}

struct Payload {
    conn: Arc<Conn>,
    handle: u64,
    data: Vec<u8>,
    fua: bool,
}

struct QueueState {
    q: Queue<Payload>,
    shutdown: bool,
}

/// The running server.
pub struct Server {
    cfg: Config,
    file: File,
    size: u64,
    epoch: Instant,
    queue: Mutex<QueueState>,
    queue_cv: Condvar,
    stats: Mutex<Stats>,
    first_request: Mutex<Option<Instant>>,
    conns: Mutex<Vec<(u64, UnixStream)>>,
    next_conn: AtomicU64,
    stop: AtomicBool,
    worker: Mutex<Option<JoinHandle<()>>>,
    geometry: String,
    /// `--trace`: one line per request served.
    trace: Option<Mutex<File>>,
}

impl Server {
    /// Opens (or creates) the backing file, builds the disk model and starts
    /// the worker thread.
    pub fn start(mut cfg: Config) -> Result<Arc<Server>, String> {
        let name = cfg.file.display().to_string();
        let cur = match std::fs::metadata(&cfg.file) {
            Ok(m) => Some(m.len()),
            Err(e) if e.kind() == io::ErrorKind::NotFound => None,
            Err(e) => return Err(format!("{name}: {e}")),
        };
        let size = match (cfg.size, cur) {
            (Some(s), _) => s,
            (None, Some(c)) if c >= SECTOR => c / SECTOR * SECTOR,
            _ => return Err(format!("{name} is missing or empty: --size is required")),
        };
        cfg.params.size = size;
        // Validate the model before touching the file.
        let disk = Disk::new(cfg.params.clone())?;
        let flash = cfg.flash.clone().map(Flash::new).transpose()?;
        let c = disk.curve();
        let region = match disk.params().capacity {
            Some(cap) => format!(
                "export at byte {} of a {cap}-byte drive, {} heads, ",
                disk.params().region_start,
                disk.params().heads
            ),
            None => String::new(),
        };
        let geometry = match &flash {
            Some(f) => format!(
                "flash drive: {} ms access latency, {} requests at once, {:.1} MB/s",
                f.params().latency_ms,
                f.params().channels,
                f.params().rate / 1e6
            ),
            None => format!(
            "{region}{} cylinders, {:.0} bytes/track, seek(d) = {:.4} + {:.5}*sqrt(d) ms for d <= {:.0}, \
             {:.4} + {:.7}*d ms above",
            disk.cylinders(),
            disk.track_bytes(),
            c.a * 1e3,
            c.b * 1e3,
            c.boundary,
            c.c * 1e3,
            c.e * 1e3
        ),
        };
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&cfg.file)
            .map_err(|e| format!("{name}: {e}"))?;
        let cur = file.metadata().map_err(|e| format!("{name}: {e}"))?.len();
        if cur < size {
            file.set_len(size)
                .map_err(|e| format!("{name}: cannot extend: {e}"))?;
        }
        let trace = match &cfg.trace {
            Some(p) => Some(Mutex::new(
                File::create(p).map_err(|e| format!("{}: {e}", p.display()))?,
            )),
            None => None,
        };
        let server = Arc::new(Server {
            trace,
            queue: Mutex::new(QueueState {
                q: Queue::new(cfg.reorder),
                shutdown: false,
            }),
            cfg,
            file,
            size,
            epoch: Instant::now(),
            queue_cv: Condvar::new(),
            stats: Mutex::new(Stats::default()),
            first_request: Mutex::new(None),
            conns: Mutex::new(Vec::new()),
            next_conn: AtomicU64::new(1),
            stop: AtomicBool::new(false),
            worker: Mutex::new(None),
            geometry,
        });
        let s2 = Arc::clone(&server);
        let h = thread::Builder::new()
            .name("disk".into())
            .spawn(move || match flash {
                Some(f) => s2.flash_worker(f),
                None => s2.worker(disk),
            })
            .map_err(|e| format!("cannot start worker: {e}"))?;
        *lock(&server.worker) = Some(h);
        Ok(server)
    }

    /// Export size in bytes.
    pub fn size(&self) -> u64 {
        self.size
    }

    /// Human description of the model in use.
    pub fn describe(&self) -> String {
        let p = &self.cfg.params;
        if self.cfg.flash.is_some() {
            return format!(
                "disksim {}: {} bytes, speed factor {}; {}",
                self.cfg.name, self.size, self.cfg.speed_factor, self.geometry
            );
        }
        format!(
            "disksim {}: {} bytes, {} rpm, {:.1} MB/s, seek {}/{}/{} ms, overhead {} ms, \
             reorder {}, speed factor {}; {}",
            self.cfg.name,
            self.size,
            p.rpm,
            p.rate / 1e6,
            p.track_to_track_ms,
            p.avg_seek_ms,
            p.full_stroke_ms,
            p.overhead_ms,
            self.cfg.reorder.name(),
            self.cfg.speed_factor,
            self.geometry
        )
    }

    /// The export's transmission flags: a flash drive is not rotational
    /// (the guest's block layer reads the flag).
    fn transmission_flags(&self) -> u16 {
        if self.cfg.flash.is_some() {
            TRANSMISSION_FLAGS & !TF_ROTATIONAL
        } else {
            TRANSMISSION_FLAGS
        }
    }

    /// Whether a client asked us to stop (`--exit-on-disconnect`).
    pub fn stop_requested(&self) -> bool {
        self.stop.load(Ordering::SeqCst)
    }

    fn sim_now(&self) -> f64 {
        self.epoch.elapsed().as_secs_f64() / self.cfg.speed_factor
    }

    fn sleep_until_sim(&self, t: f64) {
        if let Ok(d) = Duration::try_from_secs_f64(t * self.cfg.speed_factor) {
            let target = self.epoch + d;
            let now = Instant::now();
            if target > now {
                thread::sleep(target - now);
            }
        }
    }

    /// Handles one accepted connection on a new thread.
    pub fn spawn_connection(self: &Arc<Self>, stream: UnixStream) {
        let id = self.next_conn.fetch_add(1, Ordering::SeqCst);
        match stream.try_clone() {
            Ok(c) => lock(&self.conns).push((id, c)),
            Err(e) => {
                eprintln!("disksim: cannot clone socket: {e}");
                return;
            }
        }
        let me = Arc::clone(self);
        let res = thread::Builder::new()
            .name(format!("conn{id}"))
            .spawn(move || {
                let (transmitted, res) = me.connection(stream);
                if let Err(e) = res {
                    if e.kind() != io::ErrorKind::UnexpectedEof {
                        eprintln!("disksim: connection {id}: {e}");
                    }
                }
                lock(&me.conns).retain(|(i, _)| *i != id);
                if transmitted && me.cfg.exit_on_disconnect {
                    me.stop.store(true, Ordering::SeqCst);
                }
            });
        if let Err(e) = res {
            eprintln!("disksim: cannot start connection thread: {e}");
            lock(&self.conns).retain(|(i, _)| *i != id);
        }
    }

    /// Handshake then transmission.  Returns whether transmission was
    /// reached, and how the connection ended.
    fn connection(&self, stream: UnixStream) -> (bool, io::Result<()>) {
        let (mut rd, mut w) = match (stream.try_clone(), stream.try_clone()) {
            (Ok(r), Ok(w)) => (BufReader::with_capacity(256 << 10, r), w),
            (Err(e), _) | (_, Err(e)) => return (false, Err(e)),
        };
        match self.handshake(&mut rd, &mut w) {
            Ok(true) => {}
            other => {
                let _ = stream.shutdown(std::net::Shutdown::Both);
                return (false, other.map(|_| ()));
            }
        }
        let conn = Arc::new(Conn {
            writer: Mutex::new(w),
            inflight: Mutex::new(0),
            idle: Condvar::new(),
        });
        let res = self.transmission(&mut rd, &conn);
        // Let in-flight requests finish (their replies may still be sent).
        {
            let mut n = lock(&conn.inflight);
            while *n > 0 {
                n = conn.idle.wait(n).unwrap_or_else(|e| e.into_inner());
            }
        }
        let _ = stream.shutdown(std::net::Shutdown::Both);
        (true, res)
    }

    /// Fixed newstyle negotiation.  Returns false if the client aborted.
    fn handshake(&self, rd: &mut impl Read, w: &mut impl Write) -> io::Result<bool> {
        let mut hello = Vec::with_capacity(18);
        hello.extend_from_slice(&NBDMAGIC.to_be_bytes());
        hello.extend_from_slice(&IHAVEOPT.to_be_bytes());
        hello.extend_from_slice(&(FLAG_FIXED_NEWSTYLE | FLAG_NO_ZEROES).to_be_bytes());
        w.write_all(&hello)?;
        let cflags = read_u32(rd)?;
        if cflags & !(FLAG_C_FIXED_NEWSTYLE | FLAG_C_NO_ZEROES) != 0 {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                "unknown client flags",
            ));
        }
        let no_zeroes = cflags & FLAG_C_NO_ZEROES != 0;
        loop {
            if read_u64(rd)? != IHAVEOPT {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidData,
                    "bad option magic",
                ));
            }
            let opt = read_u32(rd)?;
            let len = read_u32(rd)?;
            if len > MAX_OPTION_LEN {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidData,
                    "option too long",
                ));
            }
            let mut data = vec![0u8; len as usize];
            rd.read_exact(&mut data)?;
            match opt {
                OPT_EXPORT_NAME => {
                    // Any name selects the single export.
                    let mut out = Vec::with_capacity(134);
                    out.extend_from_slice(&self.size.to_be_bytes());
                    out.extend_from_slice(&self.transmission_flags().to_be_bytes());
                    if !no_zeroes {
                        out.extend_from_slice(&[0u8; 124]);
                    }
                    w.write_all(&out)?;
                    return Ok(true);
                }
                OPT_ABORT => {
                    // The client may already have closed; ignore errors.
                    let _ = opt_reply(w, opt, REP_ACK, &[]);
                    return Ok(false);
                }
                OPT_LIST => {
                    if len != 0 {
                        opt_reply(w, opt, REP_ERR_INVALID, &[])?;
                    } else {
                        let name = self.cfg.name.as_bytes();
                        let mut d = Vec::with_capacity(4 + name.len());
                        d.extend_from_slice(&(name.len() as u32).to_be_bytes());
                        d.extend_from_slice(name);
                        opt_reply(w, opt, REP_SERVER, &d)?;
                        opt_reply(w, opt, REP_ACK, &[])?;
                    }
                }
                OPT_INFO | OPT_GO => {
                    let Some(infos) = parse_info_request(&data) else {
                        opt_reply(w, opt, REP_ERR_INVALID, &[])?;
                        continue;
                    };
                    let mut d = Vec::with_capacity(12);
                    d.extend_from_slice(&INFO_EXPORT.to_be_bytes());
                    d.extend_from_slice(&self.size.to_be_bytes());
                    d.extend_from_slice(&self.transmission_flags().to_be_bytes());
                    opt_reply(w, opt, REP_INFO, &d)?;
                    if infos.contains(&INFO_BLOCK_SIZE) {
                        let mut d = Vec::with_capacity(14);
                        d.extend_from_slice(&INFO_BLOCK_SIZE.to_be_bytes());
                        d.extend_from_slice(&(SECTOR as u32).to_be_bytes());
                        d.extend_from_slice(&4096u32.to_be_bytes());
                        d.extend_from_slice(&MAX_PAYLOAD.to_be_bytes());
                        opt_reply(w, opt, REP_INFO, &d)?;
                    }
                    opt_reply(w, opt, REP_ACK, &[])?;
                    if opt == OPT_GO {
                        return Ok(true);
                    }
                }
                _ => opt_reply(w, opt, REP_ERR_UNSUP, &[])?,
            }
        }
    }

    fn transmission(&self, rd: &mut impl Read, conn: &Arc<Conn>) -> io::Result<()> {
        let mut hdr = [0u8; 28];
        loop {
            match rd.read_exact(&mut hdr) {
                Ok(()) => {}
                // Client closed without NBD_CMD_DISC: a hard disconnect.
                Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => return Ok(()),
                Err(e) => return Err(e),
            }
            // A write's payload crosses the socket before it can be queued;
            // in a real drive that interface transfer overlaps the media
            // work, so the request counts as arrived with its header.
            let arrival = self.sim_now();
            let magic = be32(&hdr[0..4]);
            if magic != REQUEST_MAGIC {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidData,
                    "bad request magic",
                ));
            }
            let flags = be16(&hdr[4..6]);
            let cmd = be16(&hdr[6..8]);
            let handle = be64(&hdr[8..16]);
            let offset = be64(&hdr[16..24]);
            let len = be32(&hdr[24..28]);
            let in_range = offset
                .checked_add(u64::from(len))
                .is_some_and(|e| e <= self.size);
            let kind = match cmd {
                CMD_READ => Kind::Read,
                CMD_WRITE => Kind::Write,
                CMD_FLUSH => Kind::Flush,
                CMD_TRIM => Kind::Trim,
                CMD_WRITE_ZEROES => Kind::WriteZeroes,
                CMD_DISC => return Ok(()),
                _ => {
                    conn.reply(handle, EINVAL, None);
                    continue;
                }
            };
            let mut data = Vec::new();
            if kind == Kind::Write {
                if len > MAX_PAYLOAD {
                    return Err(io::Error::new(
                        io::ErrorKind::InvalidData,
                        "write payload too large",
                    ));
                }
                data = vec![0u8; len as usize];
                rd.read_exact(&mut data)?;
            }
            let bad = match kind {
                Kind::Flush => false,
                Kind::Read => !in_range || len > MAX_PAYLOAD,
                _ => !in_range,
            };
            if bad {
                conn.reply(handle, EINVAL, None);
                continue;
            }
            let (offset, len) = if kind == Kind::Flush {
                (0, 0)
            } else {
                (offset, len)
            };
            let req = Request::new(kind, offset, u64::from(len));
            *lock(&conn.inflight) += 1;
            let payload = Payload {
                conn: Arc::clone(conn),
                handle,
                data,
                fua: flags & CMD_FLAG_FUA != 0,
            };
            {
                let mut first = lock(&self.first_request);
                if first.is_none() {
                    *first = Some(Instant::now());
                }
            }
            let depth = {
                let mut st = lock(&self.queue);
                st.q.push(req, arrival, payload);
                self.queue_cv.notify_one();
                st.q.len()
            };
            let mut stats = lock(&self.stats);
            stats.max_queue = stats.max_queue.max(depth);
        }
    }

    fn worker(&self, mut disk: Disk) {
        loop {
            let next = {
                let mut st = lock(&self.queue);
                loop {
                    if !st.q.is_empty() {
                        break;
                    }
                    if st.shutdown {
                        return;
                    }
                    st = self.queue_cv.wait(st).unwrap_or_else(|e| e.into_inner());
                }
                let now = self.sim_now();
                st.q.pop_next(&disk, now)
            };
            let Some(d) = next else { continue };
            let svc = disk.service(d.arrival, &d.req);
            let (err, data, injected) = self.execute(&d.req, &d.payload);
            self.sleep_until_sim(svc.finish);
            self.account(&d.req, d.arrival, &svc, err, injected);
            self.log(&d.req, d.arrival, &svc);
            d.payload.conn.reply(d.payload.handle, err, data.as_deref());
            disk.delivered(self.sim_now());
            d.payload.conn.done();
        }
    }

    /// The worker of a flash drive: it serves every queued request at once
    /// (the model overlaps them on its channels), doing each one's I/O in
    /// arrival order, and replies to each at its finish time. The model's
    /// finish times never decrease in serving order, so the replies go out
    /// in that order too.
    fn flash_worker(&self, mut flash: Flash) {
        let mut served = VecDeque::new();
        loop {
            {
                let mut st = lock(&self.queue);
                while st.q.is_empty() && served.is_empty() {
                    if st.shutdown {
                        return;
                    }
                    st = self.queue_cv.wait(st).unwrap_or_else(|e| e.into_inner());
                }
                while let Some(d) = st.q.pop_oldest() {
                    let svc = flash.service(d.arrival, &d.req);
                    let (err, data, injected) = self.execute(&d.req, &d.payload);
                    served.push_back((d, svc, err, data, injected));
                }
            }
            let Some((d, svc, err, data, injected)) = served.pop_front() else {
                continue;
            };
            self.sleep_until_sim(svc.finish);
            self.account(&d.req, d.arrival, &svc, err, injected);
            self.log(&d.req, d.arrival, &svc);
            d.payload.conn.reply(d.payload.handle, err, data.as_deref());
            d.payload.conn.done();
        }
    }

    /// Writes `# snapshot` to the `--trace` log, if there is one, so that
    /// the log splits at the same points as the snapshots.
    pub fn trace_snapshot(&self) {
        if let Some(t) = &self.trace {
            let _ = lock(t).write_all(b"# snapshot\n");
        }
    }

    /// Appends one request to the `--trace` log, if there is one.
    fn log(&self, req: &Request, arrival: f64, svc: &Service) {
        if let Some(t) = &self.trace {
            let line = format!(
                "{arrival:.6} {:.6} {:.6} {:?} {} {} {} {:.6} {:.6} {}\n",
                svc.start,
                svc.finish,
                req.kind,
                req.offset,
                req.len,
                svc.seek_distance,
                svc.seek,
                svc.rotation,
                u8::from(svc.buffered)
            );
            // One write per line, so the log is whole at any time. A trace
            // is a diagnostic: losing it must not stop the disk.
            let _ = lock(t).write_all(line.as_bytes());
        }
    }

    fn account(&self, req: &Request, arrival: f64, svc: &Service, err: u32, injected: bool) {
        let mut st = lock(&self.stats);
        st.record(req.kind, req.len, arrival, svc);
        if req.kind == Kind::Read && err == 0 {
            st.bytes_read += req.len;
        }
        if injected {
            st.injected_errors += 1;
        } else if err != 0 {
            st.io_errors += 1;
        }
    }

    fn read_fails(&self, req: &Request) -> bool {
        let first = req.offset / SECTOR;
        let last = (req.offset + req.len.max(1) - 1) / SECTOR;
        self.cfg
            .fail_reads
            .iter()
            .any(|&(s, c)| c > 0 && first <= s.saturating_add(c - 1) && s <= last)
    }

    /// Performs the I/O; returns (NBD error, read data, injected fault).
    fn execute(&self, req: &Request, p: &Payload) -> (u32, Option<Vec<u8>>, bool) {
        match req.kind {
            Kind::Read => {
                if self.read_fails(req) {
                    return (EIO, None, true);
                }
                let mut buf = vec![0u8; req.len as usize];
                match self.file.read_exact_at(&mut buf, req.offset) {
                    Ok(()) => (0, Some(buf), false),
                    Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => {
                        // Past the end of a file shorter than the export
                        // (cannot happen after set_len, but reads as zeroes).
                        (0, Some(buf), false)
                    }
                    Err(e) => {
                        eprintln!("disksim: read at {}: {e}", req.offset);
                        (EIO, None, false)
                    }
                }
            }
            Kind::Write => match self.file.write_all_at(&p.data, req.offset) {
                Ok(()) => (self.sync_if(p.fua), None, false),
                Err(e) => {
                    eprintln!("disksim: write at {}: {e}", req.offset);
                    (EIO, None, false)
                }
            },
            Kind::WriteZeroes => match self.zero(req.offset, req.len) {
                Ok(()) => (self.sync_if(p.fua), None, false),
                Err(e) => {
                    eprintln!("disksim: write zeroes at {}: {e}", req.offset);
                    (EIO, None, false)
                }
            },
            Kind::Trim => {
                // Discarded data may read back as anything; zeroes are fine.
                let _ = self.punch(req.offset, req.len);
                (0, None, false)
            }
            Kind::Flush => (self.sync_if(true), None, false),
        }
    }

    fn sync_if(&self, want: bool) -> u32 {
        if want && self.cfg.fsync && self.file.sync_data().is_err() {
            return EIO;
        }
        0
    }

    fn punch(&self, offset: u64, len: u64) -> io::Result<()> {
        if len == 0 {
            return Ok(());
        }
        let (Ok(off), Ok(l)) = (i64::try_from(offset), i64::try_from(len)) else {
            return Err(io::Error::from(io::ErrorKind::InvalidInput));
        };
        // SAFETY: fallocate only reads its integer arguments; the fd is owned
        // by self.file and stays open for the duration of the call.
        let r = unsafe {
            libc::fallocate(
                self.file.as_raw_fd(),
                libc::FALLOC_FL_PUNCH_HOLE | libc::FALLOC_FL_KEEP_SIZE,
                off,
                l,
            )
        };
        if r == 0 {
            Ok(())
        } else {
            Err(io::Error::last_os_error())
        }
    }

    fn zero(&self, offset: u64, len: u64) -> io::Result<()> {
        if self.punch(offset, len).is_ok() {
            return Ok(());
        }
        let chunk = vec![0u8; (1 << 20).min(len as usize)];
        let mut done = 0u64;
        while done < len {
            let n = (len - done).min(chunk.len() as u64) as usize;
            self.file.write_all_at(&chunk[..n], offset + done)?;
            done += n as u64;
        }
        Ok(())
    }

    /// Stops serving: closes the read side of every connection, lets the
    /// worker drain the queue, and returns the statistics JSON and summary.
    pub fn finish(&self) -> (String, String) {
        for (_, s) in lock(&self.conns).iter() {
            let _ = s.shutdown(std::net::Shutdown::Read);
        }
        {
            let mut st = lock(&self.queue);
            st.shutdown = true;
            self.queue_cv.notify_all();
        }
        if let Some(h) = lock(&self.worker).take() {
            let _ = h.join();
        }
        let stats = lock(&self.stats).clone();
        let elapsed = self.elapsed_wall();
        (self.stats_json(), stats.summary(&self.cfg.name, elapsed))
    }

    /// The statistics so far as one JSON object, without stopping: counters
    /// cover the requests served up to now (a request in service is counted
    /// when it completes).
    pub fn stats_json(&self) -> String {
        let stats = lock(&self.stats).clone();
        let p = &self.cfg.params;
        // A flash drive (--drive ssd|nvme) states its own parameters; the
        // rotating disk's are then unused.
        let flash = self.cfg.flash.as_ref().map_or_else(
            || "null".to_string(),
            |f| {
                format!(
                    "{{\"latency_ms\": {}, \"channels\": {}, \"rate_bytes_per_s\": {}}}",
                    f.latency_ms, f.channels, f.rate
                )
            },
        );
        let extra = [
            ("flash", flash),
            ("size", self.size.to_string()),
            // The drive the export lies on (null: the export is the drive).
            (
                "capacity",
                p.capacity
                    .map_or_else(|| "null".to_string(), |c| c.to_string()),
            ),
            ("region_start", p.region_start.to_string()),
            ("reorder", json_string(self.cfg.reorder.name())),
            ("rpm", format!("{}", p.rpm)),
            ("rate_bytes_per_s", format!("{}", p.rate)),
            ("track_to_track_ms", format!("{}", p.track_to_track_ms)),
            ("avg_seek_ms", format!("{}", p.avg_seek_ms)),
            ("full_stroke_ms", format!("{}", p.full_stroke_ms)),
            ("overhead_ms", format!("{}", p.overhead_ms)),
            ("drive_readahead_bytes", p.readahead.to_string()),
            ("cache_segments", p.cache_segments.to_string()),
        ];
        stats.to_json(
            &self.cfg.name,
            self.elapsed_wall(),
            self.cfg.speed_factor,
            &extra,
        )
    }

    /// Wall seconds since the first request (0 before it).
    fn elapsed_wall(&self) -> f64 {
        lock(&self.first_request).map_or(0.0, |t| t.elapsed().as_secs_f64())
    }
}

fn parse_info_request(data: &[u8]) -> Option<Vec<u16>> {
    let name_len = be32(data.get(0..4)?) as usize;
    let rest = data.get(4 + name_len..)?;
    let n = be16(rest.get(0..2)?) as usize;
    let items = rest.get(2..)?;
    if items.len() != 2 * n {
        return None;
    }
    Some(items.chunks_exact(2).map(be16).collect())
}

fn opt_reply(w: &mut impl Write, opt: u32, kind: u32, data: &[u8]) -> io::Result<()> {
    let mut out = Vec::with_capacity(20 + data.len());
    out.extend_from_slice(&OPT_REPLY_MAGIC.to_be_bytes());
    out.extend_from_slice(&opt.to_be_bytes());
    out.extend_from_slice(&kind.to_be_bytes());
    out.extend_from_slice(&(data.len() as u32).to_be_bytes());
    out.extend_from_slice(data);
    w.write_all(&out)
}

fn be16(b: &[u8]) -> u16 {
    b.iter().take(2).fold(0, |a, &x| (a << 8) | u16::from(x))
}

fn be32(b: &[u8]) -> u32 {
    b.iter().take(4).fold(0, |a, &x| (a << 8) | u32::from(x))
}

fn be64(b: &[u8]) -> u64 {
    b.iter().take(8).fold(0, |a, &x| (a << 8) | u64::from(x))
}

fn read_u32(r: &mut impl Read) -> io::Result<u32> {
    let mut b = [0u8; 4];
    r.read_exact(&mut b)?;
    Ok(u32::from_be_bytes(b))
}

fn read_u64(r: &mut impl Read) -> io::Result<u64> {
    let mut b = [0u8; 8];
    r.read_exact(&mut b)?;
    Ok(u64::from_be_bytes(b))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn info_request_parsing() {
        let mut d = vec![0, 0, 0, 3, b'a', b'b', b'c', 0, 2, 0, 3, 0, 1];
        assert_eq!(parse_info_request(&d), Some(vec![3, 1]));
        d.push(0);
        assert_eq!(parse_info_request(&d), None);
        assert_eq!(parse_info_request(&[0, 0, 0, 9, 1]), None);
        assert_eq!(parse_info_request(&[0, 0, 0, 0, 0, 0]), Some(vec![]));
    }

    #[test]
    fn big_endian_helpers() {
        assert_eq!(be16(&[0x12, 0x34]), 0x1234);
        assert_eq!(be32(&[0x25, 0x60, 0x95, 0x13]), REQUEST_MAGIC);
        assert_eq!(be64(&NBDMAGIC.to_be_bytes()), NBDMAGIC);
    }
}
