#include "devices.h"

#include <linux/bpf.h>
#include <sys/syscall.h>

static int parse_access(const char *s, unsigned *out)
{
	*out = 0;
	for (; *s; s++) {
		if (*s == 'r')
			*out |= DEV_R;
		else if (*s == 'w')
			*out |= DEV_W;
		else if (*s == 'm')
			*out |= DEV_M;
		else
			return fail(0, "linux.resources.devices: bad access `%c`", *s);
	}
	return 0;
}

int device_rules(const struct spec *s, struct devrule **out, size_t *n)
{
	static const struct devrule defaults[] = {
		{'c', 1, 3, 7, true}, {'c', 1, 5, 7, true}, {'c', 1, 7, 7, true}, {'c', 1, 8, 7, true},
		{'c', 1, 9, 7, true}, {'c', 5, 0, 7, true}, {'c', 5, 1, 7, true}, {'c', 5, 2, 7, true},
		{'c', 136, -1, 7, true}, {'c', 10, 200, 7, true}};
	const size_t nd = sizeof defaults / sizeof *defaults;
	struct jv *a = NULL;
	int r = jtyped(s->resources, "devices", J_ARR, &a);
	*out = NULL;
	*n = 0;
	if (r < 0 || !a)
		return r;
	struct devrule *v = malloc((a->n + nd + s->n_devices) * sizeof *v);
	if (!v)
		return fail(ENOMEM, "device rules");
	JFOR(e, a) {
		bool allow = false;
		const char *type = "a", *access = "rwm";
		int64_t maj = -1, min = -1;
		if ((r = jbool(e, "allow", &allow)) < 0 || (r = jstr(e, "type", &type)) < 0 ||
		    (r = jstr(e, "access", &access)) < 0 || (r = jint(e, "major", -1, 0xfffff, &maj, NULL)) < 0 ||
		    (r = jint(e, "minor", -1, 0xfffff, &min, NULL)) < 0) {
			free(v);
			return fail_ctx(r, "linux.resources.devices");
		}
		struct devrule *d = &v[(*n)++];
		*d = (struct devrule){type[0], maj, min, 0, allow};
		if ((strcmp(type, "a") && strcmp(type, "c") && strcmp(type, "b")) || (r = parse_access(access, &d->access)) < 0) {
			free(v);
			return r < 0 ? r : fail(0, "linux.resources.devices: bad type `%s`", type);
		}
	}
	memcpy(v + *n, defaults, sizeof defaults);
	*n += nd;
	for (size_t i = 0; i < s->n_devices; i++) {
		const struct device *d = &s->devices[i];
		if (d->type != 'p')
			v[(*n)++] = (struct devrule){d->type == 'u' ? 'c' : d->type, d->major, d->minor, 7, true};
	}
	*out = v;
	return 0;
}

#define INSN(c, d, s, o, i) ((struct bpf_insn){.code = (c), .dst_reg = (d), .src_reg = (s), .off = (o), .imm = (i)})
#define LDX_W(d, s, o) INSN(BPF_LDX | BPF_W | BPF_MEM, d, s, o, 0)
#define MOV_REG(d, s) INSN(BPF_ALU64 | BPF_MOV | BPF_X, d, s, 0, 0)
#define MOV_IMM(d, i) INSN(BPF_ALU64 | BPF_MOV | BPF_K, d, 0, 0, i)
#define AND32(d, i) INSN(BPF_ALU | BPF_AND | BPF_K, d, 0, 0, i)
#define RSH32(d, i) INSN(BPF_ALU | BPF_RSH | BPF_K, d, 0, 0, i)
#define JNE(d, i, o) INSN(BPF_JMP | BPF_JNE | BPF_K, d, 0, o, i)
#define EXIT() INSN(BPF_JMP | BPF_EXIT, 0, 0, 0, 0)

/* The program checks the rules from the last to the first and returns the verdict of the first
 * that matches (so later rules win, as with v1's allow/deny writes); no match denies.
 * r3 = device type, r4 = requested access, r5 = major, r6 = minor. */
int devices_bpf_attach(int cgroup_fd, const struct devrule *rules, size_t n)
{
	size_t cap = 8 + n * 9, len = 0;
	cleanup_free struct bpf_insn *p = malloc(cap * sizeof *p);
	if (!p)
		return fail(ENOMEM, "device program");
	p[len++] = LDX_W(BPF_REG_2, BPF_REG_1, 0);
	p[len++] = MOV_REG(BPF_REG_3, BPF_REG_2);
	p[len++] = AND32(BPF_REG_3, 0xffff);
	p[len++] = MOV_REG(BPF_REG_4, BPF_REG_2);
	p[len++] = RSH32(BPF_REG_4, 16);
	p[len++] = LDX_W(BPF_REG_5, BPF_REG_1, 4);
	p[len++] = LDX_W(BPF_REG_6, BPF_REG_1, 8);
	bool decided = false; /* an unconditional rule ends the program: the verifier refuses dead code */
	for (size_t k = n; k-- > 0 && !decided;) {
		const struct devrule *d = &rules[k];
		struct bpf_insn b[9];
		size_t m = 0, jumps[4], nj = 0;
		if (d->type != 'a') {
			jumps[nj++] = m;
			b[m++] = JNE(BPF_REG_3, d->type == 'b' ? BPF_DEVCG_DEV_BLOCK : BPF_DEVCG_DEV_CHAR, 0);
		}
		if (d->access != (DEV_R | DEV_W | DEV_M)) {
			/* Every requested access must be one the rule names. */
			b[m++] = MOV_REG(BPF_REG_7, BPF_REG_4);
			b[m++] = AND32(BPF_REG_7, ~(int)d->access);
			jumps[nj++] = m;
			b[m++] = JNE(BPF_REG_7, 0, 0);
		}
		if (d->major >= 0) {
			jumps[nj++] = m;
			b[m++] = JNE(BPF_REG_5, (int)d->major, 0);
		}
		if (d->minor >= 0) {
			jumps[nj++] = m;
			b[m++] = JNE(BPF_REG_6, (int)d->minor, 0);
		}
		b[m++] = MOV_IMM(BPF_REG_0, d->allow);
		b[m++] = EXIT();
		for (size_t j = 0; j < nj; j++)
			b[jumps[j]].off = m - jumps[j] - 1;
		memcpy(p + len, b, m * sizeof *b);
		len += m;
		decided = nj == 0;
	}
	if (!decided) {
		p[len++] = MOV_IMM(BPF_REG_0, 0);
		p[len++] = EXIT();
	}

	union bpf_attr load = {0};
	load.prog_type = BPF_PROG_TYPE_CGROUP_DEVICE;
	load.insns = (uintptr_t)p;
	load.insn_cnt = len;
	load.license = (uintptr_t) "GPL";
	cleanup_close int prog = syscall(SYS_bpf, BPF_PROG_LOAD, &load, sizeof load);
	if (prog < 0) {
		/* Load again with the verifier's log, for a useful message. */
		char log[4096] = "";
		int e = errno;
		load.log_buf = (uintptr_t)log;
		load.log_size = sizeof log;
		load.log_level = 1;
		syscall(SYS_bpf, BPF_PROG_LOAD, &load, sizeof load);
		for (char *c = log; *c; c++)
			if (*c == '\n')
				*c = ' ';
		return fail(e, "load the cgroup device program (%.300s)", log);
	}
	union bpf_attr at = {0};
	at.target_fd = cgroup_fd;
	at.attach_bpf_fd = prog;
	at.attach_type = BPF_CGROUP_DEVICE;
	at.attach_flags = BPF_F_ALLOW_MULTI;
	if (syscall(SYS_bpf, BPF_PROG_ATTACH, &at, sizeof at) < 0)
		return fail(errno, "attach the cgroup device program");
	return 0;
}
