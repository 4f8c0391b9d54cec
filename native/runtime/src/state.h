/* Container state under --root/<id>: state.json (written atomically), config.json (the config the
 * container was created with, for exec and hooks) and exec.fifo while the container is "created". */
#pragma once
#include "json.h"

struct cstate {
	struct jdoc doc;
	const char *id, *bundle, *rootfs, *created, *status, *cgroup, *owner;
	pid_t pid;
	uint64_t start_time; /* of the init, so a recycled pid is not taken for it */
};

int valid_id(const char *id);
char *state_dir(const char *root, const char *id);
int state_load(const char *root, const char *id, struct cstate *st);
int state_save(const char *dir, const struct cstate *st);
void state_free(struct cstate *st);
#define cleanup_state __attribute__((cleanup(state_free)))
/* creating, created, running, paused or stopped, from the stored state and the live process. */
const char *state_status(const char *root, const struct cstate *st);
/* runc's `state` JSON; annotations come from the container's saved config. */
void state_json(struct buf *b, const char *root, const struct cstate *st, const char *status, bool pretty, const char *oci);
uint64_t proc_start_time(pid_t pid, char *state_char);
/* The state the runtime-spec hands to hooks and seccomp agents. */
void state_hook_json(struct buf *b, const struct jv *annotations, const char *id, const char *status, pid_t pid,
		     const char *bundle);
