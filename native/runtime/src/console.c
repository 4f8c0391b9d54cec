/* The container's terminal: a pty from the container's own devpts whose master goes to the caller
 * over a unix socket (SCM_RIGHTS), as runc's --console-socket; and, for `run` in the foreground
 * without a socket, a proxy between the caller's terminal and that master. */
#include "process.h"

#include "mounts.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <termios.h>

int unix_connect(const char *path, const char *what)
{
	struct sockaddr_un addr = {.sun_family = AF_UNIX};
	if (strlen(path) >= sizeof addr.sun_path)
		return fail(ENAMETOOLONG, "%s `%s`", what, path);
	strcpy(addr.sun_path, path);
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return fail(errno, "%s", what);
	if (connect(fd, (struct sockaddr *)&addr, sizeof addr) < 0) {
		int e = errno;
		close(fd);
		return fail(e, "connect to %s `%s`", what, path);
	}
	return fd;
}

static int send_fd(int sock, int fd, const char *name)
{
	char cbuf[CMSG_SPACE(sizeof(int))] = {0};
	struct iovec iov = {(void *)name, strlen(name)};
	struct msghdr msg = {.msg_iov = &iov, .msg_iovlen = 1, .msg_control = cbuf, .msg_controllen = sizeof cbuf};
	struct cmsghdr *c = CMSG_FIRSTHDR(&msg);
	c->cmsg_level = SOL_SOCKET;
	c->cmsg_type = SCM_RIGHTS;
	c->cmsg_len = CMSG_LEN(sizeof(int));
	memcpy(CMSG_DATA(c), &fd, sizeof fd);
	while (sendmsg(sock, &msg, MSG_NOSIGNAL) < 0)
		if (errno != EINTR)
			return fail(errno, "send the pty master over the console socket");
	return 0;
}

/* The pty comes from the container's own devpts, so its slave is valid inside the container. */
int console_setup(int sock, const struct process *p, bool bind_dev_console)
{
	cleanup_close int master = open("/dev/ptmx", O_RDWR | O_NOCTTY | O_CLOEXEC);
	if (master < 0)
		return fail(errno, "open /dev/ptmx");
	int unlock = 0;
	if (ioctl(master, TIOCSPTLCK, &unlock) < 0)
		return fail(errno, "unlock pty");
	cleanup_close int slave = ioctl(master, TIOCGPTPEER, O_RDWR | O_NOCTTY | O_CLOEXEC);
	if (slave < 0)
		return fail(errno, "open pty slave");
	if (p->has_size) {
		struct winsize ws = {.ws_row = p->cons_h, .ws_col = p->cons_w};
		if (ioctl(master, TIOCSWINSZ, &ws) < 0)
			return fail(errno, "set console size");
	}
	if (bind_dev_console) {
		cleanup_close int root = open("/", O_PATH | O_CLOEXEC), dc = -1;
		char src[64], dst[64];
		int r = open_in_root(root, "/dev/console", O_PATH | O_NOFOLLOW, S_IFREG, &dc);
		if (r < 0)
			return r;
		snprintf(src, sizeof src, "/proc/self/fd/%d", slave);
		snprintf(dst, sizeof dst, "/proc/self/fd/%d", dc);
		if (mount(src, dst, NULL, MS_BIND, NULL) < 0)
			return fail(errno, "bind the pty to /dev/console");
	}
	int r = send_fd(sock, master, "/dev/ptmx");
	if (r < 0)
		return r;
	if (setsid() < 0 || ioctl(slave, TIOCSCTTY, 0) < 0)
		return fail(errno, "make the pty the controlling terminal");
	for (int i = 0; i < 3; i++)
		if (dup2(slave, i) < 0)
			return fail(errno, "dup the pty");
	return 0;
}


int console_recv(int sock, bool wait)
{
	char name[256], cbuf[CMSG_SPACE(sizeof(int))];
	struct iovec iov = {name, sizeof name};
	struct msghdr msg = {.msg_iov = &iov, .msg_iovlen = 1, .msg_control = cbuf, .msg_controllen = sizeof cbuf};
	ssize_t n;
	while ((n = recvmsg(sock, &msg, MSG_CMSG_CLOEXEC | (wait ? 0 : MSG_DONTWAIT))) < 0)
		if (errno != EINTR)
			return fail(errno, "receive the pty master");
	struct cmsghdr *c = CMSG_FIRSTHDR(&msg);
	if (n <= 0 || !c || c->cmsg_type != SCM_RIGHTS)
		return fail(EPROTO, "receive the pty master");
	int fd;
	memcpy(&fd, CMSG_DATA(c), sizeof fd);
	return fd;
}

static struct termios saved_tio;
static bool tio_saved;
static void restore_tty(void)
{
	if (tio_saved)
		tcsetattr(0, TCSANOW, &saved_tio);
}

static int winch_pipe = -1;
static void on_winch(int sig)
{
	(void)sig;
	(void)!write(winch_pipe, "w", 1);
}

/* Copies the caller's stdin to the pty and the pty to stdout until the container's side closes,
 * with the caller's terminal in raw mode and its size following SIGWINCH. */
int console_proxy(int master)
{
	int wp[2] cleanup_pair = {-1, -1};
	if (pipe2(wp, O_CLOEXEC | O_NONBLOCK) < 0)
		return fail(errno, "pipe");
	struct winsize ws;
	if (isatty(0) && tcgetattr(0, &saved_tio) == 0) {
		struct termios raw = saved_tio;
		cfmakeraw(&raw);
		tio_saved = tcsetattr(0, TCSANOW, &raw) == 0;
		atexit(restore_tty);
		winch_pipe = wp[1];
		signal(SIGWINCH, on_winch);
		if (ioctl(0, TIOCGWINSZ, &ws) == 0)
			ioctl(master, TIOCSWINSZ, &ws);
	}
	struct pollfd p[3] = {{master, POLLIN, 0}, {0, POLLIN, 0}, {wp[0], POLLIN, 0}};
	char buf[8192];
	for (;;) {
		if (poll(p, 3, -1) < 0) {
			if (errno == EINTR)
				continue;
			return fail(errno, "poll the console");
		}
		if (p[0].revents) {
			ssize_t n = read(master, buf, sizeof buf);
			/* EIO: every slave fd is closed, the container is gone. */
			if (n <= 0)
				return 0;
			if (write_all(1, buf, n) < 0)
				return 0;
		}
		if (p[1].revents) {
			ssize_t n = read(0, buf, sizeof buf);
			if (n <= 0)
				p[1].fd = -1;
			else if (write_all(master, buf, n) < 0)
				return 0;
		}
		if (p[2].revents) {
			while (read(wp[0], buf, sizeof buf) > 0)
				;
			if (ioctl(0, TIOCGWINSZ, &ws) == 0)
				ioctl(master, TIOCSWINSZ, &ws);
		}
	}
}
