/* berth-runtime: an OCI runtime with runc's command line. */
#include "container.h"
#include "spec.h"

#include <signal.h>
#include <sys/prctl.h>

int reexec_sealed(char **argv);
int print_spec_template(const char *bundle);
void print_features(void);

enum okind { O_FLAG, O_STR, O_INT, O_MULTI };
struct opt { const char *lng; char shrt; enum okind kind; void *dst; size_t *count; };

/* Flags come first, then positional arguments; like runc, nothing after the first positional
 * is taken as a flag (so `exec ID sh -c ...` and `ps ID -ef` pass through). */
static int parse_opts(int argc, char **argv, const struct opt *opts, int *pos)
{
	int i = 0;
	for (; i < argc && argv[i][0] == '-' && argv[i][1]; i++) {
		if (!strcmp(argv[i], "--")) {
			i++;
			break;
		}
		const char *a = argv[i], *val = NULL;
		bool lng = a[1] == '-';
		size_t nlen = lng ? strcspn(a + 2, "=") : 1;
		const struct opt *o = opts;
		for (; o->lng; o++)
			if (lng ? strlen(o->lng) == nlen && !strncmp(o->lng, a + 2, nlen) : (a[2] == 0 && o->shrt == a[1]))
				break;
		/* Single-dash long names (-bundle) are accepted by runc's flag parser too. */
		if (!o->lng && !lng)
			for (o = opts; o->lng && strcmp(o->lng, a + 1); o++)
				;
		if (!o->lng)
			return fail(0, "unknown option `%s`", a);
		if (lng && a[2 + nlen] == '=')
			val = a + 3 + nlen;
		if (o->kind == O_FLAG) {
			*(bool *)o->dst = !val || strcmp(val, "false");
			continue;
		}
		if (!val) {
			if (i + 1 >= argc)
				return fail(0, "option `%s` needs a value", a);
			val = argv[++i];
		}
		if (o->kind == O_STR)
			*(const char **)o->dst = val;
		else if (o->kind == O_INT) {
			char *end;
			long v = strtol(val, &end, 10);
			if (*end || v < 0 || v > 1 << 20)
				return fail(0, "option `%s`: `%s` is not a count", a, val);
			*(int *)o->dst = v;
		} else {
			const char ***arr = o->dst;
			*arr = realloc(*arr, (*o->count + 2) * sizeof **arr);
			if (!*arr)
				abort();
			(*arr)[(*o->count)++] = val;
			(*arr)[*o->count] = NULL;
		}
	}
	*pos = i;
	return 0;
}

static const struct { const char *n; int s; } signames[] = {
	{"HUP", SIGHUP}, {"INT", SIGINT}, {"QUIT", SIGQUIT}, {"ILL", SIGILL}, {"TRAP", SIGTRAP}, {"ABRT", SIGABRT},
	{"IOT", SIGIOT}, {"BUS", SIGBUS}, {"FPE", SIGFPE}, {"KILL", SIGKILL}, {"USR1", SIGUSR1}, {"SEGV", SIGSEGV},
	{"USR2", SIGUSR2}, {"PIPE", SIGPIPE}, {"ALRM", SIGALRM}, {"TERM", SIGTERM}, {"STKFLT", SIGSTKFLT},
	{"CHLD", SIGCHLD}, {"CONT", SIGCONT}, {"STOP", SIGSTOP}, {"TSTP", SIGTSTP}, {"TTIN", SIGTTIN},
	{"TTOU", SIGTTOU}, {"URG", SIGURG}, {"XCPU", SIGXCPU}, {"XFSZ", SIGXFSZ}, {"VTALRM", SIGVTALRM},
	{"PROF", SIGPROF}, {"WINCH", SIGWINCH}, {"IO", SIGIO}, {"POLL", SIGPOLL}, {"PWR", SIGPWR}, {"SYS", SIGSYS}};

static int parse_signal(const char *s, int *sig)
{
	char *end;
	long v = strtol(s, &end, 10);
	if (*s && !*end) {
		if (v <= 0 || v > 64)
			return fail(0, "invalid signal `%s`", s);
		*sig = v;
		return 0;
	}
	const char *n = strncasecmp(s, "SIG", 3) ? s : s + 3;
	for (size_t i = 0; i < sizeof signames / sizeof *signames; i++)
		if (!strcasecmp(n, signames[i].n)) {
			*sig = signames[i].s;
			return 0;
		}
	return fail(0, "unknown signal `%s`", s);
}

struct global { const char *root, *log, *log_format; bool debug, systemd; };

static int need_id(int argc, char **argv, int pos, int extra_ok)
{
	if (pos >= argc)
		return fail(0, "missing container id");
	if (!extra_ok && argc - pos > 1)
		return fail(0, "unexpected argument `%s`", argv[pos + 1]);
	return 0;
}

static int cmd_create_run(bool run, struct global *g, int argc, char **argv, int *code)
{
	struct create_opts o = {.root = g->root, .console_fd = -1};
	bool detach = false, no_pivot = false;
	const struct opt opts[] = {{"bundle", 'b', O_STR, &o.bundle, 0},
				   {"pid-file", 0, O_STR, &o.pid_file, 0},
				   {"console-socket", 0, O_STR, &o.console_socket, 0},
				   {"preserve-fds", 0, O_INT, &o.preserve_fds, 0},
				   {"detach", 'd', O_FLAG, &detach, 0},
				   {"no-pivot", 0, O_FLAG, &no_pivot, 0},
				   {"no-new-keyring", 0, O_FLAG, &o.no_new_keyring, 0},
				   {0}};
	int pos, r;
	if ((r = parse_opts(argc, argv, opts, &pos)) < 0 || (r = need_id(argc, argv, pos, 0)) < 0)
		return r;
	if (no_pivot)
		return fail(0, "--no-pivot is not supported: berth-runtime always uses pivot_root");
	if (!run && detach)
		return fail(0, "unknown option `--detach`");
	o.id = argv[pos];
	if (run)
		return container_run(&o, detach, code);
	pid_t pid;
	return container_create(&o, &pid, NULL);
}

static int cmd_exec(struct global *g, int argc, char **argv, int *code)
{
	struct exec_opts o = {.root = g->root};
	const char *process_label = NULL, *cgroup = NULL;
	bool ignore_paused = false;
	const struct opt opts[] = {{"process", 'p', O_STR, &o.process_file, 0},
				   {"tty", 't', O_FLAG, &o.tty, 0},
				   {"detach", 'd', O_FLAG, &o.detach, 0},
				   {"pid-file", 0, O_STR, &o.pid_file, 0},
				   {"console-socket", 0, O_STR, &o.console_socket, 0},
				   {"cwd", 0, O_STR, &o.cwd, 0},
				   {"env", 'e', O_MULTI, &o.env, &o.n_env},
				   {"user", 'u', O_STR, &o.user, 0},
				   {"additional-gids", 'g', O_MULTI, &o.agids, &o.n_agids},
				   {"cap", 'c', O_MULTI, &o.caps, &o.n_caps},
				   {"no-new-privs", 0, O_FLAG, &o.nnp, 0},
				   {"apparmor", 0, O_STR, &o.apparmor, 0},
				   {"process-label", 0, O_STR, &process_label, 0},
				   {"preserve-fds", 0, O_INT, &o.preserve_fds, 0},
				   {"ignore-paused", 0, O_FLAG, &ignore_paused, 0},
				   {"cgroup", 0, O_STR, &cgroup, 0},
				   {0}};
	int pos, r;
	if ((r = parse_opts(argc, argv, opts, &pos)) < 0 || (r = need_id(argc, argv, pos, 1)) < 0)
		return r;
	if (process_label || cgroup)
		return fail(0, "--process-label and --cgroup are not supported");
	o.id = argv[pos];
	o.args = (const char **)argv + pos + 1;
	o.n_args = argc - pos - 1;
	return container_exec(&o, code);
}

static int run_cmd(const char *cmd, struct global *g, int argc, char **argv, int *code)
{
	int pos = 0, r;
	bool flag = false, flag2 = false;
	const char *fmt = NULL, *bundle = NULL;
	if (!strcmp(cmd, "create") || !strcmp(cmd, "run"))
		return cmd_create_run(cmd[0] == 'r', g, argc, argv, code);
	if (!strcmp(cmd, "exec"))
		return cmd_exec(g, argc, argv, code);
	if (!strcmp(cmd, "start") || !strcmp(cmd, "state") || !strcmp(cmd, "pause") || !strcmp(cmd, "resume")) {
		const struct opt none[] = {{0}};
		if ((r = parse_opts(argc, argv, none, &pos)) < 0 || (r = need_id(argc, argv, pos, 0)) < 0)
			return r;
		if (!strcmp(cmd, "start"))
			return container_start(g->root, argv[pos], -1);
		if (!strcmp(cmd, "state"))
			return container_state(g->root, argv[pos]);
		return container_pause(g->root, argv[pos], cmd[0] == 'p');
	}
	if (!strcmp(cmd, "kill")) {
		const struct opt opts[] = {{"all", 'a', O_FLAG, &flag, 0}, {0}};
		int sig = SIGTERM;
		if ((r = parse_opts(argc, argv, opts, &pos)) < 0 || (r = need_id(argc, argv, pos, 1)) < 0)
			return r;
		if (argc - pos > 2)
			return fail(0, "unexpected argument `%s`", argv[pos + 2]);
		if (argc - pos == 2 && (r = parse_signal(argv[pos + 1], &sig)) < 0)
			return r;
		return container_kill(g->root, argv[pos], sig, flag);
	}
	if (!strcmp(cmd, "delete")) {
		const struct opt opts[] = {{"force", 'f', O_FLAG, &flag, 0}, {0}};
		if ((r = parse_opts(argc, argv, opts, &pos)) < 0 || (r = need_id(argc, argv, pos, 0)) < 0)
			return r;
		return container_delete(g->root, argv[pos], flag);
	}
	if (!strcmp(cmd, "update")) {
		const char *res = NULL;
		const struct opt opts[] = {{"resources", 'r', O_STR, &res, 0}, {0}};
		if ((r = parse_opts(argc, argv, opts, &pos)) < 0 || (r = need_id(argc, argv, pos, 0)) < 0)
			return r;
		if (!res)
			return fail(0, "update: only --resources FILE|- is supported");
		return container_update(g->root, argv[pos], res);
	}
	if (!strcmp(cmd, "ps")) {
		const struct opt opts[] = {{"format", 'f', O_STR, &fmt, 0}, {0}};
		if ((r = parse_opts(argc, argv, opts, &pos)) < 0 || (r = need_id(argc, argv, pos, 1)) < 0)
			return r;
		if (fmt && strcmp(fmt, "json") && strcmp(fmt, "table"))
			return fail(0, "invalid format `%s`", fmt);
		return container_ps(g->root, argv[pos], fmt && !strcmp(fmt, "json"), argv + pos + 1, argc - pos - 1);
	}
	if (!strcmp(cmd, "list")) {
		const struct opt opts[] = {{"format", 'f', O_STR, &fmt, 0}, {"quiet", 'q', O_FLAG, &flag, 0}, {0}};
		if ((r = parse_opts(argc, argv, opts, &pos)) < 0)
			return r;
		if (fmt && strcmp(fmt, "json") && strcmp(fmt, "table"))
			return fail(0, "invalid format `%s`", fmt);
		return container_list(g->root, fmt && !strcmp(fmt, "json"), flag);
	}
	if (!strcmp(cmd, "features")) {
		print_features();
		return 0;
	}
	if (!strcmp(cmd, "spec")) {
		const struct opt opts[] = {{"bundle", 'b', O_STR, &bundle, 0}, {"rootless", 0, O_FLAG, &flag2, 0}, {0}};
		if ((r = parse_opts(argc, argv, opts, &pos)) < 0)
			return r;
		if (flag2)
			return fail(0, "--rootless is not supported");
		return print_spec_template(bundle);
	}
	return fail(0, "unknown command `%s`", cmd);
}

static void usage(void)
{
	puts("usage: berth-runtime [--root DIR] [--log FILE] [--log-format text|json] [--debug] COMMAND [OPTIONS] ID\n"
	     "commands: create, start, run, exec, state, kill, delete, ps, pause, resume, update, list, features, spec");
}

int main(int argc, char **argv)
{
	struct global g = {.root = "/run/berth-runtime"};
	const char *criu = NULL;
	bool help = false, version = false;
	const struct opt opts[] = {{"root", 0, O_STR, &g.root, 0},        {"log", 0, O_STR, &g.log, 0},
				   {"log-format", 0, O_STR, &g.log_format, 0}, {"debug", 0, O_FLAG, &g.debug, 0},
				   {"systemd-cgroup", 0, O_FLAG, &g.systemd, 0}, {"criu", 0, O_STR, &criu, 0},
				   {"help", 'h', O_FLAG, &help, 0},          {"version", 'v', O_FLAG, &version, 0},
				   {0}};
	/* Run from a sealed copy (see selfexe.c, and berth-shim's sealed_exe.h) the kernel names the
	 * process after the memfd or the fd number; ps and perf should still say what it is. */
	prctl(PR_SET_NAME, "berth-runtime");
	int pos, code = 0;
	int r = parse_opts(argc - 1, argv + 1, opts, &pos);
	pos++;
	if (r == 0 && g.log_format && strcmp(g.log_format, "json") && strcmp(g.log_format, "text"))
		r = fail(0, "invalid --log-format `%s`", g.log_format);
	log_open(g.log, g.log_format && !strcmp(g.log_format, "json"), g.debug);
	if (r == 0 && version) {
		puts("berth-runtime version 0.1.0\nspec: 1.1.0");
		return 0;
	}
	if (r == 0 && (help || pos >= argc)) {
		usage();
		return help ? 0 : 1;
	}
	if (r == 0 && g.systemd)
		r = fail(0, "--systemd-cgroup is not supported");
	if (r == 0 && g.root[0] != '/')
		r = fail(0, "--root must be an absolute path");
	const char *cmd = r == 0 ? argv[pos] : "";
	if (r == 0 && (!strcmp(cmd, "create") || !strcmp(cmd, "run") || !strcmp(cmd, "exec")))
		r = reexec_sealed(argv);
	if (r == 0) {
		log_debug("%s", cmd);
		r = run_cmd(cmd, &g, argc - pos - 1, argv + pos + 1, &code);
	}
	fflush(stdout);
	if (r < 0) {
		log_error(g_err);
		return 1;
	}
	return code;
}
