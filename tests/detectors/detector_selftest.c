// SPDX-License-Identifier: GPL-2.0
/*
 * Provokes one report of a kernel detector that the test harness relies on,
 * so that the harness's self-tests (tests/guest/harness-catches-*.sh) can
 * show that a run with such a report fails. Loaded with provoke=NAME; the
 * load always fails with -ECANCELED once the report is provoked, so nothing
 * stays loaded.
 *
 *   lockdep       two mutexes taken in both orders (no deadlock happens)
 *   atomic-sleep  a GFP_KERNEL allocation with a spinlock held
 *   leak          allocations whose only pointer is dropped (kmemleak)
 *   rcu-stall     a CPU kept busy with preemption off for stall_secs
 */

#include <linux/delay.h>
#include <linux/module.h>
#include <linux/mutex.h>
#include <linux/preempt.h>
#include <linux/slab.h>
#include <linux/spinlock.h>
#include <linux/string.h>

static char *provoke = "";
module_param(provoke, charp, 0444);
MODULE_PARM_DESC(provoke, "lockdep, atomic-sleep, leak or rcu-stall");

static unsigned int stall_secs = 10;
module_param(stall_secs, uint, 0444);
MODULE_PARM_DESC(stall_secs, "seconds rcu-stall keeps its CPU (default 10)");

static DEFINE_MUTEX(first_lock);
static DEFINE_MUTEX(second_lock);
static DEFINE_SPINLOCK(atomic_lock);

/* Where the leaked pointer is written, then overwritten. */
static void *leak_sink;

static void provoke_lockdep(void)
{
	mutex_lock(&first_lock);
	mutex_lock(&second_lock);
	mutex_unlock(&second_lock);
	mutex_unlock(&first_lock);

	mutex_lock(&second_lock);
	mutex_lock(&first_lock);
	mutex_unlock(&first_lock);
	mutex_unlock(&second_lock);
}

static void provoke_atomic_sleep(void)
{
	spin_lock(&atomic_lock);
	kfree(kmalloc(64, GFP_KERNEL));
	spin_unlock(&atomic_lock);
}

static void provoke_leak(void)
{
	int i;

	/*
	 * Stores the compiler must make: no allocation can be elided. Several
	 * objects, as a stale copy of a pointer (in a dead stack slot that
	 * kmemleak scans) may still reference the last ones.
	 */
	for (i = 0; i < 16; i++)
		WRITE_ONCE(leak_sink, kmalloc(128, GFP_KERNEL));
	WRITE_ONCE(leak_sink, NULL);
}

static void provoke_rcu_stall(void)
{
	unsigned int i;

	preempt_disable();
	for (i = 0; i < stall_secs * 10; i++)
		mdelay(100);
	preempt_enable();
}

static int __init detector_selftest_init(void)
{
	if (!strcmp(provoke, "lockdep"))
		provoke_lockdep();
	else if (!strcmp(provoke, "atomic-sleep"))
		provoke_atomic_sleep();
	else if (!strcmp(provoke, "leak"))
		provoke_leak();
	else if (!strcmp(provoke, "rcu-stall"))
		provoke_rcu_stall();
	else
		return -EINVAL;
	pr_info("detector_selftest: provoked %s\n", provoke);
	return -ECANCELED;
}
module_init(detector_selftest_init);

MODULE_DESCRIPTION("Provokes kernel detector reports for the test harness's self-tests");
MODULE_LICENSE("GPL");
