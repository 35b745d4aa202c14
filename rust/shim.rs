// SPDX-License-Identifier: GPL-2.0

//! The safe face of the btrfs readahead interface.
//!
//! C header: [`include/linux/btrfs_reada.h`], added by this project's kernel
//! patch series. This is the only file of the module that calls into C: the
//! hook table btrfs calls us through, and the shim we read btrfs through.
//!
//! Handles:
//! - [`FsInfo`]: a mounted filesystem, borrowed for the duration of a hook.
//! - [`FsHandle`]: the same, kept across calls; valid until btrfs calls the
//!   `umount` hook for it, which the module drains before returning.
//! - [`TreeBlock`]: an owned reference to a tree block (`struct extent_buffer`),
//!   dropped through `btrfs_reada_release_block`.
//!
//! Devices are named by devid, never by pointer: the module holds nothing
//! that device removal or replace could free under it.
//!
//! [`include/linux/btrfs_reada.h`]: ../../patches/0008-btrfs-add-the-shim-the-tree-readahead-module-reads-b.patch

use core::ptr::NonNull;
use kernel::bindings;
use kernel::error::{from_result, to_result, VTABLE_DEFAULT_ERROR};
use kernel::ffi::{c_int, c_long, c_void};
use kernel::ioprio::IoPriority;
use kernel::prelude::*;
use kernel::sync::Arc;
use kernel::types::Opaque;
use kernel::uaccess::UserPtr;

pub(crate) use crate::order::Key;

fn key_from_c(k: &bindings::btrfs_reada_key) -> Key {
    Key {
        objectid: k.objectid,
        type_: k.type_,
        offset: k.offset,
    }
}

fn key_to_c(k: Key) -> bindings::btrfs_reada_key {
    bindings::btrfs_reada_key {
        objectid: k.objectid,
        offset: k.offset,
        type_: k.type_,
    }
}

/// `ESTALE` and `ECANCELED`, which the kernel crate does not name yet.
pub(crate) fn estale() -> Error {
    Error::from_errno(-(bindings::ESTALE as i32))
}

pub(crate) fn ecanceled() -> Error {
    Error::from_errno(-(bindings::ECANCELED as i32))
}

/// What [`FsInfo::check_cached`] found.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum InMemory {
    /// Up to date in memory, and still the block the parent pointed to.
    Yes,
    /// Up to date in memory, but no longer that block: the tree changed.
    Stale,
    /// Not in memory, or not up to date: it needs a read.
    No,
}

/// A mounted btrfs filesystem, borrowed from btrfs for the duration of a hook.
///
/// # Invariants
///
/// A `&FsInfo` points to a live `struct btrfs_fs_info` for its whole lifetime.
#[repr(transparent)]
pub(crate) struct FsInfo(Opaque<bindings::btrfs_fs_info>);

impl FsInfo {
    /// # Safety
    ///
    /// `ptr` must point to a live `struct btrfs_fs_info` for the lifetime `'a`.
    unsafe fn from_raw<'a>(ptr: *mut bindings::btrfs_fs_info) -> &'a Self {
        // SAFETY: `FsInfo` is a transparent wrapper of the C struct, and the
        // caller guarantees the pointee lives for `'a`.
        unsafe { &*ptr.cast::<Self>() }
    }

    fn as_ptr(&self) -> *mut bindings::btrfs_fs_info {
        self.0.get()
    }

    /// A number that identifies this filesystem while it is mounted.
    pub(crate) fn id(&self) -> usize {
        self.as_ptr() as usize
    }

    /// Size in bytes of every tree block of this filesystem.
    pub(crate) fn nodesize(&self) -> u32 {
        // SAFETY: `self` is a live fs_info by the type invariant.
        unsafe { bindings::btrfs_reada_nodesize(self.as_ptr()) }
    }

    /// The filesystem's UUID, as `btrfs filesystem show` prints it.
    pub(crate) fn fsid(&self) -> Fsid {
        let mut fsid = [0u8; 16];
        // SAFETY: `self` is live by the type invariant, and `fsid` has room
        // for the `BTRFS_FSID_SIZE` (16) bytes the call writes.
        unsafe { bindings::btrfs_reada_fsid(self.as_ptr(), fsid.as_mut_ptr()) };
        Fsid(fsid)
    }

    /// The root block of tree `tree_id`, live or as of the last commit.
    ///
    /// Fails with `EINVAL` if `tree_id` cannot name a tree, `ENOENT` if this
    /// filesystem has no such tree. May sleep.
    pub(crate) fn tree_root(&self, tree_id: u64, commit_root: bool) -> Result<TreeRoot> {
        let mut root = bindings::btrfs_reada_root::default();
        // SAFETY: `self` is live by the type invariant; `root` is a valid
        // place for the C function to fill.
        to_result(unsafe {
            bindings::btrfs_reada_tree_root(self.as_ptr(), tree_id, commit_root, &mut root)
        })?;
        Ok(TreeRoot {
            bytenr: root.bytenr,
            generation: root.generation,
            owner: root.owner,
            level: root.level,
            epoch: root.epoch,
            // SAFETY: on success the C function stored a referenced block.
            block: unsafe { TreeBlock::from_raw(root.eb) }.ok_or(EINVAL)?,
        })
    }

    /// The chunk holding `logical` and the block's copies, by mirror number,
    /// into `copies` (cleared first). Copies on missing devices or on the
    /// target of a running replace are included, flagged. May sleep.
    pub(crate) fn map_block(&self, logical: u64, copies: &mut KVec<BlockCopy>) -> Result<Chunk> {
        let mut chunk = bindings::btrfs_reada_chunk::default();
        let mut raw: [bindings::btrfs_reada_copy; 4] = Default::default();
        // SAFETY: `self` is live by the type invariant; `raw` has room for
        // the number of copies passed.
        let n = unsafe {
            bindings::btrfs_reada_map_block(self.as_ptr(), logical, &mut chunk, raw.as_mut_ptr(), 4)
        };
        to_result(n)?;
        let mut n = usize::try_from(n).map_err(|_| EINVAL)?;
        let mut big;
        let found: &[bindings::btrfs_reada_copy] = if n <= raw.len() {
            &raw[..n]
        } else {
            // More copies than any profile has today: ask again with room.
            big = KVec::from_elem(bindings::btrfs_reada_copy::default(), n, GFP_KERNEL)?;
            let room = i32::try_from(n).map_err(|_| EINVAL)?;
            // SAFETY: as above, with `big` holding `room` entries.
            let again = unsafe {
                bindings::btrfs_reada_map_block(
                    self.as_ptr(),
                    logical,
                    &mut chunk,
                    big.as_mut_ptr(),
                    room,
                )
            };
            to_result(again)?;
            n = n.min(usize::try_from(again).map_err(|_| EINVAL)?);
            &big[..n]
        };
        *copies = KVec::with_capacity(found.len(), GFP_KERNEL)?;
        for c in found {
            copies.push(
                BlockCopy {
                    devid: c.devid,
                    mirror: c.mirror,
                    usable: c.dev_flags
                        & (bindings::BTRFS_READA_DEV_MISSING
                            | bindings::BTRFS_READA_DEV_REPLACE_TGT)
                        == 0,
                    nonrot: c.dev_flags & bindings::BTRFS_READA_DEV_NONROT != 0,
                },
                GFP_KERNEL,
            )?;
        }
        Ok(Chunk {
            start: chunk.start,
            end: chunk.start.saturating_add(chunk.length),
        })
    }

    /// Starts reading copy `mirror` of a tree block, or returns it at once
    /// if it is already up to date. A started read is reported through the
    /// `end_io` hook. The block's generation is not checked here: callers
    /// compare it with what each parent expects ([`TreeBlock::lock_node`]).
    ///
    /// Reads nothing once the commit roots were switched after `epoch`
    /// (the [`TreeRoot::epoch`] the block was reached from), nor for a
    /// block newer than the last commit: such a block is returned only if
    /// it is in memory, else this fails with `ESTALE`. May sleep.
    pub(crate) fn read_block(&self, block: &BlockRead) -> Result<ReadStart> {
        let mut eb = core::ptr::null_mut();
        // SAFETY: `self` is live by the type invariant; `eb` is a valid place
        // for the C function to store a referenced block.
        let ret = unsafe {
            bindings::btrfs_reada_read_block(
                self.as_ptr(),
                block.logical,
                block.owner,
                block.generation,
                block.level,
                block.mirror,
                block.epoch,
                block.ioprio.as_raw(),
                &mut eb,
            )
        };
        to_result(ret)?;
        if ret == bindings::BTRFS_READA_CACHED as i32 {
            // SAFETY: on BTRFS_READA_CACHED, `eb` carries a reference for us.
            return unsafe { TreeBlock::from_raw(eb) }
                .map(ReadStart::Cached)
                .ok_or(EINVAL);
        }
        Ok(ReadStart::Started)
    }

    /// The block at `bytenr` if it is up to date in memory: no I/O, no
    /// mapping, no lock but the buffer cache's. Like a block
    /// [`FsInfo::read_block`] returns, it may no longer be the block a
    /// parent pointed to: [`TreeBlock::lock_node`] tells.
    pub(crate) fn find_block(&self, bytenr: u64) -> Option<TreeBlock> {
        // SAFETY: `self` is live by the type invariant.
        let eb = unsafe { bindings::btrfs_reada_find_block(self.as_ptr(), bytenr) };
        // SAFETY: a non-null result carries a reference for us.
        unsafe { TreeBlock::from_raw(eb) }
    }

    /// Whether the block at `bytenr` is up to date in memory and still what
    /// a parent in tree `owner` pointed to with `generation` at `level`:
    /// one lookup, checked without the block's tree lock and without
    /// keeping it, for a block nothing is read from (a leaf). Does not
    /// sleep on the tree lock.
    pub(crate) fn check_cached(
        &self,
        bytenr: u64,
        owner: u64,
        generation: u64,
        level: u8,
    ) -> InMemory {
        // SAFETY: `self` is live by the type invariant.
        let ret = unsafe {
            bindings::btrfs_reada_check_cached(self.as_ptr(), bytenr, owner, generation, level)
        };
        match ret {
            0 => InMemory::Yes,
            r if r == estale().to_errno() => InMemory::Stale,
            _ => InMemory::No,
        }
    }

    /// Walks the key range `[start, end)` of a tree without the readahead,
    /// the way `how` says. May sleep for as long as the reads take.
    pub(crate) fn walk(&self, range: &TreeRange, how: Walk) -> Result<WalkCounts> {
        let mut walk = bindings::btrfs_reada_walk {
            tree_id: range.tree_id,
            start: key_to_c(range.start),
            end: key_to_c(range.end),
            commit_root: range.commit_root,
            mode: how.to_c(),
            ..Default::default()
        };
        // SAFETY: `self` is live by the type invariant; `walk` is initialised.
        to_result(unsafe { bindings::btrfs_reada_walk(self.as_ptr(), &mut walk) })?;
        Ok(WalkCounts {
            visited: walk.visited,
            read: walk.read,
            cached: walk.cached,
            bytes_read: walk.bytes_read,
            errors: walk.errors,
            stale: 0,
        })
    }
}

/// How [`FsInfo::walk`] goes through a range, for comparison with the
/// readahead.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Walk {
    /// One synchronous block read at a time, no prefetch.
    Plain,
    /// The stock search with `READA_FORWARD`.
    Forward,
    /// The stock search with `READA_FORWARD_ALWAYS`, send's.
    ForwardAlways,
}

// The C walk modes fit the `u8` field that carries them.
const _: () = assert!(bindings::BTRFS_READA_WALK_FORWARD_ALWAYS <= u8::MAX as u32);

impl Walk {
    /// The `BTRFS_READA_WALK_*` value of `struct btrfs_reada_walk`'s `mode`.
    fn to_c(self) -> u8 {
        let mode = match self {
            Walk::Plain => bindings::BTRFS_READA_WALK_PLAIN,
            Walk::Forward => bindings::BTRFS_READA_WALK_FORWARD,
            Walk::ForwardAlways => bindings::BTRFS_READA_WALK_FORWARD_ALWAYS,
        };
        // Lossless: every mode fits a `u8` (asserted above).
        mode as u8
    }
}

/// A filesystem kept across calls by the readahead machine.
///
/// # Invariants
///
/// The fs_info lives until btrfs calls the `umount` hook for it; the machine
/// drains every use of the handle before that hook returns.
pub(crate) struct FsHandle(NonNull<bindings::btrfs_fs_info>);

// SAFETY: the fs_info may be used from any thread while it lives.
unsafe impl Send for FsHandle {}
// SAFETY: all shim functions are safe to call concurrently.
unsafe impl Sync for FsHandle {}

impl FsHandle {
    /// # Safety
    ///
    /// The caller must stop using the handle before the `umount` hook for
    /// this filesystem returns.
    pub(crate) unsafe fn new(fs: &FsInfo) -> Self {
        // The pointer comes from a reference, so it is not null.
        FsHandle(NonNull::from(fs).cast())
    }

    /// The filesystem; valid by the type invariant.
    pub(crate) fn get(&self) -> &FsInfo {
        // SAFETY: the fs_info lives while the handle is used (type invariant).
        unsafe { FsInfo::from_raw(self.0.as_ptr()) }
    }
}

/// One copy of a tree block.
#[derive(Clone, Copy, Debug)]
pub(crate) struct BlockCopy {
    pub(crate) devid: u64,
    pub(crate) mirror: u32,
    /// The device is present and not the target of a running replace.
    pub(crate) usable: bool,
    /// The block layer says the device is not rotational: it has no seeks.
    pub(crate) nonrot: bool,
}

/// A chunk's logical range `[start, end)`.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Chunk {
    pub(crate) start: u64,
    pub(crate) end: u64,
}

/// What `read_block` did.
pub(crate) enum ReadStart {
    /// The block was up to date: no I/O.
    Cached(TreeBlock),
    /// A read was started or joined; the `end_io` hook reports it.
    Started,
}

/// Where a tree starts.
pub(crate) struct TreeRoot {
    pub(crate) bytenr: u64,
    pub(crate) generation: u64,
    pub(crate) owner: u64,
    pub(crate) level: u8,
    /// The commit root switches counted when the root was taken: blocks
    /// reached from this root are read only while no switch came since.
    pub(crate) epoch: u64,
    /// The root block itself. Holding it keeps it in memory, so the root
    /// is visited without I/O even once a switch has made the rest stale.
    pub(crate) block: TreeBlock,
}

/// One read for [`FsInfo::read_block`]: which copy of which block, what
/// its parent said of it, and the epoch of the root it was reached from.
#[derive(Clone, Copy, Debug)]
pub(crate) struct BlockRead {
    pub(crate) logical: u64,
    pub(crate) owner: u64,
    pub(crate) generation: u64,
    pub(crate) level: u8,
    pub(crate) mirror: u32,
    pub(crate) epoch: u64,
    /// The I/O priority the read's bio carries.
    pub(crate) ioprio: IoPriority,
}

/// A key range `[start, end)` of one tree.
#[derive(Clone, Copy, Debug)]
pub(crate) struct TreeRange {
    pub(crate) tree_id: u64,
    pub(crate) start: Key,
    pub(crate) end: Key,
    pub(crate) commit_root: bool,
}

/// Who started a request: `BTRFS_IOC_READA`, or a kernel user of
/// `btrfs_reada_add` (`enum btrfs_reada_user`). The module counts requests
/// and blocks per user (see [`crate::counters`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum User {
    Ioctl,
    /// Kernel code btrfs names no user for (the sample module, say), or a
    /// user newer than this module.
    Other,
    Scrub,
    /// The block group items, read ahead at mount.
    Mount,
    QgroupRescan,
    Send,
    /// The checksums of the extents a truncate or unlink frees.
    Truncate,
}

impl User {
    /// Every user, in the order the counters show them.
    pub(crate) const ALL: [User; 7] = [
        User::Ioctl,
        User::Other,
        User::Scrub,
        User::Mount,
        User::QgroupRescan,
        User::Send,
        User::Truncate,
    ];

    /// The user btrfs passed to `btrfs_reada_add`.
    fn from_c(user: bindings::btrfs_reada_user) -> Self {
        match user {
            bindings::btrfs_reada_user_BTRFS_READA_USER_SCRUB => User::Scrub,
            bindings::btrfs_reada_user_BTRFS_READA_USER_MOUNT => User::Mount,
            bindings::btrfs_reada_user_BTRFS_READA_USER_QGROUP_RESCAN => User::QgroupRescan,
            bindings::btrfs_reada_user_BTRFS_READA_USER_SEND => User::Send,
            bindings::btrfs_reada_user_BTRFS_READA_USER_TRUNCATE => User::Truncate,
            _ => User::Other,
        }
    }

    /// The user's index in [`User::ALL`], which lists the users in the
    /// order they are declared.
    pub(crate) fn index(self) -> usize {
        self as usize
    }

    /// The user's name in the counters file.
    pub(crate) fn name(self) -> &'static str {
        match self {
            User::Ioctl => "ioctl",
            User::Other => "other",
            User::Scrub => "scrub",
            User::Mount => "mount",
            User::QgroupRescan => "qgroup_rescan",
            User::Send => "send",
            User::Truncate => "truncate",
        }
    }
}

/// What a walk or a readahead did.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct WalkCounts {
    pub(crate) visited: u64,
    pub(crate) read: u64,
    pub(crate) cached: u64,
    pub(crate) bytes_read: u64,
    pub(crate) errors: u64,
    /// Links not followed because the tree changed under a readahead: see
    /// [`FsInfo::read_block`]. Always 0 for a walk.
    pub(crate) stale: u64,
}

/// An owned reference to a tree block.
///
/// # Invariants
///
/// `self.0` points to a `struct extent_buffer` on which this value holds one
/// reference, dropped when it is dropped.
pub(crate) struct TreeBlock(NonNull<bindings::extent_buffer>);

// SAFETY: extent buffer references may be taken and dropped on any CPU, and
// the accessors used through `&TreeBlock` only read the buffer.
unsafe impl Send for TreeBlock {}
// SAFETY: see `Send`; shared access only reads the buffer.
unsafe impl Sync for TreeBlock {}

impl TreeBlock {
    /// # Safety
    ///
    /// `eb` must be null, or carry a reference that the new value owns.
    unsafe fn from_raw(eb: *mut bindings::extent_buffer) -> Option<Self> {
        NonNull::new(eb).map(TreeBlock)
    }

    /// Logical address of the block.
    pub(crate) fn bytenr(&self) -> u64 {
        // SAFETY: by the type invariant we hold a reference to the buffer.
        unsafe { bindings::btrfs_reada_block_bytenr(self.0.as_ptr()) }
    }

    /// Read-locks the block if it is still what its parent pointed to:
    /// a block of tree `owner` (any subvolume for a subvolume), of
    /// `generation` and `level`. A live tree's node may be changed in place
    /// and an old tree's block reused; its pointers are read only through
    /// the returned guard. Fails with `ESTALE` otherwise. Sleeps; call it
    /// holding no spinlock.
    pub(crate) fn lock_node(
        &self,
        owner: u64,
        generation: u64,
        level: u8,
    ) -> Result<LockedNode<'_>> {
        // SAFETY: by the type invariant we hold a reference to the buffer.
        to_result(unsafe {
            bindings::btrfs_reada_lock_node(self.0.as_ptr(), owner, generation, level)
        })?;
        // INVARIANT: the lock was taken just above.
        Ok(LockedNode { block: self })
    }
}

/// A tree block read-locked by [`TreeBlock::lock_node`]; unlocked on drop.
///
/// # Invariants
///
/// `block` is read-locked for the life of the guard.
pub(crate) struct LockedNode<'a> {
    block: &'a TreeBlock,
}

impl LockedNode<'_> {
    /// Number of items (leaf) or child pointers (node).
    pub(crate) fn nritems(&self) -> u32 {
        // SAFETY: we hold a reference to the buffer and, by the type
        // invariant, its read lock.
        unsafe { bindings::btrfs_reada_block_nritems(self.block.0.as_ptr()) }
    }

    /// Child pointer `slot` of a node; `EINVAL` for a leaf or a bad slot.
    pub(crate) fn child(&self, slot: u32) -> Result<ChildPtr> {
        let mut ptr = bindings::btrfs_reada_ptr::default();
        // SAFETY: we hold a reference to the buffer and, by the type
        // invariant, its read lock; the C side checks the slot and the
        // block kind.
        to_result(unsafe {
            bindings::btrfs_reada_node_ptr(self.block.0.as_ptr(), slot, &mut ptr)
        })?;
        Ok(ChildPtr {
            key: key_from_c(&ptr.key),
            bytenr: ptr.bytenr,
            generation: ptr.generation,
        })
    }
}

impl Drop for LockedNode<'_> {
    fn drop(&mut self) {
        // SAFETY: the block is read-locked by the type invariant, and we
        // hold a reference to it.
        unsafe { bindings::btrfs_reada_unlock_node(self.block.0.as_ptr()) }
    }
}

impl Drop for TreeBlock {
    fn drop(&mut self) {
        // SAFETY: by the type invariant we own one reference.
        unsafe { bindings::btrfs_reada_release_block(self.0.as_ptr()) }
    }
}

/// One child pointer of a node.
#[derive(Clone, Copy, Debug)]
pub(crate) struct ChildPtr {
    /// First key of the child's subtree.
    pub(crate) key: Key,
    pub(crate) bytenr: u64,
    /// Generation the parent expects the child to have.
    pub(crate) generation: u64,
}

/// A filesystem UUID; displays in the usual 8-4-4-4-12 form.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) struct Fsid(pub(crate) [u8; 16]);

impl core::fmt::Display for Fsid {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        for (i, b) in self.0.iter().enumerate() {
            if matches!(i, 4 | 6 | 8 | 10) {
                f.write_str("-")?;
            }
            write!(f, "{b:02x}")?;
        }
        Ok(())
    }
}

/// The seq_file of a read of the module's debugfs counters file, borrowed
/// for the duration of the `show_counters` hook. Written with `write!`.
///
/// # Invariants
///
/// A `&mut SeqFile` points to the live `struct seq_file` of the read in
/// progress, which nothing else writes meanwhile.
#[repr(transparent)]
pub(crate) struct SeqFile(Opaque<bindings::seq_file>);

impl SeqFile {
    /// # Safety
    ///
    /// `ptr` must be the seq_file btrfs passed to `show_counters`, used by
    /// no one else for `'a`.
    unsafe fn from_raw<'a>(ptr: *mut bindings::seq_file) -> &'a mut Self {
        // SAFETY: `SeqFile` is a transparent wrapper, and the caller
        // guarantees the pointer is valid and ours for 'a.
        unsafe { &mut *ptr.cast::<SeqFile>() }
    }
}

impl core::fmt::Write for SeqFile {
    fn write_str(&mut self, s: &str) -> core::fmt::Result {
        // SAFETY: the seq_file is live and ours by the type invariant, and
        // `s` is valid for `s.len()` bytes. seq_write copies it.
        let ret = unsafe { bindings::seq_write(self.0.get(), s.as_ptr().cast(), s.len()) };
        // On overflow seq_file retries the whole show with a larger buffer.
        if ret == 0 {
            Ok(())
        } else {
            Err(core::fmt::Error)
        }
    }
}

/// The hooks btrfs calls the module through (`struct btrfs_reada_ops`).
///
/// A hook the implementation leaves out is a NULL pointer in the table,
/// which btrfs treats as "not provided": without `ioctl` the ioctl fails
/// with `EOPNOTSUPP`, without all of `add`, `wait` and `detach`
/// `btrfs_reada_add()` does, and the other hooks are simply not called.
#[vtable]
pub(crate) trait ReadaHooks {
    /// A readahead request, handed to kernel callers as an opaque handle.
    type Request: Send + Sync;
    /// Starts reading ahead `range` for a kernel caller (`btrfs_reada_add`).
    fn add(_fs: &FsInfo, _range: TreeRange, _user: User) -> Result<Arc<Self::Request>> {
        kernel::build_error(VTABLE_DEFAULT_ERROR)
    }
    /// Waits for a kernel caller's request (`btrfs_reada_wait`).
    fn wait(_request: Arc<Self::Request>) -> Result<WalkCounts> {
        kernel::build_error(VTABLE_DEFAULT_ERROR)
    }
    /// Lets a kernel caller's request go on alone (`btrfs_reada_detach`).
    fn detach(_request: Arc<Self::Request>) {
        kernel::build_error(VTABLE_DEFAULT_ERROR)
    }
    /// `BTRFS_IOC_READA` on `fs`; `arg` is the caller's argument pointer.
    /// btrfs has checked `CAP_SYS_ADMIN` and pinned the module.
    fn ioctl(_fs: &FsInfo, _arg: UserPtr) -> Result<i64> {
        kernel::build_error(VTABLE_DEFAULT_ERROR)
    }
    /// The read of a block the module flagged ended (`result` is `Err` if it
    /// failed or did not verify). Runs in btrfs's end io workers.
    fn end_io(_fs: &FsInfo, _block: TreeBlock, _result: Result) {
        kernel::build_error(VTABLE_DEFAULT_ERROR)
    }
    /// `fs` is being unmounted: drain everything that refers to it.
    fn umount(_fs: &FsInfo) {
        kernel::build_error(VTABLE_DEFAULT_ERROR)
    }
    /// Writes the module's counters, one `name value` per line, for
    /// `/sys/kernel/debug/btrfs_reada/counters`.
    fn show_counters(_out: &mut SeqFile) {
        kernel::build_error(VTABLE_DEFAULT_ERROR)
    }
}

/// The module's registration of its hooks with btrfs; dropping it
/// unregisters them and waits for calls in progress to return.
///
/// # Invariants
///
/// `ops` is registered with btrfs for as long as this value lives.
pub(crate) struct HookRegistration {
    ops: KBox<bindings::btrfs_reada_ops>,
}

// SAFETY: the registration only holds the ops table, which btrfs reads from
// any CPU; unregistering from another thread than the one that registered is
// fine.
unsafe impl Send for HookRegistration {}
// SAFETY: `&HookRegistration` gives no access to anything.
unsafe impl Sync for HookRegistration {}

impl HookRegistration {
    /// Registers `H` as btrfs's readahead hooks. Fails with `EBUSY` if
    /// another module is registered.
    pub(crate) fn new<H: ReadaHooks>(module: &'static ThisModule) -> Result<Self> {
        // btrfs uses the kernel API's three hooks only all together.
        let api = H::HAS_ADD && H::HAS_WAIT && H::HAS_DETACH;
        let ops = KBox::new(
            bindings::btrfs_reada_ops {
                owner: module.as_ptr(),
                end_io: H::HAS_END_IO.then_some(end_io_hook::<H> as _),
                ioctl: H::HAS_IOCTL.then_some(ioctl_hook::<H> as _),
                add: api.then_some(add_hook::<H> as _),
                wait: api.then_some(wait_hook::<H> as _),
                detach: api.then_some(detach_hook::<H> as _),
                show_counters: H::HAS_SHOW_COUNTERS.then_some(show_counters_hook::<H> as _),
                umount: H::HAS_UMOUNT.then_some(umount_hook::<H> as _),
            },
            GFP_KERNEL,
        )?;
        // SAFETY: the table lives in a box that is dropped only after
        // `Drop::drop` has unregistered it.
        to_result(unsafe { bindings::btrfs_reada_register(&*ops) })?;
        Ok(HookRegistration { ops })
    }
}

impl Drop for HookRegistration {
    fn drop(&mut self) {
        // SAFETY: registered by the type invariant; returns once no call
        // through the table is running, before the box is freed.
        unsafe { bindings::btrfs_reada_unregister(&*self.ops) }
    }
}

/// # Safety
///
/// Called by btrfs only, with a live `fs_info` and the caller's argument.
unsafe extern "C" fn ioctl_hook<H: ReadaHooks>(
    fs_info: *mut bindings::btrfs_fs_info,
    arg: *mut c_void,
) -> c_long {
    // SAFETY: btrfs passes an fs_info that lives for the duration of the call.
    let fs = unsafe { FsInfo::from_raw(fs_info) };
    from_result(|| {
        let ret = H::ioctl(fs, arg as UserPtr)?;
        Ok(ret as c_long)
    })
}

/// # Safety
///
/// Called by btrfs only, with a live `fs_info` and a referenced `eb`.
unsafe extern "C" fn end_io_hook<H: ReadaHooks>(
    fs_info: *mut bindings::btrfs_fs_info,
    eb: *mut bindings::extent_buffer,
    error: c_int,
) {
    // SAFETY: btrfs passes an fs_info that lives for the duration of the call.
    let fs = unsafe { FsInfo::from_raw(fs_info) };
    // SAFETY: the hook contract hands us a reference to `eb` to own.
    let Some(block) = (unsafe { TreeBlock::from_raw(eb) }) else {
        return;
    };
    H::end_io(fs, block, to_result(error));
}

/// # Safety
///
/// Called by btrfs only, with a live `fs_info`.
unsafe extern "C" fn umount_hook<H: ReadaHooks>(fs_info: *mut bindings::btrfs_fs_info) {
    // SAFETY: btrfs passes an fs_info that lives for the duration of the call.
    let fs = unsafe { FsInfo::from_raw(fs_info) };
    H::umount(fs);
}

/// # Safety
///
/// Called by btrfs only, with a live `fs_info` and valid keys.
unsafe extern "C" fn add_hook<H: ReadaHooks>(
    fs_info: *mut bindings::btrfs_fs_info,
    tree_id: u64,
    start: *const bindings::btrfs_reada_key,
    end: *const bindings::btrfs_reada_key,
    commit_root: bool,
    user: bindings::btrfs_reada_user,
) -> *mut bindings::btrfs_reada_request {
    // SAFETY: btrfs passes an fs_info that lives for the duration of the call.
    let fs = unsafe { FsInfo::from_raw(fs_info) };
    // SAFETY: btrfs passes its caller's keys, valid for the call.
    let (start, end) = unsafe { (key_from_c(&*start), key_from_c(&*end)) };
    let range = TreeRange {
        tree_id,
        start,
        end,
        commit_root,
    };
    match H::add(fs, range, User::from_c(user)) {
        Ok(request) => Arc::into_raw(request).cast_mut().cast(),
        Err(e) => e.to_ptr(),
    }
}

/// # Safety
///
/// Called by btrfs only, with a handle from `add_hook` that is not used
/// again, and a valid `counts`.
unsafe extern "C" fn wait_hook<H: ReadaHooks>(
    request: *mut bindings::btrfs_reada_request,
    counts: *mut bindings::btrfs_reada_counts,
) -> c_int {
    // SAFETY: the handle came from `Arc::into_raw` in `add_hook`, and btrfs
    // hands it back exactly once.
    let request = unsafe { Arc::from_raw(request.cast_const().cast::<H::Request>()) };
    match H::wait(request) {
        Ok(c) => {
            let out = bindings::btrfs_reada_counts {
                visited: c.visited,
                read: c.read,
                cached: c.cached,
                bytes_read: c.bytes_read,
                errors: c.errors,
                stale: c.stale,
            };
            // SAFETY: btrfs passes its caller's valid `counts`.
            unsafe { counts.write(out) };
            0
        }
        Err(e) => e.to_errno(),
    }
}

/// # Safety
///
/// Called by btrfs only, with a handle from `add_hook` not used again.
unsafe extern "C" fn detach_hook<H: ReadaHooks>(request: *mut bindings::btrfs_reada_request) {
    // SAFETY: as in `wait_hook`.
    let request = unsafe { Arc::from_raw(request.cast_const().cast::<H::Request>()) };
    H::detach(request);
}

/// # Safety
///
/// Called by btrfs only, with the seq_file of a read of the counters file.
unsafe extern "C" fn show_counters_hook<H: ReadaHooks>(m: *mut bindings::seq_file) {
    // SAFETY: btrfs passes the seq_file of the read in progress, ours for
    // the call.
    H::show_counters(unsafe { SeqFile::from_raw(m) });
}
