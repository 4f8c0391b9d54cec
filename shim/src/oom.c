/* One thread waits on an epoll set holding every watch: per task, a cgroup v1 eventfd (registered
 * through cgroup.event_control against memory.oom_control, it counts the cgroup's OOM events) or,
 * on cgroup v2, an inotify watch of memory.events whose oom_kill count is compared with the last
 * one reported. Callbacks run without the lock; a watch is marked busy while its callback runs, so
 * oom_check waits for a report in progress and oom_close waits until no callback can follow. */
#include "oom.h"
#include "shim.h"

#include <fcntl.h>
#include <pthread.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/inotify.h>

#define CGROUP_ROOT "/sys/fs/cgroup"

struct oom_watch {
	struct oom_watch *next;
	uint64_t key;     /* epoll data: an event read before a close finds no watch */
	int fd;           /* v1: the eventfd; v2: the inotify fd */
	int control_fd;   /* v1: memory.oom_control, kept open while registered; v2: -1 */
	char *dir;        /* the memory cgroup */
	uint64_t kills;   /* v2: memory.events oom_kill already reported */
	bool busy;        /* its callback is running */
	void (*cb)(void *data);
	void *data;
};

static struct {
	pthread_mutex_t lock;
	pthread_cond_t idle; /* a callback returned */
	int epfd;
	uint64_t next_key;
	struct oom_watch *watches;
} W = { .lock = PTHREAD_MUTEX_INITIALIZER, .idle = PTHREAD_COND_INITIALIZER, .epfd = -1, .next_key = 1 };

/* v2: the oom_kill count in memory.events; 0 when unreadable (the cgroup is gone). */
static uint64_t v2_kills(const char *dir)
{
	cleanup_free char *path = xasprintf("%s/memory.events", dir);
	cleanup_free char *text = NULL;
	if (read_file_at(AT_FDCWD, path, &text, NULL) < 0)
		return 0;
	const char *p = strstr(text, "oom_kill ");
	return p && (p == text || p[-1] == '\n') ? strtoull(p + 9, NULL, 10) : 0;
}

/* Reads what the kernel signalled: true when an OOM kill is to be reported. Lock held. */
static bool pending_kill(struct oom_watch *w)
{
	if (w->control_fd < 0) {
		char drain[4096];
		while (read(w->fd, drain, sizeof drain) > 0)
			;
		uint64_t kills = v2_kills(w->dir);
		if (kills <= w->kills)
			return false;
		w->kills = kills;
		return true;
	}
	uint64_t count;
	if (read(w->fd, &count, sizeof count) != sizeof count || !count)
		return false;
	/* The kernel signals the eventfd too when the cgroup is removed, and removes its directory
	 * first: a task deleted without an OOM must not report one. */
	cleanup_free char *control = xasprintf("%s/memory.oom_control", w->dir);
	return access(control, F_OK) == 0;
}

/* Reports a pending kill of `w` through its callback, outside the lock. Lock held, `w` not busy. */
static void report(struct oom_watch *w)
{
	if (!pending_kill(w))
		return;
	w->busy = true;
	pthread_mutex_unlock(&W.lock);
	w->cb(w->data);
	pthread_mutex_lock(&W.lock);
	w->busy = false;
	pthread_cond_broadcast(&W.idle);
}

static struct oom_watch *find(uint64_t key)
{
	struct oom_watch *w = W.watches;
	while (w && w->key != key)
		w = w->next;
	return w;
}

static void *watch_loop(void *arg)
{
	(void)arg;
	for (;;) {
		struct epoll_event ev[16];
		int n = epoll_wait(W.epfd, ev, 16, -1);
		if (n < 0 && errno != EINTR) {
			shim_log("OOM watcher stops: epoll_wait: %s", strerror(errno));
			return NULL;
		}
		pthread_mutex_lock(&W.lock);
		for (int i = 0; i < n; i++) {
			/* Looked up again after every wait: the watch may be closed meanwhile. */
			struct oom_watch *w;
			while ((w = find(ev[i].data.u64)) && w->busy)
				pthread_cond_wait(&W.idle, &W.lock);
			if (w)
				report(w);
		}
		pthread_mutex_unlock(&W.lock);
	}
}

/* The epoll set and its thread, on the first watch. Lock held. */
static int start_watcher(void)
{
	if (W.epfd >= 0)
		return 0;
	int epfd = epoll_create1(EPOLL_CLOEXEC);
	if (epfd < 0)
		return fail(errno, "epoll_create1");
	W.epfd = epfd;
	pthread_t t;
	int r = pthread_create(&t, NULL, watch_loop, NULL);
	if (r) {
		close(epfd);
		W.epfd = -1;
		return fail(r, "start the OOM watcher");
	}
	pthread_detach(t);
	return 0;
}

/* The memory cgroup directory of `pid`; *v2 when it is a cgroup v2 one. NULL and g_err when none. */
static char *memory_cgroup(pid_t pid, bool *v2)
{
	cleanup_free char *path = xasprintf("/proc/%d/cgroup", pid);
	cleanup_free char *text = NULL;
	if (read_file_at(AT_FDCWD, path, &text, NULL) < 0)
		return NULL;
	char *unified = NULL, *save, *csave;
	for (char *line = strtok_r(text, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
		char *controllers = strchr(line, ':'), *dir = controllers ? strchr(controllers + 1, ':') : NULL;
		if (!dir)
			continue;
		*dir++ = 0;
		controllers++;
		if (!strcmp(line, "0") && !*controllers) {
			unified = dir;
			continue;
		}
		for (char *c = strtok_r(controllers, ",", &csave); c; c = strtok_r(NULL, ",", &csave))
			if (!strcmp(c, "memory")) {
				*v2 = false;
				return xasprintf(CGROUP_ROOT "/memory%s", dir);
			}
	}
	if (unified) {
		char *dir = xasprintf(CGROUP_ROOT "%s", unified);
		cleanup_free char *events = xasprintf("%s/memory.events", dir);
		if (access(events, F_OK) == 0) {
			*v2 = true;
			return dir;
		}
		free(dir);
	}
	fail(0, "no memory cgroup for pid %d", pid);
	return NULL;
}

static int open_v1(struct oom_watch *w)
{
	cleanup_free char *control = xasprintf("%s/memory.oom_control", w->dir);
	w->control_fd = open(control, O_RDONLY | O_CLOEXEC);
	if (w->control_fd < 0)
		return fail(errno, "open `%s`", control);
	w->fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (w->fd < 0)
		return fail(errno, "eventfd");
	cleanup_free char *event_control = xasprintf("%s/cgroup.event_control", w->dir);
	return write_str_at(AT_FDCWD, event_control, "%d %d", w->fd, w->control_fd);
}

static int open_v2(struct oom_watch *w)
{
	w->fd = inotify_init1(IN_CLOEXEC | IN_NONBLOCK);
	if (w->fd < 0)
		return fail(errno, "inotify_init1");
	cleanup_free char *events = xasprintf("%s/memory.events", w->dir);
	if (inotify_add_watch(w->fd, events, IN_MODIFY) < 0)
		return fail(errno, "watch `%s`", events);
	w->kills = v2_kills(w->dir);
	return 0;
}

static void watch_free(struct oom_watch *w)
{
	if (w->fd >= 0)
		close(w->fd);
	if (w->control_fd >= 0)
		close(w->control_fd);
	free(w->dir);
	free(w);
}

static int add_watch(struct oom_watch *w)
{
	pthread_mutex_lock(&W.lock);
	int r = start_watcher();
	if (r == 0) {
		w->key = W.next_key++;
		struct epoll_event ev = { .events = EPOLLIN, .data.u64 = w->key };
		if (epoll_ctl(W.epfd, EPOLL_CTL_ADD, w->fd, &ev) < 0)
			r = fail(errno, "epoll_ctl");
	}
	if (r == 0) {
		w->next = W.watches;
		W.watches = w;
	}
	pthread_mutex_unlock(&W.lock);
	return r;
}

struct oom_watch *oom_watch_pid(pid_t pid, void (*cb)(void *data), void *data)
{
	struct oom_watch *w = calloc(1, sizeof *w);
	if (!w) {
		fail(ENOMEM, "OOM watch");
		return NULL;
	}
	*w = (struct oom_watch){ .fd = -1, .control_fd = -1, .cb = cb, .data = data };
	bool v2 = false;
	w->dir = memory_cgroup(pid, &v2);
	int r = w->dir ? (v2 ? open_v2(w) : open_v1(w)) : -ENOENT;
	if (r == 0)
		r = add_watch(w);
	if (r < 0) {
		watch_free(w);
		return NULL;
	}
	return w;
}

void oom_check(struct oom_watch *w)
{
	if (!w)
		return;
	pthread_mutex_lock(&W.lock);
	/* A report in progress on the watcher's thread goes first: it is this very OOM. */
	while (w->busy)
		pthread_cond_wait(&W.idle, &W.lock);
	report(w);
	pthread_mutex_unlock(&W.lock);
}

void oom_close(struct oom_watch *w)
{
	if (!w)
		return;
	pthread_mutex_lock(&W.lock);
	for (struct oom_watch **p = &W.watches; *p; p = &(*p)->next)
		if (*p == w) {
			*p = w->next;
			break;
		}
	epoll_ctl(W.epfd, EPOLL_CTL_DEL, w->fd, NULL);
	while (w->busy)
		pthread_cond_wait(&W.idle, &W.lock);
	pthread_mutex_unlock(&W.lock);
	watch_free(w);
}
