/* berth-shim: containerd's runtime v2 shim contract. `start` and `delete` are what a daemon runs;
 * `start` forks the long-lived shim that serves a group of tasks when none is serving yet. */
#include "clock.h"
#include "events.h"
#include "exitfile.h"
#include "json.h"
#include "lifecycle.h"
#include "options.h"
#include "runtime.h"
#include "service.h"
#include "sha256.h"
#include "shim.h"
#include "ttrpc.h"

#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <sys/wait.h>
#include <time.h>

#define LOCK_TIMEOUT_MS 30000
#define LOCK_POLL_MS 50
#define READY_TIMEOUT_MS 30000
#define CONNECT_TIMEOUT_MS 5000
/* Idle time before a shim without tasks exits, so the group's next task (a script's next
 * `ctr run --rm`, a pod's next container) joins a live shim and its warm runtime caches. */
#define EXIT_GRACE_MS 10000
/* How long an exiting shim keeps trying to deliver its last events. */
#define FINAL_FLUSH_MS 5000
/* How long an exiting shim waits for the answers of calls in flight, that of the Shutdown which
 * decided it among them, before it closes their connections. */
#define FINAL_CLOSE_MS 1000
/* What a task killed by `delete`'s cleanup reports: 128 + SIGKILL, as containerd's shim does. */
#define KILLED_STATUS 137

#define DEDICATED_ANNOTATION "io.berth.shim.dedicated"
#define SANDBOX_ANNOTATION "io.kubernetes.cri.sandbox-id"

/* containerd's Go-style flags: `-flag value`, `-flag=value`, `--flag value`, bare `-debug`,
 * followed by one action word. -publish-binary, -socket, -debug and -v are part of the contract
 * but change nothing here. */
struct args {
	const char *namespace, *id, *address, *bundle;
	char *action; /* writable: the forked shim renames itself from start to serve */
};

static const char *const known_flags[] = {"namespace", "id", "address", "publish-binary", "bundle", "socket", "debug", "v"};

static bool known_flag(const char *name, size_t len)
{
	for (size_t i = 0; i < sizeof known_flags / sizeof *known_flags; i++)
		if (strlen(known_flags[i]) == len && !strncmp(known_flags[i], name, len))
			return true;
	return false;
}

static void set_flag(struct args *a, const char *name, const char *value)
{
	if (!strcmp(name, "namespace"))
		a->namespace = value;
	else if (!strcmp(name, "id"))
		a->id = value;
	else if (!strcmp(name, "address"))
		a->address = value;
	else if (!strcmp(name, "bundle"))
		a->bundle = value;
}

static int parse_args(int argc, char **argv, struct args *a)
{
	*a = (struct args){ .namespace = "", .id = "", .address = "" };
	for (int i = 0; i < argc; i++) {
		char *arg = argv[i];
		if (arg[0] != '-' || !strcmp(arg, "-")) {
			if (!a->action)
				a->action = arg;
			continue;
		}
		const char *body = arg + (arg[1] == '-' ? 2 : 1);
		size_t len = strcspn(body, "=");
		if (!known_flag(body, len))
			return fail(0, "flag provided but not defined: -%.*s", (int)len, body);
		char name[32];
		snprintf(name, sizeof name, "%.*s", (int)len, body);
		const char *value = body[len] == '=' ? body + len + 1 : "true";
		if (body[len] != '=' && strcmp(name, "debug") && strcmp(name, "v")) {
			if (i + 1 == argc)
				return fail(0, "flag needs an argument: -%s", name);
			value = argv[++i];
		}
		set_flag(a, name, value);
	}
	return 0;
}

static char *shim_file(const char *hash, const char *suffix)
{
	return xasprintf("%s/shims/%s.%s", state_dir(), hash, suffix);
}

/* Which tasks share one shim: all containers of a pod, else all of a namespace, unless a task
 * asks for its own (a container label the daemon copies into the spec's annotations). The key is
 * prefixed so a pod id can never equal a task id or a namespace. */
static char *group_key(const char *bundle, const char *id)
{
	cleanup_free char *path = xasprintf("%s/config.json", bundle);
	cleanup_free char *text = NULL;
	size_t len;
	cleanup_json struct jdoc doc = {0};
	/* No readable spec: group by namespace; Create will report the real problem. */
	if (read_file_at(AT_FDCWD, path, &text, &len) < 0 || json_parse(&doc, text, len) < 0)
		return xstrdup("namespace");
	struct jv *ann = doc.root->type == J_OBJ ? jget(doc.root, "annotations") : NULL;
	if (!ann || ann->type != J_OBJ)
		return xstrdup("namespace");
	struct jv *dedicated = jget(ann, DEDICATED_ANNOTATION), *sandbox = jget(ann, SANDBOX_ANNOTATION);
	if (dedicated && dedicated->type == J_STR && !strcmp(dedicated->s, "true"))
		return xasprintf("task:%s", id);
	if (sandbox && sandbox->type == J_STR && *sandbox->s)
		return xasprintf("pod:%s", sandbox->s);
	return xstrdup("namespace");
}

/* Like containerd's socket names: a sha256 of daemon address, namespace and group key. */
static void group_hash(const char *address, const char *ns, const char *key, char out[65])
{
	cleanup_free char *data = NULL;
	size_t len = strlen(address) + strlen(ns) + strlen(key) + 2;
	data = xmalloc(len + 1);
	snprintf(data, len + 1, "%s%c%s%c%s", address, 0, ns, 0, key);
	sha256_hex(data, len, out);
}

/* An empty lock file is one being written right now; only a dead owner's lock is stale. */
static void break_stale_lock(const char *path)
{
	cleanup_free char *text = NULL;
	if (read_file_at(AT_FDCWD, path, &text, NULL) < 0)
		return;
	char *end;
	long owner = strtol(text, &end, 10);
	if (end == text || end[strspn(end, " \t\n")] || owner <= 0)
		return;
	if (kill(owner, 0) < 0 && errno == ESRCH)
		unlink(path); /* another waiter may break it first: fine */
}

/* 1 when taken, 0 when held by someone else, -errno. */
static int try_lock(const char *path)
{
	cleanup_close int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	if (fd >= 0) {
		char pid[24];
		int n = snprintf(pid, sizeof pid, "%d", getpid());
		int r = write_all(fd, pid, n);
		if (r < 0) {
			unlink(path);
			return fail(-r, "write `%s`", path);
		}
		return 1;
	}
	if (errno != EEXIST)
		return fail(errno, "create `%s`", path);
	break_stale_lock(path);
	return 0;
}

/* An exclusive lock file (O_EXCL create, owner pid inside) serialises concurrent `start` runs of
 * one group, so only one of them launches its shim. */
static int take_lock(const char *path)
{
	int64_t deadline = mono_ms() + LOCK_TIMEOUT_MS;
	for (;;) {
		int r = try_lock(path);
		if (r)
			return r < 0 ? r : 0;
		if (mono_ms() > deadline)
			return fail(0, "timed out waiting for lock %s", path);
		usleep(LOCK_POLL_MS * 1000);
	}
}

/* Asks a running shim to keep serving and to expect task `id`. 1 when it took the reservation;
 * 0 when there is no shim or it is exiting (it refuses with UNAVAILABLE, or has already closed
 * its connections), so the caller launches a new one. A shim that is slow to answer is an error,
 * not an absent shim: launching another would take its socket from under its tasks. */
static int reserve_existing(const char *socket, const char *id)
{
	ttrpc_client *c;
	if (ttrpc_connect(socket, CONNECT_TIMEOUT_MS, &c) < 0)
		return 0;
	cleanup_pb pb_buf req = {0};
	pb_put_string(&req, 1, id);
	if (req.oom) {
		ttrpc_client_close(c);
		return fail(ENOMEM, "Connect request");
	}
	enum rpc_code code = RPC_OK;
	int r = ttrpc_call(c, TASK_SERVICE, "Connect", NULL, 0, &req, CONNECT_TIMEOUT_MS, NULL, &code);
	ttrpc_client_close(c);
	if (r == -ETIMEDOUT)
		return fail_ctx(r, "Connect to shim %s", socket);
	if (r < 0 || code == RPC_UNAVAILABLE)
		return 0;
	if (code != RPC_OK)
		return fail_ctx(-EPROTO, "Connect to shim %s", socket);
	return 1;
}

static void on_idle_exit(void)
{
	shim_log("no tasks left: exiting (%zu events to deliver)", events_pending());
	/* The socket file goes first, before a new `start` could launch a shim on the same path. */
	ttrpc_stop_listening();
	ttrpc_close_all(FINAL_CLOSE_MS);
	events_flush(FINAL_FLUSH_MS);
	_exit(0);
}

static int serve_setup(const struct args *a, const char *socket)
{
	int r = service_init();
	if (r < 0)
		return r;
	const char *events = getenv("TTRPC_ADDRESS");
	r = events_start(events ? events : "");
	if (r < 0)
		return r;
	lifecycle_init(EXIT_GRACE_MS, on_idle_exit);
	r = ttrpc_serve(socket, task_methods, task_methods_len);
	if (r < 0)
		return r;
	/* The task that made `start` launch this shim keeps it alive until its Create arrives. */
	return lifecycle_reserve(a->id);
}

/* The long-lived shim, in the process `start` forked: serves containerd.task.v2.Task on the
 * group's socket until idle, then exits. */
static void __attribute__((noreturn)) serve(const struct args *a, const char *socket, int ready_fd)
{
	/* Before any thread exists, so every thread inherits it: the exit watcher collects SIGCHLD
	 * synchronously, and a closed FIFO or socket must not kill the shim of every task. */
	sigset_t set;
	sigemptyset(&set);
	sigaddset(&set, SIGCHLD);
	pthread_sigmask(SIG_BLOCK, &set, NULL);
	/* Collected, not discarded, whatever the caller of `start` had made of it. */
	signal(SIGCHLD, SIG_DFL);
	signal(SIGPIPE, SIG_IGN);
	if (serve_setup(a, socket) < 0) {
		shim_log("%s", g_err);
		_exit(1);
	}
	shim_log("serving %s for namespace %s (pid %d)", socket, a->namespace, getpid());
	(void)write_all(ready_fd, "R", 1);
	close(ready_fd);
	for (;;)
		pause();
}

/* The log's last five lines, for the error of a shim that died before it was ready. */
static char *log_tail(const char *path)
{
	cleanup_free char *text = NULL;
	size_t len;
	if (read_file_at(AT_FDCWD, path, &text, &len) < 0)
		return xstrdup("(no log)");
	while (len && strchr(" \t\r\n", text[len - 1]))
		len--;
	const char *start = text, *end = text + len;
	for (int lines = 1; lines <= 5; lines++) {
		const char *nl = memrchr(text, '\n', end - text);
		if (!nl)
			break;
		start = nl + 1;
		end = nl;
	}
	struct buf b = {0};
	buf_printf(&b, "%s", "");
	for (const char *p = start; p < text + len; p++) {
		if (*p == '\n')
			buf_printf(&b, " | ");
		else
			buf_printf(&b, "%c", *p);
	}
	return b.p;
}

static char *exit_status_text(int status)
{
	if (WIFSIGNALED(status))
		return xasprintf("SIG%s", sigabbrev_np(WTERMSIG(status)) ?: "?");
	return xasprintf("%d", WEXITSTATUS(status));
}

/* Waits for the byte the shim writes on its readiness pipe once it serves, or for its exit. */
static int wait_ready(pid_t pid, int ready_fd, const char *log_path)
{
	int64_t deadline = mono_ms() + READY_TIMEOUT_MS;
	for (;;) {
		int64_t left = deadline - mono_ms();
		if (left <= 0)
			return fail(0, "shim did not become ready");
		struct pollfd p = { .fd = ready_fd, .events = POLLIN };
		int n = poll(&p, 1, (int)left);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return fail(errno, "wait for the shim");
		if (n == 0)
			continue;
		char byte;
		ssize_t r = read(ready_fd, &byte, 1);
		if (r < 0 && errno == EINTR)
			continue;
		if (r == 1)
			return 0;
		/* EOF: the shim's only copy of the write end went with it. */
		int status = 0;
		while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
			;
		cleanup_free char *how = exit_status_text(status);
		cleanup_free char *tail = log_tail(log_path);
		return fail(0, "shim exited (%s) before it was ready: %s", how, tail);
	}
}

/* The forked shim: a session of its own so it outlives this process and the daemon's session,
 * its log as stdout and stderr, the state dir as cwd so it holds no bundle busy. Nothing else
 * of the caller's stays open (the readiness pipe becomes fd 3): a shim lives for long, and must
 * not keep the daemon's sockets or files. */
static void __attribute__((noreturn)) become_shim(struct args *a, const char *socket, int log_fd, int ready_fd)
{
	/* Above fd 3 first, so filling 0 to 3 cannot overwrite one of them. */
	int null = fcntl(open("/dev/null", O_RDONLY), F_DUPFD, 4);
	int log = fcntl(log_fd, F_DUPFD, 4), ready = fcntl(ready_fd, F_DUPFD, 4);
	if (setsid() < 0 || null < 0 || log < 0 || ready < 0 || dup2(null, 0) < 0 || dup2(log, 1) < 0 ||
	    dup2(log, 2) < 0 || dup2(ready, 3) < 0 || close_range(4, ~0U, 0) < 0 || chdir(state_dir()) < 0) {
		dprintf(log_fd, "berth-shim: set up the shim process: %s\n", strerror(errno));
		_exit(1);
	}
	/* Same length in place, so `ps` shows what this process does rather than `start`. */
	if (!strcmp(a->action, "start"))
		memcpy(a->action, "serve", 5);
	serve(a, socket, 3);
}

static int launch(struct args *a, const char *hash, const char *socket)
{
	cleanup_free char *log_path = shim_file(hash, "log");
	cleanup_close int log_fd = open(log_path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0600);
	if (log_fd < 0)
		return fail(errno, "open `%s`", log_path);
	cleanup_pair int ready[2] = {-1, -1};
	if (pipe2(ready, O_CLOEXEC) < 0)
		return fail(errno, "pipe");
	/* No exec: this process has loaded everything the shim needs, and forking costs less. Once
	 * `start` exits the shim is re-parented, so nobody is left to reap it but its new parent. */
	pid_t pid = fork();
	if (pid < 0)
		return fail(errno, "fork");
	if (pid == 0)
		become_shim(a, socket, log_fd, ready[1]);
	close(move_fd(&ready[1]));
	return wait_ready(pid, ready[0], log_path);
}

/* The runtime options Any a daemon writes; none from a terminal. */
static int read_stdin(uint8_t **out, size_t *len)
{
	*len = 0;
	if (isatty(STDIN_FILENO))
		return 0;
	size_t cap = 0;
	for (;;) {
		if (*len == cap) {
			cap = cap ? cap * 2 : 4096;
			uint8_t *p = realloc(*out, cap);
			if (!p)
				return fail(ENOMEM, "read stdin");
			*out = p;
		}
		ssize_t n = read(STDIN_FILENO, *out + *len, cap - *len);
		if (n < 0 && errno == EINTR)
			continue;
		/* A closed stdin means no options, as an empty one does. */
		if (n < 0 && errno != EBADF)
			return fail(errno, "read stdin");
		if (n <= 0)
			return 0;
		*len += n;
	}
}

static int save_options(const char *bundle)
{
	cleanup_free uint8_t *any = NULL;
	size_t len;
	int r = read_stdin(&any, &len);
	if (r < 0)
		return fail_ctx(r, "read runtime options");
	struct runtime_options o;
	r = options_from_any(any, len, &o);
	if (r < 0)
		return fail_ctx(r, "runtime options");
	r = options_save(bundle, &o);
	options_free(&o);
	return r;
}

static int locked_start(struct args *a, const char *hash, const char *socket)
{
	int r = reserve_existing(socket, a->id);
	return r ? (r < 0 ? r : 0) : launch(a, hash, socket);
}

/* `berth-shim ... start` (cwd = bundle, runtime options Any on stdin): prints the address of the
 * shim that serves this task's group, launching one if none is alive. */
static int start_command(struct args *a)
{
	if (!*a->namespace || !*a->id)
		return fail(0, "start needs -namespace and -id");
	cleanup_free char *cwd = a->bundle ? NULL : getcwd(NULL, 0);
	const char *bundle = a->bundle ? a->bundle : cwd;
	if (!bundle)
		return fail(errno, "getcwd");
	int r = save_options(bundle);
	if (r < 0)
		return r;
	cleanup_free char *key = group_key(bundle, a->id);
	char hash[65];
	group_hash(a->address, a->namespace, key, hash);
	cleanup_free char *sockets = xasprintf("%s/s", state_dir());
	cleanup_free char *shims = xasprintf("%s/shims", state_dir());
	cleanup_free char *socket = xasprintf("%s/%s", sockets, hash);
	cleanup_free char *lock = shim_file(hash, "lock");
	if ((r = mkdir_p(sockets, 0700)) < 0 || (r = mkdir_p(shims, 0700)) < 0 || (r = take_lock(lock)) < 0)
		return r;
	r = locked_start(a, hash, socket);
	unlink(lock);
	if (r < 0)
		return r;
	printf("unix://%s", socket);
	return fflush(stdout) ? fail(errno, "write stdout") : 0;
}

static pid_t init_pid(const char *bundle)
{
	cleanup_free char *path = xasprintf("%s/init.pid", bundle);
	cleanup_free char *text = NULL;
	if (read_file_at(AT_FDCWD, path, &text, NULL) < 0)
		return 0;
	return (pid_t)strtol(text, NULL, 10);
}

/* `berth-shim -namespace NS -id ID [-bundle DIR] delete`: cleans up a task whose shim is gone,
 * without RPC. Force-deletes it in the runtime (the daemon owns and unmounts the rootfs) and
 * prints a containerd.task.v2.DeleteResponse on stdout, with the recorded exit if there is one. */
static int delete_command(const struct args *a)
{
	if (!*a->namespace || !*a->id)
		return fail(0, "delete needs -namespace and -id");
	cleanup_free char *cwd = a->bundle ? NULL : getcwd(NULL, 0);
	const char *bundle = a->bundle ? a->bundle : cwd;
	if (!bundle)
		return fail(errno, "getcwd");
	struct runtime_options o;
	options_load(bundle, &o);
	cleanup_free char *root = runtime_root(a->namespace);
	struct runtime rt = { .binary = o.binary, .root = o.root ? o.root : root };
	int r = runtime_delete(&rt, a->id, true);
	options_free(&o);
	if (r < 0 && r != -ENOENT)
		return r;
	struct exit_record rec;
	if (exitfile_read(bundle, "", &rec) < 0)
		rec = (struct exit_record){ .pid = init_pid(bundle), .status = KILLED_STATUS, .exited_at_ns = now_unix_ns() };
	cleanup_pb pb_buf resp = {0};
	pb_put_uint(&resp, 1, (uint32_t)rec.pid);
	pb_put_uint(&resp, 2, (uint32_t)rec.status);
	pb_put_timestamp(&resp, 3, rec.exited_at_ns);
	if (resp.oom)
		return fail(ENOMEM, "DeleteResponse");
	r = write_all(STDOUT_FILENO, resp.data, resp.len);
	return r < 0 ? fail(-r, "write stdout") : 0;
}

int main(int argc, char **argv)
{
	struct args a;
	int r = parse_args(argc - 1, argv + 1, &a);
	if (r == 0) {
		g_namespace = a.namespace;
		if (a.action && !strcmp(a.action, "start"))
			r = start_command(&a);
		else if (a.action && !strcmp(a.action, "delete"))
			r = delete_command(&a);
		else {
			cleanup_buf struct buf name = {0};
			buf_json_str(&name, a.action ? a.action : "");
			r = fail(0, "unknown action %s (want start or delete)", name.p);
		}
	}
	if (r < 0) {
		fprintf(stderr, "berth-shim: %s\n", g_err);
		return 1;
	}
	return 0;
}
