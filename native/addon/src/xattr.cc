#include <errno.h>
#include <sys/xattr.h>

#include <vector>

#include "errors.h"
#include "modules.h"

namespace berth {
namespace {

// The l* variants never follow a final symlink: layer code sets xattrs on symlinks themselves.

int DoGet(const std::string& path, const std::string& name, std::vector<char>* out) {
  for (;;) {
    ssize_t size = lgetxattr(path.c_str(), name.c_str(), nullptr, 0);
    if (size < 0) return -errno;
    out->resize(static_cast<size_t>(size));
    ssize_t got = lgetxattr(path.c_str(), name.c_str(), out->data(), out->size());
    if (got >= 0) {
      out->resize(static_cast<size_t>(got));
      return 0;
    }
    if (errno != ERANGE) return -errno;  // ERANGE: the value grew between the two calls.
  }
}

int DoList(const std::string& path, std::vector<char>* out) {
  for (;;) {
    ssize_t size = llistxattr(path.c_str(), nullptr, 0);
    if (size < 0) return -errno;
    out->resize(static_cast<size_t>(size));
    ssize_t got = llistxattr(path.c_str(), out->data(), out->size());
    if (got >= 0) {
      out->resize(static_cast<size_t>(got));
      return 0;
    }
    if (errno != ERANGE) return -errno;
  }
}

Napi::Value Lsetxattr(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  std::string path, name;
  uint32_t flags = 0;
  if (!ArgString(info, 0, &path) || !ArgString(info, 1, &name)) return env.Undefined();
  if (info.Length() < 3 || !info[2].IsBuffer()) {
    Napi::TypeError::New(env, "argument 2 must be a Buffer").ThrowAsJavaScriptException();
    return env.Undefined();
  }
  if (info.Length() > 3 && !ArgUint32(info, 3, &flags)) return env.Undefined();
  Napi::Buffer<char> value = info[2].As<Napi::Buffer<char>>();
  if (lsetxattr(path.c_str(), name.c_str(), value.Data(), value.Length(), static_cast<int>(flags)) != 0) {
    ThrowErrno(env, errno, "lsetxattr", path);
  }
  return env.Undefined();
}

Napi::Value Lgetxattr(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  std::string path, name;
  if (!ArgString(info, 0, &path) || !ArgString(info, 1, &name)) return env.Undefined();
  std::vector<char> value;
  int rc = DoGet(path, name, &value);
  if (rc < 0) {
    ThrowErrno(env, -rc, "lgetxattr", path);
    return env.Undefined();
  }
  return Napi::Buffer<char>::Copy(env, value.data(), value.size());
}

Napi::Value Llistxattr(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  std::string path;
  if (!ArgString(info, 0, &path)) return env.Undefined();
  std::vector<char> list;
  int rc = DoList(path, &list);
  if (rc < 0) {
    ThrowErrno(env, -rc, "llistxattr", path);
    return env.Undefined();
  }
  Napi::Array names = Napi::Array::New(env);
  uint32_t count = 0;
  for (size_t start = 0; start < list.size();) {
    size_t end = start;
    while (end < list.size() && list[end] != '\0') end++;
    names.Set(count++, Napi::String::New(env, list.data() + start, end - start));
    start = end + 1;
  }
  return names;
}

Napi::Value Lremovexattr(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  std::string path, name;
  if (!ArgString(info, 0, &path) || !ArgString(info, 1, &name)) return env.Undefined();
  if (lremovexattr(path.c_str(), name.c_str()) != 0) ThrowErrno(env, errno, "lremovexattr", path);
  return env.Undefined();
}

}  // namespace

void RegisterXattr(Napi::Env env, Napi::Object exports) {
  exports.Set("lsetxattr", Napi::Function::New(env, Lsetxattr, "lsetxattr"));
  exports.Set("lgetxattr", Napi::Function::New(env, Lgetxattr, "lgetxattr"));
  exports.Set("llistxattr", Napi::Function::New(env, Llistxattr, "llistxattr"));
  exports.Set("lremovexattr", Napi::Function::New(env, Lremovexattr, "lremovexattr"));
}

}  // namespace berth
