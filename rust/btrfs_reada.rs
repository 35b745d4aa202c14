// SPDX-License-Identifier: GPL-2.0

//! Btrfs tree readahead.
//!
//! Prefetches the tree blocks of a key range of a btrfs B-tree in ascending
//! on-disk order, per device, on all devices at once, so that a tree walk or
//! a scrub that follows finds its metadata in memory instead of seeking once
//! per block. See `Documentation/design.md` for the model (requests, blocks,
//! zones and the per-device machine).
//!
//! The module talks to btrfs only through the hook table and the shim that
//! this project's kernel patch series adds to `fs/btrfs`.

use kernel::prelude::*;

module! {
    type: BtrfsReada,
    name: "btrfs_reada",
    author: "The btrfs readahead developers",
    description: "Btrfs tree readahead in on-disk order across all devices",
    license: "GPL",
}

/// The module's version, set by the build from `git describe`.
const VERSION: &str = match option_env!("BTRFS_READA_VERSION") {
    Some(v) => v,
    None => "unknown",
};

/// The loaded module. Dropping it (at `rmmod`) releases everything it owns.
struct BtrfsReada;

impl kernel::Module for BtrfsReada {
    fn init(_module: &'static ThisModule) -> Result<Self> {
        pr_info!("btrfs tree readahead {} loaded\n", VERSION);
        Ok(BtrfsReada)
    }
}

impl Drop for BtrfsReada {
    fn drop(&mut self) {
        pr_info!("btrfs tree readahead unloaded\n");
    }
}
