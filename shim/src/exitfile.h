/* What the shim records for each exited process (exit-init.json, exit-exec-<id>.json in the
 * bundle), so the daemon can report it if the shim dies: {"pid","status","signal","exitedAt"}
 * with exitedAt an ISO-8601 UTC time with milliseconds, as the daemon reads it. */
#pragma once
#include <stdint.h>
#include <sys/types.h>

struct exit_record {
	pid_t pid;
	int status;
	int signal;
	int64_t exited_at_ns; /* unix ns */
};

/* Written to a temp name and renamed, so a reader sees the whole record or none. 0 or -errno. */
int exitfile_write(const char *bundle, const char *exec_id, const struct exit_record *r);
/* 0, or -ENOENT when there is none (or it is unreadable). */
int exitfile_read(const char *bundle, const char *exec_id, struct exit_record *r);
