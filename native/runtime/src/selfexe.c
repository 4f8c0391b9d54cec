/* CVE-2019-5736: a container process could open the runtime through /proc/<pid>/exe and
 * overwrite the host binary. Before entering any container we re-execute from a sealed memfd
 * copy, so /proc/<pid>/exe is an unwritable anonymous file. A sealed image is recognised by its
 * seals, so the copy is made once per invocation. */
#include "util.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/sendfile.h>
#include <sys/stat.h>
#include <sys/syscall.h>

#ifndef MFD_EXEC
#define MFD_EXEC 0x10U
#endif

extern char **environ;

int reexec_sealed(char **argv)
{
	cleanup_close int self = open("/proc/self/exe", O_RDONLY | O_CLOEXEC);
	if (self < 0)
		return fail(errno, "open /proc/self/exe");
	int seals = fcntl(self, F_GET_SEALS);
	const int want = F_SEAL_SEAL | F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_WRITE;
	if (seals >= 0 && (seals & want) == want)
		return 0;
	cleanup_close int mfd = memfd_create("berth-runtime", MFD_CLOEXEC | MFD_ALLOW_SEALING | MFD_EXEC);
	if (mfd < 0 && errno == EINVAL)
		mfd = memfd_create("berth-runtime", MFD_CLOEXEC | MFD_ALLOW_SEALING);
	if (mfd < 0)
		return fail(errno, "memfd_create");
	struct stat st;
	if (fstat(self, &st) < 0)
		return fail(errno, "stat /proc/self/exe");
	for (off_t off = 0; off < st.st_size;) {
		ssize_t n = sendfile(mfd, self, &off, st.st_size - off);
		if (n <= 0)
			return fail(n < 0 ? errno : EIO, "copy the runtime binary");
	}
	if (fcntl(mfd, F_ADD_SEALS, want) < 0)
		return fail(errno, "seal the runtime copy");
	syscall(SYS_execveat, mfd, "", argv, environ, AT_EMPTY_PATH);
	return fail(errno, "re-exec from the sealed copy");
}
