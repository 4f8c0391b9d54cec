/* The OCI runtime's command line (runc's, which berth-runtime shares), one process per
 * operation, run from the calling request thread. Errors carry the runtime's own message from
 * its --log file (last error-level JSON line) or its stderr, in g_err; "does not exist" style
 * messages return -ENOENT so callers can treat the container as already gone, its other failures
 * -EIO, and -ENOEXEC means it could not be run at all. */
#pragma once
#include <stdbool.h>
#include <sys/types.h>

struct runtime {
	const char *binary;
	const char *root;
};

/* stdio: fds for the runtime's stdin/stdout/stderr, which the container process inherits
 * (-1 = /dev/null). console_socket may be NULL. 0 or -errno. */
int runtime_create(const struct runtime *rt, const char *id, const char *bundle, const char *pid_file,
		   const int stdio[3], const char *console_socket);
int runtime_start(const struct runtime *rt, const char *id);
int runtime_exec(const struct runtime *rt, const char *id, const char *process_file, const char *pid_file,
		 const int stdio[3], const char *console_socket);
int runtime_kill(const struct runtime *rt, const char *id, int signal, bool all);
int runtime_delete(const struct runtime *rt, const char *id, bool force);
int runtime_pause(const struct runtime *rt, const char *id);
int runtime_resume(const struct runtime *rt, const char *id);
int runtime_update(const struct runtime *rt, const char *id, const char *resources_file);
/* The container's pids (`ps --format json`), malloc'd into *pids. */
int runtime_ps(const struct runtime *rt, const char *id, pid_t **pids, size_t *n);
