#include <errno.h>
#include <fcntl.h>
#include <linux/fs.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include "errors.h"
#include "modules.h"

namespace berth {
namespace {

// The fd closes on every path out of the function.
struct ScopedFd {
  int fd;
  explicit ScopedFd(int f) : fd(f) {}
  ~ScopedFd() {
    if (fd >= 0) close(fd);
  }
  ScopedFd(const ScopedFd&) = delete;
  ScopedFd& operator=(const ScopedFd&) = delete;
};

bool Unsupported(int err) { return err == ENOTTY || err == EOPNOTSUPP || err == EINVAL; }

// Adds FS_TOPDIR_FL to a directory. Returns 1 when set, 0 when the filesystem has no such flag
// (tmpfs, xfs, overlay, ...), else -errno.
int DoMarkTopDir(const std::string& path) {
  ScopedFd dir(open(path.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
  if (dir.fd < 0) return -errno;
  // The kernel reads and writes an int here, whatever the ioctl's declared type says.
  int flags = 0;
  if (ioctl(dir.fd, FS_IOC_GETFLAGS, &flags) != 0) return Unsupported(errno) ? 0 : -errno;
  if ((flags & FS_TOPDIR_FL) != 0) return 1;
  flags |= FS_TOPDIR_FL;
  if (ioctl(dir.fd, FS_IOC_SETFLAGS, &flags) != 0) return Unsupported(errno) ? 0 : -errno;
  return 1;
}

// markTopDir(path) -> boolean: whether the directory now carries the flag.
Napi::Value MarkTopDir(const Napi::CallbackInfo& info) {
  std::string path;
  if (!ArgString(info, 0, &path)) return info.Env().Undefined();
  int rc = DoMarkTopDir(path);
  if (rc < 0) {
    ThrowErrno(info.Env(), -rc, "FS_IOC_SETFLAGS", path);
    return info.Env().Undefined();
  }
  return Napi::Boolean::New(info.Env(), rc == 1);
}

}  // namespace

void RegisterInodeFlags(Napi::Env env, Napi::Object exports) {
  exports.Set("markTopDir", Napi::Function::New(env, MarkTopDir, "markTopDir"));
}

}  // namespace berth
