/* Every file is optional: a controller that is not mounted, or a counter this kernel lacks,
 * leaves its fields zero rather than failing the whole Stats call. Field numbers are those of
 * containerd's cgroups stats protos (proto/containerd/cgroups/v1/metrics.proto; for v2,
 * github.com/containerd/cgroups cgroup2/stats/metrics.proto). */
#include "metrics.h"
#include "shim.h"

#include <fcntl.h>
#include <sys/statfs.h>

#define CGROUP_ROOT "/sys/fs/cgroup"
#ifndef CGROUP2_SUPER_MAGIC
#define CGROUP2_SUPER_MAGIC 0x63677270
#endif
/* cpuacct.stat counts USER_HZ ticks (100 per second on Linux); Metrics wants nanoseconds. */
#define NS_PER_TICK 10000000ull

/* <root>/<dir>/<file>, or NULL when unreadable. */
static char *cg_read(const char *dir, const char *file)
{
	cleanup_free char *path = xasprintf("%s/%s", dir, file);
	char *text = NULL;
	return read_file_at(AT_FDCWD, path, &text, NULL) < 0 ? NULL : text;
}

/* A single-number file; "max" (no limit) reads as `max`, as containerd reports it per version. */
static uint64_t cg_num(const char *dir, const char *file, uint64_t max)
{
	cleanup_free char *text = cg_read(dir, file);
	if (!text)
		return 0;
	if (!strncmp(text, "max", 3))
		return max;
	return strtoull(text, NULL, 10);
}

/* The value of `key` in a "key value" per line file's text; 0 when absent. */
static uint64_t keyed(const char *text, const char *key)
{
	size_t n = strlen(key);
	for (const char *p = text; *p;) {
		if (!strncmp(p, key, n) && (p[n] == ' ' || p[n] == '\t'))
			return strtoull(p + n + 1, NULL, 10);
		const char *nl = strchr(p, '\n');
		if (!nl)
			break;
		p = nl + 1;
	}
	return 0;
}

/* Packed repeated uint64, written by hand because a zero must keep its place in the list. */
static void put_packed(pb_buf *b, int field, const uint64_t *v, size_t n)
{
	cleanup_free uint8_t *raw = malloc(n * 10 + 1);
	if (!raw) {
		b->oom = true;
		return;
	}
	size_t len = 0;
	for (size_t i = 0; i < n; i++) {
		uint64_t x = v[i];
		for (; x >= 0x80; x >>= 7)
			raw[len++] = (uint8_t)(x | 0x80);
		raw[len++] = (uint8_t)x;
	}
	pb_put_bytes(b, field, raw, len);
}

static char *v1_dir(const char *controller, const char *path)
{
	return xasprintf(CGROUP_ROOT "/%s/%s", controller, path);
}

static void v1_pids(pb_buf *m, const char *path)
{
	cleanup_free char *dir = v1_dir("pids", path);
	cleanup_pb pb_buf pids = {0};
	pb_put_uint(&pids, 1, cg_num(dir, "pids.current", 0));
	pb_put_uint(&pids, 2, cg_num(dir, "pids.max", 0));
	pb_put_message(m, 2, &pids);
}

static void v1_cpu(pb_buf *m, const char *path)
{
	cleanup_free char *acct = v1_dir("cpuacct", path);
	cleanup_free char *cpu = v1_dir("cpu", path);
	cleanup_free char *stat = cg_read(acct, "cpuacct.stat");
	cleanup_free char *percpu = cg_read(acct, "cpuacct.usage_percpu");
	cleanup_free char *throttle = cg_read(cpu, "cpu.stat");
	cleanup_pb pb_buf usage = {0}, throttling = {0}, out = {0};
	pb_put_uint(&usage, 1, cg_num(acct, "cpuacct.usage", 0));
	pb_put_uint(&usage, 2, (stat ? keyed(stat, "system") : 0) * NS_PER_TICK);
	pb_put_uint(&usage, 3, (stat ? keyed(stat, "user") : 0) * NS_PER_TICK);
	uint64_t per_cpu[1024];
	size_t n = 0;
	for (char *p = percpu, *end; p && n < sizeof per_cpu / sizeof *per_cpu; p = end) {
		uint64_t v = strtoull(p, &end, 10);
		if (end == p)
			break;
		per_cpu[n++] = v;
	}
	put_packed(&usage, 4, per_cpu, n);
	pb_put_uint(&throttling, 1, throttle ? keyed(throttle, "nr_periods") : 0);
	pb_put_uint(&throttling, 2, throttle ? keyed(throttle, "nr_throttled") : 0);
	pb_put_uint(&throttling, 3, throttle ? keyed(throttle, "throttled_time") : 0);
	pb_put_message(&out, 1, &usage);
	pb_put_message(&out, 2, &throttling);
	pb_put_message(m, 3, &out);
}

/* memory.stat names and their MemoryStat fields; the total_ variants (hierarchical counts) have
 * fields of their own, except for the two limits. */
static const struct { const char *key; int field, total; } v1_memory_stat[] = {
	{"cache", 1, 18}, {"rss", 2, 19}, {"rss_huge", 3, 20}, {"mapped_file", 4, 21},
	{"dirty", 5, 22}, {"writeback", 6, 23}, {"pgpgin", 7, 24}, {"pgpgout", 8, 25},
	{"pgfault", 9, 26}, {"pgmajfault", 10, 27}, {"inactive_anon", 11, 28}, {"active_anon", 12, 29},
	{"inactive_file", 13, 30}, {"active_file", 14, 31}, {"unevictable", 15, 32},
	{"hierarchical_memory_limit", 16, 0}, {"hierarchical_memsw_limit", 17, 0},
};

static void v1_memory_entry(pb_buf *m, int field, const char *dir, const char *prefix)
{
	static const char *const files[] = {"limit_in_bytes", "usage_in_bytes", "max_usage_in_bytes", "failcnt"};
	cleanup_pb pb_buf entry = {0};
	for (int i = 0; i < 4; i++) {
		cleanup_free char *file = xasprintf("%s.%s", prefix, files[i]);
		pb_put_uint(&entry, i + 1, cg_num(dir, file, 0));
	}
	pb_put_message(m, field, &entry);
}

static void v1_memory(pb_buf *m, const char *path)
{
	cleanup_free char *dir = v1_dir("memory", path);
	cleanup_free char *stat = cg_read(dir, "memory.stat");
	cleanup_pb pb_buf mem = {0}, oom = {0};
	for (size_t i = 0; stat && i < sizeof v1_memory_stat / sizeof *v1_memory_stat; i++) {
		char total[64];
		pb_put_uint(&mem, v1_memory_stat[i].field, keyed(stat, v1_memory_stat[i].key));
		snprintf(total, sizeof total, "total_%s", v1_memory_stat[i].key);
		if (v1_memory_stat[i].total)
			pb_put_uint(&mem, v1_memory_stat[i].total, keyed(stat, total));
	}
	v1_memory_entry(&mem, 33, dir, "memory");
	v1_memory_entry(&mem, 34, dir, "memory.memsw");
	v1_memory_entry(&mem, 35, dir, "memory.kmem");
	v1_memory_entry(&mem, 36, dir, "memory.kmem.tcp");
	pb_put_message(m, 4, &mem);

	/* One read for its three counters, as for memory.stat above. */
	cleanup_free char *oom_control = cg_read(dir, "memory.oom_control");
	static const char *const oom_keys[] = {"oom_kill_disable", "under_oom", "oom_kill"};
	for (int i = 0; i < 3; i++)
		pb_put_uint(&oom, i + 1, oom_control ? keyed(oom_control, oom_keys[i]) : 0);
	pb_put_message(m, 9, &oom);
}

/* Lines like "8:0 Read 4096"; op-less lines such as "Total 123" are skipped. */
static void v1_blkio_entries(pb_buf *blkio, int field, const char *dir, const char *file)
{
	cleanup_free char *text = cg_read(dir, file);
	char *save;
	for (char *line = text ? strtok_r(text, "\n", &save) : NULL; line; line = strtok_r(NULL, "\n", &save)) {
		unsigned major, minor;
		char op[32];
		unsigned long long value;
		if (sscanf(line, "%u:%u %31s %llu", &major, &minor, op, &value) != 4)
			continue;
		cleanup_pb pb_buf entry = {0};
		pb_put_string(&entry, 1, op);
		pb_put_uint(&entry, 3, major);
		pb_put_uint(&entry, 4, minor);
		pb_put_uint(&entry, 5, value);
		pb_put_message(blkio, field, &entry);
	}
}

static void v1_blkio(pb_buf *m, const char *path)
{
	cleanup_free char *dir = v1_dir("blkio", path);
	cleanup_pb pb_buf blkio = {0};
	v1_blkio_entries(&blkio, 1, dir, "blkio.io_service_bytes_recursive");
	v1_blkio_entries(&blkio, 2, dir, "blkio.io_serviced_recursive");
	pb_put_message(m, 5, &blkio);
}

/* io.containerd.cgroups.v1.Metrics, from the per-controller hierarchies. */
static void v1_metrics(pb_buf *m, const char *path)
{
	v1_pids(m, path);
	v1_cpu(m, path);
	v1_memory(m, path);
	v1_blkio(m, path);
}

static const char *const v2_memory_stat[] = {
	"anon", "file", "kernel_stack", "slab", "sock", "shmem", "file_mapped", "file_dirty",
	"file_writeback", "anon_thp", "inactive_anon", "active_anon", "inactive_file", "active_file",
	"unevictable", "slab_reclaimable", "slab_unreclaimable", "pgfault", "pgmajfault",
	"workingset_refault", "workingset_activate", "workingset_nodereclaim", "pgrefill", "pgscan",
	"pgsteal", "pgactivate", "pgdeactivate", "pglazyfree", "pglazyfreed", "thp_fault_alloc",
	"thp_collapse_alloc",
};

static void v2_memory(pb_buf *m, const char *dir)
{
	cleanup_free char *stat = cg_read(dir, "memory.stat");
	cleanup_pb pb_buf mem = {0};
	for (size_t i = 0; stat && i < sizeof v2_memory_stat / sizeof *v2_memory_stat; i++)
		pb_put_uint(&mem, i + 1, keyed(stat, v2_memory_stat[i]));
	static const char *const files[] = {"memory.current", "memory.max", "memory.swap.current",
					    "memory.swap.max", "memory.peak", "memory.swap.peak"};
	for (int i = 0; i < 6; i++)
		pb_put_uint(&mem, 32 + i, cg_num(dir, files[i], UINT64_MAX));
	pb_put_message(m, 4, &mem);
}

/* Lines like "8:0 rbytes=1 wbytes=2 rios=3 wios=4 dbytes=0 dios=0". */
static void v2_io(pb_buf *m, const char *dir)
{
	static const char *const keys[] = {"rbytes=", "wbytes=", "rios=", "wios="};
	cleanup_free char *text = cg_read(dir, "io.stat");
	cleanup_pb pb_buf io = {0};
	char *save;
	for (char *line = text ? strtok_r(text, "\n", &save) : NULL; line; line = strtok_r(NULL, "\n", &save)) {
		unsigned major, minor;
		if (sscanf(line, "%u:%u", &major, &minor) != 2)
			continue;
		cleanup_pb pb_buf entry = {0};
		pb_put_uint(&entry, 1, major);
		pb_put_uint(&entry, 2, minor);
		for (int i = 0; i < 4; i++) {
			const char *v = strstr(line, keys[i]);
			pb_put_uint(&entry, 3 + i, v ? strtoull(v + strlen(keys[i]), NULL, 10) : 0);
		}
		pb_put_message(&io, 1, &entry);
	}
	pb_put_message(m, 6, &io);
}

/* io.containerd.cgroups.v2.Metrics, from the one unified hierarchy. */
static void v2_metrics(pb_buf *m, const char *path)
{
	cleanup_free char *dir = xasprintf(CGROUP_ROOT "/%s", path);
	cleanup_free char *cpu_stat = cg_read(dir, "cpu.stat");
	cleanup_free char *events = cg_read(dir, "memory.events");
	cleanup_pb pb_buf pids = {0}, cpu = {0}, mem_events = {0};
	pb_put_uint(&pids, 1, cg_num(dir, "pids.current", UINT64_MAX));
	pb_put_uint(&pids, 2, cg_num(dir, "pids.max", UINT64_MAX));
	pb_put_message(m, 1, &pids);
	static const char *const cpu_keys[] = {"usage_usec", "user_usec", "system_usec", "nr_periods", "nr_throttled", "throttled_usec"};
	for (int i = 0; i < 6; i++)
		pb_put_uint(&cpu, i + 1, cpu_stat ? keyed(cpu_stat, cpu_keys[i]) : 0);
	pb_put_message(m, 2, &cpu);
	v2_memory(m, dir);
	v2_io(m, dir);
	static const char *const event_keys[] = {"low", "high", "max", "oom", "oom_kill"};
	for (int i = 0; i < 5; i++)
		pb_put_uint(&mem_events, i + 1, events ? keyed(events, event_keys[i]) : 0);
	pb_put_message(m, 8, &mem_events);
}

static bool unified_only(void)
{
	struct statfs fs;
	return statfs(CGROUP_ROOT, &fs) == 0 && fs.f_type == CGROUP2_SUPER_MAGIC;
}

int cgroup_metrics(const char *cgroups_path, pb_buf *out, const char **type_url)
{
	const char *path = cgroups_path;
	while (*path == '/')
		path++;
	if (unified_only()) {
		v2_metrics(out, path);
		*type_url = "io.containerd.cgroups.v2.Metrics";
	} else {
		v1_metrics(out, path);
		*type_url = "io.containerd.cgroups.v1.Metrics";
	}
	return out->oom ? fail(ENOMEM, "encode cgroup metrics") : 0;
}
