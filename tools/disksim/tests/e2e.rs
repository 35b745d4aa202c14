//! End-to-end: run the real binary, talk NBD to it over a unix socket.

use std::collections::HashMap;
use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const NBDMAGIC: u64 = u64::from_be_bytes(*b"NBDMAGIC");
const IHAVEOPT: u64 = u64::from_be_bytes(*b"IHAVEOPT");
const OPT_REPLY_MAGIC: u64 = 0x0003_e889_0455_65a9;
const REQUEST_MAGIC: u32 = 0x2560_9513;
const SIMPLE_REPLY_MAGIC: u32 = 0x6744_6698;

struct TempDir(PathBuf);

impl TempDir {
    fn new(tag: &str) -> Self {
        let p = std::env::temp_dir().join(format!("disksim-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&p);
        std::fs::create_dir_all(&p).unwrap();
        TempDir(p)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn spawn(dir: &Path, extra: &[&str]) -> Child {
    let sock = dir.join("sock");
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_disksim"));
    cmd.arg("--socket")
        .arg(&sock)
        .arg("--file")
        .arg(dir.join("disk.img"))
        .arg("--size")
        .arg("64M")
        .arg("--stats")
        .arg(dir.join("stats.json"))
        .args(extra)
        .stdin(Stdio::null());
    let child = cmd.spawn().unwrap();
    let t0 = Instant::now();
    while !sock.exists() {
        assert!(
            t0.elapsed() < Duration::from_secs(10),
            "server did not start"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    child
}

fn wait_exit(child: &mut Child) -> std::process::ExitStatus {
    let t0 = Instant::now();
    loop {
        if let Some(s) = child.try_wait().unwrap() {
            return s;
        }
        if t0.elapsed() > Duration::from_secs(20) {
            let _ = child.kill();
            panic!("server did not exit");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn rd<const N: usize>(s: &mut UnixStream) -> [u8; N] {
    let mut b = [0u8; N];
    s.read_exact(&mut b).unwrap();
    b
}

fn rd64(s: &mut UnixStream) -> u64 {
    u64::from_be_bytes(rd::<8>(s))
}

fn rd32(s: &mut UnixStream) -> u32 {
    u32::from_be_bytes(rd::<4>(s))
}

fn rd16(s: &mut UnixStream) -> u16 {
    u16::from_be_bytes(rd::<2>(s))
}

/// Greeting and client flags; returns the handshake flags.
fn greet(s: &mut UnixStream) -> u16 {
    assert_eq!(rd64(s), NBDMAGIC);
    assert_eq!(rd64(s), IHAVEOPT);
    let flags = rd16(s);
    assert_eq!(flags & 3, 3, "fixed newstyle + no zeroes");
    s.write_all(&3u32.to_be_bytes()).unwrap();
    flags
}

fn send_opt(s: &mut UnixStream, opt: u32, data: &[u8]) {
    let mut m = Vec::new();
    m.extend_from_slice(&IHAVEOPT.to_be_bytes());
    m.extend_from_slice(&opt.to_be_bytes());
    m.extend_from_slice(&(data.len() as u32).to_be_bytes());
    m.extend_from_slice(data);
    s.write_all(&m).unwrap();
}

/// Reads one option reply: (type, data).
fn opt_reply(s: &mut UnixStream, opt: u32) -> (u32, Vec<u8>) {
    assert_eq!(rd64(s), OPT_REPLY_MAGIC);
    assert_eq!(rd32(s), opt);
    let kind = rd32(s);
    let len = rd32(s);
    let mut d = vec![0u8; len as usize];
    s.read_exact(&mut d).unwrap();
    (kind, d)
}

/// Negotiates with NBD_OPT_GO; returns (size, transmission flags).
fn go(s: &mut UnixStream) -> (u64, u16) {
    // Structured replies are not offered: expect NBD_REP_ERR_UNSUP.
    send_opt(s, 8, &[]);
    assert_eq!(opt_reply(s, 8).0, 0x8000_0001);
    // NBD_OPT_GO, empty name, ask for NBD_INFO_BLOCK_SIZE.
    send_opt(s, 7, &[0, 0, 0, 0, 0, 1, 0, 3]);
    let (mut size, mut flags, mut saw_bs) = (0, 0, false);
    loop {
        let (kind, d) = opt_reply(s, 7);
        match kind {
            1 => break,
            3 => match u16::from_be_bytes([d[0], d[1]]) {
                0 => {
                    size = u64::from_be_bytes(d[2..10].try_into().unwrap());
                    flags = u16::from_be_bytes([d[10], d[11]]);
                }
                3 => {
                    saw_bs = true;
                    assert_eq!(u32::from_be_bytes(d[2..6].try_into().unwrap()), 512);
                }
                _ => {}
            },
            k => panic!("unexpected reply {k:#x}"),
        }
    }
    assert!(saw_bs);
    (size, flags)
}

fn request(s: &mut UnixStream, cmd: u16, handle: u64, offset: u64, len: u32, data: &[u8]) {
    let mut m = Vec::with_capacity(28 + data.len());
    m.extend_from_slice(&REQUEST_MAGIC.to_be_bytes());
    m.extend_from_slice(&0u16.to_be_bytes());
    m.extend_from_slice(&cmd.to_be_bytes());
    m.extend_from_slice(&handle.to_be_bytes());
    m.extend_from_slice(&offset.to_be_bytes());
    m.extend_from_slice(&len.to_be_bytes());
    m.extend_from_slice(data);
    s.write_all(&m).unwrap();
}

/// Reads one simple reply; `reads` maps handles of successful-read candidates
/// to their lengths.  Returns (handle, error, data).
fn reply(s: &mut UnixStream, reads: &HashMap<u64, u32>) -> (u64, u32, Vec<u8>) {
    assert_eq!(rd32(s), SIMPLE_REPLY_MAGIC);
    let err = rd32(s);
    let handle = rd64(s);
    let mut data = Vec::new();
    if err == 0 {
        if let Some(&len) = reads.get(&handle) {
            data = vec![0u8; len as usize];
            s.read_exact(&mut data).unwrap();
        }
    }
    (handle, err, data)
}

fn pattern(i: u64, len: usize) -> Vec<u8> {
    (0..len)
        .map(|k| (k as u64 * 31 + i * 7 + 1) as u8)
        .collect()
}

fn stat_u64(json: &str, key: &str) -> u64 {
    let pat = format!("\"{key}\": ");
    let at = json
        .find(&pat)
        .unwrap_or_else(|| panic!("{key} missing in {json}"))
        + pat.len();
    json[at..]
        .chars()
        .take_while(|c| c.is_ascii_digit())
        .collect::<String>()
        .parse()
        .unwrap()
}

#[test]
fn nbd_write_read_stats() {
    let dir = TempDir::new("e2e");
    let mut child = spawn(
        &dir.0,
        &[
            "--speed-factor",
            "0.01",
            "--reorder",
            "sptf",
            "--fail-reads",
            "100000:8",
            "--exit-on-disconnect",
            "--name",
            "e2e",
        ],
    );
    let sock = dir.0.join("sock");

    // A probe that aborts during negotiation must not end the server.
    {
        let mut s = UnixStream::connect(&sock).unwrap();
        greet(&mut s);
        send_opt(&mut s, 2, &[]);
        assert_eq!(opt_reply(&mut s, 2).0, 1);
    }

    let mut s = UnixStream::connect(&sock).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    greet(&mut s);
    let (size, flags) = go(&mut s);
    assert_eq!(size, 64 << 20);
    assert_eq!(flags & 1, 1, "HAS_FLAGS");
    assert_ne!(flags & (1 << 2), 0, "SEND_FLUSH");
    assert_ne!(flags & (1 << 4), 0, "ROTATIONAL");

    // 16 pipelined 64 KiB writes at scattered offsets, then a flush.
    let len = 64 * 1024u32;
    let offsets: Vec<u64> = (0..16u64).map(|i| ((i * 7919) % 1000) * 65536).collect();
    for (i, &off) in offsets.iter().enumerate() {
        request(
            &mut s,
            1,
            i as u64,
            off,
            len,
            &pattern(i as u64, len as usize),
        );
    }
    request(&mut s, 3, 100, 0, 0, &[]);
    let none = HashMap::new();
    let mut seen = Vec::new();
    for _ in 0..17 {
        let (h, err, _) = reply(&mut s, &none);
        assert_eq!(err, 0, "handle {h}");
        seen.push(h);
    }
    // The flush is a barrier: it completes after every write.
    assert_eq!(*seen.last().unwrap(), 100);

    // Pipelined reads back, plus an injected failure and an out-of-range read.
    let mut reads = HashMap::new();
    for (i, &off) in offsets.iter().enumerate() {
        request(&mut s, 0, 200 + i as u64, off, len, &[]);
        reads.insert(200 + i as u64, len);
    }
    request(&mut s, 0, 300, 100_004 * 512, 4096, &[]);
    reads.insert(300, 4096);
    request(&mut s, 0, 301, (64 << 20) - 512, 4096, &[]);
    reads.insert(301, 4096);
    let mut got = HashMap::new();
    for _ in 0..18 {
        let (h, err, data) = reply(&mut s, &reads);
        got.insert(h, (err, data));
    }
    for i in 0..16u64 {
        let (err, data) = &got[&(200 + i)];
        assert_eq!(*err, 0);
        assert!(
            *data == pattern(i, len as usize),
            "data mismatch for write {i}"
        );
    }
    assert_eq!(got[&300].0, 5, "injected EIO");
    assert_eq!(got[&301].0, 22, "EINVAL past the end");

    // Disconnect; with --exit-on-disconnect the server writes stats and exits.
    request(&mut s, 2, 999, 0, 0, &[]);
    drop(s);
    let status = wait_exit(&mut child);
    assert!(status.success(), "{status:?}");
    let json = std::fs::read_to_string(dir.0.join("stats.json")).unwrap();
    eprintln!("stats: {json}");
    assert!(json.starts_with("{\"name\": \"e2e\""));
    assert_eq!(stat_u64(&json, "writes"), 16);
    assert_eq!(stat_u64(&json, "reads"), 17);
    assert_eq!(stat_u64(&json, "flushes"), 1);
    assert_eq!(stat_u64(&json, "bytes_written"), 16 * u64::from(len));
    assert_eq!(stat_u64(&json, "bytes_read"), 16 * u64::from(len));
    assert_eq!(stat_u64(&json, "injected_read_errors"), 1);
    assert!(stat_u64(&json, "max_queue_depth") >= 2);
    assert!(!sock.exists(), "socket removed on exit");
}

#[test]
fn export_name_then_sigterm() {
    let dir = TempDir::new("term");
    let mut child = spawn(&dir.0, &["--speed-factor", "0.01"]);
    let sock = dir.0.join("sock");
    for round in 0..2u64 {
        // Old-style NBD_OPT_EXPORT_NAME; reconnecting must work.
        let mut s = UnixStream::connect(&sock).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
        greet(&mut s);
        send_opt(&mut s, 1, b"anything");
        assert_eq!(rd64(&mut s), 64 << 20);
        let flags = rd16(&mut s);
        assert_eq!(flags & 1, 1);
        let data = pattern(round + 40, 4096);
        request(&mut s, 1, 1, 4096 * round, 4096, &data);
        let none = HashMap::new();
        assert_eq!(reply(&mut s, &none).1, 0);
        let mut reads = HashMap::new();
        reads.insert(2, 4096);
        request(&mut s, 0, 2, 4096 * round, 4096, &[]);
        let (h, err, back) = reply(&mut s, &reads);
        assert_eq!((h, err), (2, 0));
        assert!(back == data);
        request(&mut s, 2, 3, 0, 0, &[]);
    }
    // SAFETY: plain kill(2) on our own child's pid.
    let r = unsafe { libc::kill(child.id() as libc::pid_t, libc::SIGTERM) };
    assert_eq!(r, 0);
    let status = wait_exit(&mut child);
    assert!(status.success(), "{status:?}");
    let json = std::fs::read_to_string(dir.0.join("stats.json")).unwrap();
    assert_eq!(stat_u64(&json, "writes"), 2);
    assert_eq!(stat_u64(&json, "reads"), 2);
}

#[test]
fn flash_drive_overlaps_queued_reads() {
    let dir = TempDir::new("flash");
    let mut child = spawn(
        &dir.0,
        &[
            "--drive",
            "ssd",
            "--flash-latency-ms",
            "50",
            "--exit-on-disconnect",
        ],
    );
    let mut s = UnixStream::connect(dir.0.join("sock")).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    greet(&mut s);
    let (_, flags) = go(&mut s);
    assert_eq!(flags & (1 << 4), 0, "a flash drive is not ROTATIONAL");
    // A write and a read of the same bytes, pipelined: the read sees it.
    let data = pattern(7, 4096);
    request(&mut s, 1, 1, 1 << 20, 4096, &data);
    request(&mut s, 0, 2, 1 << 20, 4096, &[]);
    let mut reads = HashMap::from([(2, 4096)]);
    assert_eq!(reply(&mut s, &reads).0, 1, "replies in serving order");
    let (h, err, back) = reply(&mut s, &reads);
    assert_eq!((h, err), (2, 0));
    assert!(back == data);
    // Eight reads queued at once take about one 50 ms latency on eight
    // channels, not eight of them.
    let t0 = Instant::now();
    for i in 0..8u64 {
        request(&mut s, 0, 10 + i, i * (4 << 20), 4096, &[]);
        reads.insert(10 + i, 4096);
    }
    for _ in 0..8 {
        assert_eq!(reply(&mut s, &reads).1, 0);
    }
    let took = t0.elapsed();
    assert!(took >= Duration::from_millis(50), "{took:?}");
    assert!(
        took < Duration::from_millis(300),
        "{took:?}: not overlapped"
    );
    request(&mut s, 2, 99, 0, 0, &[]);
    drop(s);
    assert!(wait_exit(&mut child).success());
    let json = std::fs::read_to_string(dir.0.join("stats.json")).unwrap();
    assert_eq!(stat_u64(&json, "reads"), 9);
}

/// Reads `path` until it holds `n` lines (a snapshot is written by the
/// server's main loop shortly after the signal).
fn wait_lines(path: &Path, n: usize) -> Vec<String> {
    let t0 = Instant::now();
    loop {
        let text = std::fs::read_to_string(path).unwrap_or_default();
        if text.lines().count() >= n && text.ends_with('\n') {
            return text.lines().map(String::from).collect();
        }
        assert!(t0.elapsed() < Duration::from_secs(10), "no snapshot {n}");
        std::thread::sleep(Duration::from_millis(10));
    }
}

#[test]
fn sigusr1_appends_cumulative_snapshots() {
    let dir = TempDir::new("snap");
    let snaps = dir.0.join("snapshots.jsonl");
    let snaps_arg = snaps.display().to_string();
    let mut child = spawn(
        &dir.0,
        &["--speed-factor", "0.01", "--snapshots", &snaps_arg],
    );
    let pid = child.id() as libc::pid_t;
    let mut s = UnixStream::connect(dir.0.join("sock")).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    greet(&mut s);
    go(&mut s);
    let none = HashMap::new();
    let mut reads = HashMap::new();
    let mut snapshot_after = |s: &mut UnixStream, n_reads: u64, expect_lines: usize| {
        for i in 0..n_reads {
            request(s, 0, i, i * 8192, 4096, &[]);
            reads.insert(i, 4096);
        }
        for _ in 0..n_reads {
            assert_eq!(reply(s, &reads).1, 0);
        }
        // SAFETY: plain kill(2) on our own child's pid.
        assert_eq!(unsafe { libc::kill(pid, libc::SIGUSR1) }, 0);
        wait_lines(&snaps, expect_lines)
    };
    let first = snapshot_after(&mut s, 3, 1);
    assert_eq!(stat_u64(&first[0], "reads"), 3);
    assert_eq!(stat_u64(&first[0], "bytes_read"), 3 * 4096);
    // The disk keeps serving, and the counters keep counting.
    let second = snapshot_after(&mut s, 5, 2);
    assert_eq!(stat_u64(&second[1], "reads"), 8);
    assert_eq!(stat_u64(&second[1], "bytes_read"), 8 * 4096);
    assert!(second[1].contains("\"busy_wall_s\": "));
    request(&mut s, 1, 50, 0, 4096, &pattern(1, 4096));
    assert_eq!(reply(&mut s, &none).1, 0);
    // SAFETY: plain kill(2) on our own child's pid.
    assert_eq!(unsafe { libc::kill(pid, libc::SIGTERM) }, 0);
    assert!(wait_exit(&mut child).success());
    let json = std::fs::read_to_string(dir.0.join("stats.json")).unwrap();
    assert_eq!(stat_u64(&json, "reads"), 8);
    assert_eq!(stat_u64(&json, "writes"), 1);
    assert_eq!(std::fs::read_to_string(&snaps).unwrap().lines().count(), 2);
}

#[test]
fn qemu_io_interop() {
    // tools/setup/install-deps.sh installs qemu-io (qemu-utils): without it
    // this test fails rather than passing unchecked.
    let qemu_io = find_in_path("qemu-io").expect("qemu-io not found: install qemu-utils");
    let dir = TempDir::new("qemu");
    let mut child = spawn(&dir.0, &["--speed-factor", "0.01"]);
    let url = format!("nbd+unix:///?socket={}", dir.0.join("sock").display());
    let out = Command::new(qemu_io)
        .args([
            "-f",
            "raw",
            &url,
            "-c",
            "write -P 0xab 0 64k",
            "-c",
            "read -P 0xab 0 64k",
        ])
        .output()
        .unwrap();
    let text =
        String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr);
    eprintln!("{text}");
    // SAFETY: plain kill(2) on our own child's pid.
    unsafe { libc::kill(child.id() as libc::pid_t, libc::SIGTERM) };
    assert!(wait_exit(&mut child).success());
    assert!(out.status.success(), "{text}");
    assert!(!text.contains("Pattern verification failed"), "{text}");
}

fn find_in_path(name: &str) -> Option<PathBuf> {
    std::env::var_os("PATH").and_then(|p| {
        std::env::split_paths(&p)
            .map(|d| d.join(name))
            .find(|f| f.is_file())
    })
}
