/* containerd.task.v2.Task: the semantics, errors and events that berthd and containerd's
 * clients rely on (docs/shim.md). Each request runs on a thread of its own (ttrpc.h); the task
 * table is guarded by proc_lock (process.h), never held across a runtime call or a wait.
 * Messages are coded by hand with the field numbers of
 * proto/containerd/runtime/v2/task/shim.proto and proto/containerd/api/events/task.proto. */
#include "service.h"

#include "clock.h"
#include "events.h"
#include "exitfile.h"
#include "json.h"
#include "lifecycle.h"
#include "metrics.h"
#include "oom.h"
#include "process.h"
#include "shim.h"

#include <fcntl.h>
#include <signal.h>
#include <stdatomic.h>
#include <sys/prctl.h>
#include <time.h>

/* The console master must arrive while the runtime runs; this bounds a runtime that never sends it. */
#define CONSOLE_TIMEOUT_MS 10000
/* How long Delete of a never-started task waits for its killed init to be reaped. */
#define KILLED_INIT_WAIT_MS 10000
#define MAX_ID_LEN 76

static int status(enum rpc_code code, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int status(enum rpc_code code, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(g_err, sizeof g_err, fmt, ap);
	va_end(ap);
	return code;
}

/* The status of a failure: the runtime's "does not exist" is NOT_FOUND, a runtime that cannot be
 * run INTERNAL; anything else UNKNOWN, as ttrpc's Go server answers a plain error. */
static int code_of(int err)
{
	switch (err) {
	case -ENOENT:
		return RPC_NOT_FOUND;
	case -ENOEXEC:
		return RPC_INTERNAL;
	case -ETIMEDOUT:
		return RPC_DEADLINE_EXCEEDED;
	default:
		return RPC_UNKNOWN;
	}
}

/* The shim's own file work failing is never NOT_FOUND: that would read as "task gone". */
static int own_failure(int err)
{
	return err == -ENOENT || err == -ENOEXEC ? -EIO : err;
}

/* ^[A-Za-z0-9]+([._-][A-Za-z0-9]+)*$, at most 76 characters: safe in a path and a socket name. */
static bool valid_id(const char *id)
{
	size_t n = strlen(id);
	if (!n || n > MAX_ID_LEN)
		return false;
	bool after_separator = true;
	for (const char *c = id; *c; c++) {
		bool alnum = (*c >= 'a' && *c <= 'z') || (*c >= 'A' && *c <= 'Z') || (*c >= '0' && *c <= '9');
		if (!alnum && (after_separator || !strchr("._-", *c)))
			return false;
		after_separator = !alnum;
	}
	return !after_separator;
}

static int invalid_id(const char *what, const char *id)
{
	cleanup_buf struct buf quoted = {0};
	buf_json_str(&quoted, id);
	return status(RPC_INVALID_ARGUMENT, "%s %s: invalid", what, quoted.p);
}

/* Exit times have the millisecond precision of the exit record (exitfile.h), so a daemon reading
 * either sees the same time. */
static int64_t now_ms_ns(void)
{
	return now_unix_ns() / 1000000 * 1000000;
}

static void publish(const char *topic, const char *type, const pb_buf *event)
{
	events_publish(g_namespace, topic, type, event);
}

/* exit_status and exited_at of an answer; both absent while the process runs. (L) */
static void put_exit(pb_buf *b, const struct proc *p, int status_field, int at_field)
{
	if (!p->exited)
		return;
	pb_put_uint(b, status_field, p->exit_status);
	pb_put_timestamp(b, at_field, p->exited_at);
}

/* ---- Requests ---- */

/* The small requests: id=1, exec_id=2, and two scalars (Kill: signal=3 all=4; ResizePty:
 * width=3 height=4; CloseIO: stdin=3). */
struct req {
	char *id, *exec_id;
	uint64_t f3, f4;
};

static void req_free(struct req *r)
{
	free(r->id);
	free(r->exec_id);
}
#define cleanup_req __attribute__((cleanup(req_free)))

static int decode_req(const uint8_t *data, size_t len, struct req *r)
{
	r->id = xstrdup("");
	r->exec_id = xstrdup("");
	pb_reader rd = pb_reader_of(data, len);
	pb_field f;
	int ret;
	while ((ret = pb_next(&rd, &f)) > 0) {
		if (f.number == 1)
			ret = pb_string(&f, &r->id);
		else if (f.number == 2)
			ret = pb_string(&f, &r->exec_id);
		else if (f.number == 3 && f.wire == PB_VARINT)
			r->f3 = f.varint;
		else if (f.number == 4 && f.wire == PB_VARINT)
			r->f4 = f.varint;
		if (ret < 0)
			return ret;
	}
	return ret;
}

/* google.protobuf.Any: type_url=1, value=2; the value points into the request. */
struct any {
	char *type_url;
	const uint8_t *value;
	size_t len;
};

static int decode_any(const pb_field *field, struct any *a)
{
	if (field->wire != PB_LEN)
		return fail(EBADMSG, "protobuf: field %d is not a message", field->number);
	pb_reader rd = pb_reader_of(field->data, field->len);
	pb_field f;
	int ret;
	while ((ret = pb_next(&rd, &f)) > 0) {
		if (f.number == 1)
			ret = pb_string(&f, &a->type_url);
		else if (f.number == 2 && f.wire == PB_LEN) {
			a->value = f.data;
			a->len = f.len;
		}
		if (ret < 0)
			return ret;
	}
	return ret;
}

static void any_free(struct any *a)
{
	free(a->type_url);
}
#define cleanup_any __attribute__((cleanup(any_free)))

/* Holds a task and a process of it across unlocked work; released (locking) at scope end, so
 * the lock must not be held there. */
struct hold {
	struct task *t;
	struct proc *p;
};

static void hold_release(struct hold *h)
{
	if (!h->t && !h->p)
		return;
	pthread_mutex_lock(&proc_lock);
	if (h->p)
		proc_put(h->p);
	if (h->t)
		task_put(h->t);
	pthread_mutex_unlock(&proc_lock);
}
#define cleanup_hold __attribute__((cleanup(hold_release)))

/* (L) The task `id` and, unless exec_id is NULL, its process exec_id ("" = init). */
static int take(struct hold *h, const char *id, const char *exec_id)
{
	struct task *t = task_find(id);
	if (!t)
		return status(RPC_NOT_FOUND, "task %s: not found", id);
	struct proc *p = exec_id ? proc_find(t, exec_id) : NULL;
	if (exec_id && !p)
		return status(RPC_NOT_FOUND, "process %s: not found", exec_id);
	task_get(t);
	h->t = t;
	if (p) {
		proc_get(p);
		h->p = p;
	}
	return RPC_OK;
}

static int take_locked(struct hold *h, const char *id, const char *exec_id)
{
	pthread_mutex_lock(&proc_lock);
	int code = take(h, id, exec_id);
	pthread_mutex_unlock(&proc_lock);
	return code;
}

/* Most handlers' first step: decodes the request into `rq` and takes its task, and the process it
 * names if `proc`. proc_lock is held on return whatever the code, so that the handler can check
 * the state it took under the same lock; the handler unlocks. */
static int take_req(const uint8_t *data, size_t len, struct req *rq, struct hold *h, bool proc)
{
	int code = decode_req(data, len, rq) < 0 ? RPC_UNKNOWN : RPC_OK;
	pthread_mutex_lock(&proc_lock);
	return code == RPC_OK ? take(h, rq->id, proc ? rq->exec_id : NULL) : code;
}

/* ---- Exits ---- */

static void on_oom(void *data)
{
	const struct task *t = data;
	cleanup_pb pb_buf ev = {0};
	pb_put_string(&ev, 1, t->id);
	publish("/tasks/oom", "TaskOOM", &ev);
}

static void watch_oom(struct task *t)
{
	t->oom = oom_watch_pid(t->init->pid, on_oom, t);
	if (!t->oom) {
		shim_log("no OOM events for %s: %s", t->id, g_err);
		return;
	}
	pthread_mutex_lock(&proc_lock);
	task_get(t);
	pthread_mutex_unlock(&proc_lock);
}

/* Stops OOM reports of `t`, first delivering one already signalled if `report_pending`. */
static void close_oom(struct task *t, bool report_pending)
{
	pthread_mutex_lock(&proc_lock);
	struct oom_watch *w = move_ptr(&t->oom);
	pthread_mutex_unlock(&proc_lock);
	if (!w)
		return;
	if (report_pending)
		oom_check(w);
	oom_close(w);
	pthread_mutex_lock(&proc_lock);
	task_put(t);
	pthread_mutex_unlock(&proc_lock);
}

/* Records, then reports, a collected exit; drops the exit watch's reference. */
static void report_exit(struct proc *p)
{
	struct task *t = p->task;
	struct exit_record rec = {
		.pid = p->pid,
		.status = p->reaped_status.status,
		.signal = p->reaped_status.signal,
		.exited_at_ns = p->reaped_at,
	};
	if (exitfile_write(t->bundle, p->exec_id, &rec) < 0)
		shim_log("exit file for %s: %s", proc_id(p), g_err);
	/* An OOM kill of init signals the OOM watch and the exit together; report the OOM first. */
	if (proc_is_init(p))
		close_oom(t, true);
	cleanup_pb pb_buf ev = {0};
	pthread_mutex_lock(&proc_lock);
	p->state = P_STOPPED;
	p->exited = true;
	p->exit_status = rec.status;
	p->exited_at = rec.exited_at_ns;
	proc_close_io(p, true);
	pb_put_string(&ev, 1, t->id);
	pb_put_string(&ev, 2, proc_id(p));
	pb_put_uint(&ev, 3, p->pid);
	put_exit(&ev, p, 4, 5);
	publish("/tasks/exit", "TaskExit", &ev);
	pthread_cond_broadcast(&proc_changed);
	proc_put(p);
	pthread_mutex_unlock(&proc_lock);
}

/* Reaper callback: an exit that comes while Start runs waits for Start to report it. */
static void on_reaped(const struct exit_status *st, void *data)
{
	struct proc *p = data;
	pthread_mutex_lock(&proc_lock);
	p->reaped = true;
	p->reaped_status = *st;
	p->reaped_at = now_ms_ns();
	bool held = p->starting;
	pthread_mutex_unlock(&proc_lock);
	if (!held)
		report_exit(p);
}

static void watch_exit(struct proc *p)
{
	pthread_mutex_lock(&proc_lock);
	proc_get(p);
	pthread_mutex_unlock(&proc_lock);
	if (reaper_watch(p->pid, on_reaped, p) < 0) {
		shim_log("tracking pid %d of %s: %s", (int)p->pid, proc_id(p), g_err);
		on_reaped(&(struct exit_status){ .pid = p->pid, .status = 255 }, p);
	}
}

/* Ends Start: clears `starting` and reports an exit that was held back meanwhile. Keeps g_err. */
static void end_start(struct proc *p)
{
	pthread_mutex_lock(&proc_lock);
	p->starting = false;
	bool held = p->reaped;
	pthread_mutex_unlock(&proc_lock);
	if (!held)
		return;
	char err[sizeof g_err];
	memcpy(err, g_err, sizeof err);
	report_exit(p);
	memcpy(g_err, err, sizeof err);
}

/* ---- Launching processes ---- */

static int read_pid_file(const char *path, pid_t *pid)
{
	cleanup_free char *text = NULL;
	int r = read_file_at(AT_FDCWD, path, &text, NULL);
	if (r < 0)
		return r;
	char *end;
	long v = strtol(text, &end, 10);
	while (*end == '\n' || *end == ' ')
		end++;
	if (end == text || *end || v <= 0 || v > INT32_MAX)
		return fail(0, "pid file `%s` holds no pid", path);
	*pid = v;
	return 0;
}

/* The runtime command that starts `p`: create for init, exec (with its process file) otherwise. */
static int run_launch(struct proc *p, const char *pid_file, const char *process_file, const int stdio[3],
		      const char *console_socket)
{
	struct task *t = p->task;
	if (process_file)
		return runtime_exec(&t->rt, t->id, process_file, pid_file, stdio, console_socket);
	return runtime_create(&t->rt, t->id, t->bundle, pid_file, stdio, console_socket);
}

static int launch_fifo(struct proc *p, const char *pid_file, const char *process_file)
{
	struct fifo_io io;
	int r = fifo_io_open(&io, &(struct stdio_paths){ p->stdin_path, p->stdout_path, p->stderr_path });
	if (r < 0)
		return own_failure(r);
	r = run_launch(p, pid_file, process_file, io.runtime, NULL);
	fifo_io_release(&io);
	pid_t pid;
	if (r == 0)
		r = own_failure(read_pid_file(pid_file, &pid));
	if (r < 0) {
		fifo_io_close(&io);
		return r;
	}
	pthread_mutex_lock(&proc_lock);
	p->pid = pid;
	p->fifo = io;
	p->has_fifo = true;
	pthread_mutex_unlock(&proc_lock);
	return 0;
}

/* A terminal process: the runtime's own stdio is /dev/null, the pty master comes over the socket. */
static int launch_console(struct proc *p, const char *pid_file, const char *process_file)
{
	struct console_socket sock;
	int r = console_socket_open(&sock);
	if (r < 0)
		return own_failure(r);
	r = run_launch(p, pid_file, process_file, (const int[3]){ -1, -1, -1 }, sock.path);
	int master = r < 0 ? -1 : console_socket_receive(&sock, CONSOLE_TIMEOUT_MS);
	console_socket_close(&sock);
	if (r < 0)
		return r;
	if (master < 0)
		return master == -ETIMEDOUT ? master : own_failure(master);
	pid_t pid;
	r = read_pid_file(pid_file, &pid);
	if (r < 0) {
		close(master);
		return own_failure(r);
	}
	struct console_io *io;
	r = console_io_start(master, &(struct stdio_paths){ p->stdin_path, p->stdout_path, p->stderr_path }, &io);
	if (r < 0)
		return own_failure(r);
	pthread_mutex_lock(&proc_lock);
	p->pid = pid;
	p->console = io;
	pthread_mutex_unlock(&proc_lock);
	return 0;
}

/* Runs create or exec with the process's stdio, then reads its pid file. */
static int launch(struct proc *p, const char *pid_file, const char *process_file)
{
	return p->terminal ? launch_console(p, pid_file, process_file) : launch_fifo(p, pid_file, process_file);
}

/* ---- Create ---- */

struct create_req {
	char *id, *bundle, *in, *out, *err;
	bool terminal;
	struct any options;
	pb_field *rootfs; /* the Mounts as sent, forwarded in TaskCreate */
	size_t n_rootfs;
};

static void create_req_free(struct create_req *r)
{
	free(r->id);
	free(r->bundle);
	free(r->in);
	free(r->out);
	free(r->err);
	any_free(&r->options);
	free(r->rootfs);
}

static int decode_create(const uint8_t *data, size_t len, struct create_req *r)
{
	char **strings[] = { [1] = &r->id, [2] = &r->bundle, [5] = &r->in, [6] = &r->out, [7] = &r->err };
	for (size_t i = 0; i < sizeof strings / sizeof *strings; i++)
		if (strings[i])
			*strings[i] = xstrdup("");
	pb_reader rd = pb_reader_of(data, len);
	pb_field f;
	int ret;
	while ((ret = pb_next(&rd, &f)) > 0) {
		if (f.number < (int)(sizeof strings / sizeof *strings) && strings[f.number])
			ret = pb_string(&f, strings[f.number]);
		else if (f.number == 3 && f.wire == PB_LEN) {
			pb_field *m = realloc(r->rootfs, (r->n_rootfs + 1) * sizeof *m);
			if (!m)
				return fail(ENOMEM, "Create");
			r->rootfs = m;
			r->rootfs[r->n_rootfs++] = f;
		} else if (f.number == 4 && f.wire == PB_VARINT)
			r->terminal = f.varint != 0;
		else if (f.number == 10)
			ret = decode_any(&f, &r->options);
		if (ret < 0)
			return ret;
	}
	return ret;
}

static void publish_create(const struct create_req *rq, const struct task *t)
{
	cleanup_pb pb_buf ev = {0}, io = {0};
	pb_put_string(&ev, 1, t->id);
	pb_put_string(&ev, 2, t->bundle);
	for (size_t i = 0; i < rq->n_rootfs; i++)
		pb_put_message(&ev, 3, &(pb_buf){ .data = (uint8_t *)rq->rootfs[i].data, .len = rq->rootfs[i].len });
	pb_put_string(&io, 1, rq->in);
	pb_put_string(&io, 2, rq->out);
	pb_put_string(&io, 3, rq->err);
	pb_put_bool(&io, 4, rq->terminal);
	pb_put_message(&ev, 4, &io);
	pb_put_uint(&ev, 6, t->init->pid);
	publish("/tasks/create", "TaskCreate", &ev);
}

/* The runtime options of the request, else those saved in the bundle; saved for `delete`. */
static int setup_runtime(struct task *t, const struct any *options)
{
	int r = 0;
	if (options->type_url && *options->type_url)
		r = options_from_any_fields(options->type_url, options->value, options->len, &t->options);
	else
		options_load(t->bundle, &t->options);
	if (r == 0)
		r = options_save(t->bundle, &t->options);
	if (r < 0)
		return r;
	t->root = t->options.root ? xstrdup(t->options.root) : runtime_root(g_namespace);
	t->rt = (struct runtime){ .binary = t->options.binary, .root = t->root };
	return mkdir_p(t->root, 0700);
}

static int create_task(const struct create_req *rq, pb_buf *resp)
{
	cleanup_hold struct hold h = { .t = task_new(rq->id, rq->bundle) };
	struct task *t = h.t;
	if (setup_runtime(t, &rq->options) < 0)
		return RPC_UNKNOWN;
	t->init = proc_new(t, "", (const char *[3]){ rq->in, rq->out, rq->err }, rq->terminal);
	cleanup_free char *pid_file = xasprintf("%s/init.pid", t->bundle);
	int r = launch(t->init, pid_file, NULL);
	if (r < 0) {
		/* A runtime that failed half-way may have left its state and a waiting init behind. */
		char err[sizeof g_err];
		memcpy(err, g_err, sizeof err);
		runtime_delete(&t->rt, t->id, true);
		memcpy(g_err, err, sizeof err);
		return code_of(r);
	}
	watch_oom(t);
	pthread_mutex_lock(&proc_lock);
	task_insert(t);
	publish_create(rq, t);
	pthread_mutex_unlock(&proc_lock);
	/* After TaskCreate: an init that is already gone reports its exit right away. */
	watch_exit(t->init);
	pb_put_uint(resp, 1, t->init->pid);
	return RPC_OK;
}

/* Ids whose Create is in progress: a concurrent Create cannot take the same id. (L) */
struct creating {
	char *id;
	struct creating *next;
};
static struct creating *creating;

static bool is_creating(const char *id)
{
	for (struct creating *c = creating; c; c = c->next)
		if (!strcmp(c->id, id))
			return true;
	return false;
}

static void end_creating(const char *id)
{
	for (struct creating **c = &creating; *c; c = &(*c)->next) {
		if (strcmp((*c)->id, id))
			continue;
		struct creating *x = *c;
		*c = x->next;
		free(x->id);
		free(x);
		return;
	}
}

static int h_create(const uint8_t *data, size_t len, pb_buf *resp)
{
	__attribute__((cleanup(create_req_free))) struct create_req rq = {0};
	if (decode_create(data, len, &rq) < 0)
		return RPC_UNKNOWN;
	if (!valid_id(rq.id))
		return invalid_id("task id", rq.id);
	if (!*rq.bundle)
		return status(RPC_INVALID_ARGUMENT, "task %s: bundle is required", rq.id);
	pthread_mutex_lock(&proc_lock);
	bool taken = task_find(rq.id) || is_creating(rq.id);
	if (!taken) {
		struct creating *c = xmalloc(sizeof *c);
		*c = (struct creating){ .id = xstrdup(rq.id), .next = creating };
		creating = c;
	}
	pthread_mutex_unlock(&proc_lock);
	if (taken)
		return status(RPC_ALREADY_EXISTS, "task %s: already exists", rq.id);
	/* Counted as creating first, so the lifecycle cannot decide to exit in between. */
	bool admitted = lifecycle_task_created(rq.id) == 0;
	int code = admitted ? create_task(&rq, resp) : RPC_UNAVAILABLE;
	pthread_mutex_lock(&proc_lock);
	end_creating(rq.id);
	bool created = task_find(rq.id) != NULL;
	pthread_mutex_unlock(&proc_lock);
	if (admitted && !created)
		lifecycle_task_removed();
	return code;
}

/* ---- Start, Exec ---- */

static int start_exec(struct proc *p)
{
	struct task *t = p->task;
	cleanup_free char *spec = xasprintf("%s/exec-%s.json", t->bundle, p->exec_id);
	cleanup_free char *pid_file = xasprintf("%s/exec-%s.pid", t->bundle, p->exec_id);
	int r = launch(p, pid_file, spec);
	unlink(spec);
	if (r == 0)
		watch_exit(p);
	return r;
}

static void publish_started(const struct proc *p)
{
	cleanup_pb pb_buf ev = {0};
	pb_put_string(&ev, 1, p->task->id);
	if (proc_is_init(p)) {
		pb_put_uint(&ev, 2, p->pid);
		publish("/tasks/start", "TaskStart", &ev);
		return;
	}
	pb_put_string(&ev, 2, p->exec_id);
	pb_put_uint(&ev, 3, p->pid);
	publish("/tasks/exec-started", "TaskExecStarted", &ev);
}

static int h_start(const uint8_t *data, size_t len, pb_buf *resp)
{
	cleanup_req struct req rq = {0};
	cleanup_hold struct hold h = {0};
	int code = take_req(data, len, &rq, &h, true);
	if (code == RPC_OK && (h.p->state != P_CREATED || h.p->starting))
		code = status(RPC_FAILED_PRECONDITION, "process %s: already started", proc_id(h.p));
	else if (code == RPC_OK && !proc_is_init(h.p) && h.t->init->state == P_STOPPED)
		code = status(RPC_FAILED_PRECONDITION, "task %s: not running", h.t->id);
	if (code == RPC_OK)
		h.p->starting = true;
	pthread_mutex_unlock(&proc_lock);
	if (code != RPC_OK)
		return code;

	int r = proc_is_init(h.p) ? runtime_start(&h.t->rt, h.t->id) : start_exec(h.p);
	if (r == 0) {
		pthread_mutex_lock(&proc_lock);
		r = proc_move(h.p, P_RUNNING);
		if (r == 0)
			publish_started(h.p);
		pthread_mutex_unlock(&proc_lock);
	}
	end_start(h.p);
	if (r < 0)
		return r == -EPERM ? RPC_FAILED_PRECONDITION : code_of(r);
	pb_put_uint(resp, 1, h.p->pid);
	return RPC_OK;
}

struct exec_req {
	char *id, *exec_id, *in, *out, *err;
	bool terminal;
	struct any spec;
};

static void exec_req_free(struct exec_req *r)
{
	free(r->id);
	free(r->exec_id);
	free(r->in);
	free(r->out);
	free(r->err);
	any_free(&r->spec);
}

static int decode_exec(const uint8_t *data, size_t len, struct exec_req *r)
{
	char **strings[] = { [1] = &r->id, [2] = &r->exec_id, [4] = &r->in, [5] = &r->out, [6] = &r->err };
	for (size_t i = 0; i < sizeof strings / sizeof *strings; i++)
		if (strings[i])
			*strings[i] = xstrdup("");
	pb_reader rd = pb_reader_of(data, len);
	pb_field f;
	int ret;
	while ((ret = pb_next(&rd, &f)) > 0) {
		if (f.number < (int)(sizeof strings / sizeof *strings) && strings[f.number])
			ret = pb_string(&f, strings[f.number]);
		else if (f.number == 3 && f.wire == PB_VARINT)
			r->terminal = f.varint != 0;
		else if (f.number == 7)
			ret = decode_any(&f, &r->spec);
		if (ret < 0)
			return ret;
	}
	return ret;
}

/* (L) Checks and adds the exec; its process spec is written under the lock, so two Execs of one
 * id cannot overwrite each other's. */
static int add_exec(const struct exec_req *rq)
{
	struct task *t = task_find(rq->id);
	if (!t)
		return status(RPC_NOT_FOUND, "task %s: not found", rq->id);
	if (!valid_id(rq->exec_id))
		return invalid_id("exec id", rq->exec_id);
	if (proc_find(t, rq->exec_id))
		return status(RPC_ALREADY_EXISTS, "exec %s: already exists", rq->exec_id);
	if (t->init->state == P_STOPPED)
		return status(RPC_FAILED_PRECONDITION, "task %s: not running", t->id);
	if (!rq->spec.len)
		return status(RPC_INVALID_ARGUMENT, "exec %s: process spec is required", rq->exec_id);
	/* The spec is JSON (types.containerd.io/opencontainers/runtime-spec/1/Process); the runtime parses it. */
	cleanup_free char *spec = xasprintf("%s/exec-%s.json", t->bundle, rq->exec_id);
	if (write_file_atomic(spec, (const char *)rq->spec.value, rq->spec.len, 0644) < 0)
		return RPC_UNKNOWN;
	struct proc *p = proc_new(t, rq->exec_id, (const char *[3]){ rq->in, rq->out, rq->err }, rq->terminal);
	p->next = t->execs;
	t->execs = p;
	cleanup_pb pb_buf ev = {0};
	pb_put_string(&ev, 1, t->id);
	pb_put_string(&ev, 2, rq->exec_id);
	publish("/tasks/exec-added", "TaskExecAdded", &ev);
	return RPC_OK;
}

static int h_exec(const uint8_t *data, size_t len, pb_buf *resp)
{
	(void)resp;
	__attribute__((cleanup(exec_req_free))) struct exec_req rq = {0};
	if (decode_exec(data, len, &rq) < 0)
		return RPC_UNKNOWN;
	pthread_mutex_lock(&proc_lock);
	int code = add_exec(&rq);
	pthread_mutex_unlock(&proc_lock);
	return code;
}

/* ---- Delete, Wait, State ---- */

/* (L) Waits until `p` has exited (true) or was removed, at most `timeout_ms` (-1: no limit), or
 * until *cancelled (NULL: never). */
static bool wait_exit(struct proc *p, int timeout_ms, const bool *cancelled)
{
	struct timespec deadline = deadline_after(CLOCK_MONOTONIC, timeout_ms);
	while (!p->exited && !p->removed && !(cancelled && *cancelled)) {
		if (timeout_ms < 0)
			pthread_cond_wait(&proc_changed, &proc_lock);
		else if (pthread_cond_timedwait(&proc_changed, &proc_lock, &deadline) == ETIMEDOUT)
			break;
	}
	return p->exited;
}

static int delete_init(struct task *t, pb_buf *resp)
{
	struct proc *init = t->init;
	pthread_mutex_lock(&proc_lock);
	bool never_started = init->state == P_CREATED;
	pthread_mutex_unlock(&proc_lock);
	/* Removing the cgroup signals the OOM watch too; that is not an OOM. */
	close_oom(t, false);
	int r = runtime_delete(&t->rt, t->id, never_started);
	if (r < 0 && r != -ENOENT)
		return code_of(r);
	cleanup_pb pb_buf ev = {0};
	pthread_mutex_lock(&proc_lock);
	/* delete --force killed the waiting init; its status (SIGKILL) is what Delete reports. */
	if (never_started)
		wait_exit(init, KILLED_INIT_WAIT_MS, NULL);
	proc_close_io(init, false);
	for (struct proc *e = t->execs; e; e = e->next)
		proc_close_io(e, false);
	pb_put_uint(resp, 1, init->pid);
	put_exit(resp, init, 2, 3);
	pb_put_string(&ev, 1, t->id);
	pb_put_uint(&ev, 2, init->pid);
	put_exit(&ev, init, 3, 4);
	pb_put_string(&ev, 5, t->id);
	/* Two Deletes may both get here; the one that takes the task out reports it. */
	bool removed = task_remove(t);
	if (removed)
		publish("/tasks/delete", "TaskDelete", &ev);
	pthread_mutex_unlock(&proc_lock);
	if (removed)
		lifecycle_task_removed();
	return RPC_OK;
}

static int h_delete(const uint8_t *data, size_t len, pb_buf *resp)
{
	cleanup_req struct req rq = {0};
	cleanup_hold struct hold h = {0};
	int code = take_req(data, len, &rq, &h, true);
	if (code == RPC_OK && (h.p->state == P_RUNNING || h.p->state == P_PAUSED))
		code = status(RPC_FAILED_PRECONDITION, "process %s: cannot delete a running process", proc_id(h.p));
	bool exec = code == RPC_OK && !proc_is_init(h.p);
	if (exec) {
		proc_unlink_exec(h.p);
		pb_put_uint(resp, 1, h.p->pid);
		put_exit(resp, h.p, 2, 3);
	}
	pthread_mutex_unlock(&proc_lock);
	if (code != RPC_OK)
		return code;
	if (!exec)
		return delete_init(h.t, resp);
	cleanup_free char *spec = xasprintf("%s/exec-%s.json", h.t->bundle, h.p->exec_id);
	unlink(spec);
	return RPC_OK;
}

/* A Wait may last as long as its process, so it also ends when its call is cancelled (ttrpc.h):
 * a caller that went away (berthd restarting, a killed ctr) must not leave a thread behind. */
struct wait_cancel {
	struct ttrpc_call *call;
	bool cancelled; /* (L) */
};

/* The call's cancel hook. */
static void wake_waiter(void *data)
{
	struct wait_cancel *w = data;
	pthread_mutex_lock(&proc_lock);
	w->cancelled = true;
	pthread_cond_broadcast(&proc_changed);
	pthread_mutex_unlock(&proc_lock);
}

/* Ends the hook, so `w` may go. It waits for a hook running elsewhere, which takes proc_lock:
 * never called with proc_lock held. */
static void wait_cancel_end(struct wait_cancel *w)
{
	ttrpc_call_on_cancel(w->call, NULL, NULL);
}

static int h_wait(struct ttrpc_call *call, const uint8_t *data, size_t len, pb_buf *resp)
{
	cleanup_req struct req rq = {0};
	if (decode_req(data, len, &rq) < 0)
		return RPC_UNKNOWN;
	__attribute__((cleanup(wait_cancel_end))) struct wait_cancel wc = { .call = call };
	ttrpc_call_on_cancel(call, wake_waiter, &wc);
	cleanup_hold struct hold h = {0};
	pthread_mutex_lock(&proc_lock);
	int code = take(&h, rq.id, rq.exec_id);
	if (code == RPC_OK && !wait_exit(h.p, -1, &wc.cancelled))
		code = wc.cancelled ? status(RPC_CANCELLED, "context canceled")
				    : status(RPC_NOT_FOUND, "process %s: not found", proc_id(h.p));
	if (code == RPC_OK)
		put_exit(resp, h.p, 1, 2);
	pthread_mutex_unlock(&proc_lock);
	return code;
}

static int h_state(const uint8_t *data, size_t len, pb_buf *resp)
{
	cleanup_req struct req rq = {0};
	cleanup_hold struct hold h = {0};
	int code = take_req(data, len, &rq, &h, true);
	if (code == RPC_OK) {
		const struct proc *p = h.p;
		pb_put_string(resp, 1, proc_id(p));
		pb_put_string(resp, 2, h.t->bundle);
		pb_put_uint(resp, 3, p->pid);
		pb_put_uint(resp, 4, p->state);
		pb_put_string(resp, 5, p->stdin_path);
		pb_put_string(resp, 6, p->stdout_path);
		pb_put_string(resp, 7, p->stderr_path);
		pb_put_bool(resp, 8, p->terminal);
		put_exit(resp, p, 9, 10);
		pb_put_string(resp, 11, p->exec_id);
	}
	pthread_mutex_unlock(&proc_lock);
	return code;
}

/* ---- Pids, Pause, Resume, Kill ---- */

static int h_pids(const uint8_t *data, size_t len, pb_buf *resp)
{
	cleanup_req struct req rq = {0};
	cleanup_hold struct hold h = {0};
	int code = take_req(data, len, &rq, &h, false);
	pthread_mutex_unlock(&proc_lock);
	if (code != RPC_OK)
		return code;
	cleanup_free pid_t *pids = NULL;
	size_t n = 0;
	int r = runtime_ps(&h.t->rt, h.t->id, &pids, &n);
	if (r < 0)
		return code_of(r);
	pthread_mutex_lock(&proc_lock);
	for (size_t i = 0; i < n; i++) {
		cleanup_pb pb_buf info = {0}, details = {0};
		pb_put_uint(&info, 1, pids[i]);
		for (struct proc *e = h.t->execs; e; e = e->next) {
			if (e->pid != pids[i])
				continue;
			pb_put_string(&details, 1, e->exec_id);
			pb_put_any(&info, 2, "containerd.runc.v1.ProcessDetails", &details);
			break;
		}
		pb_put_message(resp, 1, &info);
	}
	pthread_mutex_unlock(&proc_lock);
	return RPC_OK;
}

/* Pause and Resume: the runtime's command, then init's state and the event. */
static int pause_resume(const uint8_t *data, size_t len, bool pause)
{
	cleanup_req struct req rq = {0};
	cleanup_hold struct hold h = {0};
	int code = take_req(data, len, &rq, &h, false);
	if (code == RPC_OK && h.t->init->state != (pause ? P_RUNNING : P_PAUSED))
		code = status(RPC_FAILED_PRECONDITION, "task %s: not %s", h.t->id, pause ? "running" : "paused");
	pthread_mutex_unlock(&proc_lock);
	if (code != RPC_OK)
		return code;
	int r = pause ? runtime_pause(&h.t->rt, h.t->id) : runtime_resume(&h.t->rt, h.t->id);
	if (r < 0)
		return code_of(r);
	pthread_mutex_lock(&proc_lock);
	r = proc_move(h.t->init, pause ? P_PAUSED : P_RUNNING);
	if (r == 0) {
		cleanup_pb pb_buf ev = {0};
		pb_put_string(&ev, 1, h.t->id);
		if (pause)
			publish("/tasks/paused", "TaskPaused", &ev);
		else
			publish("/tasks/resumed", "TaskResumed", &ev);
	}
	pthread_mutex_unlock(&proc_lock);
	return r < 0 ? RPC_FAILED_PRECONDITION : RPC_OK;
}

static int h_pause(const uint8_t *data, size_t len, pb_buf *resp)
{
	(void)resp;
	return pause_resume(data, len, true);
}

static int h_resume(const uint8_t *data, size_t len, pb_buf *resp)
{
	(void)resp;
	return pause_resume(data, len, false);
}

static int h_kill(const uint8_t *data, size_t len, pb_buf *resp)
{
	(void)resp;
	cleanup_req struct req rq = {0};
	cleanup_hold struct hold h = {0};
	int code = take_req(data, len, &rq, &h, true);
	if (code == RPC_OK && h.p->state == P_STOPPED)
		code = status(RPC_NOT_FOUND, "process %s: process already finished", proc_id(h.p));
	else if (code == RPC_OK && !proc_is_init(h.p) && h.p->state == P_CREATED)
		code = status(RPC_FAILED_PRECONDITION, "process %s: not started", proc_id(h.p));
	pthread_mutex_unlock(&proc_lock);
	if (code != RPC_OK)
		return code;
	int signal = (int)rq.f3;
	if (proc_is_init(h.p)) {
		int r = runtime_kill(&h.t->rt, h.t->id, signal, rq.f4 != 0);
		return r < 0 ? code_of(r) : RPC_OK;
	}
	/* Exited but not reported yet: as signalling a zombie, there is nothing to do. */
	int r = reaper_kill(h.p->pid, signal);
	return r < 0 && r != -ESRCH ? RPC_UNKNOWN : RPC_OK;
}

/* ---- ResizePty, CloseIO, Update ---- */

static int h_resize_pty(const uint8_t *data, size_t len, pb_buf *resp)
{
	(void)resp;
	cleanup_req struct req rq = {0};
	cleanup_hold struct hold h = {0};
	int code = take_req(data, len, &rq, &h, true);
	if (code == RPC_OK && !h.p->console)
		code = status(RPC_FAILED_PRECONDITION, "process %s: no terminal", proc_id(h.p));
	if (code == RPC_OK && console_io_resize(h.p->console, (unsigned)rq.f3, (unsigned)rq.f4) < 0)
		code = RPC_UNKNOWN;
	pthread_mutex_unlock(&proc_lock);
	return code;
}

static int h_close_io(const uint8_t *data, size_t len, pb_buf *resp)
{
	(void)resp;
	cleanup_req struct req rq = {0};
	cleanup_hold struct hold h = {0};
	int code = take_req(data, len, &rq, &h, true);
	if (code == RPC_OK && rq.f3 && h.p->has_fifo)
		fifo_io_close_stdin(&h.p->fifo);
	if (code == RPC_OK && rq.f3 && h.p->console)
		console_io_close_stdin(h.p->console);
	pthread_mutex_unlock(&proc_lock);
	return code;
}

static int h_update(const uint8_t *data, size_t len, pb_buf *resp)
{
	(void)resp;
	cleanup_free char *id = xstrdup("");
	cleanup_any struct any resources = {0};
	pb_reader rd = pb_reader_of(data, len);
	pb_field f;
	int r;
	while ((r = pb_next(&rd, &f)) > 0) {
		if (f.number == 1)
			r = pb_string(&f, &id);
		else if (f.number == 2)
			r = decode_any(&f, &resources);
		if (r < 0)
			return RPC_UNKNOWN;
	}
	if (r < 0)
		return RPC_UNKNOWN;
	cleanup_hold struct hold h = {0};
	int code = take_locked(&h, id, NULL);
	if (code != RPC_OK)
		return code;
	if (!resources.len)
		return status(RPC_INVALID_ARGUMENT, "task %s: resources are required", h.t->id);
	/* LinuxResources travel as JSON, which is what the runtime's --resources file holds. */
	static atomic_uint seq;
	cleanup_free char *file = xasprintf("%s/resources-%d-%lld-%u.json", h.t->bundle, (int)getpid(),
					    (long long)(now_unix_ns() / 1000000), atomic_fetch_add(&seq, 1));
	if (write_file_atomic(file, (const char *)resources.value, resources.len, 0644) < 0)
		return RPC_UNKNOWN;
	r = runtime_update(&h.t->rt, h.t->id, file);
	unlink(file);
	return r < 0 ? code_of(r) : RPC_OK;
}

/* ---- Connect, Shutdown, Stats, Checkpoint ---- */

/* Also reserves this shim for a task about to be created (lifecycle.h). */
static int h_connect(const uint8_t *data, size_t len, pb_buf *resp)
{
	cleanup_req struct req rq = {0};
	if (decode_req(data, len, &rq) < 0)
		return RPC_UNKNOWN;
	pthread_mutex_lock(&proc_lock);
	struct task *t = task_find(rq.id);
	pid_t task_pid = t ? t->init->pid : 0;
	pthread_mutex_unlock(&proc_lock);
	if (!t && *rq.id && lifecycle_reserve(rq.id) < 0)
		return RPC_UNAVAILABLE;
	pb_put_uint(resp, 1, getpid());
	pb_put_uint(resp, 2, task_pid);
	pb_put_string(resp, 3, SHIM_VERSION);
	return RPC_OK;
}

static int h_shutdown(const uint8_t *data, size_t len, pb_buf *resp)
{
	(void)data, (void)len, (void)resp;
	lifecycle_shutdown();
	return RPC_OK;
}

/* The task's cgroup statistics, from the cgroupsPath of its spec (containerd's Stats). */
static int h_stats(const uint8_t *data, size_t len, pb_buf *resp)
{
	cleanup_req struct req rq = {0};
	cleanup_hold struct hold h = {0};
	int code = take_req(data, len, &rq, &h, false);
	pthread_mutex_unlock(&proc_lock);
	if (code != RPC_OK)
		return code;
	cleanup_free char *path = xasprintf("%s/config.json", h.t->bundle);
	cleanup_free char *text = NULL;
	size_t n;
	cleanup_json struct jdoc doc = {0};
	if (read_file_at(AT_FDCWD, path, &text, &n) < 0 || json_parse(&doc, text, n) < 0)
		return RPC_UNKNOWN;
	struct jv *cg = jget(jget(doc.root, "linux"), "cgroupsPath");
	if (!cg || cg->type != J_STR || !*cg->s)
		return status(RPC_FAILED_PRECONDITION,
			      "task %s: its spec sets no linux.cgroupsPath to read statistics from", h.t->id);
	cleanup_pb pb_buf metrics = {0};
	const char *type_url;
	if (cgroup_metrics(cg->s, &metrics, &type_url) < 0)
		return RPC_UNKNOWN;
	pb_put_any(resp, 1, type_url, &metrics);
	return RPC_OK;
}

static int h_checkpoint(const uint8_t *data, size_t len, pb_buf *resp)
{
	(void)data, (void)len, (void)resp;
	return status(RPC_UNIMPLEMENTED, "Checkpoint: berth-shim does not checkpoint (no CRIU support)");
}

/* ---- Serving ---- */

typedef int (*handler)(const uint8_t *data, size_t len, pb_buf *resp);

/* Ends `call` with `resp` when `code` is RPC_OK, else with `code` and g_err. */
static void answer(struct ttrpc_call *call, int code, const pb_buf *resp)
{
	if (code == RPC_OK && resp->oom)
		code = status(RPC_INTERNAL, "out of memory encoding the response");
	if (code == RPC_OK)
		ttrpc_reply(call, resp);
	else
		ttrpc_fail(call, code, "%s", g_err);
}

static void serve(struct ttrpc_call *call, handler h)
{
	size_t len;
	const uint8_t *data = ttrpc_call_payload(call, &len);
	cleanup_pb pb_buf resp = {0};
	g_err[0] = 0;
	answer(call, h(data, len, &resp), &resp);
}

/* Wait is the one handler that needs its call: to end when that is cancelled. */
static void call_h_wait(struct ttrpc_call *call)
{
	size_t len;
	const uint8_t *data = ttrpc_call_payload(call, &len);
	cleanup_pb pb_buf resp = {0};
	g_err[0] = 0;
	answer(call, h_wait(call, data, len, &resp), &resp);
}

#define METHOD(fn)                                        \
	static void call_##fn(struct ttrpc_call *call) \
	{                                                 \
		serve(call, fn);                          \
	}
METHOD(h_state)
METHOD(h_create)
METHOD(h_start)
METHOD(h_delete)
METHOD(h_pids)
METHOD(h_pause)
METHOD(h_resume)
METHOD(h_checkpoint)
METHOD(h_kill)
METHOD(h_exec)
METHOD(h_resize_pty)
METHOD(h_close_io)
METHOD(h_update)
METHOD(h_stats)
METHOD(h_connect)
METHOD(h_shutdown)

const ttrpc_method task_methods[] = {
	{ TASK_SERVICE, "State", call_h_state },
	{ TASK_SERVICE, "Create", call_h_create },
	{ TASK_SERVICE, "Start", call_h_start },
	{ TASK_SERVICE, "Delete", call_h_delete },
	{ TASK_SERVICE, "Pids", call_h_pids },
	{ TASK_SERVICE, "Pause", call_h_pause },
	{ TASK_SERVICE, "Resume", call_h_resume },
	{ TASK_SERVICE, "Checkpoint", call_h_checkpoint },
	{ TASK_SERVICE, "Kill", call_h_kill },
	{ TASK_SERVICE, "Exec", call_h_exec },
	{ TASK_SERVICE, "ResizePty", call_h_resize_pty },
	{ TASK_SERVICE, "CloseIO", call_h_close_io },
	{ TASK_SERVICE, "Update", call_h_update },
	{ TASK_SERVICE, "Wait", call_h_wait },
	{ TASK_SERVICE, "Stats", call_h_stats },
	{ TASK_SERVICE, "Connect", call_h_connect },
	{ TASK_SERVICE, "Shutdown", call_h_shutdown },
};
const size_t task_methods_len = sizeof task_methods / sizeof *task_methods;

int service_init(void)
{
	/* Container inits become our children once the runtime that created them exits. */
	if (prctl(PR_SET_CHILD_SUBREAPER, 1) < 0)
		return fail(errno, "become a child subreaper");
	/* Only the reaper thread takes SIGCHLD (main blocks it before any thread starts). Ignored,
	 * as a parent may leave it, the kernel would reap children itself and lose their status. */
	sigset_t chld;
	sigemptyset(&chld);
	sigaddset(&chld, SIGCHLD);
	pthread_sigmask(SIG_BLOCK, &chld, NULL);
	signal(SIGCHLD, SIG_DFL);
	process_init();
	return reaper_start();
}

int service_task_count(void)
{
	pthread_mutex_lock(&proc_lock);
	int n = task_count();
	for (struct creating *c = creating; c; c = c->next)
		n++;
	pthread_mutex_unlock(&proc_lock);
	return n;
}
