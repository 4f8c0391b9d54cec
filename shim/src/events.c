#include "events.h"
#include "clock.h"
#include "shim.h"
#include "ttrpc.h"

#include <pthread.h>
#include <sys/random.h>
#include <time.h>

#define EVENTS_SERVICE "containerd.services.events.ttrpc.v1.Events"
/* The namespace a ttrpc call is made in, as containerd's ttrpc clients send it. */
#define NAMESPACE_KEY "containerd-namespace-ttrpc"
#define CALL_TIMEOUT_MS 5000
#define RETRY_MIN_MS 100
#define RETRY_MAX_MS 2000

struct event {
	struct event *next;
	uint64_t seq;
	int64_t timestamp_ns;
	char *ns, *topic, *type_url;
	pb_buf value;
};

static struct {
	pthread_mutex_t lock;
	pthread_cond_t queued;  /* the queue became non-empty */
	pthread_cond_t progress; /* an event left the queue */
	struct event *head, **tail;
	size_t pending;
	uint64_t next_seq;
	char *address; /* NULL: nobody can ever receive events, so none are queued */
	char shim_id[37];
} q = { .lock = PTHREAD_MUTEX_INITIALIZER, .tail = &q.head, .next_seq = 1 };

static void event_free(struct event *e)
{
	free(e->ns);
	free(e->topic);
	free(e->type_url);
	pb_buf_free(&e->value);
	free(e);
}

static void sleep_ms(int ms)
{
	struct timespec ts = { .tv_sec = ms / 1000, .tv_nsec = (long)(ms % 1000) * 1000000 };
	while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
		;
}

/* Unique per shim process, so a restarted shim's sequence never collides with its predecessor's. */
static int make_shim_id(char out[37])
{
	uint8_t b[16];
	if (getrandom(b, sizeof b, 0) != sizeof b)
		return fail(errno, "getrandom");
	b[6] = (b[6] & 0x0f) | 0x40; /* version 4 */
	b[8] = (b[8] & 0x3f) | 0x80; /* RFC 4122 variant */
	snprintf(out, 37, "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x",
		 b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7], b[8], b[9], b[10], b[11], b[12], b[13], b[14], b[15]);
	return 0;
}

enum outcome { DELIVERED, REFUSED, RETRY };

static enum outcome forward(ttrpc_client **client, const struct event *e)
{
	if (!*client && ttrpc_connect(q.address, CALL_TIMEOUT_MS, client) < 0)
		return RETRY;
	cleanup_pb pb_buf envelope = {0}, req = {0};
	pb_put_timestamp(&envelope, 1, e->timestamp_ns);
	pb_put_string(&envelope, 2, e->ns);
	pb_put_string(&envelope, 3, e->topic);
	pb_put_any(&envelope, 4, e->type_url, &e->value);
	pb_put_message(&req, 1, &envelope);
	if (envelope.oom || req.oom) {
		shim_log("event %s seq %llu dropped: out of memory", e->topic, (unsigned long long)e->seq);
		return REFUSED;
	}
	char seq[24];
	snprintf(seq, sizeof seq, "%llu", (unsigned long long)e->seq);
	const ttrpc_kv md[] = { { EVENT_SEQ_KEY, seq }, { EVENT_SHIM_ID_KEY, q.shim_id }, { NAMESPACE_KEY, e->ns } };
	enum rpc_code code = RPC_OK;
	if (ttrpc_call(*client, EVENTS_SERVICE, "Forward", md, 3, &req, CALL_TIMEOUT_MS, NULL, &code) < 0)
		return RETRY;
	if (code == RPC_OK)
		return DELIVERED;
	if (code == RPC_UNAVAILABLE || code == RPC_DEADLINE_EXCEEDED || code == RPC_CANCELLED)
		return RETRY;
	/* The daemon received and refused it: retrying the same bytes cannot succeed. */
	shim_log("event %s seq %llu refused: %s", e->topic, (unsigned long long)e->seq, g_err);
	return REFUSED;
}

/* Only this thread removes from the queue, so the head stays valid while it is delivered. */
static void *deliver(void *arg)
{
	(void)arg;
	ttrpc_client *client = NULL;
	int delay = RETRY_MIN_MS;
	for (;;) {
		pthread_mutex_lock(&q.lock);
		while (!q.head)
			pthread_cond_wait(&q.queued, &q.lock);
		struct event *e = q.head;
		pthread_mutex_unlock(&q.lock);

		if (forward(&client, e) == RETRY) {
			/* Whatever went wrong, a new connection is the way back. */
			if (client)
				ttrpc_client_close(client);
			client = NULL;
			sleep_ms(delay);
			delay = delay * 2 < RETRY_MAX_MS ? delay * 2 : RETRY_MAX_MS;
			continue;
		}
		delay = RETRY_MIN_MS;
		pthread_mutex_lock(&q.lock);
		q.head = e->next;
		if (!q.head)
			q.tail = &q.head;
		q.pending--;
		pthread_cond_broadcast(&q.progress);
		pthread_mutex_unlock(&q.lock);
		event_free(e);
	}
	return NULL;
}

int events_start(const char *address)
{
	int r = make_shim_id(q.shim_id);
	if (r < 0)
		return r;
	if (!*address) {
		shim_log("no TTRPC_ADDRESS: task events are dropped");
		return 0;
	}
	pthread_condattr_t attr;
	pthread_condattr_init(&attr);
	pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
	pthread_cond_init(&q.queued, &attr);
	pthread_cond_init(&q.progress, &attr);
	pthread_condattr_destroy(&attr);
	q.address = xstrdup(address);
	pthread_t t;
	r = pthread_create(&t, NULL, deliver, NULL);
	if (r)
		return fail(r, "start the event thread");
	pthread_detach(t);
	shim_log("forwarding events to %s as shim id %s", address, q.shim_id);
	return 0;
}

void events_publish(const char *ns, const char *topic, const char *type, const pb_buf *event)
{
	if (!q.address)
		return;
	struct event *e = xmalloc(sizeof *e);
	*e = (struct event){
		.timestamp_ns = now_unix_ns(),
		.ns = xstrdup(ns),
		.topic = xstrdup(topic),
		.type_url = xasprintf("containerd.events.%s", type),
	};
	if (event && event->len) {
		e->value.data = xmalloc(event->len);
		memcpy(e->value.data, event->data, event->len);
		e->value.len = e->value.cap = event->len;
	}
	pthread_mutex_lock(&q.lock);
	/* Numbered under the lock, so sequence order is queue order. */
	e->seq = q.next_seq++;
	*q.tail = e;
	q.tail = &e->next;
	q.pending++;
	pthread_cond_signal(&q.queued);
	pthread_mutex_unlock(&q.lock);
}

void events_flush(int timeout_ms)
{
	struct timespec deadline = deadline_after(CLOCK_MONOTONIC, timeout_ms);
	pthread_mutex_lock(&q.lock);
	/* Events published meanwhile do not hold the caller up: the head has the lowest number. */
	uint64_t last = q.next_seq - 1;
	while (q.head && q.head->seq <= last && pthread_cond_timedwait(&q.progress, &q.lock, &deadline) != ETIMEDOUT)
		;
	pthread_mutex_unlock(&q.lock);
}

size_t events_pending(void)
{
	pthread_mutex_lock(&q.lock);
	size_t n = q.pending;
	pthread_mutex_unlock(&q.lock);
	return n;
}
