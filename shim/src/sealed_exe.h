/* The OCI runtime binary as a sealed in-memory copy, kept for the shim's lifetime.
 *
 * CVE-2019-5736: a runtime that enters a container must not run from a file the container could
 * reach through /proc/<pid>/exe and overwrite, so berth-runtime (and runc) re-execute from a
 * sealed memfd copy of themselves on every create and exec. Copying the 1.2 MB binary for every
 * container was ~5 % of the CPU of a 20-container start. The shim lives long and serves many
 * tasks, so it makes the copy once and spawns the runtime from it; the runtime finds its
 * /proc/self/exe already sealed and skips its own copy. The protection is the same: the sealed
 * memfd cannot be written, and only the shim holds it. */
#pragma once

/* The program to spawn for `binary` (a path, or a name looked up in PATH): "/proc/self/fd/N" of
 * its sealed copy, written into exe[32], or `binary` itself when no copy can be used (not an ELF
 * file, whose interpreter could not open the fd after exec, or no memfd). The copy is remade
 * when the file changes. Holds a read lock that sealed_exe_release drops once the spawn has
 * exec'd, so a copy is never closed under a spawn. */
const char *sealed_exe_acquire(const char *binary, char exe[32]);
void sealed_exe_release(void);
