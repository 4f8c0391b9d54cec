#include "errors.h"

#include <string.h>

namespace berth {

Napi::Error ErrnoError(Napi::Env env, int err, const char* what, const std::string& path) {
  const char* name = strerrorname_np(err);
  std::string message = std::string(what) + " " + path + ": " + strerror(err);
  Napi::Error error = Napi::Error::New(env, message);
  error.Set("code", Napi::String::New(env, name != nullptr ? name : "EUNKNOWN"));
  error.Set("errno", Napi::Number::New(env, -err));
  error.Set("syscall", Napi::String::New(env, what));
  error.Set("path", Napi::String::New(env, path));
  return error;
}

void ThrowErrno(Napi::Env env, int err, const char* what, const std::string& path) {
  ErrnoError(env, err, what, path).ThrowAsJavaScriptException();
}

bool ArgString(const Napi::CallbackInfo& info, size_t index, std::string* out) {
  if (info.Length() <= index || !info[index].IsString()) {
    Napi::TypeError::New(info.Env(), "argument " + std::to_string(index) + " must be a string")
        .ThrowAsJavaScriptException();
    return false;
  }
  *out = info[index].As<Napi::String>().Utf8Value();
  return true;
}

bool ArgUint32(const Napi::CallbackInfo& info, size_t index, uint32_t* out) {
  if (info.Length() <= index || !info[index].IsNumber()) {
    Napi::TypeError::New(info.Env(), "argument " + std::to_string(index) + " must be a number")
        .ThrowAsJavaScriptException();
    return false;
  }
  *out = info[index].As<Napi::Number>().Uint32Value();
  return true;
}

}  // namespace berth
