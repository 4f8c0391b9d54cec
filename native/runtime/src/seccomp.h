/* linux.seccomp to a libseccomp filter. The filter is compiled in the parent, before any
 * namespace exists, so a bad profile fails `create` cleanly; the child only loads it. */
#pragma once
#include "json.h"

int seccomp_build(const struct jv *cfg, void **out);

/* What the process loads: the filter and, for SCMP_ACT_NOTIFY, the connected listenerPath socket
 * and the containerProcessState to send with the notify fd (runtime-spec seccomp agent). */
struct seccomp_load { void *ctx; int listener; const char *state; };
int seccomp_install(const struct seccomp_load *l);
char *seccomp_process_state(const struct jv *cfg, pid_t pid, const char *state_json);
void seccomp_free_ptr(void **ctx);
#define cleanup_seccomp __attribute__((cleanup(seccomp_free_ptr)))
/* For `features` and `spec`. */
extern const char *const seccomp_action_names[];
extern const char *const seccomp_op_names[];
extern const char *const seccomp_flag_names[];
void seccomp_default_profile(struct buf *b);
