/* The lifecycle operations behind the CLI verbs. */
#pragma once
#include "util.h"

struct create_opts {
	const char *root, *id, *bundle, *pid_file, *console_socket;
	int preserve_fds;
	int console_fd; /* instead of console_socket: a connected socket (run's own proxy); else -1 */
	bool no_new_keyring;
};

struct exec_opts {
	const char *root, *id, *process_file, *pid_file, *console_socket, *cwd, *user, *apparmor;
	const char **args, **env, **caps, **agids;
	size_t n_args, n_env, n_caps, n_agids;
	int preserve_fds;
	bool tty, detach, nnp;
};

/* fifo_reader, when given, receives the exec fifo's reading end, opened before the init waits on it. */
int container_create(const struct create_opts *o, pid_t *init_pid, int *fifo_reader);
/* fifo_reader is -1, or the fd from container_create (taken over). */
int container_start(const char *root, const char *id, int fifo_reader);
int container_run(const struct create_opts *o, bool detach, int *exit_code);
int container_exec(const struct exec_opts *o, int *exit_code);
int container_kill(const char *root, const char *id, int sig, bool all);
int container_delete(const char *root, const char *id, bool force);
int container_pause(const char *root, const char *id, bool pause);
int container_ps(const char *root, const char *id, bool json, char **ps_args, int n_ps_args);
int container_state(const char *root, const char *id);
/* runc update --resources FILE|-: a LinuxResources object applied to the container's cgroups. */
int container_update(const char *root, const char *id, const char *resources_file);
int container_list(const char *root, bool json, bool quiet);
