/* When a group shim exits: once it has no task and no reservation for the grace period, so the
 * group's next task does not race a dying shim. `berth-shim start` reserves a task id through
 * Task/Connect before printing an address; a shim that has begun exiting refuses reservations
 * (UNAVAILABLE), and `start` then launches a new shim instead. One mutex orders the decision and
 * the refusal, so there is no window between them. */
#pragma once
#include <stdbool.h>

/* `on_exit` runs once, on the lifecycle's timer thread, when the shim decides to exit. */
void lifecycle_init(int grace_ms, void (*on_exit)(void));
/* -EAGAIN once exiting (callers answer UNAVAILABLE "shim is shutting down"), else 0. */
int lifecycle_reserve(const char *id);
/* Create of `id` began: the task now keeps the shim alive by itself (drops its reservation).
 * -EAGAIN once exiting. */
int lifecycle_task_created(const char *id);
/* A task was deleted or its Create failed: starts the grace timer if nothing is left. */
void lifecycle_task_removed(void);
/* Task/Shutdown: exits now when idle, ignored otherwise (as containerd's shim does). */
void lifecycle_shutdown(void);
