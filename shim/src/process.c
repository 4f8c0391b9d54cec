#include "process.h"

#include "shim.h"

pthread_mutex_t proc_lock = PTHREAD_MUTEX_INITIALIZER;
pthread_cond_t proc_changed;

static struct task *tasks;

void process_init(void)
{
	pthread_condattr_t attr;
	pthread_condattr_init(&attr);
	pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
	pthread_cond_init(&proc_changed, &attr);
	pthread_condattr_destroy(&attr);
}

struct task *task_new(const char *id, const char *bundle)
{
	struct task *t = xzalloc(sizeof *t);
	t->id = xstrdup(id);
	t->bundle = xstrdup(bundle);
	t->refs = 1;
	return t;
}

/* An exec references its task; init lives exactly as long as its task, so a reference to init is
 * one to the task and `t->init` stays valid for whoever holds the task. */
struct proc *proc_new(struct task *t, const char *exec_id, const char *const stdio[3], bool terminal)
{
	struct proc *p = xzalloc(sizeof *p);
	p->task = t;
	p->exec_id = xstrdup(exec_id);
	p->stdin_path = xstrdup(stdio[0]);
	p->stdout_path = xstrdup(stdio[1]);
	p->stderr_path = xstrdup(stdio[2]);
	p->terminal = terminal;
	p->state = P_CREATED;
	p->refs = 1;
	if (*exec_id)
		t->refs++;
	return p;
}

static void proc_free(struct proc *p)
{
	proc_close_io(p, false);
	free(p->exec_id);
	free(p->stdin_path);
	free(p->stdout_path);
	free(p->stderr_path);
	free(p);
}

void task_get(struct task *t)
{
	t->refs++;
}

void task_put(struct task *t)
{
	if (--t->refs)
		return;
	if (t->init)
		proc_free(t->init);
	options_free(&t->options);
	free(t->root);
	free(t->id);
	free(t->bundle);
	free(t);
}

void proc_get(struct proc *p)
{
	if (proc_is_init(p))
		task_get(p->task);
	else
		p->refs++;
}

void proc_put(struct proc *p)
{
	if (proc_is_init(p)) {
		task_put(p->task);
		return;
	}
	if (--p->refs)
		return;
	struct task *t = p->task;
	proc_free(p);
	task_put(t);
}

struct task *task_find(const char *id)
{
	for (struct task *t = tasks; t; t = t->next)
		if (!strcmp(t->id, id))
			return t;
	return NULL;
}

void task_insert(struct task *t)
{
	t->refs++;
	t->next = tasks;
	tasks = t;
}

/* Its waiters give up once it is also out of the table. */
static void drop_exec(struct proc *p)
{
	p->removed = true;
	proc_put(p);
}

bool task_remove(struct task *t)
{
	struct task **pt = &tasks;
	while (*pt && *pt != t)
		pt = &(*pt)->next;
	if (!*pt)
		return false;
	*pt = t->next;
	while (t->execs) {
		struct proc *e = t->execs;
		t->execs = e->next;
		drop_exec(e);
	}
	t->init->removed = true;
	pthread_cond_broadcast(&proc_changed);
	task_put(t);
	return true;
}

int task_count(void)
{
	int n = 0;
	for (struct task *t = tasks; t; t = t->next)
		n++;
	return n;
}

struct proc *proc_find(struct task *t, const char *exec_id)
{
	if (!*exec_id)
		return t->init;
	for (struct proc *p = t->execs; p; p = p->next)
		if (!strcmp(p->exec_id, exec_id))
			return p;
	return NULL;
}

void proc_unlink_exec(struct proc *p)
{
	for (struct proc **pp = &p->task->execs; *pp; pp = &(*pp)->next) {
		if (*pp != p)
			continue;
		*pp = p->next;
		pthread_cond_broadcast(&proc_changed);
		drop_exec(p);
		return;
	}
}

const char *proc_id(const struct proc *p)
{
	return *p->exec_id ? p->exec_id : p->task->id;
}

bool proc_is_init(const struct proc *p)
{
	return !*p->exec_id;
}

static const char *state_name(enum pstate s)
{
	switch (s) {
	case P_CREATED:
		return "created";
	case P_RUNNING:
		return "running";
	case P_PAUSED:
		return "paused";
	default:
		return "stopped";
	}
}

int proc_move(struct proc *p, enum pstate next)
{
	if (next == p->state)
		return 0;
	/* Every state but STOPPED may stop; the others are CREATED → RUNNING ⇄ PAUSED. */
	bool allowed = p->state != P_STOPPED &&
		       (next == P_STOPPED || (next == P_RUNNING && p->state != P_RUNNING) ||
			(next == P_PAUSED && p->state == P_RUNNING));
	if (!allowed) {
		fail(0, "process %s: cannot go from %s to %s", proc_id(p), state_name(p->state), state_name(next));
		return -EPERM;
	}
	p->state = next;
	return 0;
}

void proc_close_io(struct proc *p, bool drain)
{
	if (p->has_fifo) {
		fifo_io_close(&p->fifo);
		p->has_fifo = false;
	}
	if (p->console)
		console_io_close(move_ptr(&p->console), drain);
}
