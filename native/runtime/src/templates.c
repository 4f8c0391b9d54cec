/* Output of `spec` (a default config.json) and `features`. */
#include "seccomp.h"
#include "spec.h"

#include <fcntl.h>

static void str_list(struct buf *b, const char *const *v, size_t n, const char *indent)
{
	buf_printf(b, "[");
	for (size_t i = 0; i < n && v[i]; i++)
		buf_printf(b, "%s\n%s\"%s\"", i ? "," : "", indent, v[i]);
	buf_printf(b, "\n%.*s]", (int)strlen(indent) - 1, indent);
}

int print_spec_template(const char *bundle)
{
	static const char *const caps[] = {"CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE"};
	static const char *const masked[] = {"/proc/acpi", "/proc/asound", "/proc/kcore", "/proc/keys",
					     "/proc/latency_stats", "/proc/timer_list", "/proc/timer_stats",
					     "/proc/sched_debug", "/sys/firmware", "/sys/devices/virtual/powercap",
					     "/proc/scsi"};
	static const char *const ro[] = {"/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger"};
	cleanup_buf struct buf b = {0};
	buf_printf(&b, "{\n\t\"ociVersion\": \"1.1.0\",\n\t\"process\": {\n\t\t\"terminal\": true,\n\t\t\"user\": {\n\t\t\t\"uid\": 0,\n"
		       "\t\t\t\"gid\": 0\n\t\t},\n\t\t\"args\": [\n\t\t\t\"sh\"\n\t\t],\n\t\t\"env\": [\n\t\t\t"
		       "\"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin\",\n\t\t\t\"TERM=xterm\"\n\t\t],\n"
		       "\t\t\"cwd\": \"/\",\n\t\t\"capabilities\": {\n");
	static const char *const sets[] = {"bounding", "effective", "permitted"};
	for (int i = 0; i < 3; i++) {
		buf_printf(&b, "\t\t\t\"%s\": ", sets[i]);
		str_list(&b, caps, 3, "\t\t\t\t");
		buf_printf(&b, "%s\n", i < 2 ? "," : "");
	}
	buf_printf(&b, "\t\t},\n\t\t\"rlimits\": [\n\t\t\t{\n\t\t\t\t\"type\": \"RLIMIT_NOFILE\",\n\t\t\t\t\"hard\": 1024,\n"
		       "\t\t\t\t\"soft\": 1024\n\t\t\t}\n\t\t],\n\t\t\"noNewPrivileges\": true\n\t},\n"
		       "\t\"root\": {\n\t\t\"path\": \"rootfs\",\n\t\t\"readonly\": true\n\t},\n\t\"hostname\": \"berth\",\n"
		       "\t\"mounts\": [\n");
	static const char *const mounts[][4] = {
		{"/proc", "proc", "proc", NULL},
		{"/dev", "tmpfs", "tmpfs", "\"nosuid\", \"strictatime\", \"mode=755\", \"size=65536k\""},
		{"/dev/pts", "devpts", "devpts", "\"nosuid\", \"noexec\", \"newinstance\", \"ptmxmode=0666\", \"mode=0620\", \"gid=5\""},
		{"/dev/shm", "tmpfs", "shm", "\"nosuid\", \"noexec\", \"nodev\", \"mode=1777\", \"size=65536k\""},
		{"/dev/mqueue", "mqueue", "mqueue", "\"nosuid\", \"noexec\", \"nodev\""},
		{"/sys", "sysfs", "sysfs", "\"nosuid\", \"noexec\", \"nodev\", \"ro\""},
		{"/sys/fs/cgroup", "cgroup", "cgroup", "\"nosuid\", \"noexec\", \"nodev\", \"relatime\", \"ro\""}};
	for (size_t i = 0; i < sizeof mounts / sizeof *mounts; i++) {
		buf_printf(&b, "\t\t{\n\t\t\t\"destination\": \"%s\",\n\t\t\t\"type\": \"%s\",\n\t\t\t\"source\": \"%s\"", mounts[i][0],
			   mounts[i][1], mounts[i][2]);
		if (mounts[i][3])
			buf_printf(&b, ",\n\t\t\t\"options\": [%s]", mounts[i][3]);
		buf_printf(&b, "\n\t\t}%s\n", i + 1 < sizeof mounts / sizeof *mounts ? "," : "");
	}
	buf_printf(&b, "\t],\n\t\"linux\": {\n\t\t\"resources\": {\n\t\t\t\"devices\": [\n\t\t\t\t{\n\t\t\t\t\t\"allow\": false,\n"
		       "\t\t\t\t\t\"access\": \"rwm\"\n\t\t\t\t}\n\t\t\t]\n\t\t},\n\t\t\"namespaces\": [\n");
	static const char *const nss[] = {"pid", "network", "ipc", "uts", "mount", "cgroup"};
	for (int i = 0; i < 6; i++)
		buf_printf(&b, "\t\t\t{\n\t\t\t\t\"type\": \"%s\"\n\t\t\t}%s\n", nss[i], i < 5 ? "," : "");
	buf_printf(&b, "\t\t],\n\t\t\"maskedPaths\": ");
	str_list(&b, masked, sizeof masked / sizeof *masked, "\t\t\t");
	buf_printf(&b, ",\n\t\t\"readonlyPaths\": ");
	str_list(&b, ro, sizeof ro / sizeof *ro, "\t\t\t");
	buf_printf(&b, ",\n\t\t\"seccomp\": ");
	seccomp_default_profile(&b);
	buf_printf(&b, "\n\t}\n}\n");
	cleanup_free char *path = xasprintf("%s/config.json", bundle ? bundle : ".");
	cleanup_close int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
	if (fd < 0)
		return fail(errno, "create `%s`", path);
	int r = write_all(fd, b.p, b.len);
	return r < 0 ? fail(-r, "write `%s`", path) : 0;
}

void print_features(void)
{
	static const char *const opts[] = {"async", "atime", "bind", "defaults", "dev", "diratime", "dirsync", "exec",
					   "loud", "mand", "noatime", "nodev", "nodiratime", "noexec", "nomand",
					   "norelatime", "nostrictatime", "nosuid", "nosymfollow", "private", "rbind",
					   "relatime", "remount", "ro", "rprivate", "rshared", "rslave", "runbindable", "rw",
					   "shared", "silent", "slave", "strictatime", "suid", "symfollow", "sync", "unbindable"};
	cleanup_buf struct buf b = {0};
	buf_printf(&b, "{\n  \"ociVersionMin\": \"1.0.0\",\n  \"ociVersionMax\": \"1.1.0\",\n  \"hooks\": ");
	str_list(&b, hook_names, HOOK_COUNT, "    ");
	buf_printf(&b, ",\n  \"mountOptions\": ");
	str_list(&b, opts, sizeof opts / sizeof *opts, "    ");
	buf_printf(&b, ",\n  \"linux\": {\n    \"namespaces\": ");
	const char *ns[NS_COUNT];
	for (int k = 0; k < NS_COUNT; k++)
		ns[k] = ns_desc[k].spec;
	str_list(&b, ns, NS_COUNT, "      ");
	buf_printf(&b, ",\n    \"capabilities\": ");
	str_list(&b, cap_names, n_cap_names, "      ");
	buf_printf(&b, ",\n    \"cgroup\": {\n      \"v1\": true,\n      \"v2\": true,\n      \"systemd\": false,\n"
		       "      \"systemdUser\": false\n    },\n    \"seccomp\": {\n      \"enabled\": true,\n      \"actions\": ");
	str_list(&b, seccomp_action_names, 99, "        ");
	buf_printf(&b, ",\n      \"operators\": ");
	str_list(&b, seccomp_op_names, 99, "        ");
	buf_printf(&b, ",\n      \"archs\": [\n        \"SCMP_ARCH_X86\",\n        \"SCMP_ARCH_X86_64\",\n        \"SCMP_ARCH_X32\"\n      ],\n"
		       "      \"knownFlags\": ");
	str_list(&b, seccomp_flag_names, 99, "        ");
	buf_printf(&b, ",\n      \"supportedFlags\": ");
	str_list(&b, seccomp_flag_names, 99, "        ");
	buf_printf(&b, "\n    },\n    \"apparmor\": {\n      \"enabled\": true\n    },\n    \"selinux\": {\n      \"enabled\": true\n"
		       "    }\n  },\n  \"annotations\": {\n    \"org.opencontainers.runtime-spec.features.berth.version\": \"0.1.0\"\n  }\n}\n");
	fputs(b.p, stdout);
}
