/* Every exit in the shim is collected by one thread. The shim is a child subreaper, so container
 * processes become its children once the runtime that created them exits. SIGCHLD is blocked in
 * every thread; the reaper waits for it with sigwaitinfo, reaps with waitid(P_ALL) until none is
 * left and hands each status to whoever registered that pid. Only this thread reaps and a pid is
 * not reused before it is reaped, so registering by pid is safe. */
#pragma once
#include <spawn.h>
#include <sys/types.h>

struct exit_status {
	pid_t pid;
	int status; /* exit code, or 128 + signal when killed (the shell's and containerd's convention) */
	int signal; /* 0 unless killed by a signal */
};

/* Starts the reaper thread. SIGCHLD must be blocked in the caller (and so in the thread). */
int reaper_start(void);

/* posix_spawnp of `program` with the shim's environment, and the child's exit kept for
 * reaper_wait, which the caller must call. 0 or -errno. */
int reaper_spawn(pid_t *pid, const char *program, char *const argv[], const posix_spawn_file_actions_t *fa,
		 const posix_spawnattr_t *attr);
/* Blocks until `pid`, started by reaper_spawn, has exited. Without the reaper thread (a process
 * such as `berth-shim delete` that never starts it), waits for that child alone. */
void reaper_wait(pid_t pid, struct exit_status *st);

typedef void (*reaper_cb)(const struct exit_status *st, void *data);
/* Calls `cb` once when `pid` exits, on the reaper thread; or before this returns, on the calling
 * thread, when it has already exited (a process can end before its pid file is read: its status
 * is kept for a minute). -ECHILD (g_err set) when `pid` is not a child of the shim: cb never runs. */
int reaper_watch(pid_t pid, reaper_cb cb, void *data);
/* kill(pid, sig) for a watched pid whose exit is not yet collected; once collected, its number
 * may belong to another process already, so nothing is sent and -ESRCH returned. */
int reaper_kill(pid_t pid, int sig);
