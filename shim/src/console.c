#include "console.h"

#include "clock.h"
#include "shim.h"

#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>

int console_socket_open(struct console_socket *s)
{
	*s = (struct console_socket){ .fd = -1 };
	cleanup_free char *dir = console_dir();
	int r = mkdir_p(dir, 0700);
	if (r < 0)
		return r;
	uint8_t rnd[8];
	if (getrandom(rnd, sizeof rnd, 0) != sizeof rnd)
		return fail(errno, "console socket name");
	s->path = xasprintf("%s/%02x%02x%02x%02x%02x%02x%02x%02x.sock", dir, rnd[0], rnd[1], rnd[2], rnd[3],
			    rnd[4], rnd[5], rnd[6], rnd[7]);
	struct sockaddr_un addr = { .sun_family = AF_UNIX };
	if (strlen(s->path) >= sizeof addr.sun_path) {
		r = fail(ENAMETOOLONG, "console socket `%s`", s->path);
		console_socket_close(s);
		return r;
	}
	strcpy(addr.sun_path, s->path);
	s->fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (s->fd < 0 || bind(s->fd, (struct sockaddr *)&addr, sizeof addr) < 0 || listen(s->fd, 4) < 0) {
		r = fail(errno, "listen on console socket `%s`", s->path);
		console_socket_close(s);
		return r;
	}
	return 0;
}

void console_socket_close(struct console_socket *s)
{
	if (s->fd >= 0)
		close(move_fd(&s->fd));
	if (s->path)
		unlink(s->path);
	free(move_ptr(&s->path));
}

/* poll for POLLIN until the deadline: 0, or -ETIMEDOUT */
static int wait_readable(int fd, int64_t deadline)
{
	for (;;) {
		int64_t left = deadline - mono_ms();
		if (left <= 0) {
			fail(0, "timed out waiting for console master");
			return -ETIMEDOUT;
		}
		struct pollfd p = { .fd = fd, .events = POLLIN };
		int n = poll(&p, 1, (int)left);
		if (n > 0)
			return 0;
		if (n < 0 && errno != EINTR)
			return fail(errno, "wait for the console master");
	}
}

/* One message carrying the master (any extra fd in it is closed); -EAGAIN: nothing yet. */
static int recv_master(int conn)
{
	char name[256];
	_Alignas(struct cmsghdr) char control[CMSG_SPACE(4 * sizeof(int))];
	struct iovec iov = { name, sizeof name };
	struct msghdr msg = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = control, .msg_controllen = sizeof control };
	ssize_t n = recvmsg(conn, &msg, MSG_CMSG_CLOEXEC);
	if (n < 0)
		return errno == EAGAIN || errno == EINTR ? -EAGAIN : fail(errno, "receive the console master");
	int master = -1;
	for (struct cmsghdr *c = CMSG_FIRSTHDR(&msg); c; c = CMSG_NXTHDR(&msg, c)) {
		if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS)
			continue;
		size_t count = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
		for (size_t i = 0; i < count; i++) {
			int fd;
			memcpy(&fd, CMSG_DATA(c) + i * sizeof fd, sizeof fd);
			if (master < 0)
				master = fd;
			else
				close(fd);
		}
	}
	return master >= 0 ? master : fail(ENODATA, "receive the console master");
}

int console_socket_receive(struct console_socket *s, int timeout_ms)
{
	int64_t deadline = mono_ms() + timeout_ms;
	cleanup_close int conn = -1;
	while (conn < 0) {
		int r = wait_readable(s->fd, deadline);
		if (r < 0)
			return r;
		conn = accept4(s->fd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);
		if (conn < 0 && errno != EAGAIN && errno != EINTR)
			return fail(errno, "accept on console socket");
	}
	for (;;) {
		int r = wait_readable(conn, deadline);
		if (r < 0)
			return r;
		r = recv_master(conn);
		if (r != -EAGAIN)
			return r;
	}
}

/* One direction of the copy: what was read and is not yet written. */
struct pending {
	char data[32768];
	size_t off, len;
};

struct console_io {
	pthread_mutex_t lock;
	int refs; /* the owner's handle and the copy thread */
	int master; /* closed by the copy thread when it ends, under the lock (resize uses it) */
	int in, keeper, out, guard;
	int wake; /* eventfd: a close was asked for */
	bool close_now, close_drained;
	struct pending to_master, to_out;
};

static void put(struct console_io *c)
{
	pthread_mutex_lock(&c->lock);
	bool last = --c->refs == 0;
	pthread_mutex_unlock(&c->lock);
	if (!last)
		return;
	close_owned(&c->master);
	close_owned(&c->in);
	close_owned(&c->keeper);
	close_owned(&c->out);
	close_owned(&c->guard);
	close_owned(&c->wake);
	pthread_mutex_destroy(&c->lock);
	free(c);
}

/* 0 read end-of-file, -EAGAIN nothing now, else -errno; on data, p holds it. */
static int fill(int fd, struct pending *p)
{
	ssize_t n = read(fd, p->data, sizeof p->data);
	if (n < 0)
		return errno == EINTR ? -EAGAIN : -errno;
	p->off = 0;
	p->len = n;
	return n ? 1 : 0;
}

/* -EAGAIN: try again when writable; another error drops what is pending. */
static int flush(int fd, struct pending *p)
{
	while (p->len) {
		ssize_t n = write(fd, p->data + p->off, p->len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			int err = errno;
			if (err != EAGAIN)
				p->len = 0;
			return -err;
		}
		p->off += n;
		p->len -= n;
	}
	return 0;
}

/* What one round of poll watches, given what is pending. fd -1 = not now: a descriptor polled for
 * no event would still report POLLHUP and spin the loop. */
enum { P_WAKE, P_IN, P_MASTER, P_OUT, P_N };

static void arm(const struct console_io *c, bool drained, struct pollfd p[P_N])
{
	p[P_WAKE] = (struct pollfd){ .fd = c->wake, .events = POLLIN };
	p[P_IN] = (struct pollfd){ .fd = c->to_master.len ? -1 : c->in, .events = POLLIN };
	short ev = (c->to_out.len ? 0 : POLLIN) | (c->to_master.len ? POLLOUT : 0);
	p[P_MASTER] = (struct pollfd){ .fd = drained || !ev ? -1 : c->master, .events = ev };
	p[P_OUT] = (struct pollfd){ .fd = c->to_out.len ? c->out : -1, .events = POLLOUT };
}

static void *copy_main(void *arg)
{
	struct console_io *c = arg;
	/* EIO (or EOF) on the master: the last slave fd closed, the terminal's end of output. */
	bool drained = false;
	for (;;) {
		pthread_mutex_lock(&c->lock);
		bool stop = c->close_now || (drained && c->close_drained && !c->to_out.len);
		pthread_mutex_unlock(&c->lock);
		if (stop)
			break;
		struct pollfd p[P_N];
		arm(c, drained, p);
		if (poll(p, P_N, -1) < 0)
			continue;
		if (p[P_WAKE].revents) {
			uint64_t v;
			(void)!read(c->wake, &v, sizeof v);
		}
		if (p[P_IN].revents) {
			int r = fill(c->in, &c->to_master);
			if (r <= 0 && r != -EAGAIN)
				close_owned(&c->in);
		}
		if (p[P_MASTER].revents & (POLLOUT | POLLERR | POLLHUP) && c->to_master.len)
			flush(c->master, &c->to_master);
		if (p[P_MASTER].revents & (POLLIN | POLLERR | POLLHUP) && !c->to_out.len) {
			int r = fill(c->master, &c->to_out);
			if (r <= 0 && r != -EAGAIN)
				drained = true;
			if (c->out < 0)
				c->to_out.len = 0;
		}
		if (p[P_OUT].revents) {
			int r = flush(c->out, &c->to_out);
			if (r < 0 && r != -EAGAIN)
				close_owned(&c->out);
		}
		if (drained) {
			c->to_master.len = 0;
			/* The client sees EOF once the output is delivered. */
			if (!c->to_out.len)
				close_owned(&c->out);
		}
	}
	pthread_mutex_lock(&c->lock);
	close_owned(&c->master);
	pthread_mutex_unlock(&c->lock);
	put(c);
	return NULL;
}

static int open_fifos(struct console_io *c, const struct stdio_paths *paths)
{
	int r = 0;
	if (paths->out && *paths->out) {
		r = fifo_open(paths->out, O_RDONLY, &c->guard);
		if (r == 0)
			r = fifo_open(paths->out, O_WRONLY, &c->out);
	}
	if (r == 0 && paths->in && *paths->in) {
		r = fifo_open(paths->in, O_RDONLY, &c->in);
		/* A writer of our own keeps the FIFO from reading EOF before the client connects. */
		if (r == 0)
			r = fifo_open(paths->in, O_WRONLY, &c->keeper);
	}
	return r;
}

int console_io_start(int master, const struct stdio_paths *paths, struct console_io **out)
{
	struct console_io *c = calloc(1, sizeof *c);
	if (!c) {
		close(master);
		return fail(ENOMEM, "console");
	}
	pthread_mutex_init(&c->lock, NULL);
	c->refs = 1;
	c->master = master;
	c->in = c->keeper = c->out = c->guard = -1;
	c->wake = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	int r = c->wake < 0 ? fail(errno, "eventfd") : 0;
	int flags = fcntl(master, F_GETFL);
	if (r == 0 && (flags < 0 || fcntl(master, F_SETFL, flags | O_NONBLOCK) < 0))
		r = fail(errno, "make the console master non-blocking");
	if (r == 0)
		r = open_fifos(c, paths);
	if (r == 0) {
		pthread_attr_t attr;
		pthread_attr_init(&attr);
		pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
		pthread_t t;
		c->refs++;
		int e = pthread_create(&t, &attr, copy_main, c);
		pthread_attr_destroy(&attr);
		if (e) {
			c->refs--;
			r = fail(e, "start the console copy");
		}
	}
	if (r < 0) {
		put(c);
		return r;
	}
	*out = c;
	return 0;
}

int console_io_resize(struct console_io *c, unsigned width, unsigned height)
{
	struct winsize ws = { .ws_row = height, .ws_col = width };
	pthread_mutex_lock(&c->lock);
	int r = c->master < 0 ? -EBADF : ioctl(c->master, TIOCSWINSZ, &ws) < 0 ? -errno : 0;
	pthread_mutex_unlock(&c->lock);
	return r < 0 ? fail(-r, "resize the console") : 0;
}

void console_io_close_stdin(struct console_io *c)
{
	pthread_mutex_lock(&c->lock);
	close_owned(&c->keeper);
	pthread_mutex_unlock(&c->lock);
}

void console_io_close(struct console_io *c, bool when_drained)
{
	pthread_mutex_lock(&c->lock);
	if (when_drained)
		c->close_drained = true;
	else
		c->close_now = true;
	pthread_mutex_unlock(&c->lock);
	uint64_t one = 1;
	(void)!write(c->wake, &one, sizeof one);
	put(c);
}
