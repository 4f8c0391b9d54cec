#include <errno.h>
#include <fcntl.h>
#include <sys/mount.h>
#include <unistd.h>

#include <vector>

#include "errors.h"
#include "modules.h"

namespace berth {
namespace {

// Mounts through the new mount API (fsopen/fsconfig/fsmount/move_mount). Each parameter is its
// own fsconfig call, so there is no page-size limit on the whole option string: overlays with
// hundreds of layers pass each one as "lowerdir+=<dir>".
struct Failure {
  int err;
  const char* what;
};

int SetParam(int fsfd, const std::string& param) {
  size_t eq = param.find('=');
  if (eq == std::string::npos) return fsconfig(fsfd, FSCONFIG_SET_FLAG, param.c_str(), nullptr, 0);
  std::string key = param.substr(0, eq);
  return fsconfig(fsfd, FSCONFIG_SET_STRING, key.c_str(), param.c_str() + eq + 1, 0);
}

Failure DoMount(const std::string& fstype, const std::string& source, const std::string& target,
                const std::vector<std::string>& params, uint32_t attrs) {
  int fsfd = fsopen(fstype.c_str(), FSOPEN_CLOEXEC);
  if (fsfd < 0) return {errno, "fsopen"};
  Failure failure = {0, nullptr};
  if (!source.empty() && fsconfig(fsfd, FSCONFIG_SET_STRING, "source", source.c_str(), 0) != 0) {
    failure = {errno, "fsconfig source"};
  }
  for (size_t i = 0; failure.err == 0 && i < params.size(); i++) {
    if (SetParam(fsfd, params[i]) != 0) failure = {errno, "fsconfig"};
  }
  if (failure.err == 0 && fsconfig(fsfd, FSCONFIG_CMD_CREATE, nullptr, nullptr, 0) != 0) {
    failure = {errno, "fsconfig create"};
  }
  int mfd = failure.err == 0 ? fsmount(fsfd, FSMOUNT_CLOEXEC, attrs) : -1;
  if (failure.err == 0 && mfd < 0) failure = {errno, "fsmount"};
  close(fsfd);
  if (failure.err != 0) return failure;
  if (move_mount(mfd, "", AT_FDCWD, target.c_str(), MOVE_MOUNT_F_EMPTY_PATH) != 0) failure = {errno, "move_mount"};
  close(mfd);
  return failure;
}

// fsmount(fstype, source, target, params: string[], attrs): params are "key=value" or "flag".
Napi::Value Fsmount(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  std::string fstype, source, target;
  uint32_t attrs;
  if (!ArgString(info, 0, &fstype) || !ArgString(info, 1, &source) || !ArgString(info, 2, &target)) {
    return env.Undefined();
  }
  if (info.Length() < 4 || !info[3].IsArray()) {
    Napi::TypeError::New(env, "argument 3 must be an array of strings").ThrowAsJavaScriptException();
    return env.Undefined();
  }
  if (!ArgUint32(info, 4, &attrs)) return env.Undefined();
  Napi::Array list = info[3].As<Napi::Array>();
  std::vector<std::string> params;
  for (uint32_t i = 0; i < list.Length(); i++) {
    Napi::Value item = list.Get(i);
    if (!item.IsString()) {
      Napi::TypeError::New(env, "argument 3 must be an array of strings").ThrowAsJavaScriptException();
      return env.Undefined();
    }
    params.push_back(item.As<Napi::String>().Utf8Value());
  }
  Failure failure = DoMount(fstype, source, target, params, attrs);
  if (failure.err != 0) ThrowErrno(env, failure.err, failure.what, target);
  return env.Undefined();
}

Napi::Object Constants(Napi::Env env) {
  Napi::Object c = Napi::Object::New(env);
  c.Set("MOUNT_ATTR_RDONLY", Napi::Number::New(env, MOUNT_ATTR_RDONLY));
  c.Set("MOUNT_ATTR_NOSUID", Napi::Number::New(env, MOUNT_ATTR_NOSUID));
  c.Set("MOUNT_ATTR_NODEV", Napi::Number::New(env, MOUNT_ATTR_NODEV));
  c.Set("MOUNT_ATTR_NOEXEC", Napi::Number::New(env, MOUNT_ATTR_NOEXEC));
  c.Set("MOUNT_ATTR_NOATIME", Napi::Number::New(env, MOUNT_ATTR_NOATIME));
  c.Set("MOUNT_ATTR_NODIRATIME", Napi::Number::New(env, MOUNT_ATTR_NODIRATIME));
  return c;
}

}  // namespace

void RegisterFsmount(Napi::Env env, Napi::Object exports) {
  exports.Set("fsmount", Napi::Function::New(env, Fsmount, "fsmount"));
  exports.Set("fsmountConstants", Constants(env));
}

}  // namespace berth
