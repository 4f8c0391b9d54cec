/* What turns a cloned process into the container's process: console, rlimits, user and groups,
 * capabilities, no_new_privs, LSM labels, seccomp, cwd, and the fds it may keep. Shared by the
 * container's init and by `exec`. */
#pragma once
#include "seccomp.h"
#include "spec.h"

/* A connected unix stream socket; `what` names it in errors. */
int unix_connect(const char *path, const char *what);
int console_setup(int sock, const struct process *p, bool bind_dev_console);
int console_recv(int sock, bool wait);
int console_proxy(int master);
int process_finalize(const struct process *p, const struct seccomp_load *sl);
int process_find_exec(const struct process *p, char **out);
/* Everything above 2 and the preserved fds is closed on exec; this also covers the fds the
 * caller leaked to us, which is what CVE-2024-21626 used. */
int process_close_fds(int preserve_fds);
/* While `run` or `exec` waits in the foreground, the usual terminating signals go to the process. */
void forward_signals(pid_t pid);
int run_hooks(const struct hook *h, size_t n, const char *kind, const char *state_json);
