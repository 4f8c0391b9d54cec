// Process supervision for berth-shim: pidfds, waitid, child subreaper, reaping adopted orphans
// without stealing libuv's children, fd passing (console socket), pty resize, and a one-shot
// readable watch on an fd driven by the libuv loop.
#pragma once

#include <napi.h>

namespace berth {

void RegisterProcess(Napi::Env env, Napi::Object exports);

}  // namespace berth
