#include "process.h"

#include "seccomp.h"

#include <fcntl.h>
#include <grp.h>
#include <linux/capability.h>
#include <linux/close_range.h>
#include <linux/openat2.h>
#include <poll.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>

static int capset_all(const uint64_t caps[CAPSET_COUNT])
{
	struct __user_cap_header_struct h = {_LINUX_CAPABILITY_VERSION_3, 0};
	struct __user_cap_data_struct d[2];
	for (int i = 0; i < 2; i++) {
		d[i].effective = caps[CAP_EFFECTIVE] >> (32 * i);
		d[i].permitted = caps[CAP_PERMITTED] >> (32 * i);
		d[i].inheritable = caps[CAP_INHERITABLE] >> (32 * i);
	}
	return syscall(SYS_capset, &h, d) < 0 ? fail(errno, "set capabilities") : 0;
}

static int set_lsm(const struct process *p)
{
	if (p->apparmor && *p->apparmor) {
		if (access("/sys/kernel/security/apparmor", F_OK) < 0)
			return fail(0, "process.apparmorProfile `%s` is set but AppArmor is not enabled on this host", p->apparmor);
		cleanup_free char *v = xasprintf("exec %s", p->apparmor);
		int r = write_file_at(AT_FDCWD, "/proc/self/attr/apparmor/exec", v, strlen(v));
		if (r < 0)
			return fail_ctx(r, "apparmor");
	}
	if (p->selinux && *p->selinux) {
		if (access("/sys/fs/selinux/enforce", F_OK) < 0)
			return fail(0, "process.selinuxLabel `%s` is set but SELinux is not enabled on this host", p->selinux);
		int r = write_file_at(AT_FDCWD, "/proc/self/attr/exec", p->selinux, strlen(p->selinux));
		if (r < 0)
			return fail_ctx(r, "selinux");
	}
	return 0;
}

/* The cwd must resolve inside the container's root: no magic links (/proc/self/fd/N), no
 * escape through "..", and getcwd must not report an unreachable path. */
static int enter_cwd(const char *cwd)
{
	cleanup_close int root = open("/", O_PATH | O_DIRECTORY | O_CLOEXEC);
	struct open_how how = {.flags = O_PATH | O_DIRECTORY | O_CLOEXEC, .resolve = RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS};
	cleanup_close int fd = syscall(SYS_openat2, root, cwd, &how, sizeof how);
	if (fd < 0 || fchdir(fd) < 0)
		return fail(errno, "process.cwd `%s` does not resolve to a directory inside the rootfs", cwd);
	char buf[4096];
	if (!getcwd(buf, sizeof buf) || buf[0] != '/')
		return fail(EPERM, "process.cwd `%s` is outside the rootfs", cwd);
	return 0;
}

int process_finalize(const struct process *p, const struct seccomp_load *sl)
{
	int r;
	for (size_t i = 0; i < p->n_rlimits; i++) {
		struct rlimit rl = {p->rlimits[i].soft, p->rlimits[i].hard};
		if (setrlimit(p->rlimits[i].res, &rl) < 0)
			return fail(errno, "setrlimit %d", p->rlimits[i].res);
	}
	if ((r = set_lsm(p)) < 0)
		return r;
	/* Without no_new_privs, loading a filter needs CAP_SYS_ADMIN: do it while we still have it. */
	if (sl && sl->ctx && !p->nnp && (r = seccomp_install(sl)) < 0)
		return r;
	for (int cap = 0; cap < 64; cap++)
		if (!(p->caps[CAP_BOUNDING] & (1ULL << cap)) && prctl(PR_CAPBSET_DROP, cap, 0, 0, 0) < 0 && errno != EINVAL)
			return fail(errno, "drop capability %d from the bounding set", cap);
	if (prctl(PR_SET_KEEPCAPS, 1, 0, 0, 0) < 0)
		return fail(errno, "keep capabilities");
	if (setgroups(p->n_agids, p->agids) < 0)
		return fail(errno, "set additional groups");
	if (setresgid(p->gid, p->gid, p->gid) < 0)
		return fail(errno, "set gid %u", p->gid);
	if (setresuid(p->uid, p->uid, p->uid) < 0)
		return fail(errno, "set uid %u", p->uid);
	if ((r = capset_all(p->caps)) < 0)
		return r;
	if (prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0) < 0)
		return fail(errno, "clear ambient capabilities");
	/* An ambient capability needs to be permitted and inheritable; configs (runc's own `spec`)
	 * often list ambient ones without inheritable. Like runc, those are skipped, not fatal. */
	for (int cap = 0; cap < 64; cap++)
		if ((p->caps[CAP_AMBIENT] & (1ULL << cap)) && prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_RAISE, cap, 0, 0) < 0)
			log_debug("ambient capability %d not raised: %s", cap, strerror(errno));
	umask(p->has_umask ? p->umask : 022);
	if ((r = enter_cwd(p->cwd)) < 0)
		return r;
	if (p->nnp && prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0)
		return fail(errno, "set no_new_privs");
	if (sl && sl->ctx && p->nnp && (r = seccomp_install(sl)) < 0)
		return r;
	return 0;
}

static bool executable(const char *path)
{
	struct stat st;
	return stat(path, &st) == 0 && S_ISREG(st.st_mode) && (st.st_mode & 0111);
}

int process_find_exec(const struct process *p, char **out)
{
	const char *name = p->args[0];
	if (strchr(name, '/')) {
		if (!executable(name))
			return fail(ENOENT, "exec: `%s`", name);
		*out = xstrdup(name);
		return 0;
	}
	const char *path = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";
	for (size_t i = 0; i < p->n_env; i++)
		if (!strncmp(p->env[i], "PATH=", 5))
			path = p->env[i] + 5;
	cleanup_free char *dirs = xstrdup(path);
	for (char *save, *d = strtok_r(dirs, ":", &save); d; d = strtok_r(NULL, ":", &save)) {
		cleanup_free char *cand = xasprintf("%s/%s", *d ? d : ".", name);
		if (executable(cand)) {
			*out = move_ptr(&cand);
			return 0;
		}
	}
	return fail(0, "exec: `%s`: executable file not found in $PATH", name);
}

int process_close_fds(int preserve_fds)
{
	/* Not an fd, but the same kind of inheritance: the caller's blocked signals stay with it. */
	sigset_t none;
	sigemptyset(&none);
	sigprocmask(SIG_SETMASK, &none, NULL);
	unsigned first = 3 + preserve_fds;
	if (syscall(SYS_close_range, first, ~0U, CLOSE_RANGE_CLOEXEC) < 0)
		return fail(errno, "mark fds close-on-exec");
	for (unsigned fd = 3; fd < first; fd++)
		if (fcntl(fd, F_SETFD, 0) < 0 && errno != EBADF)
			return fail(errno, "preserve fd %u", fd);
	return 0;
}

static int wait_hook(pid_t pid, int64_t timeout, const char *path, const char *kind)
{
	cleanup_close int pfd = syscall(SYS_pidfd_open, pid, 0);
	if (pfd >= 0 && timeout > 0) {
		struct pollfd p = {pfd, POLLIN, 0};
		int n;
		while ((n = poll(&p, 1, timeout * 1000)) < 0 && errno == EINTR)
			;
		if (n == 0) {
			kill(pid, SIGKILL);
			waitpid(pid, NULL, 0);
			return fail(ETIMEDOUT, "%s hook `%s` timed out after %llds", kind, path, (long long)timeout);
		}
	}
	int st;
	while (waitpid(pid, &st, 0) < 0)
		if (errno != EINTR)
			return fail(errno, "wait for %s hook `%s`", kind, path);
	if (WIFEXITED(st) && WEXITSTATUS(st) == 0)
		return 0;
	return fail(0, "%s hook `%s` failed: %s %d", kind, path, WIFEXITED(st) ? "exit status" : "signal",
		    WIFEXITED(st) ? WEXITSTATUS(st) : WTERMSIG(st));
}

int run_hooks(const struct hook *h, size_t n, const char *kind, const char *state_json)
{
	for (size_t i = 0; i < n; i++) {
		int pp[2] cleanup_pair = {-1, -1};
		if (pipe2(pp, O_CLOEXEC) < 0)
			return fail(errno, "pipe for hook");
		pid_t pid = fork();
		if (pid < 0)
			return fail(errno, "fork hook");
		if (pid == 0) {
			dup2(pp[0], 0);
			const char *argv0[] = {h[i].path, NULL};
			const char *envp0[] = {NULL};
			execve(h[i].path, (char **)(h[i].args && h[i].args[0] ? h[i].args : argv0),
			       (char **)(h[i].env ? h[i].env : envp0));
			fprintf(stderr, "berth-runtime: exec %s hook `%s`: %s\n", kind, h[i].path, strerror(errno));
			_exit(127);
		}
		close(move_fd(&pp[0]));
		/* A hook that does not read its stdin must not kill us with SIGPIPE; the disposition is
		 * restored, since an ignored signal would be inherited by the container's process. */
		void (*old)(int) = signal(SIGPIPE, SIG_IGN);
		(void)write_all(pp[1], state_json, strlen(state_json));
		signal(SIGPIPE, old);
		close(move_fd(&pp[1]));
		int r = wait_hook(pid, h[i].timeout, h[i].path, kind);
		if (r < 0)
			return r;
	}
	return 0;
}

static pid_t fwd_pid;
static void forward(int sig) { kill(fwd_pid, sig); }

void forward_signals(pid_t pid)
{
	static const int sigs[] = {SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGUSR1, SIGUSR2, SIGWINCH};
	fwd_pid = pid;
	for (size_t i = 0; i < sizeof sigs / sizeof *sigs; i++)
		signal(sigs[i], forward);
}
