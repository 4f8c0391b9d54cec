/* Milliseconds on the monotonic clock, and the absolute deadlines that timed waits take. Inline,
 * so ttrpc.c, which the ttrpc interop test builds without the rest of the shim, can use them too. */
#pragma once
#include <stdint.h>
#include <time.h>

static inline int64_t mono_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* `ms` from now on `clock`: CLOCK_MONOTONIC for a condition variable set to it, CLOCK_REALTIME
 * for pthread_mutex_timedlock. */
static inline struct timespec deadline_after(clockid_t clock, int ms)
{
	struct timespec ts;
	clock_gettime(clock, &ts);
	ts.tv_sec += ms / 1000;
	ts.tv_nsec += (long)(ms % 1000) * 1000000;
	if (ts.tv_nsec >= 1000000000) {
		ts.tv_sec++;
		ts.tv_nsec -= 1000000000;
	}
	return ts;
}
