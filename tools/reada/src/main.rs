//! `reada MOUNTPOINT --tree TREE ...`: issue BTRFS_IOC_READA and report.
//! All parsing and formatting lives in the library; this file does the
//! system calls, the progress thread and the exit status.

use std::fs::File;
use std::io::{IsTerminal, Write};
use std::os::fd::AsRawFd;
use std::process::ExitCode;
use std::sync::mpsc::{self, RecvTimeoutError};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use reada::report::{self, CLEAR_LINE, COUNTERS_PATH};
use reada::uapi::{self, BtrfsIoctlReadaArgs};
use reada::{parse_args, Command, Options, EXIT_FAILURE, EXIT_USAGE, USAGE};

/// How often the progress line is redrawn (and how long a request must
/// take before it appears at all).
const PROGRESS_TICK: Duration = Duration::from_millis(100);

fn exit(status: i32) -> ExitCode {
    // Both exit statuses used here (1, 2) fit in a u8.
    ExitCode::from(u8::try_from(status).unwrap_or(1))
}

fn main() -> ExitCode {
    let mut argv = Vec::new();
    for a in std::env::args_os().skip(1) {
        match a.into_string() {
            Ok(s) => argv.push(s),
            Err(a) => {
                eprintln!("reada: argument {a:?} is not valid UTF-8");
                return exit(EXIT_USAGE);
            }
        }
    }
    let opts = match parse_args(&argv) {
        Ok(Command::Help) => {
            print!("{USAGE}");
            return ExitCode::SUCCESS;
        }
        Ok(Command::Run(opts)) => opts,
        Ok(Command::Counters { json }) => {
            return match show_counters(json) {
                Ok(()) => ExitCode::SUCCESS,
                Err(msg) => {
                    eprintln!("reada: {msg}");
                    exit(EXIT_FAILURE)
                }
            };
        }
        Err(msg) => {
            eprintln!("reada: {msg} (see reada --help)");
            return exit(EXIT_USAGE);
        }
    };
    match run(&opts) {
        Ok(()) => ExitCode::SUCCESS,
        Err(msg) => {
            eprintln!("reada: {msg}");
            exit(EXIT_FAILURE)
        }
    }
}

/// Prints the module's counters.
fn show_counters(json: bool) -> Result<(), String> {
    let text = std::fs::read_to_string(COUNTERS_PATH).map_err(|e| {
        format!(
            "cannot read {COUNTERS_PATH}: {e} (is debugfs mounted and the btrfs_reada module loaded?)"
        )
    })?;
    let counters = report::parse_counters(&text)?;
    let out = if json {
        report::format_counters_json(&counters) + "\n"
    } else {
        report::format_counters(&counters)
    };
    let mut stdout = std::io::stdout().lock();
    stdout
        .write_all(out.as_bytes())
        .and_then(|()| stdout.flush())
        .map_err(|e| format!("cannot write output: {e}"))
}

/// Opens the mount point and issues the request `opts.repeat` times.
fn run(opts: &Options) -> Result<(), String> {
    // File::open is O_RDONLY | O_CLOEXEC, which opens directories too.
    let file = File::open(&opts.mountpoint)
        .map_err(|e| report::open_error_message(&opts.mountpoint, &e))?;
    let show_progress =
        !opts.detach && std::io::stdout().is_terminal() && std::io::stderr().is_terminal();
    let mut stdout = std::io::stdout().lock();
    for _ in 0..opts.repeat {
        let mut args = opts.to_uapi();
        let progress = show_progress.then(|| Progress::start(opts.clone()));
        let result = reada_ioctl(&file, &mut args);
        if let Some(p) = progress {
            p.stop();
        }
        result.map_err(|errno| report::errno_message(errno, opts.tree_id))?;
        let line = if opts.json {
            report::format_json(opts, &args)
        } else if opts.detach {
            report::format_detached(opts)
        } else {
            report::format_summary(opts, &args)
        };
        writeln!(stdout, "{line}")
            .and_then(|()| stdout.flush())
            .map_err(|e| format!("cannot write output: {e}"))?;
    }
    Ok(())
}

/// `ioctl(fd, BTRFS_IOC_READA, args)`; the errno on failure.
fn reada_ioctl(file: &File, args: &mut BtrfsIoctlReadaArgs) -> Result<(), i32> {
    let arg: *mut BtrfsIoctlReadaArgs = args;
    // SAFETY: the fd is open for the lifetime of `file`; `arg` points to a
    // live, writable, exclusively borrowed repr(C) struct whose size (160)
    // is the size encoded in the request number, so the kernel reads and
    // writes only within it.
    let rc = unsafe { libc::ioctl(file.as_raw_fd(), uapi::BTRFS_IOC_READA as _, arg) };
    if rc < 0 {
        Err(std::io::Error::last_os_error()
            .raw_os_error()
            .unwrap_or(libc::EIO))
    } else {
        Ok(())
    }
}

/// The spinner on stderr while the ioctl blocks.
struct Progress {
    stop: mpsc::Sender<()>,
    thread: JoinHandle<()>,
}

impl Progress {
    fn start(opts: Options) -> Progress {
        let (stop, stopped) = mpsc::channel::<()>();
        let thread = thread::spawn(move || {
            let begin = Instant::now();
            let mut tick = 0u64;
            let mut drawn = false;
            // Draw only after the first tick, so quick requests show nothing.
            while let Err(RecvTimeoutError::Timeout) = stopped.recv_timeout(PROGRESS_TICK) {
                let blocks_read = std::fs::read_to_string(COUNTERS_PATH)
                    .ok()
                    .and_then(|text| report::parse_counter(&text, "blocks_read"));
                let line = report::progress_line(&opts, tick, begin.elapsed(), blocks_read);
                let mut err = std::io::stderr().lock();
                // Progress output is best effort: a write error is ignored.
                let _ = write!(err, "{CLEAR_LINE}{line}").and_then(|()| err.flush());
                drawn = true;
                tick += 1;
            }
            if drawn {
                let mut err = std::io::stderr().lock();
                let _ = write!(err, "{CLEAR_LINE}").and_then(|()| err.flush());
            }
        });
        Progress { stop, thread }
    }

    fn stop(self) {
        // The thread ends on the message or on the sender's drop alike.
        let _ = self.stop.send(());
        let _ = self.thread.join();
    }
}
