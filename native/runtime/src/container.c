#include "container.h"

#include "cgroups.h"
#include "mounts.h"
#include "process.h"
#include "seccomp.h"
#include "spec.h"
#include "state.h"
#include "sync.h"

#include <dirent.h>
#include <linux/keyctl.h>
#include <fcntl.h>
#include <linux/sched.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <sys/personality.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>

#define OCI_VERSION "1.1.0"

static pid_t clone3_flags(uint64_t flags, int cgfd)
{
	struct clone_args a = {.flags = flags, .exit_signal = SIGCHLD};
	if (cgfd >= 0) {
		a.flags |= CLONE_INTO_CGROUP;
		a.cgroup = cgfd;
	}
	pid_t pid = syscall(SYS_clone3, &a, sizeof a);
	/* Kernels without clone3 or CLONE_INTO_CGROUP: the parent then writes cgroup.procs. */
	if (pid < 0 && cgfd >= 0 && (errno == ENOSYS || errno == E2BIG || errno == EINVAL))
		return clone3_flags(flags, -1);
	if (pid < 0 && errno == ENOSYS)
		pid = syscall(SYS_clone, flags | SIGCHLD, NULL, NULL, NULL, 0);
	return pid;
}

static int pidfd_open(pid_t pid) { return syscall(SYS_pidfd_open, pid, 0); }

static void now_rfc3339(char *out, size_t len)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	rfc3339(&ts, 9, out, len);
}

static void remove_state_dir(const char *dir)
{
	DIR *d cleanup_dir = opendir(dir);
	if (!d)
		return;
	for (struct dirent *e; (e = readdir(d));)
		if (strcmp(e->d_name, ".") && strcmp(e->d_name, ".."))
			unlinkat(dirfd(d), e->d_name, 0);
	rmdir(dir);
}

static int write_idmaps(pid_t pid, const struct spec *s)
{
	for (int g = 0; g < 2; g++) {
		const struct idmap *m = g ? s->gidm : s->uidm;
		size_t n = g ? s->n_gidm : s->n_uidm;
		cleanup_buf struct buf b = {0};
		for (size_t i = 0; i < n; i++)
			buf_printf(&b, "%u %u %u\n", m[i].cid, m[i].hid, m[i].size);
		char p[64];
		snprintf(p, sizeof p, "/proc/%d/%s", pid, g ? "gid_map" : "uid_map");
		int r = write_file_at(AT_FDCWD, p, b.p, b.len);
		if (r < 0)
			return fail(-r, "invalid %s mapping (%s)", g ? "gid" : "uid", b.p ? strtok(b.p, "\n") : "");
	}
	return 0;
}

/* ---- the container's init, in the cloned child ---- */

struct init_ctx {
	const struct spec *s;
	const char *rootfs, *cgpath;
	int sock, fifo_fd, console_fd, preserve_fds;
	bool fast; /* namespaces came with the clone; none had to be joined */
	bool new_keyring;
	bool got_go;
	void *seccomp;
	int listener; /* seccomp listenerPath, connected */
	struct cg_tasks *tasks;
};

static void close_ns_fds(int (*fds)[NS_COUNT])
{
	for (int k = 0; k < NS_COUNT; k++)
		if ((*fds)[k] >= 0)
			close((*fds)[k]);
}

/* Joins namespaces given by path, then creates the others in the order the kernel needs: the
 * user namespace first so that it owns the rest. A new or joined pid namespace only applies to
 * children, so the init is forked (as a sibling, CLONE_PARENT) and this process exits. */
static int join_namespaces(struct init_ctx *c)
{
	const struct spec *s = c->s;
	int r;
	/* All paths are opened before the first setns: afterwards they would resolve elsewhere. */
	int fds[NS_COUNT] __attribute__((cleanup(close_ns_fds)));
	for (int k = 0; k < NS_COUNT; k++)
		fds[k] = -1;
	for (int k = 0; k < NS_COUNT; k++)
		if (s->ns_path[k] && (fds[k] = open(s->ns_path[k], O_RDONLY | O_CLOEXEC)) < 0)
			return fail(errno, "open %s namespace `%s`", ns_desc[k].spec, s->ns_path[k]);
	for (int k = 0; k < NS_COUNT; k++)
		if (fds[k] >= 0 && setns(fds[k], ns_desc[k].flag) < 0)
			return fail(errno, "join %s namespace `%s`", ns_desc[k].spec, s->ns_path[k]);
	if (s->ns_on[NS_USER] && !s->ns_path[NS_USER]) {
		if (unshare(CLONE_NEWUSER) < 0)
			return fail(errno, "create user namespace");
		if ((r = sync_send(c->sock, SYNC_USERMAP, getpid(), NULL)) < 0 || (r = sync_expect(c->sock, SYNC_USERMAP_DONE)) < 0)
			return r;
	}
	int flags = 0;
	for (int k = 0; k < NS_COUNT; k++)
		if (s->ns_on[k] && !s->ns_path[k] && k != NS_USER && k != NS_CGROUP)
			flags |= ns_desc[k].flag;
	if (flags && unshare(flags) < 0)
		return fail(errno, "create namespaces");
	if (!s->ns_on[NS_PID])
		return 0;
	struct clone_args a = {.flags = CLONE_PARENT};
	pid_t pid = syscall(SYS_clone3, &a, sizeof a);
	if (pid < 0)
		return fail(errno, "fork the container init");
	if (pid > 0) {
		sync_send(c->sock, SYNC_PID, pid, NULL);
		_exit(0);
	}
	/* The death signal is not inherited: the init must still die with an interrupted create. */
	if (prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0) < 0)
		return fail(errno, "prctl");
	return 0;
}

static int init_run(struct init_ctx *c)
{
	const struct spec *s = c->s;
	int r;
	if (prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0) < 0)
		return fail(errno, "prctl");
	if ((r = cg_join_self(c->tasks)) < 0)
		return r;
	/* GO means the parent has written the id maps (and, where clone could not, put us in the
	 * cgroup2 cgroup). Without a user
	 * namespace and with every namespace from the clone, the rootfs can be set up meanwhile:
	 * nothing of the container runs before GO. */
	bool early = c->fast && !s->ns_on[NS_USER];
	if (!early && (r = sync_expect(c->sock, SYNC_GO)) < 0)
		return r;
	c->got_go = !early;
	if (!c->fast && (r = join_namespaces(c)) < 0)
		return r;
	if (s->ns_on[NS_USER] && (setresgid(0, 0, 0) < 0 || setresuid(0, 0, 0) < 0))
		return fail(errno, "become root in the user namespace (is container uid/gid 0 mapped?)");
	/* A session keyring of its own, so the container cannot read the host's keys. Kernels or
	 * user namespaces that refuse are not fatal, as with runc. */
	if (c->new_keyring && syscall(SYS_keyctl, KEYCTL_JOIN_SESSION_KEYRING, NULL) < 0)
		log_debug("no session keyring: %s", strerror(errno));
	if (s->hostname && sethostname(s->hostname, strlen(s->hostname)) < 0)
		return fail(errno, "set hostname");
	if (s->domainname && setdomainname(s->domainname, strlen(s->domainname)) < 0)
		return fail(errno, "set domainname");
	struct rootfs_ctx rc = {.s = s, .rootfs = c->rootfs, .cgpath = c->cgpath, .userns = s->ns_on[NS_USER], .devnull_fd = -1};
	cleanup_close int rootfd = -1;
	if ((r = rootfs_prepare(&rc, &rootfd)) < 0)
		return r;
	if (early && (r = sync_expect(c->sock, SYNC_GO)) < 0)
		return r;
	c->got_go = true;
	/* After GO: the new cgroup namespace is rooted at the container's cgroup. */
	if (s->ns_on[NS_CGROUP] && !s->ns_path[NS_CGROUP] && unshare(CLONE_NEWCGROUP) < 0)
		return fail(errno, "create cgroup namespace");
	struct sync_msg hs = {0};
	/* The parent answers with the state (and the init's pid), which hooks and a seccomp agent get. */
	bool hooks = s->hooks[HOOK_PRESTART].n || s->hooks[HOOK_CREATE_RUNTIME].n || s->hooks[HOOK_CREATE_CONTAINER].n ||
		     s->hooks[HOOK_START_CONTAINER].n || c->listener >= 0;
	if (hooks) {
		if ((r = sync_send(c->sock, SYNC_HOOKS, 0, NULL)) < 0 || (r = sync_recv(c->sock, &hs)) < 0)
			return r;
		if ((r = run_hooks(s->hooks[HOOK_CREATE_CONTAINER].v, s->hooks[HOOK_CREATE_CONTAINER].n, "createContainer",
				   hs.text)) < 0)
			return r;
	}
	if ((r = rootfs_pivot(rootfd)) < 0 || (r = rootfs_finish(&rc)) < 0)
		return r;
	if (s->proc.terminal && (r = console_setup(c->console_fd, &s->proc, true)) < 0)
		return r;
	if (s->personality >= 0 && personality(s->personality) < 0)
		return fail(errno, "linux.personality");
	if (c->console_fd >= 0)
		close(c->console_fd);
	cleanup_free char *exe = NULL;
	/* Seccomp is loaded in process_finalize: what follows it is only what a profile must allow
	 * anyway (sync message, exec fifo, execve). */
	cleanup_free char *pstate = c->listener >= 0 ? seccomp_process_state(s->seccomp, hs.value, hs.text) : NULL;
	struct seccomp_load sl = {c->seccomp, c->listener, pstate};
	if ((r = process_find_exec(&s->proc, &exe)) < 0 || (r = process_close_fds(c->preserve_fds)) < 0 ||
	    (r = process_finalize(&s->proc, &sl)) < 0)
		return r;
	if (prctl(PR_SET_PDEATHSIG, 0, 0, 0, 0) < 0)
		return fail(errno, "prctl");
	if ((r = sync_send(c->sock, SYNC_READY, 0, NULL)) < 0)
		return r;
	close(c->sock);
	c->sock = -1;
	/* Blocks until `start` opens the other end. */
	char fp[64];
	snprintf(fp, sizeof fp, "/proc/self/fd/%d", c->fifo_fd);
	/* The write end stays open until execve closes it: `start` reads our byte, then waits for
	 * that EOF, so poststart hooks run only once the container process is running. */
	int w = open(fp, O_WRONLY | O_CLOEXEC);
	if (w < 0 || write(w, "0", 1) != 1)
		return fail(errno, "exec fifo");
	close(c->fifo_fd);
	if (s->hooks[HOOK_START_CONTAINER].n) {
		char *st = strstr(hs.text, "\"creating\"");
		if (st)
			memcpy(st, "\"created\" ", 10);
		if ((r = run_hooks(s->hooks[HOOK_START_CONTAINER].v, s->hooks[HOOK_START_CONTAINER].n, "startContainer",
				   hs.text)) < 0)
			return r;
	}
	execve(exe, (char **)s->proc.args, (char **)(s->proc.env ? s->proc.env : (const char *[]){NULL}));
	return fail(errno, "exec `%s`", exe);
}

static void __attribute__((noreturn)) init_main(struct init_ctx *c)
{
	init_run(c);
	/* The parent sends GO exactly once and reads errors after it: an error found while working
	 * ahead of GO waits for it, or closing with GO unread would reset the connection. */
	char err[sizeof g_err];
	memcpy(err, g_err, sizeof err);
	if (c->sock >= 0 && !c->got_go)
		sync_expect(c->sock, SYNC_GO);
	if (c->sock >= 0)
		sync_send(c->sock, SYNC_ERROR, 0, err);
	else
		fprintf(stderr, "berth-runtime: %s\n", g_err);
	_exit(1);
}

/* ---- create ---- */

struct created {
	char *dir, *cgpath;
	pid_t pids[2]; /* intermediate child and init */
	bool cg_made;
};

static void undo_create(struct created *c)
{
	for (int i = 0; i < 2; i++)
		if (c->pids[i] > 0) {
			kill(c->pids[i], SIGKILL);
			waitpid(c->pids[i], NULL, 0);
		}
	if (c->cg_made)
		cg_destroy(c->cgpath);
	if (c->dir)
		remove_state_dir(c->dir);
}

static int read_spec(const char *bundle, struct spec *s, char **text, size_t *len)
{
	cleanup_free char *p = xasprintf("%s/config.json", bundle);
	int r = read_file_at(AT_FDCWD, p, text, len);
	if (r < 0)
		return r;
	return spec_load(s, *text, *len);
}

static int parent_loop(int sock, struct created *cr, const struct spec *s, const char *id, const char *bundle,
		       const char *dir, struct cstate *st)
{
	for (;;) {
		struct sync_msg m;
		int r = sync_recv(sock, &m);
		if (r < 0)
			return r;
		switch (m.type) {
		case SYNC_USERMAP:
			if ((r = write_idmaps(m.value, s)) < 0)
				return r;
			if ((r = sync_send(sock, SYNC_USERMAP_DONE, 0, NULL)) < 0)
				return r;
			break;
		case SYNC_PID:
			if (cr->pids[0] <= 0)
				return fail(0, "sync: unexpected init pid");
			waitpid(cr->pids[0], NULL, 0);
			cr->pids[0] = 0;
			cr->pids[1] = m.value;
			break;
		case SYNC_HOOKS: {
			cleanup_buf struct buf b = {0};
			st->pid = cr->pids[1];
			st->start_time = proc_start_time(st->pid, NULL);
			if ((r = state_save(dir, st)) < 0)
				return r;
			state_hook_json(&b, s->annotations, id, "creating", cr->pids[1], bundle);
			if ((r = run_hooks(s->hooks[HOOK_PRESTART].v, s->hooks[HOOK_PRESTART].n, "prestart", b.p)) < 0 ||
			    (r = run_hooks(s->hooks[HOOK_CREATE_RUNTIME].v, s->hooks[HOOK_CREATE_RUNTIME].n, "createRuntime", b.p)) < 0)
				return r;
			if (b.len >= sizeof m.text)
				return fail(E2BIG, "hook state too large");
			if ((r = sync_send(sock, SYNC_HOOKS_DONE, cr->pids[1], b.p)) < 0)
				return r;
			break;
		}
		case SYNC_READY:
			return 0;
		default:
			return fail(0, "sync: unexpected message %d", m.type);
		}
	}
}

/* The config as created, for start, exec, state and delete, which must not see later edits of the
 * bundle. A hard link is a new name, not a new file: on an ext4 without a journal every new inode
 * scans past the ones deleted in the last minutes, and containers are created and deleted in
 * bursts. Daemons write a bundle's config.json once, before create. Only a file that is ours and
 * that no one else may write is linked (its hooks run as us at delete); anything else, or another
 * filesystem, gets a copy. */
static int keep_config(const char *bundle, const char *copy, const char *text, size_t len)
{
	cleanup_free char *orig = xasprintf("%s/config.json", bundle);
	struct stat st;
	if (lstat(orig, &st) == 0 && S_ISREG(st.st_mode) && st.st_uid == geteuid() && !(st.st_mode & 022) &&
	    (size_t)st.st_size == len && link(orig, copy) == 0)
		return 0;
	return write_file_atomic(copy, text, len, 0600);
}

int container_create(const struct create_opts *o, pid_t *init_pid, int *fifo_reader)
{
	int r = valid_id(o->id);
	if (r < 0)
		return r;
	char bundle[PATH_MAX], rootfs[PATH_MAX];
	if (!realpath(o->bundle ? o->bundle : ".", bundle))
		return fail(errno, "bundle `%s`", o->bundle ? o->bundle : ".");
	struct spec s cleanup_spec = {0};
	cleanup_free char *text = NULL;
	size_t len;
	if ((r = read_spec(bundle, &s, &text, &len)) < 0)
		return r;
	cleanup_free char *rp = s.root[0] == '/' ? xstrdup(s.root) : xasprintf("%s/%s", bundle, s.root);
	if (!realpath(rp, rootfs))
		return fail(errno, "rootfs `%s`", rp);
	struct stat sb;
	if (stat(rootfs, &sb) < 0 || !S_ISDIR(sb.st_mode))
		return fail(ENOTDIR, "rootfs `%s`", rootfs);
	if (s.proc.terminal && !o->console_socket && o->console_fd < 0)
		return fail(0, "process.terminal is set but no --console-socket was given");
	void *seccomp cleanup_seccomp = NULL;
	if (s.seccomp && (r = seccomp_build(s.seccomp, &seccomp)) < 0)
		return r;
	const char *lpath = NULL;
	cleanup_close int listener = -1;
	if (s.seccomp && jstr(s.seccomp, "listenerPath", &lpath) == 0 && lpath && *lpath &&
	    (listener = unix_connect(lpath, "seccomp listener")) < 0)
		return listener;
	cleanup_close int console = o->console_fd >= 0 ? dup(o->console_fd) : -1;
	if (o->console_socket && (console = unix_connect(o->console_socket, "console socket")) < 0)
		return console;

	if (mkdir(o->root, 0700) < 0 && errno != EEXIST && (r = mkdir_p(o->root, 0700)) < 0)
		return r;
	/* Declared before `cr`, so they outlive its cleanup. */
	cleanup_free char *dir = state_dir(o->root, o->id), *cgpath = cg_path(s.cgroups_path, o->id);
	struct created cr __attribute__((cleanup(undo_create))) = {0};
	if (mkdir(dir, 0700) < 0)
		return errno == EEXIST ? fail(EEXIST, "container `%s` already exists", o->id) : fail(errno, "mkdir `%s`", dir);
	cr.dir = dir;
	cleanup_free char *cfgcopy = xasprintf("%s/config.json", dir), *fifo = xasprintf("%s/exec.fifo", dir);
	char created[64];
	now_rfc3339(created, sizeof created);
	struct cstate st = {.id = o->id, .bundle = bundle, .rootfs = rootfs, .created = created, .status = "creating", .cgroup = cgpath};
	if ((r = keep_config(bundle, cfgcopy, text, len)) < 0 || (r = state_save(dir, &st)) < 0)
		return r;
	if (mkfifo(fifo, 0600) < 0 || chmod(fifo, 0622) < 0)
		return fail(errno, "exec fifo `%s`", fifo);
	cleanup_close int fifo_fd = open(fifo, O_PATH | O_CLOEXEC);
	if (fifo_fd < 0)
		return fail(errno, "open exec fifo");
	/* `run` opens the reading end now, so the init does not stop at the fifo: one hand-off less. */
	cleanup_close int reader = fifo_reader ? open(fifo, O_RDONLY | O_NONBLOCK | O_CLOEXEC) : -1;
	if (fifo_reader && reader < 0)
		return fail(errno, "open exec fifo");
	cr.cgpath = cgpath;
	cr.cg_made = true;
	if ((r = cg_create(cgpath, &s)) < 0)
		return r;
	cleanup_close int cgfd = cg_open_unified(cgpath);
	struct cg_tasks tasks __attribute__((cleanup(cg_tasks_close))) = {.n = 0};
	if ((r = cg_tasks_open(cgpath, &tasks)) < 0)
		return r;
	int sp[2];
	if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sp) < 0)
		return fail(errno, "socketpair");
	cleanup_close int sock = sp[0], child_sock = sp[1];

	bool fast = true;
	uint64_t flags = 0;
	for (int k = 0; k < NS_COUNT; k++) {
		if (s.ns_path[k])
			fast = false;
		if (s.ns_on[k] && k != NS_CGROUP)
			flags |= ns_desc[k].flag;
	}
	if (!fast)
		flags = 0;
	pid_t pid = clone3_flags(flags, cgfd);
	if (pid < 0)
		return fail(errno, "clone the container init");
	if (pid == 0) {
		close(sock);
		close(cgfd);
		close(reader);
		struct init_ctx c = {.s = &s, .rootfs = rootfs, .cgpath = cgpath, .sock = child_sock, .fifo_fd = fifo_fd,
				     .console_fd = console, .preserve_fds = o->preserve_fds, .fast = fast,
				     .new_keyring = !o->no_new_keyring, .seccomp = seccomp, .listener = listener,
				     .tasks = &tasks};
		init_main(&c);
	}
	close(move_fd(&child_sock));
	log_debug("%s: cloned %d (%s path), cgroup %s", o->id, pid, fast ? "fast" : "join", cgpath);
	/* Without the fast path and with a pid namespace, this child forks the init and leaves. */
	cr.pids[!fast && s.ns_on[NS_PID] ? 0 : 1] = pid;
	cg_tasks_close(&tasks);
	if (cgfd < 0 && (r = cg_attach_unified(cgpath, pid)) < 0)
		return r;
	if (s.proc.has_oom) {
		char p[64];
		snprintf(p, sizeof p, "/proc/%d/oom_score_adj", pid);
		if ((r = write_str_at(AT_FDCWD, p, "%lld", (long long)s.proc.oom)) < 0)
			return r;
	}
	if (fast && s.ns_on[NS_USER] && (r = write_idmaps(pid, &s)) < 0)
		return r;
	if ((r = sync_send(sock, SYNC_GO, 0, NULL)) < 0 || (r = parent_loop(sock, &cr, &s, o->id, bundle, dir, &st)) < 0)
		return r;
	st.pid = cr.pids[1];
	st.start_time = proc_start_time(st.pid, NULL);
	st.status = "created";
	log_debug("%s: created, init %d", o->id, st.pid);
	if ((r = state_save(dir, &st)) < 0)
		return r;
	if (o->pid_file) {
		char v[32];
		int n = snprintf(v, sizeof v, "%d", st.pid);
		if ((r = write_file_atomic(o->pid_file, v, n, 0644)) < 0)
			return r;
	}
	*init_pid = st.pid;
	if (fifo_reader)
		*fifo_reader = move_fd(&reader);
	memset(&cr, 0, sizeof cr);
	return 0;
}

/* ---- start, kill, delete, pause ---- */

static int load_live(const char *root, const char *id, struct cstate *st, const char **status)
{
	int r = state_load(root, id, st);
	if (r < 0)
		return r;
	*status = state_status(root, st);
	return 0;
}

static int load_spec_of(const char *root, const char *id, struct spec *s, char **text)
{
	cleanup_free char *p = xasprintf("%s/%s/config.json", root, id);
	size_t len;
	int r = read_file_at(AT_FDCWD, p, text, &len);
	return r < 0 ? r : spec_load(s, *text, len);
}

int container_start(const char *root, const char *id, int fifo_reader)
{
	struct cstate st cleanup_state = {0};
	const char *status;
	int r = load_live(root, id, &st, &status);
	if (r < 0)
		return r;
	/* With the reader from `run`, the init may already have run to completion. */
	if (fifo_reader < 0 && strcmp(status, "created"))
		return fail(0, "cannot start a container that is %s", status);
	/* The pidfd first: once the fifo is open the init may exec, finish and be reaped before this
	 * process runs again, and a pid looked up after that is gone (ESRCH) though start succeeded. */
	cleanup_close int pfd = pidfd_open(st.pid);
	if (pfd < 0)
		return errno == ESRCH ? fail(0, "container init exited before it was started") : fail(errno, "pidfd_open");
	cleanup_free char *fifo = xasprintf("%s/%s/exec.fifo", root, id);
	cleanup_close int fd = fifo_reader >= 0 ? fifo_reader : open(fifo, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
	if (fd < 0)
		return fail(errno, "open exec fifo");
	struct pollfd p[2] = {{fd, POLLIN, 0}, {pfd, POLLIN, 0}};
	char c;
	for (;;) {
		if (poll(p, 2, -1) < 0 && errno != EINTR)
			return fail(errno, "poll exec fifo");
		if (read(fd, &c, 1) == 1)
			break;
		if (p[1].revents)
			return fail(0, "container init exited before it was started");
	}
	unlink(fifo);
	struct spec s cleanup_spec = {0};
	cleanup_free char *text = NULL;
	bool poststart = load_spec_of(root, id, &s, &text) == 0 && s.hooks[HOOK_POSTSTART].n;
	/* EOF once the init has exec'd (its write end is close-on-exec) or died: `start` returns with
	 * the container's process running. `run` waits for its exit anyway, unless hooks follow. */
	if (fifo_reader < 0 || poststart) {
		p[0].revents = 0;
		while (poll(p, 1, -1) < 0 && errno == EINTR)
			;
		while (read(fd, &c, 1) < 0 && errno == EINTR)
			;
	}
	if (poststart) {
		cleanup_buf struct buf b = {0};
		state_hook_json(&b, s.annotations, id, "running", st.pid, st.bundle);
		if ((r = run_hooks(s.hooks[HOOK_POSTSTART].v, s.hooks[HOOK_POSTSTART].n, "poststart", b.p)) < 0)
			return r;
	}
	return 0;
}

int container_kill(const char *root, const char *id, int sig, bool all)
{
	struct cstate st cleanup_state = {0};
	const char *status;
	int r = load_live(root, id, &st, &status);
	if (r < 0)
		return r;
	if (!strcmp(status, "stopped") || !strcmp(status, "creating"))
		return fail(0, "container `%s` is not running", id);
	if (all) {
		cleanup_free pid_t *pids = NULL;
		size_t n = 0;
		if ((r = cg_pids(st.cgroup, &pids, &n)) < 0)
			return r;
		for (size_t i = 0; i < n; i++)
			kill(pids[i], sig);
		return 0;
	}
	cleanup_close int pfd = pidfd_open(st.pid);
	if (pfd < 0 || syscall(SYS_pidfd_send_signal, pfd, sig, NULL, 0) < 0)
		return fail(errno, "kill container `%s`", id);
	return 0;
}

static int wait_gone(pid_t pid, int timeout_ms)
{
	cleanup_close int pfd = pidfd_open(pid);
	if (pfd < 0)
		return 0;
	struct pollfd p = {pfd, POLLIN, 0};
	int n = poll(&p, 1, timeout_ms);
	if (n == 0)
		return fail(ETIMEDOUT, "process %d did not exit", pid);
	/* If it is our own child (run), reap it so its cgroup can go. */
	waitpid(pid, NULL, WNOHANG);
	return 0;
}

static int destroy(const char *root, const struct cstate *st)
{
	struct spec s cleanup_spec = {0};
	cleanup_free char *text = NULL;
	if (load_spec_of(root, st->id, &s, &text) == 0 && s.hooks[HOOK_POSTSTOP].n) {
		cleanup_buf struct buf b = {0};
		state_hook_json(&b, s.annotations, st->id, "stopped", 0, st->bundle);
		if (run_hooks(s.hooks[HOOK_POSTSTOP].v, s.hooks[HOOK_POSTSTOP].n, "poststop", b.p) < 0)
			log_error(g_err);
	}
	int r = cg_destroy(st->cgroup);
	cleanup_free char *dir = state_dir(root, st->id);
	remove_state_dir(dir);
	return r;
}

int container_delete(const char *root, const char *id, bool force)
{
	struct cstate st cleanup_state = {0};
	const char *status;
	int r = load_live(root, id, &st, &status);
	if (r < 0)
		return r;
	bool created = !strcmp(status, "created"), stopped = !strcmp(status, "stopped");
	if (!stopped && !created && !force && strcmp(status, "creating"))
		return fail(0, "cannot delete container `%s` that is not stopped: %s", id, status);
	if (!stopped && st.pid)
		kill(st.pid, SIGKILL);
	/* Without a pid namespace, processes can outlive the init: they go too, or the cgroup
	 * could not be removed. */
	cleanup_free pid_t *pids = NULL;
	size_t n = 0;
	if (cg_pids(st.cgroup, &pids, &n) == 0)
		for (size_t i = 0; i < n; i++)
			kill(pids[i], SIGKILL);
	if (!strcmp(status, "paused"))
		cg_freeze(st.cgroup, false);
	if (!stopped && st.pid && (r = wait_gone(st.pid, 10000)) < 0)
		return r;
	return destroy(root, &st);
}

int container_pause(const char *root, const char *id, bool pause)
{
	struct cstate st cleanup_state = {0};
	const char *status;
	int r = load_live(root, id, &st, &status);
	if (r < 0)
		return r;
	if (strcmp(status, pause ? "running" : "paused"))
		return fail(0, "container `%s` is %s, not %s", id, status, pause ? "running" : "paused");
	return cg_freeze(st.cgroup, pause);
}

int container_update(const char *root, const char *id, const char *resources_file)
{
	struct cstate st cleanup_state = {0};
	const char *status;
	int r = load_live(root, id, &st, &status);
	if (r < 0)
		return r;
	if (!strcmp(status, "stopped"))
		return fail(0, "container `%s` is stopped", id);
	cleanup_free char *text = NULL;
	size_t len;
	if ((r = read_file_at(AT_FDCWD, strcmp(resources_file, "-") ? resources_file : "/dev/stdin", &text, &len)) < 0)
		return r;
	struct spec s cleanup_spec = {0};
	if ((r = json_parse(&s.doc, text, len)) < 0)
		return fail_ctx(r, "--resources");
	if (s.doc.root->type != J_OBJ)
		return fail(0, "--resources: not an object");
	/* The same writer as at create; the cgroup directories exist already. */
	s.resources = s.doc.root;
	return cg_create(st.cgroup, &s);
}

int container_state(const char *root, const char *id)
{
	struct cstate st cleanup_state = {0};
	const char *status;
	int r = load_live(root, id, &st, &status);
	if (r < 0)
		return r;
	cleanup_buf struct buf b = {0};
	state_json(&b, root, &st, status, true, OCI_VERSION);
	printf("%s\n", b.p);
	return 0;
}

int container_list(const char *root, bool json, bool quiet)
{
	DIR *d cleanup_dir = opendir(root);
	if (!d && errno != ENOENT)
		return fail(errno, "open `%s`", root);
	cleanup_buf struct buf b = {0};
	if (json)
		buf_printf(&b, "[");
	else if (!quiet)
		buf_printf(&b, "%-12s %-8s %-10s %-40s %-31s %s\n", "ID", "PID", "STATUS", "BUNDLE", "CREATED", "OWNER");
	bool first = true;
	for (struct dirent *e; d && (e = readdir(d));) {
		if (e->d_name[0] == '.')
			continue;
		struct cstate st cleanup_state = {0};
		if (state_load(root, e->d_name, &st) < 0)
			continue;
		const char *status = state_status(root, &st);
		if (json) {
			buf_printf(&b, "%s", first ? "" : ",");
			state_json(&b, root, &st, status, false, OCI_VERSION);
		} else if (quiet) {
			buf_printf(&b, "%s\n", st.id);
		} else {
			buf_printf(&b, "%-12s %-8d %-10s %-40s %-31s %s\n", st.id, strcmp(status, "stopped") ? st.pid : 0, status,
				   st.bundle, st.created, "root");
		}
		first = false;
	}
	if (json)
		buf_printf(&b, "]\n");
	fputs(b.p ? b.p : "", stdout);
	return 0;
}

int container_ps(const char *root, const char *id, bool json, char **ps_args, int n_ps_args)
{
	struct cstate st cleanup_state = {0};
	const char *status;
	int r = load_live(root, id, &st, &status);
	if (r < 0)
		return r;
	cleanup_free pid_t *pids = NULL;
	size_t n = 0;
	if (strcmp(status, "stopped") && (r = cg_pids(st.cgroup, &pids, &n)) < 0)
		return r;
	if (json) {
		printf("[");
		for (size_t i = 0; i < n; i++)
			printf("%s%d", i ? "," : "", pids[i]);
		printf("]\n");
		return 0;
	}
	/* Like runc: run ps(1) with the given options (default -ef) and keep the header and the
	 * lines whose PID column is one of the container's. */
	int pp[2] cleanup_pair = {-1, -1};
	if (pipe2(pp, O_CLOEXEC) < 0)
		return fail(errno, "pipe");
	pid_t pid = fork();
	if (pid == 0) {
		dup2(pp[1], 1);
		char *argv[64] = {"ps"};
		int k = 1;
		for (int i = 0; i < n_ps_args && k < 62; i++)
			argv[k++] = ps_args[i];
		if (k == 1)
			argv[k++] = "-ef";
		argv[k] = NULL;
		execvp("ps", argv);
		_exit(127);
	}
	close(move_fd(&pp[1]));
	FILE *f cleanup_file = fdopen(move_fd(&pp[0]), "r");
	char line[4096];
	int pidcol = -1;
	while (f && fgets(line, sizeof line, f)) {
		char copy[4096];
		strcpy(copy, line);
		int col = 0;
		bool keep = false;
		for (char *save, *t = strtok_r(copy, " \t\n", &save); t; t = strtok_r(NULL, " \t\n", &save), col++) {
			if (pidcol < 0 && !strcmp(t, "PID")) {
				pidcol = col;
				keep = true;
				break;
			}
			if (col == pidcol)
				for (size_t i = 0; i < n; i++)
					keep |= atoi(t) == pids[i];
		}
		if (keep)
			fputs(line, stdout);
	}
	waitpid(pid, NULL, 0);
	return 0;
}

/* ---- run ---- */

int container_run(const struct create_opts *o, bool detach, int *exit_code)
{
	/* In the foreground without --console-socket, a terminal is proxied to our own stdio. */
	int sp[2] cleanup_pair = {-1, -1};
	struct create_opts co = *o;
	if (!detach && !o->console_socket) {
		if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sp) < 0)
			return fail(errno, "socketpair");
		co.console_fd = sp[1];
	}
	pid_t pid;
	int reader;
	int r = container_create(&co, &pid, &reader);
	if (r < 0)
		return r;
	/* The init sent the master (if it has a terminal) before it reported ready. */
	cleanup_close int master = sp[0] >= 0 ? console_recv(sp[0], false) : -1;
	if ((r = container_start(o->root, o->id, reader)) < 0) {
		container_delete(o->root, o->id, true);
		return r;
	}
	if (detach) {
		*exit_code = 0;
		return 0;
	}
	forward_signals(pid);
	if (master >= 0 && (r = console_proxy(master)) < 0)
		log_error(g_err);
	int st;
	while (waitpid(pid, &st, 0) < 0)
		if (errno != EINTR)
			return fail(errno, "wait for the container");
	*exit_code = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
	return container_delete(o->root, o->id, true);
}
