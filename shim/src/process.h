/* The shim's tasks and their processes, and the one mutex that guards them all. Request threads,
 * the reaper thread and the OOM thread share these: every field below marked (L) is read and
 * written with proc_lock held, and nothing slow (the runtime, a wait) runs with it held. */
#pragma once
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "console.h"
#include "fifo_io.h"
#include "options.h"
#include "reaper.h"
#include "runtime.h"

/* containerd.v1.types.Status, as the wire numbers them. */
enum pstate { P_CREATED = 1, P_RUNNING = 2, P_STOPPED = 3, P_PAUSED = 4 };

struct task;

/* A task's init (exec_id "") or one of its exec processes. */
struct proc {
	struct task *task; /* an exec holds a reference; init is part of it */
	char *exec_id;
	char *stdin_path, *stdout_path, *stderr_path;
	bool terminal;
	pid_t pid;              /* (L) set once, when launched; 0 before */
	enum pstate state;      /* (L) */
	int refs;               /* (L) an exec's: membership in the task, the exit watch, requests */
	/* (L) Set while Start runs. A process can exit before the runtime's `start` returns; its exit
	 * is held back until Start has moved it to RUNNING and published its event, so Wait, State and
	 * the event stream never show an exit before the start. */
	bool starting;
	bool reaped;            /* (L) the exit is collected, maybe not reported yet */
	struct exit_status reaped_status;
	int64_t reaped_at;
	bool exited;            /* (L) reported: exit_status and exited_at are valid */
	int exit_status;
	int64_t exited_at;
	bool removed;           /* (L) deleted before it exited: its waiters give up */
	bool has_fifo;          /* (L) with `fifo`; or `console`, or no stdio yet */
	struct fifo_io fifo;
	struct console_io *console;
	struct proc *next;      /* (L) the task's execs */
};

/* One task: its bundle, the runtime that manages it, its init and its execs. */
struct task {
	char *id, *bundle;
	struct runtime_options options;
	char *root;
	struct runtime rt;
	struct proc *init;        /* valid while the task is */
	struct proc *execs;       /* (L) */
	struct oom_watch *oom;    /* (L) holds a reference */
	int refs;                 /* (L) the table, each proc, the OOM watch, request threads */
	struct task *next;        /* (L) */
};

extern pthread_mutex_t proc_lock;
/* Broadcast (under proc_lock) when a process exits or is removed. CLOCK_MONOTONIC. */
extern pthread_cond_t proc_changed;

void process_init(void);

/* A task not in the table yet, one reference held by the caller. */
struct task *task_new(const char *id, const char *bundle);
/* A process of `t`: its init (exec_id "", which lives as long as `t`), or an exec whose one
 * reference is its membership in `t->execs` once added there. (L) */
struct proc *proc_new(struct task *t, const char *exec_id, const char *const stdio[3], bool terminal);

/* The rest: (L). */
void task_get(struct task *t);
void task_put(struct task *t);
void proc_get(struct proc *p);
void proc_put(struct proc *p);

struct task *task_find(const char *id);
void task_insert(struct task *t);
/* Takes `t` out of the table and drops its execs' membership (they go once their last reference
 * does): false when it was not in the table (a concurrent Delete won). */
bool task_remove(struct task *t);
int task_count(void);
/* NULL when `exec_id` is not one of `t`'s. */
struct proc *proc_find(struct task *t, const char *exec_id);
void proc_unlink_exec(struct proc *p);

/* The process id containerd reports: the exec id, or the container id for init. */
const char *proc_id(const struct proc *p);
bool proc_is_init(const struct proc *p);
/* containerd's process state machine; -EPERM with a message naming both states when not allowed. */
int proc_move(struct proc *p, enum pstate next);
/* Closes the process's stdio: a terminal once its output is delivered if `drain`. */
void proc_close_io(struct proc *p, bool drain);
