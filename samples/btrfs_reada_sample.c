// SPDX-License-Identifier: GPL-2.0
/*
 * A minimal in-kernel user of btrfs tree readahead.
 *
 * At load, reads ahead one tree (default: the extent tree) of the btrfs
 * filesystem at @path through btrfs_reada_add() and btrfs_reada_wait(), as
 * scrub does, and logs what was done. Needs the btrfs_reada module; without
 * it the load fails with -EOPNOTSUPP.
 *
 *   insmod btrfs_reada_sample.ko path=/mnt tree=2
 */

#include <linux/btrfs_reada.h>
#include <linux/limits.h>
#include <linux/module.h>
#include <linux/namei.h>
#include <linux/path.h>

static char *path = "/";
module_param(path, charp, 0444);
MODULE_PARM_DESC(path, "a file or directory on the btrfs filesystem");

static ulong tree = 2;
module_param(tree, ulong, 0444);
MODULE_PARM_DESC(tree, "the tree to read ahead, as for BTRFS_IOC_READA");

static int __init btrfs_reada_sample_init(void)
{
	const struct btrfs_reada_key start = { 0 };
	const struct btrfs_reada_key end = {
		.objectid = U64_MAX, .type = U8_MAX, .offset = U64_MAX,
	};
	struct btrfs_reada_counts counts;
	struct btrfs_reada_request *req;
	struct btrfs_fs_info *fs_info;
	struct path p;
	int ret;

	ret = kern_path(path, LOOKUP_FOLLOW, &p);
	if (ret)
		return ret;
	fs_info = btrfs_reada_fs_info(p.dentry->d_sb);
	if (!fs_info) {
		ret = -EINVAL;
		goto out;
	}
	/* The path reference keeps the filesystem mounted meanwhile. */
	req = btrfs_reada_add(fs_info, tree, &start, &end, false,
			      BTRFS_READA_USER_OTHER);
	if (IS_ERR(req)) {
		ret = PTR_ERR(req);
		goto out;
	}
	ret = btrfs_reada_wait(req, &counts);
	if (!ret)
		pr_info("btrfs_reada_sample: tree %lu of %s: %llu blocks, %llu read, %llu cached, %llu errors\n",
			tree, path, counts.visited, counts.read, counts.cached,
			counts.errors);
out:
	path_put(&p);
	return ret;
}

static void __exit btrfs_reada_sample_exit(void)
{
}

module_init(btrfs_reada_sample_init);
module_exit(btrfs_reada_sample_exit);
MODULE_DESCRIPTION("Sample in-kernel user of btrfs tree readahead");
MODULE_LICENSE("GPL");
