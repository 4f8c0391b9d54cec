#include <errno.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>

#include "errors.h"
#include "modules.h"

namespace berth {
namespace {

int DoMknod(const std::string& path, uint32_t mode, uint32_t major, uint32_t minor) {
  return mknod(path.c_str(), mode, makedev(major, minor)) == 0 ? 0 : -errno;
}

// mknod(path, mode, major, minor): mode carries the file type (S_IFCHR, S_IFBLK, S_IFIFO, ...).
Napi::Value Mknod(const Napi::CallbackInfo& info) {
  std::string path;
  uint32_t mode, major, minor;
  if (!ArgString(info, 0, &path) || !ArgUint32(info, 1, &mode) || !ArgUint32(info, 2, &major) ||
      !ArgUint32(info, 3, &minor)) {
    return info.Env().Undefined();
  }
  int rc = DoMknod(path, mode, major, minor);
  if (rc < 0) ThrowErrno(info.Env(), -rc, "mknod", path);
  return info.Env().Undefined();
}

}  // namespace

void RegisterMknod(Napi::Env env, Napi::Object exports) {
  exports.Set("mknod", Napi::Function::New(env, Mknod, "mknod"));
}

}  // namespace berth
