#include "reaper.h"

#include "shim.h"

#include <pthread.h>
#include <signal.h>
#include <sys/wait.h>
#include <time.h>

/* Exits reaped before anyone asked for them are kept this long for a late reaper_watch. */
#define UNCLAIMED_TTL_NS (60 * 1000000000LL)

enum kind {
	SPAWNED,   /* reaper_spawn's child: reaper_wait collects it */
	WATCHED,   /* reaper_watch's pid: its callback runs */
	UNCLAIMED, /* reaped with nobody registered yet */
};

struct entry {
	pid_t pid;
	enum kind kind;
	bool exited;
	struct exit_status st;
	int64_t reaped_at;
	reaper_cb cb;
	void *data;
	struct entry *next;
};

/* Held while reaping, so a registration sees each pid either still unreaped or with its status. */
static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t exited_cond = PTHREAD_COND_INITIALIZER;
static struct entry *entries;
/* Set once the thread runs; before that (or in `berth-shim delete`, which never starts it) a
 * spawned child is waited for by its spawner. */
static bool running;

static int64_t monotonic_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static struct entry **find(pid_t pid)
{
	struct entry **e = &entries;
	while (*e && (*e)->pid != pid)
		e = &(*e)->next;
	return e;
}

static struct entry *unlink_entry(struct entry **e)
{
	struct entry *x = *e;
	*e = x->next;
	x->next = NULL;
	return x;
}

static struct entry *add(pid_t pid, enum kind kind)
{
	struct entry *e = xzalloc(sizeof *e);
	e->pid = pid;
	e->kind = kind;
	e->next = entries;
	entries = e;
	return e;
}

/* As the native addon's waitid decoding (services/native), which the daemon was written against. */
static struct exit_status status_of(const siginfo_t *si)
{
	bool killed = si->si_code == CLD_KILLED || si->si_code == CLD_DUMPED;
	return (struct exit_status){
		.pid = si->si_pid,
		.status = killed ? 128 + si->si_status : si->si_status,
		.signal = killed ? si->si_status : 0,
	};
}

/* Called with the lock held; watched entries move to *ready, their callbacks run unlocked. */
static void deliver(const struct exit_status *st, struct entry **ready)
{
	struct entry **pe = find(st->pid);
	struct entry *e = *pe;
	if (!e || e->kind == UNCLAIMED) {
		/* A stale entry of the same pid was reaped over a minute ago at least; replace it. */
		if (!e)
			e = add(st->pid, UNCLAIMED);
		e->exited = true;
		e->st = *st;
		e->reaped_at = monotonic_ns();
	} else if (e->kind == SPAWNED) {
		e->exited = true;
		e->st = *st;
		pthread_cond_broadcast(&exited_cond);
	} else {
		e = unlink_entry(pe);
		e->st = *st;
		e->next = *ready;
		*ready = e;
	}
}

static void prune_unclaimed(void)
{
	int64_t now = monotonic_ns();
	for (struct entry **e = &entries; *e;) {
		if ((*e)->kind == UNCLAIMED && now - (*e)->reaped_at > UNCLAIMED_TTL_NS)
			free(unlink_entry(e));
		else
			e = &(*e)->next;
	}
}

static void reap_all(void)
{
	struct entry *ready = NULL;
	pthread_mutex_lock(&lock);
	for (;;) {
		siginfo_t si = {0};
		if (waitid(P_ALL, 0, &si, WEXITED | WNOHANG) < 0) {
			if (errno == EINTR)
				continue;
			break; /* ECHILD: no children at all */
		}
		if (si.si_pid == 0)
			break;
		struct exit_status st = status_of(&si);
		deliver(&st, &ready);
	}
	prune_unclaimed();
	pthread_mutex_unlock(&lock);
	while (ready) {
		struct entry *e = ready;
		ready = e->next;
		e->cb(&e->st, e->data);
		free(e);
	}
}

static void *reaper_main(void *arg)
{
	(void)arg;
	sigset_t chld;
	sigemptyset(&chld);
	sigaddset(&chld, SIGCHLD);
	/* SIGCHLD signals coalesce: each wakeup reaps everything that has exited so far. The first
	 * round collects what exited before this thread existed. */
	for (;;) {
		reap_all();
		siginfo_t si;
		while (sigwaitinfo(&chld, &si) < 0 && errno == EINTR)
			;
	}
	return NULL;
}

int reaper_start(void)
{
	running = true;
	pthread_attr_t attr;
	pthread_attr_init(&attr);
	pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
	pthread_t t;
	int r = pthread_create(&t, &attr, reaper_main, NULL);
	pthread_attr_destroy(&attr);
	if (r)
		running = false;
	return r ? fail(r, "start the reaper thread") : 0;
}

int reaper_spawn(pid_t *pid, const char *program, char *const argv[], const posix_spawn_file_actions_t *fa,
		 const posix_spawnattr_t *attr)
{
	extern char **environ;
	/* Registered under the lock the reaper reaps with, so the child's exit cannot be mistaken
	 * for an unclaimed one of an earlier process with the same pid. */
	pthread_mutex_lock(&lock);
	int r = posix_spawnp(pid, program, fa, attr, argv, environ);
	if (r == 0) {
		struct entry **stale = find(*pid);
		if (*stale)
			free(unlink_entry(stale));
		add(*pid, SPAWNED);
	}
	pthread_mutex_unlock(&lock);
	return r ? fail(r, "spawn %s", argv[0]) : 0;
}

/* The spawner reaps its own child, only that one. */
static void wait_child(pid_t pid, struct exit_status *st)
{
	siginfo_t si = {0};
	while (waitid(P_PID, pid, &si, WEXITED) < 0 && errno == EINTR)
		;
	*st = status_of(&si);
	pthread_mutex_lock(&lock);
	free(unlink_entry(find(pid)));
	pthread_mutex_unlock(&lock);
}

void reaper_wait(pid_t pid, struct exit_status *st)
{
	if (!running) {
		wait_child(pid, st);
		return;
	}
	pthread_mutex_lock(&lock);
	struct entry **e;
	while (!(*(e = find(pid)))->exited)
		pthread_cond_wait(&exited_cond, &lock);
	struct entry *x = unlink_entry(e);
	pthread_mutex_unlock(&lock);
	*st = x->st;
	free(x);
}

int reaper_watch(pid_t pid, reaper_cb cb, void *data)
{
	pthread_mutex_lock(&lock);
	struct entry **e = find(pid);
	if (*e && (*e)->kind == UNCLAIMED) {
		struct entry *x = unlink_entry(e);
		pthread_mutex_unlock(&lock);
		cb(&x->st, data);
		free(x);
		return 0;
	}
	/* Not reaped yet, since reaping takes the lock: either a child (maybe a zombie) or not ours. */
	siginfo_t si;
	if (waitid(P_PID, pid, &si, WEXITED | WNOHANG | WNOWAIT) < 0) {
		int err = errno;
		pthread_mutex_unlock(&lock);
		return fail(err, "watch pid %d", (int)pid);
	}
	struct entry *x = add(pid, WATCHED);
	x->cb = cb;
	x->data = data;
	pthread_mutex_unlock(&lock);
	return 0;
}

int reaper_kill(pid_t pid, int sig)
{
	pthread_mutex_lock(&lock);
	struct entry *e = *find(pid);
	int r = -ESRCH;
	if (e && e->kind == WATCHED)
		r = kill(pid, sig) < 0 ? -errno : 0;
	pthread_mutex_unlock(&lock);
	return r < 0 ? fail(-r, "kill %d", (int)pid) : 0;
}
