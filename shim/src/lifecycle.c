/* One thread sleeps on a condition variable until the next deadline (the grace timer or the
 * earliest reservation expiry); everything else only changes state under the mutex and wakes it.
 * service_task_count() is called with the mutex held, so that a Create counted there and the
 * decision to exit can never cross: it must not wait for anything that calls into this file. */
#include "lifecycle.h"
#include "clock.h"
#include "service.h"
#include "shim.h"

#include <pthread.h>
#include <time.h>

/* How long `start` may take between reserving a shim and the daemon's Create reaching it. */
#define RESERVATION_MS 30000

struct reservation {
	struct reservation *next;
	char *id;
	int64_t expires; /* monotonic ms */
};

static struct {
	pthread_mutex_t lock;
	pthread_cond_t wake;
	bool exiting;
	int64_t timer; /* grace deadline, monotonic ms; 0 = none */
	struct reservation *reservations;
	int grace_ms;
	void (*on_exit)(void);
} lc = { .lock = PTHREAD_MUTEX_INITIALIZER };

static int refuse(void)
{
	snprintf(g_err, sizeof g_err, "shim is shutting down");
	return -EAGAIN;
}

static bool idle(void)
{
	return !lc.reservations && service_task_count() == 0;
}

/* Drops the reservation of `id`; true if there was one. */
static bool unreserve(const char *id)
{
	for (struct reservation **p = &lc.reservations; *p; p = &(*p)->next) {
		if (strcmp((*p)->id, id))
			continue;
		struct reservation *r = *p;
		*p = r->next;
		free(r->id);
		free(r);
		return true;
	}
	return false;
}

static void start_timer(void)
{
	if (lc.exiting || lc.timer || !idle())
		return;
	lc.timer = mono_ms() + lc.grace_ms;
	pthread_cond_signal(&lc.wake);
}

static void expire_reservations(int64_t now)
{
	bool expired = false;
	for (struct reservation **p = &lc.reservations; *p;) {
		struct reservation *r = *p;
		if (r->expires > now) {
			p = &r->next;
			continue;
		}
		*p = r->next;
		free(r->id);
		free(r);
		expired = true;
	}
	if (expired)
		start_timer();
}

static int64_t next_deadline(void)
{
	int64_t next = lc.timer;
	for (struct reservation *r = lc.reservations; r; r = r->next)
		if (!next || r->expires < next)
			next = r->expires;
	return next;
}

static void *run(void *arg)
{
	(void)arg;
	pthread_mutex_lock(&lc.lock);
	while (!lc.exiting) {
		int64_t now = mono_ms();
		expire_reservations(now);
		if (lc.timer && lc.timer <= now) {
			lc.timer = 0;
			lc.exiting = idle();
			continue;
		}
		int64_t next = next_deadline();
		if (!next) {
			pthread_cond_wait(&lc.wake, &lc.lock);
			continue;
		}
		struct timespec ts = { .tv_sec = next / 1000, .tv_nsec = (next % 1000) * 1000000 };
		pthread_cond_timedwait(&lc.wake, &lc.lock, &ts);
	}
	pthread_mutex_unlock(&lc.lock);
	lc.on_exit();
	return NULL;
}

void lifecycle_init(int grace_ms, void (*on_exit)(void))
{
	lc.grace_ms = grace_ms;
	lc.on_exit = on_exit;
	pthread_condattr_t attr;
	pthread_condattr_init(&attr);
	pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
	pthread_cond_init(&lc.wake, &attr);
	pthread_condattr_destroy(&attr);
	pthread_t t;
	/* Without this thread the shim would never exit: nothing to serve, so fail loudly. */
	if (pthread_create(&t, NULL, run, NULL)) {
		shim_log("cannot start the lifecycle thread");
		abort();
	}
	pthread_detach(t);
}

int lifecycle_reserve(const char *id)
{
	pthread_mutex_lock(&lc.lock);
	if (lc.exiting) {
		pthread_mutex_unlock(&lc.lock);
		return refuse();
	}
	lc.timer = 0;
	unreserve(id);
	struct reservation *r = xmalloc(sizeof *r);
	*r = (struct reservation){ .next = lc.reservations, .id = xstrdup(id), .expires = mono_ms() + RESERVATION_MS };
	lc.reservations = r;
	pthread_cond_signal(&lc.wake);
	pthread_mutex_unlock(&lc.lock);
	return 0;
}

int lifecycle_task_created(const char *id)
{
	pthread_mutex_lock(&lc.lock);
	bool exiting = lc.exiting;
	if (!exiting) {
		lc.timer = 0;
		unreserve(id);
	}
	pthread_mutex_unlock(&lc.lock);
	return exiting ? refuse() : 0;
}

void lifecycle_task_removed(void)
{
	pthread_mutex_lock(&lc.lock);
	start_timer();
	pthread_mutex_unlock(&lc.lock);
}

void lifecycle_shutdown(void)
{
	pthread_mutex_lock(&lc.lock);
	if (!lc.exiting && idle()) {
		lc.exiting = true;
		pthread_cond_signal(&lc.wake);
	}
	pthread_mutex_unlock(&lc.lock);
}
