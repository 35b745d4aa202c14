//! reada-fuzz: a bounded fuzzer of BTRFS_IOC_READA.
//!
//! usage: reada-fuzz PATH --trees ID,... [--calls N] [--seed S]
//!        [--nodesize N] [--unprivileged] [--no-module] [--min-ok PERCENT]
//!
//! Issues N (default 5000) ioctls on PATH with random tree ids, keys, modes,
//! flags, reserved fields, argument sizes encoded in the request number and
//! argument pointers (null, low, kernel, unmapped, read-only, straddling the
//! end of a mapping), from a seeded generator so a failure can be replayed.
//! Every call must end exactly as `Documentation/ioctl.md` says for its
//! input (`reada::expect`): the trees the filesystem has are given with
//! `--trees`, and `--unprivileged` / `--no-module` say that every call must
//! be refused for lack of the capability or of the module. Every success's
//! outputs must be consistent (`reada::expect::check_outputs`), and at least
//! PERCENT of the calls (default 0) must succeed. Prints a count per outcome
//! and exits 1 on the first call that ends otherwise.

use reada::expect::{check_outputs, expected, Outcome, Setting};
use reada::uapi::{
    iowr, BtrfsIoctlReadaArgs, BtrfsIoctlReadaKey, BTRFS_IOCTL_MAGIC, BTRFS_IOC_READA,
    BTRFS_IOC_READA_NR, BTRFS_READA_FLAG_COMMIT_ROOT, BTRFS_READA_FLAG_DETACH,
};
use std::collections::BTreeMap;
use std::ffi::CString;
use std::os::unix::ffi::OsStrExt;
use std::process::ExitCode;

/// xorshift64*: small, seedable, good enough to spread inputs.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }

    fn chance(&mut self, percent: u64) -> bool {
        self.below(100) < percent
    }

    fn pick<T: Copy>(&mut self, from: &[T]) -> T {
        from[self.below(from.len() as u64) as usize]
    }
}

/// Tree ids: trees the filesystem has (so that many calls get through),
/// every global tree id, ids that cannot name a tree, subvolume ids that may
/// or may not exist, and noise.
fn tree_id(rng: &mut Rng, existing: &[u64]) -> u64 {
    match rng.below(6) {
        0 | 1 if !existing.is_empty() => rng.pick(existing),
        0..=2 => rng.pick(&[1, 2, 3, 4, 5, 7, 8, 9, 10, 11, 12]),
        3 => rng.pick(&[0, 6, 13, 100, 255, 256, 257, 258, u64::MAX, u64::MAX - 8]),
        4 => 256 + rng.below(64),
        _ => rng.next(),
    }
}

fn key(rng: &mut Rng) -> BtrfsIoctlReadaKey {
    let field = |rng: &mut Rng| match rng.below(4) {
        0 => 0,
        1 => u64::MAX,
        2 => rng.below(1 << 24),
        _ => rng.next(),
    };
    let mut k = BtrfsIoctlReadaKey {
        objectid: field(rng),
        type_: rng.next() as u8,
        offset: field(rng),
        reserved: [0; 7],
    };
    if rng.chance(3) {
        k.reserved[rng.below(7) as usize] = 1 + rng.below(255) as u8;
    }
    k
}

fn args(rng: &mut Rng, existing: &[u64]) -> BtrfsIoctlReadaArgs {
    let mut a = BtrfsIoctlReadaArgs {
        tree_id: tree_id(rng, existing),
        ..Default::default()
    };
    // Mostly well-formed ranges, so that many calls get past validation.
    if rng.chance(60) {
        a.end = BtrfsIoctlReadaKey::MAX;
        if rng.chance(50) {
            a.start = key(rng);
            a.start.reserved = [0; 7];
        }
    } else {
        a.start = key(rng);
        a.end = key(rng);
    }
    a.mode = match rng.below(10) {
        0..=5 => 0,
        6 | 7 => 1 + rng.below(3) as u32,
        _ => rng.next() as u32,
    };
    a.flags = match rng.below(10) {
        // Detached readaheads pile up concurrently with what follows.
        0..=3 => BTRFS_READA_FLAG_DETACH,
        4 | 5 => BTRFS_READA_FLAG_COMMIT_ROOT,
        6 => BTRFS_READA_FLAG_DETACH | BTRFS_READA_FLAG_COMMIT_ROOT,
        7 | 8 => 0,
        _ => rng.next() as u32,
    };
    if rng.chance(3) {
        a.reserved_in[rng.below(4) as usize] = rng.next() | 1;
    }
    a
}

/// Mappings that argument pointers may point into: a read-write page, a
/// read-only page, and an unmapped page right after a read-write one.
struct Pages {
    rw: *mut u8,
    ro: *mut u8,
    /// The second of two pages whose first is read-write; inaccessible.
    hole: *mut u8,
    page: usize,
}

impl Pages {
    fn new() -> Result<Pages, String> {
        // SAFETY: sysconf has no memory-safety preconditions.
        let page = usize::try_from(unsafe { libc::sysconf(libc::_SC_PAGESIZE) })
            .map_err(|_| "no page size")?;
        let map = |len: usize, prot: libc::c_int| {
            // SAFETY: an anonymous private mapping of fresh memory; the
            // result is checked before use.
            let p = unsafe {
                libc::mmap(
                    std::ptr::null_mut(),
                    len,
                    prot,
                    libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
                    -1,
                    0,
                )
            };
            if p == libc::MAP_FAILED {
                Err(format!("mmap: {}", std::io::Error::last_os_error()))
            } else {
                Ok(p.cast::<u8>())
            }
        };
        let rw = map(2 * page, libc::PROT_READ | libc::PROT_WRITE)?;
        // SAFETY: the second page of the mapping just made, which nothing
        // else uses. It stays mapped but inaccessible: unmapping it would
        // let a later mapping (the read-only page) take its place.
        if unsafe { libc::mprotect(rw.add(page).cast(), page, libc::PROT_NONE) } != 0 {
            return Err("mprotect".into());
        }
        let ro = map(page, libc::PROT_READ)?;
        Ok(Pages {
            rw,
            ro,
            // SAFETY: one past the first page: an address, never dereferenced
            // by us.
            hole: unsafe { rw.add(page) },
            page,
        })
    }
}

/// Where one call's argument lives.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Place {
    /// A valid, writable argument.
    Good,
    Null,
    Low,
    Kernel,
    Unmapped,
    ReadOnly,
    /// Starts in a mapped page and runs into the unmapped one.
    Straddling,
}

fn place_label(p: Place) -> &'static str {
    match p {
        Place::Good => "a valid argument",
        Place::Null => "NULL",
        Place::Low => "a low address",
        Place::Kernel => "a kernel address",
        Place::Unmapped => "an unmapped page",
        Place::ReadOnly => "a read-only page",
        Place::Straddling => "the end of a mapping",
    }
}

const PLACES: [Place; 7] = [
    Place::Good,
    Place::Null,
    Place::Low,
    Place::Kernel,
    Place::Unmapped,
    Place::ReadOnly,
    Place::Straddling,
];

fn errno() -> i32 {
    std::io::Error::last_os_error().raw_os_error().unwrap_or(0)
}

fn errno_label(e: i32) -> String {
    match e {
        libc::EPERM => "EPERM".into(),
        libc::EOPNOTSUPP => "EOPNOTSUPP".into(),
        libc::ENOTTY => "ENOTTY".into(),
        libc::EFAULT => "EFAULT".into(),
        libc::EINVAL => "EINVAL".into(),
        libc::ENOENT => "ENOENT".into(),
        libc::EINTR => "EINTR".into(),
        libc::ENOMEM => "ENOMEM".into(),
        libc::ECANCELED => "ECANCELED".into(),
        libc::EIO => "EIO".into(),
        e => format!("errno {e}"),
    }
}

fn outcome_label(o: Outcome) -> String {
    match o {
        Outcome::Ok => "ok".into(),
        Outcome::Errno(e) => errno_label(e),
    }
}

const SIZE: usize = std::mem::size_of::<BtrfsIoctlReadaArgs>();

fn run() -> Result<(), String> {
    let argv: Vec<std::ffi::OsString> = std::env::args_os().skip(1).collect();
    let usage = "usage: reada-fuzz PATH --trees ID,... [--calls N] [--seed S] [--nodesize N] \
                 [--unprivileged] [--no-module] [--min-ok PERCENT]";
    let path = argv.first().ok_or(usage)?;
    let (mut calls, mut seed, mut nodesize, mut min_ok) = (5000u64, 1u64, 4096u64, 0u64);
    let mut setting = Setting {
        privileged: true,
        module: true,
        trees: Vec::new(),
    };
    let mut rest = argv[1..].iter().map(|a| a.to_string_lossy().into_owned());
    while let Some(opt) = rest.next() {
        match opt.as_str() {
            "--unprivileged" => setting.privileged = false,
            "--no-module" => setting.module = false,
            "--trees" => {
                let val = rest.next().ok_or(usage)?;
                for id in val.split(',').filter(|v| !v.is_empty()) {
                    let id: u64 = id.parse().map_err(|_| format!("bad tree id {id:?}"))?;
                    setting.trees.push(id);
                }
            }
            _ => {
                let val = rest.next().ok_or(usage)?;
                let n: u64 = val.parse().map_err(|_| format!("bad number {val:?}"))?;
                match opt.as_str() {
                    "--calls" => calls = n,
                    "--seed" => seed = n,
                    "--nodesize" => nodesize = n,
                    "--min-ok" => min_ok = n,
                    _ => return Err(usage.into()),
                }
            }
        }
    }
    if setting.trees.is_empty() && setting.privileged && setting.module {
        return Err("--trees is needed: the trees the filesystem has".into());
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
    let pages = Pages::new()?;
    let mut rng = Rng(seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1);
    let mut outcomes: BTreeMap<String, u64> = BTreeMap::new();
    for call in 0..calls {
        let mut a = args(&mut rng, &setting.trees);
        let place = if rng.chance(80) {
            Place::Good
        } else {
            rng.pick(&PLACES)
        };
        // One call in 20 encodes another argument size in the number.
        let request = if rng.chance(5) {
            let size = rng.pick(&[0, 1, 8, SIZE - 8, SIZE + 8, 4096, 16383]);
            iowr(BTRFS_IOCTL_MAGIC, BTRFS_IOC_READA_NR, size)
        } else {
            BTRFS_IOC_READA
        };
        let poison = 0xa5a5_a5a5_a5a5_a5a5;
        a.blocks_visited = poison;
        a.blocks_read = poison;
        a.blocks_cached = poison;
        a.bytes_read = poison;
        a.elapsed_ns = poison;
        a.errors = poison;
        let ptr: *mut u8 = match place {
            Place::Good => std::ptr::addr_of_mut!(a).cast(),
            Place::Null => std::ptr::null_mut(),
            Place::Low => 0x1000 as *mut u8,
            Place::Kernel => 0xffff_8880_0000_0000_usize as *mut u8,
            Place::Unmapped => pages.hole,
            Place::ReadOnly => pages.ro,
            // SAFETY: an address inside the read-write page, `SIZE / 2`
            // bytes before its end; never dereferenced by us beyond it.
            Place::Straddling => unsafe {
                // The first half of the argument is mapped.
                std::ptr::copy_nonoverlapping(
                    std::ptr::addr_of!(a).cast::<u8>(),
                    pages.rw.add(pages.page - SIZE / 2),
                    SIZE / 2,
                );
                pages.rw.add(pages.page - SIZE / 2)
            },
        };
        // What the kernel reads at `ptr`: the whole argument, or nothing.
        let readable = match place {
            Place::Good => Some(a),
            Place::ReadOnly => Some(BtrfsIoctlReadaArgs::default()),
            _ => None,
        };
        let want = expected(&setting, request == BTRFS_IOC_READA, readable.as_ref());
        // SAFETY: `fd` is open; `ptr` is either our live, writable argument
        // (whose size is what `BTRFS_IOC_READA` encodes; other request
        // numbers are refused by the kernel before it touches memory), or
        // on purpose an address the kernel must refuse with EFAULT, or the
        // read-only page, which the kernel must reject before writing.
        let ret = unsafe { libc::ioctl(fd, request as _, ptr) };
        let got = if ret < 0 {
            Outcome::Errno(errno())
        } else {
            Outcome::Ok
        };
        if got != want {
            return Err(format!(
                "call {call} (seed {seed}): got {}, the interface says {} for {:?} \
                 at {} with request {request:#x}",
                outcome_label(got),
                outcome_label(want),
                a,
                place_label(place)
            ));
        }
        let label = if got == Outcome::Ok {
            if a.elapsed_ns == poison {
                return Err(format!("call {call} (seed {seed}): elapsed_ns unwritten"));
            }
            check_outputs(&a, nodesize)
                .map_err(|e| format!("call {call} (seed {seed}): {e}: {a:?}"))?;
            if a.flags & BTRFS_READA_FLAG_DETACH != 0 {
                "ok (detached)".to_string()
            } else {
                "ok".to_string()
            }
        } else {
            outcome_label(got)
        };
        *outcomes.entry(label).or_default() += 1;
    }
    // SAFETY: `fd` is ours.
    unsafe { libc::close(fd) };
    let summary: Vec<String> = outcomes.iter().map(|(k, v)| format!("{k}={v}")).collect();
    println!(
        "reada-fuzz: {calls} calls, seed {seed}: {}",
        summary.join(" ")
    );
    let ok: u64 = outcomes
        .iter()
        .filter(|(k, _)| k.starts_with("ok"))
        .map(|(_, v)| v)
        .sum();
    if ok * 100 < min_ok * calls {
        return Err(format!(
            "only {ok} of {calls} calls succeeded, fewer than {min_ok}%"
        ));
    }
    Ok(())
}

fn main() -> ExitCode {
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("reada-fuzz: {e}");
            ExitCode::FAILURE
        }
    }
}
