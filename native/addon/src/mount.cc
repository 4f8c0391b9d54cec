#include <errno.h>
#include <sys/mount.h>

#include "errors.h"
#include "modules.h"

namespace berth {
namespace {

// mount(source, target, fstype, flags, data | null). Option parsing lives in TypeScript; this is
// the bare syscall.
Napi::Value Mount(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  std::string source, target, fstype, data;
  uint32_t flags;
  if (!ArgString(info, 0, &source) || !ArgString(info, 1, &target) || !ArgString(info, 2, &fstype) ||
      !ArgUint32(info, 3, &flags)) {
    return env.Undefined();
  }
  bool hasData = info.Length() > 4 && info[4].IsString();
  if (hasData) data = info[4].As<Napi::String>().Utf8Value();
  if (mount(source.c_str(), target.c_str(), fstype.empty() ? nullptr : fstype.c_str(), flags,
            hasData ? data.c_str() : nullptr) != 0) {
    ThrowErrno(env, errno, "mount", target);
  }
  return env.Undefined();
}

Napi::Value Umount2(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  std::string target;
  uint32_t flags;
  if (!ArgString(info, 0, &target) || !ArgUint32(info, 1, &flags)) return env.Undefined();
  if (umount2(target.c_str(), static_cast<int>(flags)) != 0) ThrowErrno(env, errno, "umount2", target);
  return env.Undefined();
}

Napi::Object Constants(Napi::Env env) {
  Napi::Object c = Napi::Object::New(env);
  c.Set("MS_RDONLY", Napi::Number::New(env, static_cast<double>(MS_RDONLY)));
  c.Set("MS_NOSUID", Napi::Number::New(env, static_cast<double>(MS_NOSUID)));
  c.Set("MS_NODEV", Napi::Number::New(env, static_cast<double>(MS_NODEV)));
  c.Set("MS_NOEXEC", Napi::Number::New(env, static_cast<double>(MS_NOEXEC)));
  c.Set("MS_SYNCHRONOUS", Napi::Number::New(env, static_cast<double>(MS_SYNCHRONOUS)));
  c.Set("MS_REMOUNT", Napi::Number::New(env, static_cast<double>(MS_REMOUNT)));
  c.Set("MS_MANDLOCK", Napi::Number::New(env, static_cast<double>(MS_MANDLOCK)));
  c.Set("MS_DIRSYNC", Napi::Number::New(env, static_cast<double>(MS_DIRSYNC)));
  c.Set("MS_NOATIME", Napi::Number::New(env, static_cast<double>(MS_NOATIME)));
  c.Set("MS_NODIRATIME", Napi::Number::New(env, static_cast<double>(MS_NODIRATIME)));
  c.Set("MS_BIND", Napi::Number::New(env, static_cast<double>(MS_BIND)));
  c.Set("MS_REC", Napi::Number::New(env, static_cast<double>(MS_REC)));
  c.Set("MS_PRIVATE", Napi::Number::New(env, static_cast<double>(MS_PRIVATE)));
  c.Set("MS_SLAVE", Napi::Number::New(env, static_cast<double>(MS_SLAVE)));
  c.Set("MS_SHARED", Napi::Number::New(env, static_cast<double>(MS_SHARED)));
  c.Set("MS_UNBINDABLE", Napi::Number::New(env, static_cast<double>(MS_UNBINDABLE)));
  c.Set("MS_RELATIME", Napi::Number::New(env, static_cast<double>(MS_RELATIME)));
  c.Set("MS_STRICTATIME", Napi::Number::New(env, static_cast<double>(MS_STRICTATIME)));
  c.Set("MNT_FORCE", Napi::Number::New(env, static_cast<double>(MNT_FORCE)));
  c.Set("MNT_DETACH", Napi::Number::New(env, static_cast<double>(MNT_DETACH)));
  c.Set("UMOUNT_NOFOLLOW", Napi::Number::New(env, static_cast<double>(UMOUNT_NOFOLLOW)));
  return c;
}

}  // namespace

void RegisterMount(Napi::Env env, Napi::Object exports) {
  exports.Set("mount", Napi::Function::New(env, Mount, "mount"));
  exports.Set("umount2", Napi::Function::New(env, Umount2, "umount2"));
  exports.Set("mountConstants", Constants(env));
}

}  // namespace berth
