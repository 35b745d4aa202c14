//! Builds the data layout of the benchmark's `users` fixture
//! (tools/bench/make-users-fixture.sh), from one process: under TCG a
//! process per extent would take hours.
//!
//! btrfs (6.1 on) keeps extents of different size classes (below 128 KiB,
//! below 8 MiB, larger) in different data block groups, each class's groups
//! filled in address order. Each command appends extents of one size, each
//! its own extent item in the extent tree:
//!
//! `fill-groups prealloc FILE COUNT SIZE`
//!   Preallocates COUNT extents of SIZE at the end of FILE, one fallocate()
//!   each: with block groups of N * SIZE, each group holds N extent items,
//!   and the extent tree holds a leaf or so per block group, as on a large
//!   filesystem, where mount searches one leaf per group. Nothing is written.
//! `fill-groups write DIR COUNT FILES`
//!   COUNT direct writes of 4 KiB, dealt in turn to DIR/f0 .. DIR/f{FILES-1}:
//!   each file is a file of COUNT / FILES extents with checksums, its
//!   extents interleaved with the other files' on disk, in the extent tree
//!   and in the csum tree.
//! `fill-groups punch FILE COUNT SIZE SEED`
//!   Punches COUNT pieces of SIZE of FILE, picked at random (SEED): each frees
//!   an extent of that size, so the extent tree leaf (and csum tree leaf) it
//!   is in is copied on write to wherever free metadata space is.

use std::fs::{File, OpenOptions};
use std::os::unix::fs::{FileExt, OpenOptionsExt};
use std::os::unix::io::AsRawFd;
use std::process::ExitCode;

const BLOCK: u64 = 4096;

/// A 4 KiB buffer aligned as O_DIRECT needs.
#[repr(C, align(4096))]
struct Block([u8; BLOCK as usize]);

fn number(what: &str, s: &str) -> Result<u64, String> {
    s.parse().map_err(|_| format!("bad {what} {s:?}"))
}

fn fallocate(f: &File, mode: i32, offset: u64, len: u64) -> Result<(), String> {
    let (Ok(off), Ok(n)) = (i64::try_from(offset), i64::try_from(len)) else {
        return Err(format!("offset {offset} or length {len} out of range"));
    };
    // SAFETY: fallocate() only reads its integer arguments; the descriptor
    // belongs to `f`, which outlives the call.
    let r = unsafe { libc::fallocate(f.as_raw_fd(), mode, off, n) };
    if r != 0 {
        return Err(format!(
            "fallocate at {offset} (+{len}): {}",
            std::io::Error::last_os_error()
        ));
    }
    Ok(())
}

fn open(path: &str, flags: i32) -> Result<File, String> {
    OpenOptions::new()
        .write(true)
        .create(true)
        .custom_flags(flags)
        .open(path)
        .map_err(|e| format!("cannot open {path}: {e}"))
}

fn size_of(f: &File, path: &str) -> Result<u64, String> {
    Ok(f.metadata().map_err(|e| format!("{path}: {e}"))?.len())
}

fn prealloc(path: &str, count: u64, size: u64) -> Result<(), String> {
    if size == 0 || !size.is_multiple_of(BLOCK) {
        return Err("SIZE must be a positive multiple of 4096".into());
    }
    let f = open(path, 0)?;
    let mut end = size_of(&f, path)?;
    for _ in 0..count {
        fallocate(&f, 0, end, size)?;
        end += size;
    }
    Ok(())
}

fn write(dir: &str, count: u64, files: u64) -> Result<(), String> {
    if files == 0 {
        return Err("FILES must be at least 1".into());
    }
    let mut out = Vec::new();
    for i in 0..files {
        let path = format!("{dir}/f{i}");
        let f = open(&path, libc::O_DIRECT)?;
        let end = size_of(&f, &path)?;
        out.push((f, end));
    }
    let mut block = Box::new(Block([0; BLOCK as usize]));
    for n in 0..count {
        // Distinct content per block, though nothing here dedupes.
        block.0[..8].copy_from_slice(&n.to_le_bytes());
        let (f, end) = &mut out[(n % files) as usize];
        f.write_all_at(&block.0, *end)
            .map_err(|err| format!("write {n}: {err}"))?;
        *end += BLOCK;
    }
    Ok(())
}

fn punch(path: &str, count: u64, size: u64, seed: u64) -> Result<(), String> {
    let f = open(path, 0)?;
    let pieces = size_of(&f, path)? / size.max(1);
    if pieces == 0 {
        return Err(format!("{path} is smaller than {size} bytes"));
    }
    // xorshift64*: the same pieces for the same seed.
    let mut x = seed | 1;
    for _ in 0..count {
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        let p = x.wrapping_mul(0x2545_f491_4f6c_dd1d) % pieces;
        fallocate(
            &f,
            libc::FALLOC_FL_PUNCH_HOLE | libc::FALLOC_FL_KEEP_SIZE,
            p * size,
            size,
        )?;
    }
    Ok(())
}

fn run(args: &[String]) -> Result<(), String> {
    match args {
        [cmd, file, count, size] if cmd == "prealloc" => {
            prealloc(file, number("COUNT", count)?, number("SIZE", size)?)
        }
        [cmd, dir, count, files] if cmd == "write" => {
            write(dir, number("COUNT", count)?, number("FILES", files)?)
        }
        [cmd, file, count, size, seed] if cmd == "punch" => punch(
            file,
            number("COUNT", count)?,
            number("SIZE", size)?,
            number("SEED", seed)?,
        ),
        _ => Err("usage: fill-groups prealloc FILE COUNT SIZE\n       \
                  fill-groups write DIR COUNT FILES\n       \
                  fill-groups punch FILE COUNT SIZE SEED"
            .into()),
    }
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match run(&args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("fill-groups: {e}");
            ExitCode::FAILURE
        }
    }
}
