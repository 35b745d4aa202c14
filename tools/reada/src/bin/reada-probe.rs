//! reada-probe: issue one raw BTRFS_IOC_READA with exactly the fields given,
//! for the kernel's argument checks to be tested with inputs that the `reada`
//! tool itself refuses to send.
//!
//! usage: reada-probe PATH [tree=N] [mode=N] [flags=N] [start=O,T,F] [end=O,T,F]
//!                    [reserved_in=I:V] [start_reserved=I:V] [end_reserved=I:V]
//!                    [badptr] [poison] [fail_nth=N]
//!
//! Prints `ok visited=.. read=.. cached=.. bytes=.. errors=..` or `errno=NAME`,
//! and exits 0 either way (1 on a usage error or a broken output contract).
//! `poison` fills the output fields with 0xa5 bytes first and checks that the
//! kernel overwrote every one of them and zeroed `reserved_out`.
//! `fail_nth=N` makes the Nth memory allocation of the call fail (the
//! kernel's fault injection, `/proc/thread-self/fail-nth`) and appends
//! `injected=yes` or `injected=no` (the call made fewer than N allocations).

use reada::uapi::{BtrfsIoctlReadaArgs, BtrfsIoctlReadaKey, BTRFS_IOC_READA};
use std::ffi::CString;
use std::os::unix::ffi::OsStrExt;
use std::process::ExitCode;

fn num(s: &str) -> Result<u64, String> {
    let r = if let Some(h) = s.strip_prefix("0x") {
        u64::from_str_radix(h, 16)
    } else if s == "max" {
        Ok(u64::MAX)
    } else {
        s.parse()
    };
    r.map_err(|_| format!("bad number {s:?}"))
}

fn key(s: &str) -> Result<BtrfsIoctlReadaKey, String> {
    let f: Vec<&str> = s.split(',').collect();
    if f.len() != 3 {
        return Err(format!("key {s:?} is not O,T,F"));
    }
    Ok(BtrfsIoctlReadaKey {
        objectid: num(f[0])?,
        type_: u8::try_from(num(f[1])?).map_err(|_| "key type over 255".to_string())?,
        offset: num(f[2])?,
        reserved: [0; 7],
    })
}

fn index_value(s: &str) -> Result<(usize, u64), String> {
    let (i, v) = s.split_once(':').ok_or(format!("{s:?} is not I:V"))?;
    Ok((num(i)? as usize, num(v)?))
}

/// The kernel's per-thread allocation fault injection.
const FAIL_NTH: &str = "/proc/thread-self/fail-nth";

/// Makes the `n`th allocation of this thread from now on fail. Written
/// with a raw write(2), which itself allocates nothing the count sees.
fn arm_fail_nth(f: &std::fs::File, n: u64) -> Result<(), String> {
    use std::os::fd::AsRawFd;
    let text = n.to_string();
    // SAFETY: the fd is open for the lifetime of `f`; the buffer is valid
    // for its length.
    let w = unsafe { libc::write(f.as_raw_fd(), text.as_ptr().cast(), text.len()) };
    if w < 0 {
        return Err(format!(
            "cannot arm {FAIL_NTH}: {}",
            std::io::Error::last_os_error()
        ));
    }
    Ok(())
}

/// Whether the armed fault fired (the file then reads 0), and disarms it.
/// Read through the fd that armed it (the file cannot seek, and writing
/// does not move its position): opening it again would allocate, and could
/// fire a fault that the ioctl did not reach.
fn fault_injected(f: &std::fs::File) -> Result<bool, String> {
    use std::io::{Read, Write};
    let mut f = f;
    let mut text = String::new();
    f.read_to_string(&mut text)
        .map_err(|e| format!("cannot read {FAIL_NTH}: {e}"))?;
    let left: u64 = text
        .trim()
        .parse()
        .map_err(|_| format!("{FAIL_NTH} says {text:?}"))?;
    f.write_all(b"0")
        .map_err(|e| format!("cannot disarm {FAIL_NTH}: {e}"))?;
    Ok(left == 0)
}

fn errno_name(e: i32) -> String {
    let name = match e {
        libc::EPERM => "EPERM",
        libc::ENOENT => "ENOENT",
        libc::EINTR => "EINTR",
        libc::EIO => "EIO",
        libc::ENOMEM => "ENOMEM",
        libc::EFAULT => "EFAULT",
        libc::EBUSY => "EBUSY",
        libc::EINVAL => "EINVAL",
        libc::ENOTTY => "ENOTTY",
        libc::EOPNOTSUPP => "EOPNOTSUPP",
        libc::ECANCELED => "ECANCELED",
        _ => return format!("{e}"),
    };
    name.to_string()
}

fn run() -> Result<(), String> {
    let argv: Vec<std::ffi::OsString> = std::env::args_os().skip(1).collect();
    let path = argv
        .first()
        .ok_or("usage: reada-probe PATH [field=value]...")?;
    let mut a = BtrfsIoctlReadaArgs {
        tree_id: 2,
        end: BtrfsIoctlReadaKey::MAX,
        ..Default::default()
    };
    let (mut badptr, mut poison) = (false, false);
    let mut fail_nth: Option<u64> = None;
    for arg in &argv[1..] {
        let arg = arg.to_str().ok_or("arguments must be UTF-8")?;
        let (k, v) = arg.split_once('=').unwrap_or((arg, ""));
        match k {
            "tree" => a.tree_id = num(v)?,
            "mode" => a.mode = num(v)? as u32,
            "flags" => a.flags = num(v)? as u32,
            "start" => a.start = key(v)?,
            "end" => a.end = key(v)?,
            "reserved_in" => {
                let (i, x) = index_value(v)?;
                *a.reserved_in.get_mut(i).ok_or("reserved_in index over 3")? = x;
            }
            "start_reserved" | "end_reserved" => {
                let (i, x) = index_value(v)?;
                let k = if k == "start_reserved" {
                    &mut a.start
                } else {
                    &mut a.end
                };
                *k.reserved.get_mut(i).ok_or("reserved index over 6")? = x as u8;
            }
            "badptr" => badptr = true,
            "poison" => poison = true,
            "fail_nth" => fail_nth = Some(num(v)?),
            _ => return Err(format!("unknown field {k:?}")),
        }
    }
    if poison {
        a.blocks_visited = 0xa5a5_a5a5_a5a5_a5a5;
        a.blocks_read = a.blocks_visited;
        a.blocks_cached = a.blocks_visited;
        a.bytes_read = a.blocks_visited;
        a.elapsed_ns = a.blocks_visited;
        a.errors = a.blocks_visited;
        a.blocks_stale = a.blocks_visited;
        a.reserved_out = [a.blocks_visited; 1];
    }
    let cpath = CString::new(path.as_bytes()).map_err(|_| "path has a NUL byte")?;
    // SAFETY: `cpath` is a valid NUL-terminated string.
    let fd = unsafe { libc::open(cpath.as_ptr(), libc::O_RDONLY) };
    if fd < 0 {
        return Err(format!(
            "cannot open {path:?}: {}",
            std::io::Error::last_os_error()
        ));
    }
    let ptr: *mut BtrfsIoctlReadaArgs = if badptr { 0x10 as *mut _ } else { &mut a };
    // Opened before arming, so that only the ioctl's allocations count.
    let fail_file = match fail_nth {
        Some(_) => Some(
            std::fs::OpenOptions::new()
                .read(true)
                .write(true)
                .open(FAIL_NTH)
                .map_err(|e| format!("cannot open {FAIL_NTH}: {e}"))?,
        ),
        None => None,
    };
    if let (Some(f), Some(n)) = (&fail_file, fail_nth) {
        arm_fail_nth(f, n)?;
    }
    // SAFETY: `fd` is open; `ptr` is either our argument or, on purpose, a
    // bad address the kernel must refuse with EFAULT.
    let ret = unsafe { libc::ioctl(fd, BTRFS_IOC_READA as _, ptr) };
    let err = std::io::Error::last_os_error().raw_os_error().unwrap_or(0);
    let injected = match &fail_file {
        Some(f) => Some(fault_injected(f)?),
        None => None,
    };
    // SAFETY: `fd` is ours.
    unsafe { libc::close(fd) };
    let suffix = match injected {
        Some(true) => " injected=yes",
        Some(false) => " injected=no",
        None => "",
    };
    if ret < 0 {
        println!("errno={}{suffix}", errno_name(err));
        return Ok(());
    }
    println!(
        "ok visited={} read={} cached={} bytes={} errors={} elapsed_ns={} stale={}{suffix}",
        a.blocks_visited,
        a.blocks_read,
        a.blocks_cached,
        a.bytes_read,
        a.errors,
        a.elapsed_ns,
        a.blocks_stale
    );
    if poison {
        let p = 0xa5a5_a5a5_a5a5_a5a5;
        let outs = [
            a.blocks_visited,
            a.blocks_read,
            a.blocks_cached,
            a.bytes_read,
            a.elapsed_ns,
            a.errors,
            a.blocks_stale,
        ];
        if outs.contains(&p) || a.reserved_out != [0; 1] {
            return Err("an output field was not written, or reserved_out is not zero".into());
        }
    }
    Ok(())
}

fn main() -> ExitCode {
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("reada-probe: {e}");
            ExitCode::FAILURE
        }
    }
}
