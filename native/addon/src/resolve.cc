#include <errno.h>
#include <fcntl.h>
#include <linux/openat2.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <climits>

#include "errors.h"
#include "modules.h"

namespace berth {
namespace {

// Resolves `path` with `root` as the filesystem root: the kernel treats absolute symlinks and
// ".." as if root were "/", so no component can escape (openat2 RESOLVE_IN_ROOT). The result is
// the host path of what the name reaches, read back from /proc/self/fd, which contains no
// symlinks. No fd survives the call.
struct Resolved {
  std::string path;
  uint32_t mode;
};

int DoResolve(const std::string& root, const std::string& path, Resolved* out) {
  int rootfd = open(root.c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC);
  if (rootfd < 0) return -errno;
  struct open_how how = {};
  how.flags = O_PATH | O_CLOEXEC;
  how.resolve = RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS;
  int fd = static_cast<int>(syscall(SYS_openat2, rootfd, path.c_str(), &how, sizeof(how)));
  int err = fd < 0 ? errno : 0;
  close(rootfd);
  if (fd < 0) return -err;

  struct stat st;
  char buf[PATH_MAX];
  std::string link = "/proc/self/fd/" + std::to_string(fd);
  ssize_t n = fstat(fd, &st) == 0 ? readlink(link.c_str(), buf, sizeof(buf)) : -1;
  err = n < 0 ? errno : 0;
  close(fd);
  if (n < 0) return -err;
  if (static_cast<size_t>(n) >= sizeof(buf)) return -ENAMETOOLONG;
  out->path.assign(buf, static_cast<size_t>(n));
  out->mode = st.st_mode;
  return 0;
}

// resolveInRoot(root, path) -> { path: hostPath, mode }
Napi::Value ResolveInRoot(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  std::string root, path;
  if (!ArgString(info, 0, &root) || !ArgString(info, 1, &path)) return env.Undefined();
  Resolved resolved;
  int rc = DoResolve(root, path, &resolved);
  if (rc < 0) {
    ThrowErrno(env, -rc, "openat2", root + "//" + path);
    return env.Undefined();
  }
  Napi::Object result = Napi::Object::New(env);
  result.Set("path", Napi::String::New(env, resolved.path));
  result.Set("mode", Napi::Number::New(env, resolved.mode));
  return result;
}

}  // namespace

void RegisterResolve(Napi::Env env, Napi::Object exports) {
  exports.Set("resolveInRoot", Napi::Function::New(env, ResolveInRoot, "resolveInRoot"));
}

}  // namespace berth
