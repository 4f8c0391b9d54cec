#include "ttrpc.h"

#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>

#include "clock.h"
#include "util.h"

#define HEADER_SIZE 10
#define THREAD_STACK (256u << 10)
enum { FRAME_REQUEST = 1, FRAME_RESPONSE = 2 };
/* Only the transport refuses for size, so this code is not among the shim's rpc_code values. */
#define RPC_RESOURCE_EXHAUSTED ((enum rpc_code)8)

struct header {
	uint32_t len, stream;
	uint8_t type, flags;
};

static void put_header(uint8_t h[HEADER_SIZE], uint32_t len, uint32_t stream, uint8_t type)
{
	h[0] = len >> 24, h[1] = len >> 16, h[2] = len >> 8, h[3] = len;
	h[4] = stream >> 24, h[5] = stream >> 16, h[6] = stream >> 8, h[7] = stream;
	h[8] = type;
	h[9] = 0;
}

static struct header parse_header(const uint8_t h[HEADER_SIZE])
{
	return (struct header){
		.len = (uint32_t)h[0] << 24 | (uint32_t)h[1] << 16 | (uint32_t)h[2] << 8 | h[3],
		.stream = (uint32_t)h[4] << 24 | (uint32_t)h[5] << 16 | (uint32_t)h[6] << 8 | h[7],
		.type = h[8],
		.flags = h[9],
	};
}

static int spawn(void *(*fn)(void *), void *arg, pthread_t *joinable)
{
	pthread_attr_t attr;
	pthread_attr_init(&attr);
	pthread_attr_setstacksize(&attr, THREAD_STACK);
	if (!joinable)
		pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
	pthread_t tid;
	int r = pthread_create(joinable ? joinable : &tid, &attr, fn, arg);
	pthread_attr_destroy(&attr);
	return r ? fail(r, "start a thread") : 0;
}

/* Encodes Response{status, payload}. A success carries an explicit, empty Status, as berthd's
 * server sends it: older Go clients insist on one. */
static void encode_response(pb_buf *body, int code, const char *message, const pb_buf *payload)
{
	cleanup_pb pb_buf status = {0};
	pb_put_int(&status, 1, code);
	pb_put_string(&status, 2, message);
	pb_put_message(body, 1, &status);
	if (payload) {
		if (payload->oom)
			body->oom = true;
		else
			pb_put_bytes(body, 2, payload->data, payload->len);
	}
}

/* ---- server ---- */

struct conn {
	int fd;
	atomic_int refs; /* the reader thread's and one per call */
	pthread_mutex_t wlock;
	bool closed; /* under wlock: replies from now on are dropped */
	struct conn *next;
};

struct ttrpc_call {
	struct conn *conn;
	uint32_t stream;
	uint8_t *frame; /* the request frame that payload points into */
	const uint8_t *payload;
	size_t payload_len;
	char **md; /* key, value, key, value... */
	size_t n_md;
	ttrpc_handler fn;
	int64_t deadline_ms; /* CLOCK_MONOTONIC; 0: none */
	/* The rest under srv.call_lock. */
	uint64_t seq;       /* dispatch order: ttrpc_close_all waits for the calls before it */
	int refs;           /* the handler's, and the deadline thread's while it answers and cancels */
	bool answered;      /* the first answer is claimed: later ones are dropped */
	bool replied;       /* and written out (or dropped, the connection being closed) */
	bool cancelled;
	void (*on_cancel)(void *); /* the hook, until it runs */
	void *on_cancel_data;
	bool hook_running;  /* with the lock down: end_hook waits for it */
	struct ttrpc_call *next;    /* srv.calls */
	struct ttrpc_call *dl_next; /* srv.deadlines */
};

static struct {
	pthread_mutex_t lock; /* conns, listening */
	struct conn *conns;
	bool listening;
	const ttrpc_method *methods;
	size_t n_methods;
	char *path;
	dev_t dev;
	ino_t ino;
	int listen_fd, stop_pipe[2];
	pthread_t acceptor;
	bool accepting; /* the acceptor thread runs */
	/* Calls handed to a handler and not yet freed (newest first), to cancel those of a connection
	 * that closes; and those with a deadline (earliest first), which the deadline thread answers
	 * with DEADLINE_EXCEEDED, as berthd's server does, and cancels if their handler has not
	 * answered by then. */
	pthread_mutex_t call_lock;
	pthread_cond_t dl_cond;   /* wakes the deadline thread */
	pthread_cond_t call_done; /* a hook returned, or a call was answered; CLOCK_REALTIME */
	struct ttrpc_call *calls, *deadlines;
	uint64_t next_seq;
} srv = {
	.lock = PTHREAD_MUTEX_INITIALIZER,
	.call_lock = PTHREAD_MUTEX_INITIALIZER,
	.call_done = PTHREAD_COND_INITIALIZER,
	.listen_fd = -1,
	.stop_pipe = { -1, -1 },
};

static void conn_ref(struct conn *c)
{
	atomic_fetch_add(&c->refs, 1);
}

/* The fd stays open until the last call on it ends, so its number is never reused under a reply. */
static void conn_unref(struct conn *c)
{
	if (atomic_fetch_sub(&c->refs, 1) != 1)
		return;
	close(c->fd);
	pthread_mutex_destroy(&c->wlock);
	free(c);
}

static int send_all(int fd, const void *data, size_t len, int flags)
{
	const uint8_t *p = data;
	while (len) {
		ssize_t n = send(fd, p, len, flags | MSG_NOSIGNAL);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -errno;
		p += n;
		len -= n;
	}
	return 0;
}

static void conn_write(struct conn *c, uint32_t stream, const pb_buf *body)
{
	uint8_t h[HEADER_SIZE];
	put_header(h, body->len, stream, FRAME_RESPONSE);
	pthread_mutex_lock(&c->wlock);
	if (!c->closed && (send_all(c->fd, h, sizeof h, MSG_MORE) < 0 || send_all(c->fd, body->data, body->len, 0) < 0)) {
		/* A frame cut short leaves the peer unable to find the next one. */
		c->closed = true;
		shutdown(c->fd, SHUT_RDWR);
	}
	pthread_mutex_unlock(&c->wlock);
}

static void respond(struct conn *c, uint32_t stream, int code, const char *message, const pb_buf *payload)
{
	cleanup_pb pb_buf body = {0};
	encode_response(&body, code, message, payload);
	if (body.oom || body.len > TTRPC_MAX_PAYLOAD) {
		/* The caller still gets an answer, one that fits. */
		char why[128];
		if (body.oom)
			snprintf(why, sizeof why, "out of memory encoding the response");
		else
			snprintf(why, sizeof why, "ttrpc message of %zu bytes exceeds the %u-byte limit", body.len, TTRPC_MAX_PAYLOAD);
		pb_buf_free(&body);
		encode_response(&body, RPC_RESOURCE_EXHAUSTED, why, NULL);
		if (body.oom)
			return;
	}
	conn_write(c, stream, &body);
}

static void call_free(struct ttrpc_call *call)
{
	for (size_t i = 0; i < 2 * call->n_md; i++)
		free(call->md[i]);
	free(call->md);
	free(call->frame);
	if (call->conn)
		conn_unref(call->conn);
	free(call);
}

const uint8_t *ttrpc_call_payload(const struct ttrpc_call *call, size_t *len)
{
	*len = call->payload_len;
	return call->payload;
}

const char *ttrpc_call_metadata(const struct ttrpc_call *call, const char *key)
{
	for (size_t i = call->n_md; i-- > 0;)
		if (!strcmp(call->md[2 * i], key))
			return call->md[2 * i + 1];
	return NULL;
}

/* Calls in flight: each is cancelled once, when its connection closes or its deadline passes,
 * which runs the hook its handler registered. (C) marks functions called with srv.call_lock held. */

/* Runs the hook of a cancelled call once. The lock is down meanwhile, so the hook may take locks
 * of its own; `hook_running` makes whoever ends the registration wait for it. (C) */
static void run_hook(struct ttrpc_call *call)
{
	void (*fn)(void *) = call->on_cancel;
	void *data = call->on_cancel_data;
	if (!fn)
		return;
	call->on_cancel = NULL;
	call->hook_running = true;
	pthread_mutex_unlock(&srv.call_lock);
	fn(data);
	pthread_mutex_lock(&srv.call_lock);
	call->hook_running = false;
	pthread_cond_broadcast(&srv.call_done);
}

/* The call cannot be freed meanwhile: its handler waits in end_hook first. (C) */
static void cancel(struct ttrpc_call *call)
{
	if (call->cancelled)
		return;
	call->cancelled = true;
	run_hook(call);
}

/* Once this returns the call's hook is not running and never will. (C) */
static void end_hook(struct ttrpc_call *call)
{
	while (call->hook_running)
		pthread_cond_wait(&srv.call_done, &srv.call_lock);
	call->on_cancel = NULL;
}

void ttrpc_call_on_cancel(struct ttrpc_call *call, void (*fn)(void *data), void *data)
{
	pthread_mutex_lock(&srv.call_lock);
	end_hook(call);
	call->on_cancel = fn;
	call->on_cancel_data = data;
	if (call->cancelled)
		run_hook(call);
	pthread_mutex_unlock(&srv.call_lock);
}

/* True for the first answer only: a call's handler and its deadline race to answer it. (C) */
static bool claim(struct ttrpc_call *call)
{
	bool first = !call->answered;
	call->answered = true;
	for (struct ttrpc_call **pp = &srv.deadlines; *pp; pp = &(*pp)->dl_next) {
		if (*pp == call) {
			*pp = call->dl_next;
			break;
		}
	}
	return first;
}

/* Drops a reference, that of the thread which answered the call if `replied`; the last one takes
 * the call out of srv.calls and frees it. */
static void release(struct ttrpc_call *call, bool replied)
{
	pthread_mutex_lock(&srv.call_lock);
	call->replied |= replied;
	if (replied)
		pthread_cond_broadcast(&srv.call_done);
	bool last = --call->refs == 0;
	if (last) {
		for (struct ttrpc_call **pp = &srv.calls; *pp; pp = &(*pp)->next) {
			if (*pp == call) {
				*pp = call->next;
				break;
			}
		}
	}
	pthread_mutex_unlock(&srv.call_lock);
	if (last)
		call_free(call);
}

static void finish(struct ttrpc_call *call, int code, const char *message, const pb_buf *payload)
{
	pthread_mutex_lock(&srv.call_lock);
	end_hook(call);
	bool first = claim(call);
	pthread_mutex_unlock(&srv.call_lock);
	if (first)
		respond(call->conn, call->stream, code, message, payload);
	release(call, first);
}

void ttrpc_reply(struct ttrpc_call *call, const pb_buf *payload)
{
	finish(call, RPC_OK, NULL, payload);
}

void ttrpc_fail(struct ttrpc_call *call, enum rpc_code code, const char *fmt, ...)
{
	char *message;
	va_list ap;
	va_start(ap, fmt);
	if (vasprintf(&message, fmt, ap) < 0)
		message = NULL;
	va_end(ap);
	finish(call, code, message ? message : "out of memory formatting the error", NULL);
	free(message);
}

/* Answers, then cancels, an expired call; its own reference keeps the call alive meanwhile, as
 * its handler may answer and end it once the lock is down. (C) */
static void expire(struct ttrpc_call *call)
{
	srv.deadlines = call->dl_next;
	call->answered = true;
	call->refs++;
	pthread_mutex_unlock(&srv.call_lock);
	respond(call->conn, call->stream, RPC_DEADLINE_EXCEEDED, "context deadline exceeded", NULL);
	pthread_mutex_lock(&srv.call_lock);
	cancel(call);
	pthread_mutex_unlock(&srv.call_lock);
	release(call, true);
	pthread_mutex_lock(&srv.call_lock);
}

static void *deadline_loop(void *arg)
{
	(void)arg;
	pthread_mutex_lock(&srv.call_lock);
	for (;;) {
		struct ttrpc_call *call = srv.deadlines;
		if (!call) {
			pthread_cond_wait(&srv.dl_cond, &srv.call_lock);
			continue;
		}
		if (call->deadline_ms > mono_ms()) {
			struct timespec until = { call->deadline_ms / 1000, call->deadline_ms % 1000 * 1000000 };
			pthread_cond_timedwait(&srv.dl_cond, &srv.call_lock, &until);
			continue;
		}
		expire(call);
	}
	return NULL;
}

/* (C) */
static void deadline_add(struct ttrpc_call *call, int64_t timeout_ns)
{
	/* Rounded up as berthd does, so a deadline never fires before the caller's. */
	call->deadline_ms = mono_ms() + (timeout_ns + 999999) / 1000000;
	struct ttrpc_call **pp = &srv.deadlines;
	while (*pp && (*pp)->deadline_ms <= call->deadline_ms)
		pp = &(*pp)->dl_next;
	call->dl_next = *pp;
	*pp = call;
	if (srv.deadlines == call)
		pthread_cond_signal(&srv.dl_cond);
}

/* Puts a call about to be handed to its handler in flight. */
static void track(struct ttrpc_call *call, int64_t timeout_ns)
{
	call->refs = 1;
	pthread_mutex_lock(&srv.call_lock);
	call->seq = srv.next_seq++;
	call->next = srv.calls;
	srv.calls = call;
	if (timeout_ns > 0)
		deadline_add(call, timeout_ns);
	pthread_mutex_unlock(&srv.call_lock);
}

/* A call of `c` not cancelled yet, or NULL. (C) */
static struct ttrpc_call *uncancelled_call_of(const struct conn *c)
{
	for (struct ttrpc_call *call = srv.calls; call; call = call->next)
		if (call->conn == c && !call->cancelled)
			return call;
	return NULL;
}

/* Nobody is left to read the answers of a closed connection's calls. */
static void cancel_calls_of(const struct conn *c)
{
	pthread_mutex_lock(&srv.call_lock);
	struct ttrpc_call *call;
	/* From the head each time: the list may change while a hook runs with the lock down. */
	while ((call = uncancelled_call_of(c)))
		cancel(call);
	pthread_mutex_unlock(&srv.call_lock);
}

static void *run_call(void *arg)
{
	struct ttrpc_call *call = arg;
	call->fn(call);
	return NULL;
}

static int add_metadata(struct ttrpc_call *call, const pb_field *kv)
{
	cleanup_free char *key = NULL, *value = NULL;
	pb_reader r = pb_reader_of(kv->data, kv->len);
	pb_field f;
	int ret;
	while ((ret = pb_next(&r, &f)) > 0) {
		if (f.number == 1)
			ret = pb_string(&f, &key);
		else if (f.number == 2)
			ret = pb_string(&f, &value);
		if (ret < 0)
			return fail_ctx(ret, "metadata");
	}
	if (ret < 0)
		return fail_ctx(ret, "metadata");
	char **md = realloc(call->md, (call->n_md + 1) * 2 * sizeof *md);
	if (!md)
		return fail(ENOMEM, "metadata");
	call->md = md;
	md[2 * call->n_md] = key ? move_ptr(&key) : xstrdup("");
	md[2 * call->n_md + 1] = value ? move_ptr(&value) : xstrdup("");
	call->n_md++;
	return 0;
}

static int parse_request(struct ttrpc_call *call, size_t len, char **service, char **method, int64_t *timeout_ns)
{
	pb_reader r = pb_reader_of(call->frame, len);
	pb_field f;
	int ret;
	while ((ret = pb_next(&r, &f)) > 0) {
		switch (f.number) {
		case 1:
			ret = pb_string(&f, service);
			break;
		case 2:
			ret = pb_string(&f, method);
			break;
		case 3:
			if (f.wire != PB_LEN)
				return fail(EBADMSG, "payload is not length-delimited");
			call->payload = f.data;
			call->payload_len = f.len;
			break;
		case 4:
			if (f.wire != PB_VARINT)
				return fail(EBADMSG, "timeout_nano is not a varint");
			*timeout_ns = (int64_t)f.varint;
			break;
		case 5:
			ret = add_metadata(call, &f);
			break;
		}
		if (ret < 0)
			return ret;
	}
	return ret;
}

static const ttrpc_method *find_method(const char *service, const char *method, bool *service_known)
{
	*service_known = false;
	for (size_t i = 0; i < srv.n_methods; i++) {
		if (strcmp(srv.methods[i].service, service))
			continue;
		*service_known = true;
		if (!strcmp(srv.methods[i].method, method))
			return &srv.methods[i];
	}
	return NULL;
}

/* Takes the request frame. Requests that fail before their handler are answered from here. */
static void dispatch(struct conn *c, uint32_t stream, uint8_t *frame, size_t len)
{
	struct ttrpc_call *call = calloc(1, sizeof *call);
	if (!call) {
		free(frame);
		respond(c, stream, RPC_RESOURCE_EXHAUSTED, "out of memory", NULL);
		return;
	}
	call->frame = frame;
	call->stream = stream;
	cleanup_free char *service = NULL, *method = NULL;
	int64_t timeout_ns = 0;
	char message[sizeof g_err + 64];
	const ttrpc_method *m = NULL;
	if (parse_request(call, len, &service, &method, &timeout_ns) < 0) {
		snprintf(message, sizeof message, "unmarshal request error: %s", g_err);
		respond(c, stream, RPC_INVALID_ARGUMENT, message, NULL);
	} else {
		bool service_known;
		m = find_method(service ? service : "", method ? method : "", &service_known);
		if (!m) {
			/* berthd's wording, which clients may match on. */
			if (service_known)
				snprintf(message, sizeof message, "method %s: not implemented", method ? method : "");
			else
				snprintf(message, sizeof message, "service %s: not implemented", service ? service : "");
			respond(c, stream, RPC_UNIMPLEMENTED, message, NULL);
		}
	}
	if (!m) {
		call_free(call);
		return;
	}
	conn_ref(c);
	call->conn = c;
	call->fn = m->fn;
	track(call, timeout_ns);
	if (spawn(run_call, call, NULL) < 0)
		ttrpc_fail(call, RPC_RESOURCE_EXHAUSTED, "%s", g_err);
}

/* 1: read; 0: end of stream or error. */
static int read_full(int fd, void *data, size_t len)
{
	uint8_t *p = data;
	while (len) {
		ssize_t n = read(fd, p, len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return 0;
		p += n;
		len -= n;
	}
	return 1;
}

static int skip(int fd, size_t len)
{
	uint8_t scratch[4096];
	while (len) {
		size_t n = len < sizeof scratch ? len : sizeof scratch;
		if (!read_full(fd, scratch, n))
			return 0;
		len -= n;
	}
	return 1;
}

static void conn_detach(struct conn *c)
{
	pthread_mutex_lock(&srv.lock);
	for (struct conn **pp = &srv.conns; *pp; pp = &(*pp)->next) {
		if (*pp == c) {
			*pp = c->next;
			break;
		}
	}
	pthread_mutex_unlock(&srv.lock);
	pthread_mutex_lock(&c->wlock);
	c->closed = true;
	pthread_mutex_unlock(&c->wlock);
}

static void *conn_loop(void *arg)
{
	struct conn *c = arg;
	for (;;) {
		uint8_t h[HEADER_SIZE];
		if (!read_full(c->fd, h, sizeof h))
			break;
		struct header hd = parse_header(h);
		if (hd.len > TTRPC_MAX_PAYLOAD) {
			/* Skipped rather than buffered, so the connection survives (as in berthd). */
			if (hd.type == FRAME_REQUEST) {
				char message[64];
				snprintf(message, sizeof message, "message of %u bytes exceeds the limit", hd.len);
				respond(c, hd.stream, RPC_RESOURCE_EXHAUSTED, message, NULL);
			}
			if (!skip(c->fd, hd.len))
				break;
			continue;
		}
		/* Responses and stream data are not requests: read past them, as berthd does. */
		if (hd.type != FRAME_REQUEST) {
			if (!skip(c->fd, hd.len))
				break;
			continue;
		}
		uint8_t *frame = malloc(hd.len ? hd.len : 1);
		if (!frame)
			break;
		if (!read_full(c->fd, frame, hd.len)) {
			free(frame);
			break;
		}
		dispatch(c, hd.stream, frame, hd.len);
	}
	conn_detach(c);
	cancel_calls_of(c);
	conn_unref(c);
	return NULL;
}

static void conn_start(int fd)
{
	struct conn *c = calloc(1, sizeof *c);
	if (!c) {
		close(fd);
		return;
	}
	c->fd = fd;
	c->refs = 1;
	pthread_mutex_init(&c->wlock, NULL);
	pthread_mutex_lock(&srv.lock);
	c->next = srv.conns;
	srv.conns = c;
	pthread_mutex_unlock(&srv.lock);
	if (spawn(conn_loop, c, NULL) < 0) {
		conn_detach(c);
		conn_unref(c);
	}
}

static void *accept_loop(void *arg)
{
	(void)arg;
	for (;;) {
		struct pollfd p[2] = { { srv.listen_fd, POLLIN, 0 }, { srv.stop_pipe[0], POLLIN, 0 } };
		if (poll(p, 2, -1) < 0)
			continue;
		if (p[1].revents)
			return NULL;
		int fd = accept4(srv.listen_fd, NULL, NULL, SOCK_CLOEXEC);
		if (fd >= 0)
			conn_start(fd);
		else if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM)
			/* Out of descriptors or memory: give calls in flight a moment to release some. */
			poll(NULL, 0, 100);
	}
}

static int start_threads(void)
{
	pthread_condattr_t attr;
	pthread_condattr_init(&attr);
	pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
	pthread_cond_init(&srv.dl_cond, &attr);
	pthread_condattr_destroy(&attr);
	int ret = spawn(deadline_loop, NULL, NULL);
	if (ret < 0)
		return ret;
	ret = spawn(accept_loop, NULL, &srv.acceptor);
	srv.accepting = ret == 0;
	return ret;
}

int ttrpc_serve(const char *path, const ttrpc_method *methods, size_t n_methods)
{
	struct sockaddr_un addr = { .sun_family = AF_UNIX };
	if (strlen(path) >= sizeof addr.sun_path)
		return fail(ENAMETOOLONG, "ttrpc socket `%s`", path);
	if (srv.path)
		return fail(EBUSY, "ttrpc: already serving `%s`", srv.path);
	strcpy(addr.sun_path, path);
	cleanup_close int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd < 0)
		return fail(errno, "ttrpc socket");
	if (unlink(path) < 0 && errno != ENOENT)
		return fail(errno, "remove stale `%s`", path);
	/* Linux gives the socket file the socket inode's mode: it is never reachable by others,
	 * not even between bind and chmod. */
	if (fchmod(fd, 0600) < 0)
		return fail(errno, "chmod ttrpc socket");
	if (bind(fd, (struct sockaddr *)&addr, sizeof addr) < 0)
		return fail(errno, "bind `%s`", path);
	struct stat st;
	int ret = 0;
	if (chmod(path, 0600) < 0 || stat(path, &st) < 0)
		ret = fail(errno, "chmod `%s`", path);
	else if (listen(fd, SOMAXCONN) < 0)
		ret = fail(errno, "listen on `%s`", path);
	else if (pipe2(srv.stop_pipe, O_CLOEXEC) < 0)
		ret = fail(errno, "ttrpc stop pipe");
	if (ret < 0) {
		unlink(path);
		return ret;
	}
	srv.methods = methods;
	srv.n_methods = n_methods;
	srv.path = xstrdup(path);
	srv.dev = st.st_dev;
	srv.ino = st.st_ino;
	srv.listen_fd = move_fd(&fd);
	srv.listening = true;
	ret = start_threads();
	if (ret < 0)
		ttrpc_stop_listening();
	return ret;
}

void ttrpc_stop_listening(void)
{
	pthread_mutex_lock(&srv.lock);
	bool was = srv.listening;
	srv.listening = false;
	pthread_mutex_unlock(&srv.lock);
	if (!was)
		return;
	/* A successor shim may already have replaced the socket file: remove only ours. */
	struct stat st;
	if (stat(srv.path, &st) == 0 && st.st_dev == srv.dev && st.st_ino == srv.ino)
		unlink(srv.path);
	if (srv.accepting) {
		(void)!write(srv.stop_pipe[1], "", 1);
		pthread_join(srv.acceptor, NULL);
	}
	close(srv.listen_fd);
	close(srv.stop_pipe[0]);
	close(srv.stop_pipe[1]);
	srv.listen_fd = srv.stop_pipe[0] = srv.stop_pipe[1] = -1;
}

/* Whether a call dispatched before `mark` has not replied yet. (C) */
static bool unreplied_before(uint64_t mark)
{
	for (struct ttrpc_call *call = srv.calls; call; call = call->next)
		if (call->seq < mark && !call->replied)
			return true;
	return false;
}

/* An answer goes out after its handler's work, and Shutdown's work is deciding that the shim
 * exits: the answers of the calls dispatched so far are waited for, not guessed at. */
static void await_replies(const struct timespec *until)
{
	pthread_mutex_lock(&srv.call_lock);
	uint64_t mark = srv.next_seq;
	while (unreplied_before(mark) && pthread_cond_timedwait(&srv.call_done, &srv.call_lock, until) != ETIMEDOUT)
		;
	pthread_mutex_unlock(&srv.call_lock);
}

void ttrpc_close_all(int timeout_ms)
{
	/* Real time, as pthread_mutex_timedlock takes it (pthread_mutex_clocklock would escape
	 * ThreadSanitizer, which does not intercept it). */
	struct timespec until = deadline_after(CLOCK_REALTIME, timeout_ms > 0 ? timeout_ms : 0);
	await_replies(&until);
	pthread_mutex_lock(&srv.lock);
	size_t n = 0;
	for (struct conn *c = srv.conns; c; c = c->next)
		n++;
	struct conn **all = calloc(n ? n : 1, sizeof *all);
	n = 0;
	for (struct conn *c = srv.conns; all && c; c = c->next) {
		conn_ref(c);
		all[n++] = c;
	}
	pthread_mutex_unlock(&srv.lock);
	if (!all)
		return;
	/* Replies are written whole under the write lock: holding it means none is half out (one of
	 * a call dispatched after the wait may be going). Past the deadline, shutdown also wakes a
	 * writer stuck on a peer that does not read. */
	for (size_t i = 0; i < n; i++) {
		struct conn *c = all[i];
		bool locked = pthread_mutex_timedlock(&c->wlock, &until) == 0;
		shutdown(c->fd, SHUT_RDWR);
		if (locked) {
			c->closed = true;
			pthread_mutex_unlock(&c->wlock);
		}
		conn_unref(c);
	}
	free(all);
}

/* ---- client ---- */

struct ttrpc_client {
	int fd; /* -1 once a transport error made the connection unusable */
	uint32_t next_stream;
};

int ttrpc_connect(const char *path, int timeout_ms, ttrpc_client **out)
{
	/* Addresses printed by shims and passed in TTRPC_ADDRESS may carry the scheme. */
	if (!strncmp(path, "unix://", 7))
		path += 7;
	struct sockaddr_un addr = { .sun_family = AF_UNIX };
	if (strlen(path) >= sizeof addr.sun_path)
		return fail(ENAMETOOLONG, "ttrpc connect `%s`", path);
	strcpy(addr.sun_path, path);
	cleanup_close int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return fail(errno, "ttrpc socket");
	/* A unix connect blocks only while the listener's backlog is full, for up to SO_SNDTIMEO. */
	struct timeval tv = { timeout_ms / 1000, timeout_ms % 1000 * 1000 };
	if (timeout_ms > 0 && setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv) < 0)
		return fail(errno, "ttrpc socket timeout");
	if (connect(fd, (struct sockaddr *)&addr, sizeof addr) < 0) {
		int e = errno == EAGAIN || errno == EINPROGRESS ? ETIMEDOUT : errno;
		return fail(e, "connect `%s`", path);
	}
	if (fcntl(fd, F_SETFL, O_NONBLOCK) < 0)
		return fail(errno, "ttrpc connect `%s`", path);
	ttrpc_client *c = malloc(sizeof *c);
	if (!c)
		return fail(ENOMEM, "ttrpc connect `%s`", path);
	*c = (ttrpc_client){ .fd = move_fd(&fd), .next_stream = 1 };
	*out = c;
	return 0;
}

void ttrpc_client_close(ttrpc_client *c)
{
	if (!c)
		return;
	if (c->fd >= 0)
		close(c->fd);
	free(c);
}

/* 0 when `fd` is ready for `events`; -ETIMEDOUT past `deadline` (mono ms, -1: none). */
static int wait_fd(int fd, short events, int64_t deadline)
{
	for (;;) {
		int wait = -1;
		if (deadline >= 0) {
			int64_t left = deadline - mono_ms();
			if (left <= 0)
				return -ETIMEDOUT;
			wait = left > INT32_MAX ? INT32_MAX : (int)left;
		}
		struct pollfd p = { fd, events, 0 };
		int n = poll(&p, 1, wait);
		if (n < 0 && errno != EINTR)
			return -errno;
		if (n > 0)
			return 0;
	}
}

static int client_send(int fd, const void *data, size_t len, int64_t deadline)
{
	const uint8_t *p = data;
	while (len) {
		ssize_t n = send(fd, p, len, MSG_NOSIGNAL);
		if (n < 0 && errno == EAGAIN) {
			int ret = wait_fd(fd, POLLOUT, deadline);
			if (ret < 0)
				return ret;
			continue;
		}
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -errno;
		p += n;
		len -= n;
	}
	return 0;
}

/* Fills `data` (NULL: discards `len` bytes). */
static int client_recv(int fd, void *data, size_t len, int64_t deadline)
{
	uint8_t scratch[4096];
	uint8_t *p = data;
	while (len) {
		size_t want = p ? len : len < sizeof scratch ? len : sizeof scratch;
		ssize_t n = read(fd, p ? p : scratch, want);
		if (n < 0 && errno == EAGAIN) {
			int ret = wait_fd(fd, POLLIN, deadline);
			if (ret < 0)
				return ret;
			continue;
		}
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -errno;
		if (n == 0)
			return -ECONNRESET;
		if (p)
			p += n;
		len -= n;
	}
	return 0;
}

static int decode_status(const pb_field *status, int *code, char **message)
{
	pb_reader r = pb_reader_of(status->data, status->len);
	pb_field f;
	int ret;
	while ((ret = pb_next(&r, &f)) > 0) {
		if (f.number == 1 && f.wire == PB_VARINT)
			*code = (int)f.varint;
		else if (f.number == 2)
			ret = pb_string(&f, message);
		if (ret < 0)
			return ret;
	}
	return ret;
}

/* Response{status, payload}: the status into *code and *message, the payload into resp. */
static int decode_response(const uint8_t *data, size_t len, int *code, char **message, pb_buf *resp)
{
	pb_reader r = pb_reader_of(data, len);
	pb_field f;
	const uint8_t *payload = NULL;
	size_t payload_len = 0;
	int ret;
	while ((ret = pb_next(&r, &f)) > 0) {
		if (f.number == 1 && f.wire == PB_LEN)
			ret = decode_status(&f, code, message);
		else if (f.number == 2 && f.wire == PB_LEN)
			payload = f.data, payload_len = f.len;
		if (ret < 0)
			return ret;
	}
	if (ret < 0 || !resp || *code != RPC_OK)
		return ret;
	pb_buf_free(resp);
	if (!payload_len)
		return 0;
	resp->data = malloc(payload_len);
	if (!resp->data)
		return fail(ENOMEM, "ttrpc response");
	memcpy(resp->data, payload, payload_len);
	resp->len = resp->cap = payload_len;
	return 0;
}

/* The response body for `stream` into *body; *body stays NULL when that response was too large
 * and has been skipped (the connection is still in step). -errno for a transport failure. */
static int exchange(ttrpc_client *c, uint32_t stream, const pb_buf *envelope, int64_t deadline,
		    uint8_t **body, size_t *body_len)
{
	uint8_t h[HEADER_SIZE];
	put_header(h, envelope->len, stream, FRAME_REQUEST);
	int ret = client_send(c->fd, h, sizeof h, deadline);
	if (ret == 0)
		ret = client_send(c->fd, envelope->data, envelope->len, deadline);
	while (ret == 0) {
		ret = client_recv(c->fd, h, sizeof h, deadline);
		if (ret < 0)
			break;
		struct header hd = parse_header(h);
		bool ours = hd.type == FRAME_RESPONSE && hd.stream == stream;
		/* Answers to calls abandoned after a timeout, or anything else that is not ours. */
		if (!ours || hd.len > TTRPC_MAX_PAYLOAD) {
			ret = client_recv(c->fd, NULL, hd.len, deadline);
			if (ret == 0 && ours) {
				*body_len = hd.len;
				return 0;
			}
			continue;
		}
		*body = malloc(hd.len ? hd.len : 1);
		if (!*body)
			return fail(ENOMEM, "ttrpc response");
		*body_len = hd.len;
		ret = client_recv(c->fd, *body, hd.len, deadline);
		if (ret == 0)
			return 0;
	}
	return fail(-ret, ret == -ETIMEDOUT ? "no response" : "connection lost");
}

int ttrpc_call(ttrpc_client *c, const char *service, const char *method,
	       const ttrpc_kv *md, size_t n_md, const pb_buf *req, int timeout_ms,
	       pb_buf *resp, enum rpc_code *code)
{
	if (c->fd < 0)
		return fail(ENOTCONN, "ttrpc %s/%s: connection already failed", service, method);
	cleanup_pb pb_buf envelope = {0};
	pb_put_string(&envelope, 1, service);
	pb_put_string(&envelope, 2, method);
	if (req && req->oom)
		envelope.oom = true;
	else if (req)
		pb_put_bytes(&envelope, 3, req->data, req->len);
	pb_put_int(&envelope, 4, timeout_ms > 0 ? (int64_t)timeout_ms * 1000000 : 0);
	for (size_t i = 0; i < n_md; i++) {
		cleanup_pb pb_buf kv = {0};
		pb_put_string(&kv, 1, md[i].key);
		pb_put_string(&kv, 2, md[i].value);
		pb_put_message(&envelope, 5, &kv);
	}
	if (envelope.oom)
		return fail(ENOMEM, "ttrpc %s/%s", service, method);
	if (envelope.len > TTRPC_MAX_PAYLOAD)
		return fail(EMSGSIZE, "ttrpc %s/%s: request of %zu bytes exceeds the limit", service, method, envelope.len);

	uint32_t stream = c->next_stream;
	/* Client streams are odd uint32s; wrap as berthd's client does, long before overflow. */
	c->next_stream = stream >= 0x7ffffffd ? 1 : stream + 2;
	int64_t deadline = timeout_ms > 0 ? mono_ms() + timeout_ms : -1;
	cleanup_free uint8_t *body = NULL;
	size_t body_len = 0;
	int ret = exchange(c, stream, &envelope, deadline, &body, &body_len);
	if (ret == 0 && !body) {
		*code = RPC_RESOURCE_EXHAUSTED;
		fail(0, "ttrpc %s/%s: response of %zu bytes exceeds the limit", service, method, body_len);
		return 0;
	}
	int status = RPC_OK;
	cleanup_free char *message = NULL;
	if (ret == 0)
		ret = decode_response(body, body_len, &status, &message, resp);
	if (ret < 0) {
		close(c->fd);
		c->fd = -1;
		return fail_ctx(ret, "ttrpc %s/%s", service, method);
	}
	*code = status;
	if (status != RPC_OK)
		fail(0, "%s", message ? message : "");
	return 0;
}
