#include "process.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>
#include <uv.h>

#include <memory>
#include <set>
#include <string>
#include <vector>

#include "errors.h"

#ifndef P_PIDFD
#define P_PIDFD 3
#endif

namespace berth {
namespace {

// Closes an fd on scope exit unless released.
class Fd {
 public:
  explicit Fd(int fd) : fd_(fd) {}
  ~Fd() {
    if (fd_ >= 0) close(fd_);
  }
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;
  int get() const { return fd_; }
  int release() {
    int fd = fd_;
    fd_ = -1;
    return fd;
  }

 private:
  int fd_;
};

struct ExitStatus {
  int pid;
  int status;  // exit code, or 128 + signal when killed (the shell's and containerd's convention)
  int signal;  // 0 unless killed by a signal
};

ExitStatus FromSiginfo(const siginfo_t& info) {
  bool killed = info.si_code == CLD_KILLED || info.si_code == CLD_DUMPED;
  return ExitStatus{info.si_pid, killed ? 128 + info.si_status : info.si_status, killed ? info.si_status : 0};
}

// Collects an exit without blocking. Returns 1 with *out filled, 0 when the process still runs,
// or -errno.
int DoWaitid(idtype_t type, id_t id, ExitStatus* out) {
  siginfo_t info;
  memset(&info, 0, sizeof(info));
  if (waitid(type, id, &info, WEXITED | WNOHANG) != 0) return -errno;
  if (info.si_pid == 0) return 0;
  *out = FromSiginfo(info);
  return 1;
}

int DoPidfdOpen(int pid) {
  int fd = static_cast<int>(syscall(SYS_pidfd_open, pid, 0));
  if (fd < 0) return -errno;
  // pidfd_open sets O_CLOEXEC itself; the fd must not leak into spawned runtimes.
  return fd;
}

// Children of this process from /proc/self/task/*/children: orphans are re-parented to one of
// the subreaper's threads, so every thread's list is read.
int ListChildren(std::vector<int>* out) {
  DIR* dir = opendir("/proc/self/task");
  if (dir == nullptr) return -errno;
  while (struct dirent* entry = readdir(dir)) {
    if (entry->d_name[0] == '.') continue;
    std::string path = std::string("/proc/self/task/") + entry->d_name + "/children";
    FILE* file = fopen(path.c_str(), "re");
    if (file == nullptr) continue;  // the thread ended meanwhile
    int pid;
    while (fscanf(file, "%d", &pid) == 1) out->push_back(pid);
    fclose(file);
  }
  closedir(dir);
  return 0;
}

Napi::Value StatusObject(Napi::Env env, const ExitStatus& s) {
  Napi::Object obj = Napi::Object::New(env);
  obj.Set("pid", s.pid);
  obj.Set("status", s.status);
  obj.Set("signal", s.signal);
  return obj;
}

bool ArgInt(const Napi::CallbackInfo& info, size_t index, int* out) {
  uint32_t value;
  if (!ArgUint32(info, index, &value)) return false;
  *out = static_cast<int>(value);
  return true;
}

Napi::Value PidfdOpen(const Napi::CallbackInfo& info) {
  int pid;
  if (!ArgInt(info, 0, &pid)) return info.Env().Undefined();
  int fd = DoPidfdOpen(pid);
  if (fd < 0) {
    ThrowErrno(info.Env(), -fd, "pidfd_open", std::to_string(pid));
    return info.Env().Undefined();
  }
  return Napi::Number::New(info.Env(), fd);
}

Napi::Value WaitResult(const Napi::CallbackInfo& info, idtype_t type, int id, const char* what) {
  ExitStatus status{};
  int rc = DoWaitid(type, static_cast<id_t>(id), &status);
  if (rc < 0) {
    ThrowErrno(info.Env(), -rc, what, std::to_string(id));
    return info.Env().Undefined();
  }
  return rc == 0 ? info.Env().Null() : StatusObject(info.Env(), status);
}

// waitidPidfd(pidfd) -> {pid, status, signal} | null (still running)
Napi::Value WaitidPidfd(const Napi::CallbackInfo& info) {
  int fd;
  if (!ArgInt(info, 0, &fd)) return info.Env().Undefined();
  return WaitResult(info, static_cast<idtype_t>(P_PIDFD), fd, "waitid(P_PIDFD)");
}

// waitPid(pid) -> {pid, status, signal} | null: reaps one known child only, never waitpid(-1).
Napi::Value WaitPid(const Napi::CallbackInfo& info) {
  int pid;
  if (!ArgInt(info, 0, &pid)) return info.Env().Undefined();
  return WaitResult(info, P_PID, pid, "waitid(P_PID)");
}

Napi::Value SetChildSubreaper(const Napi::CallbackInfo& info) {
  if (prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) != 0) ThrowErrno(info.Env(), errno, "prctl", "PR_SET_CHILD_SUBREAPER");
  return info.Env().Undefined();
}

// reapOrphans(exclude: number[]) -> [{pid, status, signal}]: reaps exited children that are not
// in `exclude` (libuv's own children and processes the caller collects through pidfds).
Napi::Value ReapOrphans(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 1 || !info[0].IsArray()) {
    Napi::TypeError::New(env, "argument 0 must be an array of pids").ThrowAsJavaScriptException();
    return env.Undefined();
  }
  Napi::Array list = info[0].As<Napi::Array>();
  std::set<int> exclude;
  for (uint32_t i = 0; i < list.Length(); i++) exclude.insert(list.Get(i).As<Napi::Number>().Int32Value());
  std::vector<int> children;
  int rc = ListChildren(&children);
  if (rc < 0) {
    ThrowErrno(env, -rc, "list children", "/proc/self/task");
    return env.Undefined();
  }
  Napi::Array reaped = Napi::Array::New(env);
  for (int pid : children) {
    if (exclude.count(pid) != 0) continue;
    ExitStatus status{};
    // ECHILD: libuv or another caller reaped it between the listing and now; nothing to report.
    if (DoWaitid(P_PID, static_cast<id_t>(pid), &status) == 1) reaped.Set(reaped.Length(), StatusObject(env, status));
  }
  return reaped;
}

int DoSendFd(int sock, int fd) {
  char byte = 0;
  struct iovec iov = {&byte, 1};
  alignas(struct cmsghdr) char control[CMSG_SPACE(sizeof(int))];
  memset(control, 0, sizeof(control));
  struct msghdr msg = {};
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  msg.msg_control = control;
  msg.msg_controllen = sizeof(control);
  struct cmsghdr* cmsg = CMSG_FIRSTHDR(&msg);
  cmsg->cmsg_level = SOL_SOCKET;
  cmsg->cmsg_type = SCM_RIGHTS;
  cmsg->cmsg_len = CMSG_LEN(sizeof(int));
  memcpy(CMSG_DATA(cmsg), &fd, sizeof(int));
  return sendmsg(sock, &msg, MSG_NOSIGNAL) < 0 ? -errno : 0;
}

// Returns the received fd, 0 when nothing is there yet (non-blocking socket), -ENODATA when the
// peer sent data or hung up without an fd, or -errno. Extra fds in the message are closed.
int DoRecvFd(int sock, int* out) {
  char buf[256];
  struct iovec iov = {buf, sizeof(buf)};
  alignas(struct cmsghdr) char control[CMSG_SPACE(sizeof(int) * 4)];
  struct msghdr msg = {};
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  msg.msg_control = control;
  msg.msg_controllen = sizeof(control);
  ssize_t n = recvmsg(sock, &msg, MSG_CMSG_CLOEXEC);
  if (n < 0) return errno == EAGAIN || errno == EWOULDBLOCK ? 0 : -errno;
  int received = -1;
  for (struct cmsghdr* c = CMSG_FIRSTHDR(&msg); c != nullptr; c = CMSG_NXTHDR(&msg, c)) {
    if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS) continue;
    size_t count = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
    for (size_t i = 0; i < count; i++) {
      int fd;
      memcpy(&fd, CMSG_DATA(c) + i * sizeof(int), sizeof(int));
      if (received < 0) {
        received = fd;
      } else {
        close(fd);
      }
    }
  }
  if (received < 0) return -ENODATA;
  *out = received;
  return 1;
}

// sendFd(socketFd, fd)
Napi::Value SendFd(const Napi::CallbackInfo& info) {
  int sock, fd;
  if (!ArgInt(info, 0, &sock) || !ArgInt(info, 1, &fd)) return info.Env().Undefined();
  int rc = DoSendFd(sock, fd);
  if (rc < 0) ThrowErrno(info.Env(), -rc, "sendmsg", std::to_string(sock));
  return info.Env().Undefined();
}

// recvFd(socketFd) -> fd | null (non-blocking socket with nothing queued yet)
Napi::Value RecvFd(const Napi::CallbackInfo& info) {
  int sock;
  if (!ArgInt(info, 0, &sock)) return info.Env().Undefined();
  int fd = -1;
  int rc = DoRecvFd(sock, &fd);
  if (rc < 0) {
    ThrowErrno(info.Env(), -rc, "recvmsg", std::to_string(sock));
    return info.Env().Undefined();
  }
  return rc == 0 ? info.Env().Null() : Napi::Number::New(info.Env(), fd);
}

int DoUnixListen(const std::string& path) {
  struct sockaddr_un addr = {};
  if (path.size() >= sizeof(addr.sun_path)) return -ENAMETOOLONG;
  addr.sun_family = AF_UNIX;
  memcpy(addr.sun_path, path.c_str(), path.size() + 1);
  Fd sock(socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0));
  if (sock.get() < 0) return -errno;
  if (bind(sock.get(), reinterpret_cast<struct sockaddr*>(&addr), sizeof(addr)) != 0) return -errno;
  if (listen(sock.get(), 4) != 0) return -errno;
  return sock.release();
}

// unixListen(path) -> fd: a non-blocking listening socket the caller watches with watchReadable.
// Done natively because Node's net.Server hides the accepted socket's fd, which recvFd needs.
Napi::Value UnixListen(const Napi::CallbackInfo& info) {
  std::string path;
  if (!ArgString(info, 0, &path)) return info.Env().Undefined();
  int fd = DoUnixListen(path);
  if (fd < 0) {
    ThrowErrno(info.Env(), -fd, "listen", path);
    return info.Env().Undefined();
  }
  return Napi::Number::New(info.Env(), fd);
}

// acceptFd(listenFd) -> fd | null: a non-blocking, close-on-exec connection, or null if none.
Napi::Value AcceptFd(const Napi::CallbackInfo& info) {
  int sock;
  if (!ArgInt(info, 0, &sock)) return info.Env().Undefined();
  int fd = accept4(sock, nullptr, nullptr, SOCK_CLOEXEC | SOCK_NONBLOCK);
  if (fd >= 0) return Napi::Number::New(info.Env(), fd);
  if (errno == EAGAIN || errno == EWOULDBLOCK) return info.Env().Null();
  ThrowErrno(info.Env(), errno, "accept", std::to_string(sock));
  return info.Env().Undefined();
}

// setBlocking(fd, blocking): FIFOs are opened O_NONBLOCK (so open never waits for a peer), but
// a container inheriting the fd expects ordinary blocking reads and writes.
Napi::Value SetBlocking(const Napi::CallbackInfo& info) {
  int fd;
  if (!ArgInt(info, 0, &fd) || info.Length() < 2 || !info[1].IsBoolean()) return info.Env().Undefined();
  int flags = fcntl(fd, F_GETFL);
  if (flags >= 0) {
    flags = info[1].As<Napi::Boolean>().Value() ? flags & ~O_NONBLOCK : flags | O_NONBLOCK;
    if (fcntl(fd, F_SETFL, flags) == 0) return info.Env().Undefined();
  }
  ThrowErrno(info.Env(), errno, "fcntl", std::to_string(fd));
  return info.Env().Undefined();
}

// eventfd() -> fd: non-blocking, close-on-exec, counter 0. cgroup v1 OOM notifications are
// delivered through one registered in cgroup.event_control.
Napi::Value EventFd(const Napi::CallbackInfo& info) {
  int fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  if (fd < 0) {
    ThrowErrno(info.Env(), errno, "eventfd", "");
    return info.Env().Undefined();
  }
  return Napi::Number::New(info.Env(), fd);
}

// ptyResize(fd, columns, rows)
Napi::Value PtyResize(const Napi::CallbackInfo& info) {
  int fd;
  uint32_t cols, rows;
  if (!ArgInt(info, 0, &fd) || !ArgUint32(info, 1, &cols) || !ArgUint32(info, 2, &rows)) return info.Env().Undefined();
  struct winsize size = {};
  size.ws_col = static_cast<unsigned short>(cols);
  size.ws_row = static_cast<unsigned short>(rows);
  if (ioctl(fd, TIOCSWINSZ, &size) != 0) ThrowErrno(info.Env(), errno, "ioctl(TIOCSWINSZ)", std::to_string(fd));
  return info.Env().Undefined();
}

// A one-shot "fd is readable" callback on the libuv loop. A pidfd turns readable when its process
// exits, and Node has no handle type for it (net.Socket refuses anonymous-inode fds, fs reads
// would park a threadpool thread per process), so a uv_poll_t is the simplest robust way.
// The JS object keeps itself alive (Ref) while armed, so dropping it cannot silently disarm it.
class FdWatch : public Napi::ObjectWrap<FdWatch> {
 public:
  static Napi::Function Define(Napi::Env env) {
    return DefineClass(env, "FdWatch", {InstanceMethod("close", &FdWatch::Close)});
  }

  FdWatch(const Napi::CallbackInfo& info) : Napi::ObjectWrap<FdWatch>(info) {
    Napi::Env env = info.Env();
    int fd;
    if (!ArgInt(info, 0, &fd)) return;
    if (info.Length() < 2 || !info[1].IsFunction()) {
      Napi::TypeError::New(env, "argument 1 must be a function").ThrowAsJavaScriptException();
      return;
    }
    uv_loop_t* loop = nullptr;
    if (napi_get_uv_event_loop(env, &loop) != napi_ok) {
      Napi::Error::New(env, "no event loop").ThrowAsJavaScriptException();
      return;
    }
    poll_ = new uv_poll_t;
    int rc = uv_poll_init(loop, poll_, fd);
    if (rc != 0) {
      // A handle whose init failed was never registered with the loop: plain delete.
      delete poll_;
      poll_ = nullptr;
      ThrowErrno(env, -rc, "uv_poll_init", std::to_string(fd));
      return;
    }
    poll_->data = this;
    rc = uv_poll_start(poll_, UV_READABLE, &FdWatch::OnReadable);
    if (rc != 0) {
      ClosePoll();
      ThrowErrno(env, -rc, "uv_poll_start", std::to_string(fd));
      return;
    }
    callback_ = Napi::Persistent(info[1].As<Napi::Function>());
    context_ = std::make_unique<Napi::AsyncContext>(env, "berth.FdWatch");
    Ref();
  }

  // Only reached disarmed (an armed watch holds a reference to itself) or at environment teardown.
  ~FdWatch() override { ClosePoll(); }

 private:
  static void OnReadable(uv_poll_t* handle, int status, int /*events*/) {
    FdWatch* self = static_cast<FdWatch*>(handle->data);
    Napi::Env env = self->Env();
    Napi::HandleScope scope(env);
    Napi::FunctionReference callback = std::move(self->callback_);
    std::unique_ptr<Napi::AsyncContext> context = std::move(self->context_);
    self->Disarm();
    // MakeCallback runs microtasks and routes a throw to 'uncaughtException', like Node's own.
    callback.MakeCallback(env.Global(), {Napi::Number::New(env, status)}, *context);
  }

  Napi::Value Close(const Napi::CallbackInfo& info) {
    Disarm();
    return info.Env().Undefined();
  }

  void Disarm() {
    if (poll_ == nullptr) return;
    ClosePoll();
    callback_.Reset();
    context_.reset();
    Unref();
  }

  void ClosePoll() {
    if (poll_ == nullptr) return;
    uv_poll_stop(poll_);
    uv_close(reinterpret_cast<uv_handle_t*>(poll_), [](uv_handle_t* h) { delete reinterpret_cast<uv_poll_t*>(h); });
    poll_ = nullptr;
  }

  uv_poll_t* poll_ = nullptr;
  Napi::FunctionReference callback_;
  std::unique_ptr<Napi::AsyncContext> context_;
};

}  // namespace

void RegisterProcess(Napi::Env env, Napi::Object exports) {
  exports.Set("pidfdOpen", Napi::Function::New(env, PidfdOpen, "pidfdOpen"));
  exports.Set("waitidPidfd", Napi::Function::New(env, WaitidPidfd, "waitidPidfd"));
  exports.Set("waitPid", Napi::Function::New(env, WaitPid, "waitPid"));
  exports.Set("setChildSubreaper", Napi::Function::New(env, SetChildSubreaper, "setChildSubreaper"));
  exports.Set("reapOrphans", Napi::Function::New(env, ReapOrphans, "reapOrphans"));
  exports.Set("sendFd", Napi::Function::New(env, SendFd, "sendFd"));
  exports.Set("recvFd", Napi::Function::New(env, RecvFd, "recvFd"));
  exports.Set("unixListen", Napi::Function::New(env, UnixListen, "unixListen"));
  exports.Set("acceptFd", Napi::Function::New(env, AcceptFd, "acceptFd"));
  exports.Set("setBlocking", Napi::Function::New(env, SetBlocking, "setBlocking"));
  exports.Set("ptyResize", Napi::Function::New(env, PtyResize, "ptyResize"));
  exports.Set("eventfd", Napi::Function::New(env, EventFd, "eventfd"));
  exports.Set("FdWatch", FdWatch::Define(env));
}

}  // namespace berth
