//! Checks `reada::uapi` against the real C header.
//!
//! Set `READA_UAPI_HEADER` to the patched kernel's
//! `include/uapi/linux/btrfs.h`. The test writes a C program that includes
//! that file by its path (its own `#include <linux/types.h>` and
//! `<linux/ioctl.h>` and `<linux/fs.h>` come from the host's /usr/include,
//! i.e. linux-libc-dev), compiles it with `$CC` (default `cc`) defining away
//! the kernel-only annotations (`__user`, ...) that `make headers_install`
//! strips, runs it and compares every size, offset and constant with the
//! Rust definitions. Both the source-tree header and an installed one work.
//!
//! Without `READA_UAPI_HEADER` the test is skipped with a note on stderr,
//! unless `READA_REQUIRE_UAPI=1`, in which case it fails.

use std::collections::BTreeMap;
use std::io::Write;
use std::mem::{offset_of, size_of};
use std::path::{Path, PathBuf};
use std::process::Command;

use reada::uapi::*;

/// Writes straight to the process's stderr, past the test harness's output
/// capture, so a skip is visible in a plain `cargo test`.
fn note(msg: &str) {
    let _ = writeln!(std::io::stderr(), "{msg}");
}

/// (name, C expression, Rust value)
fn expected() -> Vec<(&'static str, &'static str, u64)> {
    type A = BtrfsIoctlReadaArgs;
    type K = BtrfsIoctlReadaKey;
    let u = |v: usize| v as u64;
    vec![
        (
            "key_size",
            "sizeof(struct btrfs_ioctl_reada_key)",
            u(size_of::<K>()),
        ),
        (
            "key_objectid",
            "offsetof(struct btrfs_ioctl_reada_key, objectid)",
            u(offset_of!(K, objectid)),
        ),
        (
            "key_offset",
            "offsetof(struct btrfs_ioctl_reada_key, offset)",
            u(offset_of!(K, offset)),
        ),
        (
            "key_type",
            "offsetof(struct btrfs_ioctl_reada_key, type)",
            u(offset_of!(K, type_)),
        ),
        (
            "key_reserved",
            "offsetof(struct btrfs_ioctl_reada_key, reserved)",
            u(offset_of!(K, reserved)),
        ),
        (
            "key_reserved_size",
            "sizeof(((struct btrfs_ioctl_reada_key *)0)->reserved)",
            7,
        ),
        (
            "args_size",
            "sizeof(struct btrfs_ioctl_reada_args)",
            u(size_of::<A>()),
        ),
        (
            "tree_id",
            "offsetof(struct btrfs_ioctl_reada_args, tree_id)",
            u(offset_of!(A, tree_id)),
        ),
        (
            "start",
            "offsetof(struct btrfs_ioctl_reada_args, start)",
            u(offset_of!(A, start)),
        ),
        (
            "end",
            "offsetof(struct btrfs_ioctl_reada_args, end)",
            u(offset_of!(A, end)),
        ),
        (
            "mode",
            "offsetof(struct btrfs_ioctl_reada_args, mode)",
            u(offset_of!(A, mode)),
        ),
        (
            "flags",
            "offsetof(struct btrfs_ioctl_reada_args, flags)",
            u(offset_of!(A, flags)),
        ),
        (
            "reserved_in",
            "offsetof(struct btrfs_ioctl_reada_args, reserved_in)",
            u(offset_of!(A, reserved_in)),
        ),
        (
            "reserved_in_size",
            "sizeof(((struct btrfs_ioctl_reada_args *)0)->reserved_in)",
            32,
        ),
        (
            "blocks_visited",
            "offsetof(struct btrfs_ioctl_reada_args, blocks_visited)",
            u(offset_of!(A, blocks_visited)),
        ),
        (
            "blocks_read",
            "offsetof(struct btrfs_ioctl_reada_args, blocks_read)",
            u(offset_of!(A, blocks_read)),
        ),
        (
            "blocks_cached",
            "offsetof(struct btrfs_ioctl_reada_args, blocks_cached)",
            u(offset_of!(A, blocks_cached)),
        ),
        (
            "bytes_read",
            "offsetof(struct btrfs_ioctl_reada_args, bytes_read)",
            u(offset_of!(A, bytes_read)),
        ),
        (
            "elapsed_ns",
            "offsetof(struct btrfs_ioctl_reada_args, elapsed_ns)",
            u(offset_of!(A, elapsed_ns)),
        ),
        (
            "errors",
            "offsetof(struct btrfs_ioctl_reada_args, errors)",
            u(offset_of!(A, errors)),
        ),
        (
            "blocks_stale",
            "offsetof(struct btrfs_ioctl_reada_args, blocks_stale)",
            u(offset_of!(A, blocks_stale)),
        ),
        (
            "reserved_out",
            "offsetof(struct btrfs_ioctl_reada_args, reserved_out)",
            u(offset_of!(A, reserved_out)),
        ),
        (
            "reserved_out_size",
            "sizeof(((struct btrfs_ioctl_reada_args *)0)->reserved_out)",
            8,
        ),
        ("ioc_reada", "BTRFS_IOC_READA", u64::from(BTRFS_IOC_READA)),
        (
            "ioctl_magic",
            "BTRFS_IOCTL_MAGIC",
            u64::from(BTRFS_IOCTL_MAGIC),
        ),
        (
            "mode_readahead",
            "BTRFS_READA_MODE_READAHEAD",
            u64::from(BTRFS_READA_MODE_READAHEAD),
        ),
        (
            "mode_plain",
            "BTRFS_READA_MODE_PLAIN",
            u64::from(BTRFS_READA_MODE_PLAIN),
        ),
        (
            "mode_forward",
            "BTRFS_READA_MODE_FORWARD",
            u64::from(BTRFS_READA_MODE_FORWARD),
        ),
        (
            "mode_forward_always",
            "BTRFS_READA_MODE_FORWARD_ALWAYS",
            u64::from(BTRFS_READA_MODE_FORWARD_ALWAYS),
        ),
        (
            "flag_detach",
            "BTRFS_READA_FLAG_DETACH",
            u64::from(BTRFS_READA_FLAG_DETACH),
        ),
        (
            "flag_commit_root",
            "BTRFS_READA_FLAG_COMMIT_ROOT",
            u64::from(BTRFS_READA_FLAG_COMMIT_ROOT),
        ),
        (
            "flags_mask",
            "BTRFS_READA_FLAGS_MASK",
            u64::from(BTRFS_READA_FLAGS_MASK),
        ),
    ]
}

fn c_program(header: &Path) -> String {
    let mut c = String::from("#include <stddef.h>\n#include <stdio.h>\n");
    // Include the header by its path; a path with '"' or '\\' would not
    // survive a C string literal, so those are escaped.
    let path = header
        .display()
        .to_string()
        .replace('\\', "\\\\")
        .replace('"', "\\\"");
    c.push_str(&format!("#include \"{path}\"\n\nint main(void)\n{{\n"));
    for (name, expr, _) in expected() {
        c.push_str(&format!(
            "\tprintf(\"{name} %llu\\n\", (unsigned long long)({expr}));\n"
        ));
    }
    c.push_str("\treturn 0;\n}\n");
    c
}

#[test]
fn layout_matches_c_header() {
    let header = match std::env::var_os("READA_UAPI_HEADER") {
        Some(h) if !h.is_empty() => PathBuf::from(h),
        _ => {
            let required = std::env::var("READA_REQUIRE_UAPI").is_ok_and(|v| v == "1");
            note(
                "note: READA_UAPI_HEADER is not set; the check of reada::uapi against \
                 the kernel's include/uapi/linux/btrfs.h was SKIPPED",
            );
            assert!(
                !required,
                "READA_REQUIRE_UAPI=1 but READA_UAPI_HEADER is not set"
            );
            return;
        }
    };
    let header = std::fs::canonicalize(&header)
        .unwrap_or_else(|e| panic!("READA_UAPI_HEADER={}: {e}", header.display()));

    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("uapi_header");
    std::fs::create_dir_all(&dir).unwrap();
    let src = dir.join("layout.c");
    let exe = dir.join("layout");
    std::fs::write(&src, c_program(&header)).unwrap();

    let cc = std::env::var("CC").unwrap_or_else(|_| "cc".to_string());
    let out = Command::new(&cc)
        .args(["-std=gnu11", "-Wall", "-Werror"])
        // What scripts/headers_install.sh strips or rewrites, so that the
        // source tree's header compiles like an installed one.
        .args([
            "-D__user=",
            "-D__force=",
            "-D__iomem=",
            "-D__attribute_const__=",
            "-D__packed=__attribute__((packed))",
        ])
        .arg("-o")
        .arg(&exe)
        .arg(&src)
        .output()
        .unwrap_or_else(|e| panic!("cannot run C compiler '{cc}': {e}"));
    assert!(
        out.status.success(),
        "compiling {} against {} failed:\n{}",
        src.display(),
        header.display(),
        String::from_utf8_lossy(&out.stderr)
    );

    let out = Command::new(&exe).output().unwrap();
    assert!(out.status.success(), "{} failed", exe.display());
    let text = String::from_utf8(out.stdout).unwrap();
    let c: BTreeMap<&str, u64> = text
        .lines()
        .map(|l| {
            let (k, v) = l.split_once(' ').unwrap();
            (k, v.parse().unwrap())
        })
        .collect();

    let mut mismatches = Vec::new();
    for (name, expr, rust) in expected() {
        match c.get(name) {
            Some(&cv) if cv == rust => {}
            other => mismatches.push(format!("{name} ({expr}): C {other:?}, Rust {rust}")),
        }
    }
    assert!(
        mismatches.is_empty(),
        "reada::uapi disagrees with {}:\n{}",
        header.display(),
        mismatches.join("\n")
    );
    note(&format!(
        "note: reada::uapi matches {} ({} checks)",
        header.display(),
        expected().len()
    ));
}
