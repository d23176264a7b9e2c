// Module entry of the @ambient-mesh/netns addon: shared helpers and the namespace functions.
// Sockets live in native-sockets.cc, AF_UNIX SOCK_SEQPACKET in native-seqpacket.cc and the
// readiness watcher in native-watch.cc.
#include "native-common.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/nsfs.h>
#if defined(__GLIBC__)
#include <malloc.h>
#endif
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <unistd.h>
#include <uv.h>

namespace ambient_netns {

namespace {
const char kThreadNetns[] = "/proc/thread-self/ns/net";
}  // namespace

Napi::Value ThrowErrno(Napi::Env env, const char* syscall, int err) {
  const char* code = uv_err_name(-err);
  std::string message = std::string(syscall) + " failed: " + strerror(err) + " (" + code + ")";
  Napi::Error error = Napi::Error::New(env, message);
  error.Set("code", Napi::String::New(env, code));
  error.Set("errno", Napi::Number::New(env, err));
  error.Set("syscall", Napi::String::New(env, syscall));
  error.ThrowAsJavaScriptException();
  return env.Undefined();
}

Napi::Value ThrowType(Napi::Env env, const std::string& message) {
  Napi::TypeError::New(env, message).ThrowAsJavaScriptException();
  return env.Undefined();
}

bool ParseAddress(const std::string& host, int port, sockaddr_storage* out, socklen_t* len) {
  memset(out, 0, sizeof(*out));
  if (port < 0 || port > 65535) return false;
  if (host.find(':') == std::string::npos) {
    auto* sin = reinterpret_cast<sockaddr_in*>(out);
    if (inet_pton(AF_INET, host.c_str(), &sin->sin_addr) != 1) return false;
    sin->sin_family = AF_INET;
    sin->sin_port = htons(static_cast<uint16_t>(port));
    *len = sizeof(sockaddr_in);
    return true;
  }
  auto* sin6 = reinterpret_cast<sockaddr_in6*>(out);
  if (inet_pton(AF_INET6, host.c_str(), &sin6->sin6_addr) != 1) return false;
  sin6->sin6_family = AF_INET6;
  sin6->sin6_port = htons(static_cast<uint16_t>(port));
  *len = sizeof(sockaddr_in6);
  return true;
}

Napi::Value FormatAddress(Napi::Env env, const sockaddr_storage& sa) {
  char text[INET6_ADDRSTRLEN] = {0};
  Napi::Object result = Napi::Object::New(env);
  if (sa.ss_family == AF_INET) {
    const auto* sin = reinterpret_cast<const sockaddr_in*>(&sa);
    inet_ntop(AF_INET, &sin->sin_addr, text, sizeof(text));
    result.Set("address", Napi::String::New(env, text));
    result.Set("port", Napi::Number::New(env, ntohs(sin->sin_port)));
    result.Set("family", Napi::String::New(env, "IPv4"));
  } else if (sa.ss_family == AF_INET6) {
    const auto* sin6 = reinterpret_cast<const sockaddr_in6*>(&sa);
    inet_ntop(AF_INET6, &sin6->sin6_addr, text, sizeof(text));
    result.Set("address", Napi::String::New(env, text));
    result.Set("port", Napi::Number::New(env, ntohs(sin6->sin6_port)));
    result.Set("family", Napi::String::New(env, "IPv6"));
  } else {
    return env.Null();
  }
  return result;
}

// The calling thread's own network namespace, opened on its first visit to another one and kept:
// reopening /proc/thread-self/ns/net for every socket made in a pod cost a third of that socket.
// A thread only ever returns here (LeaveNetns aborts otherwise), so the handle stays right.
int EnterNetns(int ns_fd, int* saved_fd, const char** failed_syscall) {
  thread_local int home = -1;
  if (home < 0) {
    home = open(kThreadNetns, O_RDONLY | O_CLOEXEC);
    if (home < 0) {
      *failed_syscall = "open(thread-self/ns/net)";
      return -1;
    }
  }
  if (setns(ns_fd, CLONE_NEWNET) < 0) {
    *failed_syscall = "setns";
    return -1;
  }
  *saved_fd = home;
  return 0;
}

void LeaveNetns(int saved_fd) {
  if (setns(saved_fd, CLONE_NEWNET) < 0) {
    // Staying in a pod's namespace would silently move every later socket of this thread there.
    fprintf(stderr, "@ambient-mesh/netns: cannot return to the original network namespace: %s\n",
            strerror(errno));
    abort();
  }
  // saved_fd is the thread's kept handle (EnterNetns): not closed.
}

namespace {

// openNetns(path) -> fd of the namespace file, O_RDONLY | O_CLOEXEC.
Napi::Value OpenNetns(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (!info[0].IsString()) return ThrowType(env, "openNetns: path must be a string");
  std::string path = info[0].As<Napi::String>().Utf8Value();
  int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return ThrowErrno(env, "open", errno);
  return Napi::Number::New(env, fd);
}

// netnsInfo(fd) -> {inode, isNetns}; isNetns is null when the kernel cannot tell.
Napi::Value NetnsInfo(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (!info[0].IsNumber()) return ThrowType(env, "netnsInfo: fd must be a number");
  int fd = info[0].As<Napi::Number>().Int32Value();
  struct stat st;
  if (fstat(fd, &st) < 0) return ThrowErrno(env, "fstat", errno);
  Napi::Object result = Napi::Object::New(env);
  result.Set("inode", Napi::Number::New(env, static_cast<double>(st.st_ino)));
  result.Set("device", Napi::Number::New(env, static_cast<double>(st.st_dev)));
  int type = ioctl(fd, NS_GET_NSTYPE);
  if (type < 0) {
    result.Set("isNetns", env.Null());
  } else {
    result.Set("isNetns", Napi::Boolean::New(env, type == CLONE_NEWNET));
  }
  return result;
}

// currentNetnsInode() -> inode of the calling thread's network namespace.
Napi::Value CurrentNetnsInode(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  struct stat st;
  if (stat(kThreadNetns, &st) < 0) return ThrowErrno(env, "stat", errno);
  return Napi::Number::New(env, static_cast<double>(st.st_ino));
}

// closeFd(fd): closes a descriptor the addon handed out and nobody else owns.
Napi::Value CloseFd(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (!info[0].IsNumber()) return ThrowType(env, "closeFd: fd must be a number");
  int fd = info[0].As<Napi::Number>().Int32Value();
  if (close(fd) < 0 && errno != EINTR) return ThrowErrno(env, "close", errno);
  return env.Undefined();
}

// trimNativeHeap(): gives the C heap's free pages back to the kernel (glibc's malloc_trim(0):
// free memory between live chunks too, not only at the top of the heap). Returns whether memory
// was released; false where the C library has no malloc_trim (musl).
Napi::Value TrimNativeHeap(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
#if defined(__GLIBC__)
  return Napi::Boolean::New(env, malloc_trim(0) == 1);
#else
  return Napi::Boolean::New(env, false);
#endif
}

}  // namespace

Napi::Object InitAddon(Napi::Env env, Napi::Object exports) {
  exports.Set("openNetns", Napi::Function::New(env, OpenNetns, "openNetns"));
  exports.Set("netnsInfo", Napi::Function::New(env, NetnsInfo, "netnsInfo"));
  exports.Set("currentNetnsInode", Napi::Function::New(env, CurrentNetnsInode, "currentNetnsInode"));
  exports.Set("closeFd", Napi::Function::New(env, CloseFd, "closeFd"));
  exports.Set("trimNativeHeap", Napi::Function::New(env, TrimNativeHeap, "trimNativeHeap"));
  InitSockets(env, exports);
  InitSeqpacket(env, exports);
  InitWatch(env, exports);
  return exports;
}

}  // namespace ambient_netns

static Napi::Object InitModule(Napi::Env env, Napi::Object exports) {
  return ambient_netns::InitAddon(env, exports);
}

NODE_API_MODULE(ambient_netns, InitModule)
