// SPDX-License-Identifier: GPL-2.0
/*
 * Provokes one report of a kernel detector that the test harness relies on,
 * so that the harness's self-tests (tests/guest/harness-catches-*.sh) can
 * show that a run with such a report fails. Loaded with provoke=NAME, it
 * provokes the report during the load and then stays loaded, doing nothing,
 * until the test removes it. (A failed load would not do: busybox insmod
 * retries a failed finit_module() with init_module(), which provokes the
 * report a second time.)
 *
 *   lockdep       two mutexes taken in both orders (no deadlock happens)
 *   atomic-sleep  a GFP_KERNEL allocation with a spinlock held
 *   leak          allocations whose only pointer is dropped (kmemleak)
 *   rcu-stall     a CPU kept busy with preemption off for stall_secs
 */

#include <linux/jiffies.h>
#include <linux/module.h>
#include <linux/mutex.h>
#include <linux/preempt.h>
#include <linux/rcupdate.h>
#include <linux/slab.h>
#include <linux/spinlock.h>
#include <linux/string.h>

static char *provoke = "";
module_param(provoke, charp, 0444);
MODULE_PARM_DESC(provoke, "lockdep, atomic-sleep, leak or rcu-stall");

static unsigned int stall_secs = 20;
module_param(stall_secs, uint, 0444);
MODULE_PARM_DESC(stall_secs, "seconds rcu-stall keeps its CPU (default 20)");

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
	unsigned long end;

	preempt_disable();
	/*
	 * A stall is only reported while a grace period waits for this CPU:
	 * make sure one is requested, since an idle guest may have none.
	 * Count jiffies rather than calibrated delay loops, which TCG on a
	 * busy host can run faster than the clock.
	 */
	start_poll_synchronize_rcu();
	end = jiffies + stall_secs * HZ;
	while (time_before(jiffies, end))
		cpu_relax();
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
	return 0;
}
module_init(detector_selftest_init);

static void __exit detector_selftest_exit(void)
{
}
module_exit(detector_selftest_exit);

MODULE_DESCRIPTION("Provokes kernel detector reports for the test harness's self-tests");
MODULE_LICENSE("GPL");
