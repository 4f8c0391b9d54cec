/* linux.resources.devices as a list of rules: the config's own, then (as runc does) the devices
 * every container gets and the config's linux.devices. Later rules win. cgroup v1 takes them as
 * devices.allow/deny writes; cgroup2 as an eBPF program. */
#pragma once
#include "spec.h"

struct devrule {
	char type;          /* 'a', 'c' or 'b' */
	int64_t major, minor; /* -1: any */
	unsigned access;    /* DEV_R | DEV_W | DEV_M */
	bool allow;
};
enum { DEV_M = 1, DEV_R = 2, DEV_W = 4 };

/* *out is NULL when the config has no device rules (then nothing is restricted). */
int device_rules(const struct spec *s, struct devrule **out, size_t *n);
int devices_bpf_attach(int cgroup_fd, const struct devrule *rules, size_t n);
