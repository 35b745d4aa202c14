//! What `BTRFS_IOC_READA` must answer to an argument, as
//! `Documentation/ioctl.md` specifies it: the model `reada-fuzz` checks every
//! call against, one exact outcome per input.
//!
//! The kernel checks, in this order: the request number (`ENOTTY` for
//! another size), the caller's capability (`EPERM`), the module
//! (`EOPNOTSUPP`), the argument's memory (`EFAULT`), the input fields
//! (`EINVAL`), then the tree (`EINVAL` for an id that cannot name a tree,
//! `ENOENT` for one this filesystem does not have).

use crate::uapi::{
    BtrfsIoctlReadaArgs, BtrfsIoctlReadaKey, BTRFS_READA_FLAGS_MASK, BTRFS_READA_FLAG_DETACH,
    BTRFS_READA_MODE_FORWARD, BTRFS_READA_MODE_FORWARD_ALWAYS, BTRFS_READA_MODE_PLAIN,
    BTRFS_READA_MODE_READAHEAD,
};

/// The global trees btrfs can have: root, extent, chunk, dev, csum, quota,
/// uuid, free space, block group and raid stripe.
pub const GLOBAL_TREES: [u64; 10] = [1, 2, 3, 4, 7, 8, 9, 10, 11, 12];

/// The first subvolume id, and the first id with a qgroup level (which no
/// subvolume can have).
const FIRST_SUBVOL: u64 = 256;
const QGROUP_LEVEL_SHIFT: u32 = 48;

/// The answer the kernel must give.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    Ok,
    Errno(i32),
}

/// Who calls, and what the kernel has.
#[derive(Clone, Debug)]
pub struct Setting {
    /// The caller has `CAP_SYS_ADMIN`.
    pub privileged: bool,
    /// The readahead module is loaded.
    pub module: bool,
    /// The trees the filesystem has (live subvolumes included).
    pub trees: Vec<u64>,
}

/// Whether `id` can name a tree at all: a global tree, the fs tree or a
/// subvolume id.
pub fn can_name_tree(id: u64) -> bool {
    GLOBAL_TREES.contains(&id)
        || id == 5
        || (id >= FIRST_SUBVOL && id >> QGROUP_LEVEL_SHIFT == 0 && (id as i64) >= 0)
}

fn key_order(k: &BtrfsIoctlReadaKey) -> (u64, u8, u64) {
    (k.objectid, k.type_, k.offset)
}

/// Whether the input fields alone are valid (the tree aside).
pub fn fields_valid(a: &BtrfsIoctlReadaArgs) -> bool {
    let detach = a.flags & BTRFS_READA_FLAG_DETACH != 0;
    let mode_ok = match a.mode {
        BTRFS_READA_MODE_READAHEAD => true,
        BTRFS_READA_MODE_PLAIN | BTRFS_READA_MODE_FORWARD | BTRFS_READA_MODE_FORWARD_ALWAYS => {
            !detach
        }
        _ => false,
    };
    a.reserved_in == [0; 4]
        && a.flags & !BTRFS_READA_FLAGS_MASK == 0
        && mode_ok
        && a.start.reserved == [0; 7]
        && a.end.reserved == [0; 7]
        && key_order(&a.start) < key_order(&a.end)
}

/// The outcome of a call with request number `right_number` (true for
/// `BTRFS_IOC_READA` itself) and argument `arg`: `None` when the argument's
/// memory cannot be read, else what it holds (the kernel reads it whole).
pub fn expected(s: &Setting, right_number: bool, arg: Option<&BtrfsIoctlReadaArgs>) -> Outcome {
    if !right_number {
        return Outcome::Errno(libc::ENOTTY);
    }
    if !s.privileged {
        return Outcome::Errno(libc::EPERM);
    }
    if !s.module {
        return Outcome::Errno(libc::EOPNOTSUPP);
    }
    let Some(a) = arg else {
        return Outcome::Errno(libc::EFAULT);
    };
    if !fields_valid(a) {
        return Outcome::Errno(libc::EINVAL);
    }
    if !can_name_tree(a.tree_id) {
        return Outcome::Errno(libc::EINVAL);
    }
    if !s.trees.contains(&a.tree_id) {
        return Outcome::Errno(libc::ENOENT);
    }
    Outcome::Ok
}

/// Checks the outputs of a successful call on a healthy filesystem of
/// `nodesize`; `Err` says what is inconsistent.
pub fn check_outputs(a: &BtrfsIoctlReadaArgs, nodesize: u64) -> Result<(), String> {
    if a.reserved_out != [0; 1] {
        return Err("reserved_out not zeroed".into());
    }
    if a.errors != 0 {
        return Err(format!("{} errors on a healthy filesystem", a.errors));
    }
    if a.flags & BTRFS_READA_FLAG_DETACH != 0 {
        // A detached request returns before anything is counted.
        let counts = [
            a.blocks_visited,
            a.blocks_read,
            a.blocks_cached,
            a.bytes_read,
            a.blocks_stale,
        ];
        return match counts == [0; 5] {
            true => Ok(()),
            false => Err(format!("a detached request reported counts {counts:?}")),
        };
    }
    if a.blocks_visited == 0 {
        return Err("no block visited: the root always is".into());
    }
    if a.mode != BTRFS_READA_MODE_READAHEAD && a.blocks_stale != 0 {
        return Err(format!("a walk reported {} stale links", a.blocks_stale));
    }
    if a.blocks_cached > a.blocks_visited {
        return Err(format!(
            "{} cached of {} visited",
            a.blocks_cached, a.blocks_visited
        ));
    }
    if a.mode == BTRFS_READA_MODE_FORWARD || a.mode == BTRFS_READA_MODE_FORWARD_ALWAYS {
        // The stock searches count the filesystem's reads during the walk.
        return Ok(());
    }
    if a.blocks_read + a.blocks_cached != a.blocks_visited {
        return Err(format!(
            "visited {} != read {} + cached {}",
            a.blocks_visited, a.blocks_read, a.blocks_cached
        ));
    }
    if a.bytes_read != a.blocks_read * nodesize {
        return Err(format!(
            "bytes_read {} for {} blocks of {nodesize}",
            a.bytes_read, a.blocks_read
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::uapi::BTRFS_READA_FLAG_COMMIT_ROOT;

    fn setting() -> Setting {
        Setting {
            privileged: true,
            module: true,
            trees: vec![1, 2, 3, 4, 5, 7, 9, 10, 256],
        }
    }

    fn whole(tree_id: u64) -> BtrfsIoctlReadaArgs {
        BtrfsIoctlReadaArgs {
            tree_id,
            end: BtrfsIoctlReadaKey::MAX,
            ..Default::default()
        }
    }

    #[test]
    fn checks_in_kernel_order() {
        let s = setting();
        let a = whole(2);
        assert_eq!(expected(&s, false, None), Outcome::Errno(libc::ENOTTY));
        let nobody = Setting {
            privileged: false,
            ..s.clone()
        };
        assert_eq!(expected(&nobody, true, None), Outcome::Errno(libc::EPERM));
        let stock = Setting {
            module: false,
            ..s.clone()
        };
        assert_eq!(
            expected(&stock, true, None),
            Outcome::Errno(libc::EOPNOTSUPP)
        );
        assert_eq!(expected(&s, true, None), Outcome::Errno(libc::EFAULT));
        assert_eq!(expected(&s, true, Some(&a)), Outcome::Ok);
    }

    #[test]
    fn invalid_fields() {
        let s = setting();
        let mut a = whole(2);
        a.reserved_in[3] = 1;
        assert_eq!(expected(&s, true, Some(&a)), Outcome::Errno(libc::EINVAL));
        let mut a = whole(2);
        a.end.reserved[0] = 1;
        assert_eq!(expected(&s, true, Some(&a)), Outcome::Errno(libc::EINVAL));
        let mut a = whole(2);
        a.flags = 4;
        assert_eq!(expected(&s, true, Some(&a)), Outcome::Errno(libc::EINVAL));
        let mut a = whole(2);
        a.mode = BTRFS_READA_MODE_PLAIN;
        a.flags = BTRFS_READA_FLAG_DETACH;
        assert_eq!(expected(&s, true, Some(&a)), Outcome::Errno(libc::EINVAL));
        a.flags = BTRFS_READA_FLAG_COMMIT_ROOT;
        assert_eq!(expected(&s, true, Some(&a)), Outcome::Ok);
        let mut a = whole(2);
        a.end = a.start;
        assert_eq!(expected(&s, true, Some(&a)), Outcome::Errno(libc::EINVAL));
        // The key orders by objectid, type, offset: a larger offset with a
        // smaller type is a smaller key.
        a.start.objectid = 7;
        a.start.type_ = 2;
        a.end.objectid = 7;
        a.end.type_ = 1;
        a.end.offset = u64::MAX;
        assert_eq!(expected(&s, true, Some(&a)), Outcome::Errno(libc::EINVAL));
    }

    #[test]
    fn tree_ids() {
        let s = setting();
        for (id, want) in [
            (0, Outcome::Errno(libc::EINVAL)),
            (6, Outcome::Errno(libc::EINVAL)),
            (13, Outcome::Errno(libc::EINVAL)),
            (255, Outcome::Errno(libc::EINVAL)),
            (8, Outcome::Errno(libc::ENOENT)),
            (12, Outcome::Errno(libc::ENOENT)),
            (257, Outcome::Errno(libc::ENOENT)),
            ((1 << 48) - 1, Outcome::Errno(libc::ENOENT)),
            (1 << 48, Outcome::Errno(libc::EINVAL)),
            (u64::MAX, Outcome::Errno(libc::EINVAL)),
            (5, Outcome::Ok),
            (256, Outcome::Ok),
        ] {
            assert_eq!(expected(&s, true, Some(&whole(id))), want, "tree {id}");
        }
    }

    #[test]
    fn outputs() {
        let mut a = whole(2);
        assert!(check_outputs(&a, 4096).is_err(), "nothing visited");
        a.blocks_visited = 5;
        a.blocks_read = 3;
        a.blocks_cached = 2;
        a.bytes_read = 3 * 4096;
        assert_eq!(check_outputs(&a, 4096), Ok(()));
        a.bytes_read = 4096;
        assert!(check_outputs(&a, 4096).is_err(), "bytes");
        a.bytes_read = 3 * 4096;
        a.errors = 1;
        assert!(check_outputs(&a, 4096).is_err(), "errors");
        a.errors = 0;
        a.flags = BTRFS_READA_FLAG_DETACH;
        assert!(check_outputs(&a, 4096).is_err(), "detached with counts");
        a = whole(2);
        a.flags = BTRFS_READA_FLAG_DETACH;
        assert_eq!(check_outputs(&a, 4096), Ok(()));
    }
}
