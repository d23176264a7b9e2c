// Shared helpers of the @ambient-mesh/netns addon: errno-carrying JS errors, address parsing,
// and the per-thread network-namespace switch.
#ifndef AMBIENT_NETNS_NATIVE_COMMON_H_
#define AMBIENT_NETNS_NATIVE_COMMON_H_

#include <napi.h>

#include <netinet/in.h>
#include <sys/socket.h>

#include <string>

namespace ambient_netns {

// Throws a JS Error carrying `code` (e.g. "EPERM"), `errno` and `syscall`, and returns undefined.
Napi::Value ThrowErrno(Napi::Env env, const char* syscall, int err);

// Throws a plain JS TypeError and returns undefined.
Napi::Value ThrowType(Napi::Env env, const std::string& message);

// Parses an IPv4 or IPv6 literal into `out`; returns false when the text is not an IP literal.
bool ParseAddress(const std::string& host, int port, sockaddr_storage* out, socklen_t* len);

// Formats a sockaddr as {address, port, family} ("IPv4" / "IPv6").
Napi::Value FormatAddress(Napi::Env env, const sockaddr_storage& sa);

// Runs `fn` with the calling thread switched into the network namespace `ns_fd`, then switches
// back. ns_fd < 0 runs `fn` in place. Returns fn's result with errno preserved; on a failed
// entry returns -1 with errno set and *failed_syscall naming the step. Aborts the process if the
// thread cannot return to its own namespace: it must never keep running inside a pod.
template <typename Fn>
int InNetns(int ns_fd, const char** failed_syscall, Fn fn);

int EnterNetns(int ns_fd, int* saved_fd, const char** failed_syscall);
void LeaveNetns(int saved_fd);

template <typename Fn>
int InNetns(int ns_fd, const char** failed_syscall, Fn fn) {
  if (ns_fd < 0) return fn();
  int saved = -1;
  if (EnterNetns(ns_fd, &saved, failed_syscall) < 0) return -1;
  int result = fn();
  int err = errno;
  LeaveNetns(saved);
  errno = err;
  return result;
}

void InitSockets(Napi::Env env, Napi::Object exports);
void InitSeqpacket(Napi::Env env, Napi::Object exports);
void InitWatch(Napi::Env env, Napi::Object exports);

}  // namespace ambient_netns

#endif  // AMBIENT_NETNS_NATIVE_COMMON_H_
