/* OOM kills of a task's cgroup (cgroup v1 memory.oom_control + cgroup.event_control eventfd;
 * memory.events "oom_kill" on cgroup v2), reported through a callback. */
#pragma once
#include <stdbool.h>
#include <sys/types.h>

struct oom_watch;

/* Watches the memory cgroup of `pid` (from /proc/<pid>/cgroup). NULL and g_err set when there
 * is nothing to watch; the caller logs it and goes on without OOM events. `cb` runs on the
 * watcher's thread for each OOM kill. */
struct oom_watch *oom_watch_pid(pid_t pid, void (*cb)(void *data), void *data);
/* Reports a pending OOM kill now (through cb) if one is signalled but not yet reported: init's
 * exit and an OOM arrive together, and TaskOOM must come before TaskExit. */
void oom_check(struct oom_watch *w);
/* Stops watching; cb is not called after this returns. NULL is fine. */
void oom_close(struct oom_watch *w);
