#include "seccomp.h"

#include <ctype.h>
#include <seccomp.h>
#include <sys/socket.h>

const char *const seccomp_action_names[] = {"SCMP_ACT_KILL", "SCMP_ACT_KILL_PROCESS", "SCMP_ACT_KILL_THREAD",
					    "SCMP_ACT_TRAP", "SCMP_ACT_ERRNO", "SCMP_ACT_TRACE", "SCMP_ACT_ALLOW",
					    "SCMP_ACT_LOG", "SCMP_ACT_NOTIFY", NULL};
const char *const seccomp_op_names[] = {"SCMP_CMP_NE", "SCMP_CMP_LT", "SCMP_CMP_LE", "SCMP_CMP_EQ",
					"SCMP_CMP_GE", "SCMP_CMP_GT", "SCMP_CMP_MASKED_EQ", NULL};
const char *const seccomp_flag_names[] = {"SECCOMP_FILTER_FLAG_TSYNC", "SECCOMP_FILTER_FLAG_LOG",
					  "SECCOMP_FILTER_FLAG_SPEC_ALLOW", NULL};

static int action(const struct jv *o, const char *name, uint32_t *out)
{
	int64_t ret = EPERM;
	bool has = false;
	int r = jint(o, "errnoRet", 0, 4095, &ret, &has);
	if (r < 0)
		return r;
	static const struct { const char *n; uint32_t a; } acts[] = {
		{"SCMP_ACT_KILL", SCMP_ACT_KILL}, {"SCMP_ACT_KILL_THREAD", SCMP_ACT_KILL_THREAD},
		{"SCMP_ACT_KILL_PROCESS", SCMP_ACT_KILL_PROCESS}, {"SCMP_ACT_TRAP", SCMP_ACT_TRAP},
		{"SCMP_ACT_ALLOW", SCMP_ACT_ALLOW}, {"SCMP_ACT_LOG", SCMP_ACT_LOG}};
	for (size_t i = 0; i < sizeof acts / sizeof *acts; i++)
		if (!strcmp(name, acts[i].n)) {
			*out = acts[i].a;
			return 0;
		}
	if (!strcmp(name, "SCMP_ACT_ERRNO")) {
		*out = SCMP_ACT_ERRNO(ret);
		return 0;
	}
	if (!strcmp(name, "SCMP_ACT_TRACE")) {
		*out = SCMP_ACT_TRACE(has ? ret : EPERM);
		return 0;
	}
	if (!strcmp(name, "SCMP_ACT_NOTIFY")) {
		*out = SCMP_ACT_NOTIFY;
		return 0;
	}
	return fail(0, "seccomp: unknown action `%s`", name);
}

static int arch_token(const char *name, uint32_t *out)
{
	char low[32];
	const char *p = strncmp(name, "SCMP_ARCH_", 10) ? name : name + 10;
	size_t i = 0;
	for (; p[i] && i < sizeof low - 1; i++)
		low[i] = tolower((unsigned char)p[i]);
	low[i] = 0;
	*out = seccomp_arch_resolve_name(low);
	return *out ? 0 : fail(0, "seccomp: unknown architecture `%s`", name);
}

static int add_rule(scmp_filter_ctx ctx, uint32_t act, int nr, const struct jv *args)
{
	struct scmp_arg_cmp cmp[6];
	unsigned n = 0;
	bool dup = false;
	JFOR(a, args) {
		int64_t idx = -1, val = 0, val2 = 0;
		const char *op = NULL;
		int r;
		if ((r = jint(a, "index", 0, 5, &idx, NULL)) < 0 || (r = jstr(a, "op", &op)) < 0 ||
		    (r = jint(a, "value", INT64_MIN, INT64_MAX, &val, NULL)) < 0 ||
		    (r = jint(a, "valueTwo", INT64_MIN, INT64_MAX, &val2, NULL)) < 0)
			return fail_ctx(r, "seccomp args");
		if (idx < 0 || !op || n == 6)
			return fail(0, "seccomp: an argument needs index and op");
		static const enum scmp_compare ops[] = {SCMP_CMP_NE, SCMP_CMP_LT, SCMP_CMP_LE, SCMP_CMP_EQ,
							SCMP_CMP_GE, SCMP_CMP_GT, SCMP_CMP_MASKED_EQ};
		size_t k = 0;
		while (seccomp_op_names[k] && strcmp(seccomp_op_names[k], op))
			k++;
		if (!seccomp_op_names[k])
			return fail(0, "seccomp: unknown operator `%s`", op);
		for (unsigned j = 0; j < n; j++)
			dup |= cmp[j].arg == idx;
		cmp[n++] = (struct scmp_arg_cmp){idx, ops[k], (uint64_t)val, (uint64_t)val2};
	}
	int r = 0;
	/* libseccomp ANDs the comparisons of one rule but refuses two on the same argument; those
	 * become one rule each (an OR), which is how runc reads such profiles. */
	if (!dup)
		r = seccomp_rule_add_array(ctx, act, nr, n, cmp);
	else
		for (unsigned j = 0; j < n && r == 0; j++)
			r = seccomp_rule_add_array(ctx, act, nr, 1, &cmp[j]);
	return r < 0 && r != -EEXIST ? fail(-r, "seccomp: add rule for syscall %d", nr) : 0;
}

int seccomp_build(const struct jv *cfg, void **out)
{
	const char *def = NULL;
	int r;
	uint32_t defact;
	if ((r = jstr(cfg, "defaultAction", &def)) < 0)
		return fail_ctx(r, "seccomp");
	if (!def)
		return fail(0, "seccomp: defaultAction is required");
	struct jv defo = {.type = J_OBJ};
	struct jv *dret = jget(cfg, "defaultErrnoRet");
	if (dret) {
		struct jv m = *dret;
		m.key = "errnoRet";
		m.next = NULL;
		defo.child = &m;
		if ((r = action(&defo, def, &defact)) < 0)
			return r;
	} else if ((r = action(&defo, def, &defact)) < 0) {
		return r;
	}
	const char *listener = NULL;
	if ((r = jstr(cfg, "listenerPath", &listener)) < 0)
		return fail_ctx(r, "seccomp");
	bool notify = defact == SCMP_ACT_NOTIFY;
	scmp_filter_ctx ctx = seccomp_init(defact);
	if (!ctx)
		return fail(EINVAL, "seccomp_init");
	*out = ctx;
	/* The runtime decides about no_new_privs; libseccomp must not set it behind our back. */
	seccomp_attr_set(ctx, SCMP_FLTATR_CTL_NNP, 0);
	struct jv *arr = NULL;
	if ((r = jtyped(cfg, "architectures", J_ARR, &arr)) < 0)
		return r;
	JFOR(a, arr) {
		uint32_t tok;
		if (a->type != J_STR || (r = arch_token(a->s, &tok)) < 0)
			return r < 0 ? r : fail(0, "seccomp: architectures must be strings");
		if ((r = seccomp_arch_add(ctx, tok)) < 0 && r != -EEXIST)
			return fail(-r, "seccomp: add architecture `%s`", a->s);
	}
	arr = NULL;
	if ((r = jtyped(cfg, "flags", J_ARR, &arr)) < 0)
		return r;
	JFOR(f, arr) {
		if (f->type != J_STR)
			return fail(0, "seccomp: flags must be strings");
		if (!strcmp(f->s, "SECCOMP_FILTER_FLAG_TSYNC"))
			r = seccomp_attr_set(ctx, SCMP_FLTATR_CTL_TSYNC, 1);
		else if (!strcmp(f->s, "SECCOMP_FILTER_FLAG_LOG"))
			r = seccomp_attr_set(ctx, SCMP_FLTATR_CTL_LOG, 1);
		else if (!strcmp(f->s, "SECCOMP_FILTER_FLAG_SPEC_ALLOW"))
			r = seccomp_attr_set(ctx, SCMP_FLTATR_CTL_SSB, 1);
		else
			return fail(0, "seccomp: unsupported flag `%s`", f->s);
		if (r < 0)
			return fail(-r, "seccomp: flag `%s`", f->s);
	}
	arr = NULL;
	if ((r = jtyped(cfg, "syscalls", J_ARR, &arr)) < 0)
		return r;
	JFOR(sc, arr) {
		struct jv *names = NULL, *args = NULL;
		const char *an = NULL;
		uint32_t act;
		if ((r = jtyped(sc, "names", J_ARR, &names)) < 0 || (r = jstr(sc, "action", &an)) < 0 ||
		    (r = jtyped(sc, "args", J_ARR, &args)) < 0)
			return fail_ctx(r, "seccomp.syscalls");
		if (!an)
			return fail(0, "seccomp.syscalls: action is required");
		if ((r = action(sc, an, &act)) < 0)
			return r;
		if (act == defact)
			continue;
		notify |= act == SCMP_ACT_NOTIFY;
		JFOR(n, names) {
			if (n->type != J_STR)
				return fail(0, "seccomp.syscalls: names must be strings");
			int nr = seccomp_syscall_resolve_name(n->s);
			/* Profiles list syscalls of every kernel and arch; unknown ones are skipped. */
			if (nr == __NR_SCMP_ERROR)
				continue;
			if ((r = add_rule(ctx, act, nr, args)) < 0)
				return r;
		}
	}
	if (notify && (!listener || !*listener))
		return fail(0, "seccomp: SCMP_ACT_NOTIFY needs linux.seccomp.listenerPath");
	return 0;
}

char *seccomp_process_state(const struct jv *cfg, pid_t pid, const char *state_json)
{
	const char *meta = "";
	jstr(cfg, "listenerMetadata", &meta);
	struct buf b = {0};
	buf_printf(&b, "{\"ociVersion\":\"1.1.0\",\"fds\":[\"seccompFd\"],\"pid\":%d,\"metadata\":", pid);
	buf_json_str(&b, meta ? meta : "");
	buf_printf(&b, ",\"state\":%s}", state_json);
	return b.p;
}

static int send_notify_fd(int sock, int fd, const char *msg)
{
	char cbuf[CMSG_SPACE(sizeof(int))] = {0};
	struct iovec iov = {(void *)msg, strlen(msg)};
	struct msghdr m = {.msg_iov = &iov, .msg_iovlen = 1, .msg_control = cbuf, .msg_controllen = sizeof cbuf};
	struct cmsghdr *c = CMSG_FIRSTHDR(&m);
	c->cmsg_level = SOL_SOCKET;
	c->cmsg_type = SCM_RIGHTS;
	c->cmsg_len = CMSG_LEN(sizeof(int));
	memcpy(CMSG_DATA(c), &fd, sizeof fd);
	while (sendmsg(sock, &m, MSG_NOSIGNAL) < 0)
		if (errno != EINTR)
			return fail(errno, "send the seccomp notify fd to the listener");
	return 0;
}

/* The notify fd leaves at once: until the agent has it, a notified syscall of ours would block. */
int seccomp_install(const struct seccomp_load *l)
{
	int r = seccomp_load(l->ctx);
	if (r < 0)
		return fail(-r, "load the seccomp filter");
	if (l->listener < 0)
		return 0;
	cleanup_close int nfd = seccomp_notify_fd(l->ctx);
	if (nfd < 0)
		return fail(-nfd, "seccomp notify fd");
	if ((r = send_notify_fd(l->listener, nfd, l->state)) < 0)
		return r;
	close(l->listener);
	return 0;
}

void seccomp_free_ptr(void **ctx)
{
	if (*ctx)
		seccomp_release(*ctx);
}

/* A deny list: everything is allowed except what lets a root-in-container reach the host kernel
 * or other tenants (module loading, kexec, reboot, keyrings, bpf, perf, clock, swap, accounting,
 * namespace and mount API escapes). It is far shorter than an allow list and does not break
 * programs that use syscalls newer than this profile. */
void seccomp_default_profile(struct buf *b)
{
	static const char *const denied[] = {
		"acct", "add_key", "bpf", "clock_adjtime", "clock_settime", "create_module", "delete_module",
		"finit_module", "fsconfig", "fsmount", "fsopen", "fspick", "get_kernel_syms",
		"init_module", "ioperm", "iopl", "kcmp", "kexec_file_load", "kexec_load", "keyctl", "lookup_dcookie",
		"mount", "mount_setattr", "move_mount", "name_to_handle_at", "nfsservctl",
		"open_by_handle_at", "open_tree", "perf_event_open", "pivot_root", "process_vm_readv",
		"process_vm_writev", "ptrace", "query_module", "quotactl", "quotactl_fd", "reboot", "request_key",
		"setns", "settimeofday", "stime", "swapoff", "swapon", "sysfs", "_sysctl", "umount",
		"umount2", "unshare", "uselib", "userfaultfd", "ustat", "vm86", "vm86old", NULL};
	buf_printf(b, "{\n\t\t\t\"defaultAction\": \"SCMP_ACT_ALLOW\",\n\t\t\t\"architectures\": [\"SCMP_ARCH_X86_64\", "
		      "\"SCMP_ARCH_X86\", \"SCMP_ARCH_X32\"],\n\t\t\t\"syscalls\": [\n\t\t\t\t{\n\t\t\t\t\t\"names\": [");
	for (size_t i = 0; denied[i]; i++)
		buf_printf(b, "%s\"%s\"", i ? ", " : "", denied[i]);
	buf_printf(b, "],\n\t\t\t\t\t\"action\": \"SCMP_ACT_ERRNO\",\n\t\t\t\t\t\"errnoRet\": 1\n\t\t\t\t}\n\t\t\t]\n\t\t}");
}
