// Each concept registers its functions on the exports object; addon.cc only lists them, so adding
// a concept (pidfd, waitid, ...) is one new file plus one line here and one in addon.cc.
#pragma once

#include <napi.h>

namespace berth {

void RegisterMknod(Napi::Env env, Napi::Object exports);
void RegisterXattr(Napi::Env env, Napi::Object exports);
void RegisterMount(Napi::Env env, Napi::Object exports);
void RegisterFsmount(Napi::Env env, Napi::Object exports);
void RegisterResolve(Napi::Env env, Napi::Object exports);
void RegisterInodeFlags(Napi::Env env, Napi::Object exports);

}  // namespace berth
