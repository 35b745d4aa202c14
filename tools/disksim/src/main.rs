//! `disksim` command-line entry point: see `disksim --help`.

use disksim::config::{parse_args, Parsed, SweepConfig, USAGE};
use disksim::model::ascending_sweep;
use disksim::server::Server;
use std::fs::OpenOptions;
use std::io::{BufRead, Write};
use std::os::fd::AsRawFd;
use std::os::unix::fs::FileTypeExt;
use std::os::unix::net::UnixListener;
use std::path::Path;
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};

/// Set by SIGINT/SIGTERM: write the statistics and exit.
static SIGNALLED: AtomicBool = AtomicBool::new(false);
/// Set by SIGUSR1: append a statistics snapshot and carry on.
static SNAPSHOT: AtomicBool = AtomicBool::new(false);

extern "C" fn on_signal(sig: libc::c_int) {
    // Only atomic stores: async-signal-safe.
    if sig == libc::SIGUSR1 {
        SNAPSHOT.store(true, Ordering::SeqCst);
    } else {
        SIGNALLED.store(true, Ordering::SeqCst);
    }
}

fn install_signal_handlers() -> Result<(), String> {
    for sig in [libc::SIGINT, libc::SIGTERM, libc::SIGUSR1] {
        // SAFETY: the sigaction struct is fully initialised (zeroed, then the
        // handler and an empty mask set) and the handler is async-signal-safe.
        let r = unsafe {
            let mut sa: libc::sigaction = std::mem::zeroed();
            sa.sa_sigaction = on_signal as *const () as libc::sighandler_t;
            libc::sigemptyset(&mut sa.sa_mask);
            libc::sigaction(sig, &sa, std::ptr::null_mut())
        };
        if r != 0 {
            return Err(format!("sigaction: {}", std::io::Error::last_os_error()));
        }
    }
    Ok(())
}

/// Appends the statistics so far, as one JSON line, to `path` (stderr if none).
fn write_snapshot(server: &Server, path: Option<&Path>) -> Result<(), String> {
    let line = format!("{}\n", server.stats_json());
    server.trace_snapshot();
    match path {
        Some(p) => OpenOptions::new()
            .create(true)
            .append(true)
            .open(p)
            .and_then(|mut f| f.write_all(line.as_bytes()))
            .map_err(|e| format!("{}: {e}", p.display())),
        None => {
            eprint!("{line}");
            Ok(())
        }
    }
}

/// Waits up to `ms` milliseconds for the listener to become readable.
fn wait_readable(l: &UnixListener, ms: i32) {
    let mut pfd = libc::pollfd {
        fd: l.as_raw_fd(),
        events: libc::POLLIN,
        revents: 0,
    };
    // SAFETY: pfd is a valid pollfd for the duration of the call; nfds = 1.
    unsafe {
        libc::poll(&mut pfd, 1, ms);
    }
}

/// `--sweep`: reads "OFFSET LENGTH" lines from stdin and prints how long
/// one ascending sweep over them takes on the modelled disk.
fn sweep(cfg: &SweepConfig) -> Result<(), String> {
    let mut extents = Vec::new();
    for (n, line) in std::io::stdin().lock().lines().enumerate() {
        let line = line.map_err(|e| format!("stdin: {e}"))?;
        let mut f = line.split_whitespace();
        let (Some(a), Some(b), None) = (f.next(), f.next(), f.next()) else {
            if line.trim().is_empty() {
                continue;
            }
            return Err(format!("stdin line {}: expected OFFSET LENGTH", n + 1));
        };
        let parse = |v: &str| {
            v.parse::<u64>()
                .map_err(|_| format!("stdin line {}: bad number {v:?}", n + 1))
        };
        let (offset, len) = (parse(a)?, parse(b)?);
        if len == 0
            || offset
                .checked_add(len)
                .is_none_or(|end| end > cfg.params.size)
        {
            return Err(format!(
                "stdin line {}: extent {offset}+{len} is not inside the disk",
                n + 1
            ));
        }
        extents.push((offset, len));
    }
    let bytes: u64 = extents.iter().map(|e| e.1).sum();
    let seconds = ascending_sweep(cfg.params.clone(), &mut extents)? * cfg.speed_factor;
    println!(
        "{{\"requests\":{},\"bytes\":{bytes},\"seconds\":{seconds:.6}}}",
        extents.len()
    );
    Ok(())
}

fn run() -> Result<(), String> {
    let cfg = match parse_args(std::env::args().skip(1))? {
        Parsed::Help => {
            print!("{USAGE}");
            return Ok(());
        }
        Parsed::Sweep(c) => return sweep(&c),
        Parsed::Run(c) => *c,
    };
    install_signal_handlers()?;
    let socket = cfg.socket.clone();
    let stats_path = cfg.stats.clone();
    let snapshot_path = cfg.snapshots.clone();
    if let Ok(m) = std::fs::symlink_metadata(&socket) {
        if m.file_type().is_socket() {
            let _ = std::fs::remove_file(&socket);
        } else {
            return Err(format!("{} exists and is not a socket", socket.display()));
        }
    }
    let server = Server::start(cfg)?;
    let listener = UnixListener::bind(&socket).map_err(|e| format!("{}: {e}", socket.display()))?;
    listener
        .set_nonblocking(true)
        .map_err(|e| format!("{}: {e}", socket.display()))?;
    eprintln!("{} on {}", server.describe(), socket.display());
    while !SIGNALLED.load(Ordering::SeqCst) && !server.stop_requested() {
        wait_readable(&listener, 100);
        if SNAPSHOT.swap(false, Ordering::SeqCst) {
            if let Err(e) = write_snapshot(&server, snapshot_path.as_deref()) {
                eprintln!("disksim: snapshot: {e}");
            }
        }
        match listener.accept() {
            Ok((stream, _)) => {
                if let Err(e) = stream.set_nonblocking(false) {
                    eprintln!("disksim: {e}");
                    continue;
                }
                server.spawn_connection(stream);
            }
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => eprintln!("disksim: accept: {e}"),
        }
    }
    drop(listener);
    let _ = std::fs::remove_file(&socket);
    let (json, summary) = server.finish();
    match stats_path {
        Some(p) => {
            std::fs::write(&p, format!("{json}\n")).map_err(|e| format!("{}: {e}", p.display()))?
        }
        None => eprintln!("{json}"),
    }
    eprintln!("{summary}");
    Ok(())
}

fn main() -> ExitCode {
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("disksim: {e} (see disksim --help)");
            ExitCode::from(2)
        }
    }
}
