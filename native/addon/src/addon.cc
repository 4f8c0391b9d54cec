#include <napi.h>

#include "modules.h"

static Napi::Object Init(Napi::Env env, Napi::Object exports) {
  berth::RegisterMknod(env, exports);
  berth::RegisterXattr(env, exports);
  berth::RegisterMount(env, exports);
  berth::RegisterFsmount(env, exports);
  berth::RegisterResolve(env, exports);
  berth::RegisterInodeFlags(env, exports);
  return exports;
}

NODE_API_MODULE(berth_native, Init)
