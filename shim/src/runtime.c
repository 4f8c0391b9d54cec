/* One OCI runtime command per call, spawned through the reaper (which alone collects exits) with
 * posix_spawn: glibc's uses CLONE_VFORK, so the shim's threads and pages are not copied. */
#include "runtime.h"

#include "json.h"
#include "reaper.h"
#include "sealed_exe.h"
#include "shim.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/mman.h>

#define MAX_ARGS 24

struct run_opts {
	const int *stdio; /* the runtime's stdin/stdout/stderr; NULL: stdout and stderr captured */
	bool log;         /* --log --log-format json into a memfd, read back to explain a failure */
};

/* The runtime's log is a memfd it gets as fd 3 (--log /proc/self/fd/3), not a file in the
 * bundle: a file would be one more inode made and deleted per create and exec (docs/shim.md,
 * "Files per task", says what that costs). */
#define LOG_FD 3
#define LOG_PATH "/proc/self/fd/3"

/* The container inherits the runtime's stdio, so every fd it gets must be one we mean. */
static int add_stdio(posix_spawn_file_actions_t *fa, const int stdio[3], int moved[3])
{
	for (int i = 0; i < 3; i++) {
		int fd = stdio[i];
		if (fd < 0) {
			posix_spawn_file_actions_addopen(fa, i, "/dev/null", i ? O_WRONLY : O_RDONLY, 0);
			continue;
		}
		/* A low fd would be overwritten by an earlier dup2 of this same list. */
		if (fd < 3) {
			fd = moved[i] = fcntl(fd, F_DUPFD_CLOEXEC, 3);
			if (fd < 0)
				return -errno;
		}
		posix_spawn_file_actions_adddup2(fa, fd, i);
	}
	return 0;
}

/* glibc's sigfillset leaves out the two signals it keeps for itself (32 and 33, below
 * SIGRTMIN), and its posix_spawn sets those to SIG_IGN in the child unless they are in the
 * SETSIGDEF set; exec keeps an ignored signal, so every container would inherit it. sigaddset
 * refuses them too, hence the bits by hand. */
static void add_libc_signals(sigset_t *set)
{
	unsigned long *words = (unsigned long *)set;
	const int bits = 8 * sizeof *words;
	for (int sig = __SIGRTMIN; sig < SIGRTMIN; sig++)
		words[(sig - 1) / bits] |= 1UL << ((sig - 1) % bits);
}

/* The child starts with what a process started by a shell would have: no blocked signal (the
 * shim blocks SIGCHLD in every thread) and default dispositions (it ignores SIGPIPE). */
static void init_attr(posix_spawnattr_t *attr)
{
	sigset_t none, all;
	sigemptyset(&none);
	sigfillset(&all);
	add_libc_signals(&all);
	posix_spawnattr_init(attr);
	posix_spawnattr_setsigmask(attr, &none);
	posix_spawnattr_setsigdefault(attr, &all);
	posix_spawnattr_setflags(attr, POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF);
}

static void append(struct buf *b, const char *data, size_t n)
{
	if (b->len + n + 1 > b->cap) {
		b->cap = (b->len + n + 1) * 2;
		b->p = realloc(b->p, b->cap);
		if (!b->p)
			abort();
	}
	memcpy(b->p + b->len, data, n);
	b->len += n;
	b->p[b->len] = 0;
}

/* Reads both pipes to their end, whichever the runtime writes first. */
static void drain(int out_fd, int err_fd, struct buf *out, struct buf *err)
{
	struct pollfd p[2] = { { .fd = out_fd, .events = POLLIN }, { .fd = err_fd, .events = POLLIN } };
	struct buf *dst[2] = { out, err };
	while (p[0].fd >= 0 || p[1].fd >= 0) {
		if (poll(p, 2, -1) < 0) {
			if (errno == EINTR)
				continue;
			return;
		}
		for (int i = 0; i < 2; i++) {
			if (p[i].fd < 0 || !p[i].revents)
				continue;
			char chunk[4096];
			ssize_t n = read(p[i].fd, chunk, sizeof chunk);
			if (n < 0 && errno == EINTR)
				continue;
			if (n <= 0)
				p[i].fd = -1;
			else
				append(dst[i], chunk, n);
		}
	}
}

static int spawn_and_wait(char *const argv[], const struct run_opts *o, int log_fd, struct exit_status *st,
			  struct buf *out, struct buf *err)
{
	posix_spawn_file_actions_t fa;
	posix_spawnattr_t attr;
	cleanup_pair int po[2] = { -1, -1 }, pe[2] = { -1, -1 };
	int moved[3] = { -1, -1, -1 };
	posix_spawn_file_actions_init(&fa);
	init_attr(&attr);
	int r = 0;
	if (o->stdio) {
		r = add_stdio(&fa, o->stdio, moved);
	} else if (pipe2(po, O_CLOEXEC) < 0 || pipe2(pe, O_CLOEXEC) < 0) {
		r = -errno;
	} else {
		posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
		posix_spawn_file_actions_adddup2(&fa, po[1], 1);
		posix_spawn_file_actions_adddup2(&fa, pe[1], 2);
	}
	/* After the stdio dup2s, which may read a fd 3. glibc clears close-on-exec when log_fd is 3. */
	if (r == 0 && log_fd >= 0)
		posix_spawn_file_actions_adddup2(&fa, log_fd, LOG_FD);
	if (r == 0)
		posix_spawn_file_actions_addchdir_np(&fa, "/");
	pid_t pid;
	if (r == 0) {
		char exe[32];
		const char *program = sealed_exe_acquire(argv[0], exe);
		r = reaper_spawn(&pid, program, argv, &fa, &attr);
		sealed_exe_release();
	} else
		r = fail(-r, "spawn %s", argv[0]);
	posix_spawn_file_actions_destroy(&fa);
	posix_spawnattr_destroy(&attr);
	for (int i = 0; i < 3; i++)
		close_ptr(&moved[i]);
	if (r < 0)
		return r;
	if (!o->stdio) {
		close(move_fd(&po[1]));
		close(move_fd(&pe[1]));
		drain(po[0], pe[0], out, err);
	}
	reaper_wait(pid, st);
	return 0;
}

/* The last error-level message of a runtime's JSON log (one object per line, runc style). */
static char *log_error_of(int log_fd)
{
	cleanup_free char *text = NULL;
	char path[32];
	snprintf(path, sizeof path, "/proc/self/fd/%d", log_fd);
	if (log_fd < 0 || read_file_at(AT_FDCWD, path, &text, NULL) < 0)
		return NULL;
	char *last = NULL;
	char *save;
	for (char *line = strtok_r(text, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
		cleanup_json struct jdoc doc = {0};
		const char *level = NULL, *msg = NULL;
		if (json_parse(&doc, line, strlen(line)) < 0 || jstr(doc.root, "level", &level) < 0 ||
		    jstr(doc.root, "msg", &msg) < 0)
			continue;
		if (level && msg && *msg && (!strcmp(level, "error") || !strcmp(level, "fatal"))) {
			free(last);
			last = xstrdup(msg);
		}
	}
	return last;
}

static char *trimmed(struct buf *b)
{
	if (!b->p)
		return NULL;
	char *s = b->p;
	while (*s && strchr(" \t\r\n", *s))
		s++;
	size_t n = strlen(s);
	while (n && strchr(" \t\r\n", s[n - 1]))
		n--;
	return n ? strndup(s, n) : NULL;
}

static int runtime_failure(char *const argv[], int argc, int cmd, const struct exit_status *st, int log_fd,
			   struct buf *err)
{
	cleanup_free char *why = log_error_of(log_fd);
	if (!why)
		why = trimmed(err);
	if (!why)
		why = st->signal ? xasprintf("exit SIG%s", sigabbrev_np(st->signal)) : xasprintf("exit %d", st->status);
	fail(0, "%s %s %s: %s", argv[0], argv[cmd], argv[argc - 1], why);
	/* The runtimes word it differently; all mean the container is already gone. */
	bool missing = strcasestr(why, "does not exist") || strcasestr(why, "not found") ||
		       strcasestr(why, "no such container");
	return missing ? -ENOENT : -EIO;
}

/* Runs `binary --root ROOT [--log FILE --log-format json] ARGS...`; *out (optional) gets stdout. */
static int run(const struct runtime *rt, const char *const args[], const struct run_opts *o, char **out)
{
	char *argv[MAX_ARGS];
	int argc = 0;
	argv[argc++] = (char *)rt->binary;
	argv[argc++] = "--root";
	argv[argc++] = (char *)rt->root;
	cleanup_close int log_fd = -1;
	if (o->log) {
		if ((log_fd = memfd_create("runtime-log", MFD_CLOEXEC)) < 0)
			return fail(errno, "memfd for the runtime's log");
		argv[argc++] = "--log";
		argv[argc++] = LOG_PATH;
		argv[argc++] = "--log-format";
		argv[argc++] = "json";
	}
	int cmd = argc;
	for (int i = 0; args[i]; i++)
		argv[argc++] = (char *)args[i];
	argv[argc] = NULL;

	cleanup_buf struct buf sout = {0}, serr = {0};
	struct exit_status st;
	int r = spawn_and_wait(argv, o, log_fd, &st, &sout, &serr);
	if (r < 0) {
		fail_ctx(r, "%s %s", rt->binary, argv[cmd]);
		return -ENOEXEC;
	}
	if (st.status != 0 || st.signal != 0)
		return runtime_failure(argv, argc, cmd, &st, log_fd, &serr);
	if (out)
		*out = sout.p ? move_ptr(&sout.p) : xstrdup("");
	return 0;
}

static const struct run_opts captured = {0};

/* [--console-socket PATH] ID, the tail of create and exec. */
static void finish_args(const char *args[], int n, const char *console_socket, const char *id)
{
	if (console_socket) {
		args[n++] = "--console-socket";
		args[n++] = console_socket;
	}
	args[n++] = id;
	args[n] = NULL;
}

int runtime_create(const struct runtime *rt, const char *id, const char *bundle, const char *pid_file,
		   const int stdio[3], const char *console_socket)
{
	const char *args[10] = { "create", "--bundle", bundle, "--pid-file", pid_file };
	finish_args(args, 5, console_socket, id);
	return run(rt, args, &(struct run_opts){ .stdio = stdio, .log = true }, NULL);
}

int runtime_start(const struct runtime *rt, const char *id)
{
	return run(rt, (const char *[]){ "start", id, NULL }, &captured, NULL);
}

int runtime_exec(const struct runtime *rt, const char *id, const char *process_file, const char *pid_file,
		 const int stdio[3], const char *console_socket)
{
	const char *args[10] = { "exec", "--detach", "--process", process_file, "--pid-file", pid_file };
	finish_args(args, 6, console_socket, id);
	return run(rt, args, &(struct run_opts){ .stdio = stdio, .log = true }, NULL);
}

int runtime_kill(const struct runtime *rt, const char *id, int signal, bool all)
{
	char sig[16];
	snprintf(sig, sizeof sig, "%d", signal);
	const char *with_all[] = { "kill", "--all", id, sig, NULL };
	const char *without[] = { "kill", id, sig, NULL };
	return run(rt, all ? with_all : without, &captured, NULL);
}

int runtime_delete(const struct runtime *rt, const char *id, bool force)
{
	const char *forced[] = { "delete", "--force", id, NULL };
	const char *plain[] = { "delete", id, NULL };
	return run(rt, force ? forced : plain, &captured, NULL);
}

int runtime_pause(const struct runtime *rt, const char *id)
{
	return run(rt, (const char *[]){ "pause", id, NULL }, &captured, NULL);
}

int runtime_resume(const struct runtime *rt, const char *id)
{
	return run(rt, (const char *[]){ "resume", id, NULL }, &captured, NULL);
}

int runtime_update(const struct runtime *rt, const char *id, const char *resources_file)
{
	return run(rt, (const char *[]){ "update", "--resources", resources_file, id, NULL }, &captured, NULL);
}

int runtime_ps(const struct runtime *rt, const char *id, pid_t **pids, size_t *n)
{
	cleanup_free char *out = NULL;
	int r = run(rt, (const char *[]){ "ps", "--format", "json", id, NULL }, &captured, &out);
	if (r < 0)
		return r;
	cleanup_json struct jdoc doc = {0};
	const char *text = *out ? out : "[]";
	if (json_parse(&doc, text, strlen(text)) < 0)
		return fail_ctx(-EIO, "%s ps %s", rt->binary, id);
	*n = 0;
	*pids = NULL;
	if (doc.root->type != J_ARR)
		return 0;
	*pids = calloc(doc.root->n ? doc.root->n : 1, sizeof **pids);
	if (!*pids)
		return fail(ENOMEM, "%s ps %s", rt->binary, id);
	JFOR(el, doc.root)
		if (el->type == J_NUM && el->is_int)
			(*pids)[(*n)++] = el->i;
	return 0;
}
