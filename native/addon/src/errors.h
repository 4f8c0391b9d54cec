// One error convention for every native function: the syscall wrapper returns -errno, the binding
// turns that into a JS Error whose `code` is the errno name (as Node's fs does), so TypeScript
// callers branch on err.code the same way for fs and native failures.
#pragma once

#include <napi.h>

#include <string>

namespace berth {

// A JS Error "<what> <path>: <strerror>" with code = errno name and errno = -number.
Napi::Error ErrnoError(Napi::Env env, int err, const char* what, const std::string& path);
// Throws ErrnoError(...).
void ThrowErrno(Napi::Env env, int err, const char* what, const std::string& path);

// Argument readers: store info[index] in *out and return true, or throw a TypeError and return
// false when the argument is missing or of the wrong type.
bool ArgString(const Napi::CallbackInfo& info, size_t index, std::string* out);
bool ArgUint32(const Napi::CallbackInfo& info, size_t index, uint32_t* out);

}  // namespace berth
