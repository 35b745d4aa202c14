//! The kernel ABI of the btrfs tree readahead ioctl, mirrored from
//! `include/uapi/linux/btrfs.h` of the patched kernel:
//!
//! ```c
//! struct btrfs_ioctl_reada_key  { __u64 objectid; __u64 offset; __u8 type; __u8 reserved[7]; };
//! struct btrfs_ioctl_reada_args { __u64 tree_id; struct btrfs_ioctl_reada_key start, end;
//!                                 __u32 mode, flags; __u64 reserved_in[4];
//!                                 __u64 blocks_visited, blocks_read, blocks_cached, bytes_read,
//!                                       elapsed_ns, errors, blocks_stale, reserved_out[1]; };
//! #define BTRFS_IOC_READA _IOWR(BTRFS_IOCTL_MAGIC, 80, struct btrfs_ioctl_reada_args)
//! ```
//!
//! The layout is checked here at compile time (sizes), by unit tests (every
//! offset) and by `tests/uapi_header.rs` against the real C header.

/// The module's own readahead.
pub const BTRFS_READA_MODE_READAHEAD: u32 = 0;
/// One synchronous block read at a time.
pub const BTRFS_READA_MODE_PLAIN: u32 = 1;
/// The stock tree walk with `path->reada = READA_FORWARD`.
pub const BTRFS_READA_MODE_FORWARD: u32 = 2;
/// The same with `READA_FORWARD_ALWAYS`, send's.
pub const BTRFS_READA_MODE_FORWARD_ALWAYS: u32 = 3;

/// Return at once, readahead goes on in the background (readahead mode only).
pub const BTRFS_READA_FLAG_DETACH: u32 = 1 << 0;
/// Walk the tree's commit root, not its live root.
pub const BTRFS_READA_FLAG_COMMIT_ROOT: u32 = 1 << 1;
/// Every flag the kernel knows.
pub const BTRFS_READA_FLAGS_MASK: u32 = BTRFS_READA_FLAG_DETACH | BTRFS_READA_FLAG_COMMIT_ROOT;

/// `BTRFS_IOCTL_MAGIC`.
pub const BTRFS_IOCTL_MAGIC: u32 = 0x94;
/// The ioctl's number within the btrfs magic.
pub const BTRFS_IOC_READA_NR: u32 = 80;

/// `struct btrfs_ioctl_reada_key`: a btrfs key, in the ioctl's field order.
#[repr(C)]
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct BtrfsIoctlReadaKey {
    pub objectid: u64,
    pub offset: u64,
    pub type_: u8,
    /// Must be zero.
    pub reserved: [u8; 7],
}

impl BtrfsIoctlReadaKey {
    /// The largest key: an `end` that leaves nothing of a tree out.
    pub const MAX: BtrfsIoctlReadaKey = BtrfsIoctlReadaKey {
        objectid: u64::MAX,
        offset: u64::MAX,
        type_: u8::MAX,
        reserved: [0; 7],
    };
}

/// `struct btrfs_ioctl_reada_args`.
#[repr(C)]
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct BtrfsIoctlReadaArgs {
    // in
    pub tree_id: u64,
    /// First key, inclusive.
    pub start: BtrfsIoctlReadaKey,
    /// Last key, exclusive.
    pub end: BtrfsIoctlReadaKey,
    /// `BTRFS_READA_MODE_*`.
    pub mode: u32,
    /// `BTRFS_READA_FLAG_*`.
    pub flags: u32,
    /// Must be zero.
    pub reserved_in: [u64; 4],
    // out
    /// Tree blocks of the range processed (cached or read).
    pub blocks_visited: u64,
    /// Of those, read from disk.
    pub blocks_read: u64,
    /// Of those, found up to date in memory.
    pub blocks_cached: u64,
    /// Bytes read from disk.
    pub bytes_read: u64,
    /// Time the kernel spent on the request.
    pub elapsed_ns: u64,
    /// Blocks whose read failed or did not verify.
    pub errors: u64,
    /// Links not followed because the tree changed under the readahead (a
    /// commit came and the block was no longer in memory); 0 for a walk.
    pub blocks_stale: u64,
    /// Zeroed by the kernel.
    pub reserved_out: [u64; 1],
}

/// `_IOC_READ | _IOC_WRITE`.
const IOC_READ_WRITE: u32 = 3;

/// The kernel's `_IOWR(type, nr, size)` (asm-generic layout, as on x86,
/// arm64, riscv): dir in bits 30..32, size in 16..30, type in 8..16, nr in 0..8.
pub const fn iowr(magic: u32, nr: u32, size: usize) -> u32 {
    (IOC_READ_WRITE << 30) | ((size as u32) << 16) | (magic << 8) | nr
}

/// `BTRFS_IOC_READA` = 0xC0A09450.
pub const BTRFS_IOC_READA: u32 = iowr(
    BTRFS_IOCTL_MAGIC,
    BTRFS_IOC_READA_NR,
    core::mem::size_of::<BtrfsIoctlReadaArgs>(),
);

const _: () = assert!(core::mem::size_of::<BtrfsIoctlReadaKey>() == 24);
const _: () = assert!(core::mem::align_of::<BtrfsIoctlReadaKey>() == 8);
const _: () = assert!(core::mem::size_of::<BtrfsIoctlReadaArgs>() == 160);
const _: () = assert!(core::mem::align_of::<BtrfsIoctlReadaArgs>() == 8);
// The size must fit the 14-bit size field of an ioctl number.
const _: () = assert!(core::mem::size_of::<BtrfsIoctlReadaArgs>() < (1 << 14));
const _: () = assert!(BTRFS_IOC_READA == 0xC0A0_9450);

#[cfg(test)]
mod tests {
    use super::*;
    use core::mem::{offset_of, size_of};

    #[test]
    fn key_layout() {
        assert_eq!(size_of::<BtrfsIoctlReadaKey>(), 24);
        assert_eq!(offset_of!(BtrfsIoctlReadaKey, objectid), 0);
        assert_eq!(offset_of!(BtrfsIoctlReadaKey, offset), 8);
        assert_eq!(offset_of!(BtrfsIoctlReadaKey, type_), 16);
        assert_eq!(offset_of!(BtrfsIoctlReadaKey, reserved), 17);
    }

    #[test]
    fn args_layout() {
        assert_eq!(size_of::<BtrfsIoctlReadaArgs>(), 160);
        assert_eq!(offset_of!(BtrfsIoctlReadaArgs, tree_id), 0);
        assert_eq!(offset_of!(BtrfsIoctlReadaArgs, start), 8);
        assert_eq!(offset_of!(BtrfsIoctlReadaArgs, end), 32);
        assert_eq!(offset_of!(BtrfsIoctlReadaArgs, mode), 56);
        assert_eq!(offset_of!(BtrfsIoctlReadaArgs, flags), 60);
        assert_eq!(offset_of!(BtrfsIoctlReadaArgs, reserved_in), 64);
        assert_eq!(offset_of!(BtrfsIoctlReadaArgs, blocks_visited), 96);
        assert_eq!(offset_of!(BtrfsIoctlReadaArgs, blocks_read), 104);
        assert_eq!(offset_of!(BtrfsIoctlReadaArgs, blocks_cached), 112);
        assert_eq!(offset_of!(BtrfsIoctlReadaArgs, bytes_read), 120);
        assert_eq!(offset_of!(BtrfsIoctlReadaArgs, elapsed_ns), 128);
        assert_eq!(offset_of!(BtrfsIoctlReadaArgs, errors), 136);
        assert_eq!(offset_of!(BtrfsIoctlReadaArgs, blocks_stale), 144);
        assert_eq!(offset_of!(BtrfsIoctlReadaArgs, reserved_out), 152);
    }

    #[test]
    fn ioctl_number() {
        assert_eq!(BTRFS_IOC_READA, 0xC0A0_9450);
        // Cross-check the formula on a known stock ioctl:
        // BTRFS_IOC_TREE_SEARCH = _IOWR(0x94, 17, struct btrfs_ioctl_search_args /* 4096 */).
        assert_eq!(iowr(0x94, 17, 4096), 0xD000_9411);
    }

    #[test]
    fn constants() {
        assert_eq!(BTRFS_READA_MODE_READAHEAD, 0);
        assert_eq!(BTRFS_READA_MODE_PLAIN, 1);
        assert_eq!(BTRFS_READA_MODE_FORWARD, 2);
        assert_eq!(BTRFS_READA_MODE_FORWARD_ALWAYS, 3);
        assert_eq!(BTRFS_READA_FLAG_DETACH, 1);
        assert_eq!(BTRFS_READA_FLAG_COMMIT_ROOT, 2);
        assert_eq!(BTRFS_READA_FLAGS_MASK, 3);
    }

    #[test]
    fn default_is_all_zero() {
        let a = BtrfsIoctlReadaArgs::default();
        // SAFETY: BtrfsIoctlReadaArgs is repr(C) plain old data of 160 bytes
        // with no padding (checked above), so viewing it as bytes is sound.
        let bytes: &[u8] = unsafe {
            core::slice::from_raw_parts(
                (&a as *const BtrfsIoctlReadaArgs).cast::<u8>(),
                size_of::<BtrfsIoctlReadaArgs>(),
            )
        };
        assert!(bytes.iter().all(|&b| b == 0));
    }
}
