/* What every part of the long-lived shim shares: its namespace, its log, and paths under the
 * state dir (BERTH_STATE_DIR, default /run/berth). */
#pragma once
#include "util.h"

#define TASK_SERVICE "containerd.task.v2.Task"
#define SHIM_VERSION "berth-shim 0.2.0"

/* The namespace this shim serves (-namespace). */
extern const char *g_namespace;

/* One line on the shim's log (its stderr, which `start` points at <state>/shims/<hash>.log),
 * prefixed with an ISO-8601 UTC time. Thread-safe. */
void shim_log(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* BERTH_STATE_DIR or /run/berth. */
const char *state_dir(void);
/* <state>/runtime/<namespace>: the OCI runtime's --root, per namespace because task ids are
 * unique only within one. malloc'd. */
char *runtime_root(const char *ns);
/* <state>/console: console sockets of terminal processes (short names: sun_path is 108 bytes). */
char *console_dir(void);

/* CLOCK_REALTIME in nanoseconds (exit times, event timestamps). */
int64_t now_unix_ns(void);
