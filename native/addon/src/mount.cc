#include <errno.h>
#include <sys/mount.h>

#include <string>
#include <utility>

#include "errors.h"
#include "modules.h"

namespace berth {
namespace {

// mount(source, target, fstype, flags, data | null) -> Promise<void>, on a libuv worker. Option
// parsing lives in TypeScript; this is the bare syscall. Off the event loop because an overlay
// mount takes milliseconds (it probes the upper filesystem, and every mount in the host waits on
// the kernel's namespace lock), and berthd mounts a rootfs for every task it creates.
class MountWorker : public Napi::AsyncWorker {
 public:
  MountWorker(Napi::Env env, std::string source, std::string target, std::string fstype, uint32_t flags,
              bool hasData, std::string data)
      : Napi::AsyncWorker(env),
        deferred_(Napi::Promise::Deferred::New(env)),
        source_(std::move(source)),
        target_(std::move(target)),
        fstype_(std::move(fstype)),
        flags_(flags),
        hasData_(hasData),
        data_(std::move(data)) {}

  Napi::Promise Promise() { return deferred_.Promise(); }

  void Execute() override {
    if (mount(source_.c_str(), target_.c_str(), fstype_.empty() ? nullptr : fstype_.c_str(), flags_,
              hasData_ ? data_.c_str() : nullptr) != 0) {
      errno_ = errno;
    }
  }

  void OnOK() override {
    if (errno_ != 0) {
      deferred_.Reject(ErrnoError(Env(), errno_, "mount", target_).Value());
    } else {
      deferred_.Resolve(Env().Undefined());
    }
  }

 private:
  Napi::Promise::Deferred deferred_;
  std::string source_, target_, fstype_;
  uint32_t flags_;
  bool hasData_;
  std::string data_;
  int errno_ = 0;
};

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
  auto* worker = new MountWorker(env, std::move(source), std::move(target), std::move(fstype), flags, hasData,
                                 std::move(data));
  Napi::Promise promise = worker->Promise();
  worker->Queue();
  return promise;
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
