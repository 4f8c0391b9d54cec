/* `exec`: a new process in a running container. The parent enters the container's pid namespace
 * (which only affects its children) and clones one child straight into it and into the cgroup;
 * the child joins the other namespaces in one setns on the init's pidfd. */
#include "cgroups.h"
#include "container.h"
#include "process.h"
#include "seccomp.h"
#include "spec.h"
#include "state.h"
#include "sync.h"

#include <fcntl.h>
#include <linux/sched.h>
#include <sched.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>

/* The namespaces of the init that differ from ours: joining one's own user namespace fails. */
static int ns_flags_to_join(pid_t pid)
{
	int flags = 0;
	for (int k = 0; k < NS_COUNT; k++) {
		char a[64], b[64];
		struct stat sa, sb;
		snprintf(a, sizeof a, "/proc/%d/ns/%s", pid, ns_desc[k].proc);
		snprintf(b, sizeof b, "/proc/self/ns/%s", ns_desc[k].proc);
		if (stat(a, &sa) == 0 && stat(b, &sb) == 0 && (sa.st_ino != sb.st_ino || sa.st_dev != sb.st_dev))
			flags |= ns_desc[k].flag;
	}
	return flags;
}

static int parse_user(const char *u, struct process *p)
{
	char *end;
	unsigned long uid = strtoul(u, &end, 10);
	if (end == u || (*end && *end != ':') || uid >= UINT32_MAX)
		return fail(0, "--user `%s`: expected uid[:gid]", u);
	p->uid = uid;
	if (*end == ':') {
		const char *g = end + 1;
		unsigned long gid = strtoul(g, &end, 10);
		if (end == g || *end || gid >= UINT32_MAX)
			return fail(0, "--user `%s`: expected uid[:gid]", u);
		p->gid = gid;
	}
	return 0;
}

static int build_process(const struct exec_opts *o, struct spec *s, struct jdoc *pdoc, struct process *p)
{
	int r;
	if (o->process_file) {
		cleanup_free char *text = NULL;
		size_t len;
		if ((r = read_file_at(AT_FDCWD, o->process_file, &text, &len)) < 0 || (r = json_parse(pdoc, text, len)) < 0)
			return fail_ctx(r, "--process");
		return spec_parse_process(s, pdoc->root, p);
	}
	*p = s->proc;
	if (!o->n_args)
		return fail(0, "exec: no command given");
	p->args = o->args;
	p->terminal = o->tty;
	if (o->cwd)
		p->cwd = o->cwd;
	if (o->user && (r = parse_user(o->user, p)) < 0)
		return r;
	if (o->n_agids) {
		p->agids = arena_alloc(&s->doc, o->n_agids * sizeof *p->agids);
		p->n_agids = o->n_agids;
		for (size_t i = 0; i < o->n_agids; i++)
			p->agids[i] = strtoul(o->agids[i], NULL, 10);
	}
	if (o->n_env) {
		const char **env = arena_alloc(&s->doc, (p->n_env + o->n_env + 1) * sizeof *env);
		memcpy(env, p->env, p->n_env * sizeof *env);
		memcpy(env + p->n_env, o->env, o->n_env * sizeof *env);
		p->env = env;
		p->n_env += o->n_env;
	}
	for (size_t i = 0; i < o->n_caps; i++) {
		int c = cap_from_name(o->caps[i]);
		if (c < 0)
			return fail(0, "--cap: unknown capability `%s`", o->caps[i]);
		for (int k = 0; k < CAPSET_COUNT; k++)
			if (k != CAP_INHERITABLE && k != CAP_AMBIENT)
				p->caps[k] |= 1ULL << c;
	}
	if (o->nnp)
		p->nnp = true;
	if (o->apparmor)
		p->apparmor = o->apparmor;
	return 0;
}

struct exec_child { int sock, pidfd, flags, console, preserve; const struct process *p; struct seccomp_load sl; struct cg_tasks *tasks; };

static int exec_child_run(struct exec_child *c)
{
	int r;
	/* Nothing in the container may ptrace us or open our /proc/<pid>/exe before the exec. */
	if (prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0) < 0 || prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) < 0)
		return fail(errno, "prctl");
	if ((r = sync_expect(c->sock, SYNC_GO)) < 0 || (r = cg_join_self(c->tasks)) < 0)
		return r;
	if (c->flags && setns(c->pidfd, c->flags) < 0)
		return fail(errno, "join the container's namespaces");
	close(c->pidfd);
	if (c->p->terminal && (r = console_setup(c->console, c->p, false)) < 0)
		return r;
	if (c->console >= 0)
		close(c->console);
	cleanup_free char *exe = NULL;
	if ((r = process_find_exec(c->p, &exe)) < 0 || (r = process_close_fds(c->preserve)) < 0 ||
	    (r = process_finalize(c->p, &c->sl)) < 0)
		return r;
	/* A detached process outlives this runtime: no death signal from here on. */
	if (prctl(PR_SET_PDEATHSIG, 0, 0, 0, 0) < 0)
		return fail(errno, "prctl");
	if ((r = sync_send(c->sock, SYNC_READY, 0, NULL)) < 0)
		return r;
	execve(exe, (char **)c->p->args, (char **)(c->p->env ? c->p->env : (const char *[]){NULL}));
	fprintf(stderr, "berth-runtime: exec `%s`: %s\n", exe, strerror(errno));
	_exit(127);
}

int container_exec(const struct exec_opts *o, int *exit_code)
{
	struct cstate st cleanup_state = {0};
	int r = state_load(o->root, o->id, &st);
	if (r < 0)
		return r;
	const char *status = state_status(o->root, &st);
	if (strcmp(status, "running") && strcmp(status, "created"))
		return fail(0, "cannot exec in a %s container", status);
	struct spec s cleanup_spec = {0};
	struct jdoc pdoc cleanup_json = {0};
	cleanup_free char *text = NULL, *cfg = xasprintf("%s/%s/config.json", o->root, o->id);
	size_t len;
	if ((r = read_file_at(AT_FDCWD, cfg, &text, &len)) < 0 || (r = spec_load(&s, text, len)) < 0)
		return r;
	struct process p;
	if ((r = build_process(o, &s, &pdoc, &p)) < 0)
		return r;
	if (p.terminal && !o->console_socket && o->detach)
		return fail(0, "a detached process with a terminal needs --console-socket");
	void *seccomp cleanup_seccomp = NULL;
	if (s.seccomp && (r = seccomp_build(s.seccomp, &seccomp)) < 0)
		return r;
	/* In the foreground without --console-socket, the terminal is proxied to our own stdio. */
	cleanup_close int console = -1, proxy = -1;
	if (o->console_socket && (console = unix_connect(o->console_socket, "console socket")) < 0)
		return console;
	if (p.terminal && console < 0) {
		int cp[2];
		if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, cp) < 0)
			return fail(errno, "socketpair");
		proxy = cp[0];
		console = cp[1];
	}
	const char *lpath = NULL;
	cleanup_close int listener = -1;
	cleanup_free char *pstate = NULL;
	if (s.seccomp && jstr(s.seccomp, "listenerPath", &lpath) == 0 && lpath && *lpath) {
		if ((listener = unix_connect(lpath, "seccomp listener")) < 0)
			return listener;
		cleanup_buf struct buf b = {0};
		state_hook_json(&b, s.annotations, o->id, status, st.pid, st.bundle);
		pstate = seccomp_process_state(s.seccomp, st.pid, b.p);
	}
	cleanup_close int pidfd = syscall(SYS_pidfd_open, st.pid, 0);
	if (pidfd < 0)
		return fail(errno, "open the container's init");
	int flags = ns_flags_to_join(st.pid);
	if ((flags & CLONE_NEWPID) && setns(pidfd, CLONE_NEWPID) < 0)
		return fail(errno, "join the container's pid namespace");
	flags &= ~CLONE_NEWPID;
	int sp[2];
	if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sp) < 0)
		return fail(errno, "socketpair");
	cleanup_close int sock = sp[0], child_sock = sp[1];
	cleanup_close int cgfd = cg_open_unified(st.cgroup);
	struct cg_tasks tasks __attribute__((cleanup(cg_tasks_close))) = {.n = 0};
	if ((r = cg_tasks_open(st.cgroup, &tasks)) < 0)
		return r;
	struct clone_args a = {.exit_signal = SIGCHLD};
	if (cgfd >= 0) {
		a.flags = CLONE_INTO_CGROUP;
		a.cgroup = cgfd;
	}
	pid_t pid = syscall(SYS_clone3, &a, sizeof a);
	if (pid < 0 && cgfd >= 0) {
		close(move_fd(&cgfd));
		pid = fork();
	}
	if (pid < 0)
		return fail(errno, "clone");
	if (pid == 0) {
		close(sock);
		close(cgfd);
		close(proxy);
		struct exec_child c = {.sock = child_sock, .pidfd = pidfd, .flags = flags, .console = console,
					.preserve = o->preserve_fds, .p = &p, .sl = {seccomp, listener, pstate}, .tasks = &tasks};
		exec_child_run(&c);
		sync_send(c.sock, SYNC_ERROR, 0, g_err);
		_exit(1);
	}
	close(move_fd(&child_sock));
	log_debug("%s: exec child %d joins namespaces 0x%x", o->id, pid, flags);
	cg_tasks_close(&tasks);
	if ((cgfd < 0 && (r = cg_attach_unified(st.cgroup, pid)) < 0) || (r = sync_send(sock, SYNC_GO, 0, NULL)) < 0 ||
	    (r = sync_expect(sock, SYNC_READY)) < 0) {
		kill(pid, SIGKILL);
		waitpid(pid, NULL, 0);
		return r;
	}
	/* The child's end is close-on-exec: EOF means the process is running (or exec failed and
	 * the child is exiting), so a pid file never names the runtime. */
	struct sync_msg m;
	while (recv(sock, &m, sizeof m, 0) > 0)
		;
	if (o->pid_file) {
		char v[32];
		int n = snprintf(v, sizeof v, "%d", pid);
		if ((r = write_file_atomic(o->pid_file, v, n, 0644)) < 0)
			return r;
	}
	if (o->detach) {
		*exit_code = 0;
		return 0;
	}
	forward_signals(pid);
	if (proxy >= 0) {
		cleanup_close int master = console_recv(proxy, true);
		if (master < 0 || console_proxy(master) < 0)
			log_error(g_err);
	}
	int ws;
	while (waitpid(pid, &ws, 0) < 0)
		if (errno != EINTR)
			return fail(errno, "wait for the process");
	*exit_code = WIFEXITED(ws) ? WEXITSTATUS(ws) : 128 + WTERMSIG(ws);
	return 0;
}
