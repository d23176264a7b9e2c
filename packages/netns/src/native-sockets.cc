// TCP and UDP sockets created inside a network namespace, their options, and SO_ORIGINAL_DST.
#include "native-common.h"

#include <errno.h>
#include <linux/netfilter_ipv4.h>
#include <linux/netfilter_ipv6/ip6_tables.h>
#include <string.h>
#include <unistd.h>

#ifndef IPV6_TRANSPARENT
#define IPV6_TRANSPARENT 75
#endif
#ifndef IPV6_FREEBIND
#define IPV6_FREEBIND 78
#endif

namespace ambient_netns {

namespace {

bool ReadFd(const Napi::CallbackInfo& info, size_t index, int* fd) {
  if (!info[index].IsNumber()) return false;
  *fd = info[index].As<Napi::Number>().Int32Value();
  return true;
}

// createSocket(nsFd, family 4|6, kind "stream"|"dgram") -> non-blocking, close-on-exec fd made in
// that namespace. nsFd -1 means the calling thread's namespace.
Napi::Value CreateSocket(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int ns_fd = -1;
  if (!ReadFd(info, 0, &ns_fd)) return ThrowType(env, "createSocket: nsFd must be a number");
  if (!info[1].IsNumber() || !info[2].IsString()) {
    return ThrowType(env, "createSocket: expected (nsFd, 4|6, 'stream'|'dgram')");
  }
  int family = info[1].As<Napi::Number>().Int32Value() == 6 ? AF_INET6 : AF_INET;
  std::string kind = info[2].As<Napi::String>().Utf8Value();
  int type = kind == "dgram" ? SOCK_DGRAM : SOCK_STREAM;
  const char* failed = "socket";
  int fd = InNetns(ns_fd, &failed, [&]() { return socket(family, type | SOCK_NONBLOCK | SOCK_CLOEXEC, 0); });
  if (fd < 0) return ThrowErrno(env, failed, errno);
  return Napi::Number::New(env, fd);
}

// setsockoptInt(fd, level, name, value)
Napi::Value SetsockoptInt(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int fd = -1;
  if (!ReadFd(info, 0, &fd) || !info[1].IsNumber() || !info[2].IsNumber() || !info[3].IsNumber()) {
    return ThrowType(env, "setsockoptInt: expected (fd, level, name, value)");
  }
  int level = info[1].As<Napi::Number>().Int32Value();
  int name = info[2].As<Napi::Number>().Int32Value();
  int value = static_cast<int>(info[3].As<Napi::Number>().Int64Value());
  if (setsockopt(fd, level, name, &value, sizeof(value)) < 0) return ThrowErrno(env, "setsockopt", errno);
  return env.Undefined();
}

// getsockoptInt(fd, level, name) -> value
Napi::Value GetsockoptInt(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int fd = -1;
  if (!ReadFd(info, 0, &fd) || !info[1].IsNumber() || !info[2].IsNumber()) {
    return ThrowType(env, "getsockoptInt: expected (fd, level, name)");
  }
  int level = info[1].As<Napi::Number>().Int32Value();
  int name = info[2].As<Napi::Number>().Int32Value();
  int value = 0;
  socklen_t len = sizeof(value);
  if (getsockopt(fd, level, name, &value, &len) < 0) return ThrowErrno(env, "getsockopt", errno);
  return Napi::Number::New(env, static_cast<double>(static_cast<unsigned int>(value)));
}

// bindAddress(fd, host, port)
Napi::Value BindAddress(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int fd = -1;
  if (!ReadFd(info, 0, &fd) || !info[1].IsString() || !info[2].IsNumber()) {
    return ThrowType(env, "bindAddress: expected (fd, host, port)");
  }
  sockaddr_storage sa;
  socklen_t len = 0;
  std::string host = info[1].As<Napi::String>().Utf8Value();
  if (!ParseAddress(host, info[2].As<Napi::Number>().Int32Value(), &sa, &len)) {
    return ThrowType(env, "bindAddress: '" + host + "' is not an IP literal with a valid port");
  }
  if (bind(fd, reinterpret_cast<sockaddr*>(&sa), len) < 0) return ThrowErrno(env, "bind", errno);
  return env.Undefined();
}

// connectAddress(fd, host, port) -> 0 when connected at once, EINPROGRESS while pending.
Napi::Value ConnectAddress(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int fd = -1;
  if (!ReadFd(info, 0, &fd) || !info[1].IsString() || !info[2].IsNumber()) {
    return ThrowType(env, "connectAddress: expected (fd, host, port)");
  }
  sockaddr_storage sa;
  socklen_t len = 0;
  std::string host = info[1].As<Napi::String>().Utf8Value();
  if (!ParseAddress(host, info[2].As<Napi::Number>().Int32Value(), &sa, &len)) {
    return ThrowType(env, "connectAddress: '" + host + "' is not an IP literal with a valid port");
  }
  if (connect(fd, reinterpret_cast<sockaddr*>(&sa), len) < 0) {
    if (errno == EINPROGRESS) return Napi::Number::New(env, EINPROGRESS);
    return ThrowErrno(env, "connect", errno);
  }
  return Napi::Number::New(env, 0);
}

// localAddress(fd) / remoteAddress(fd) -> {address, port, family}
Napi::Value LocalAddress(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int fd = -1;
  if (!ReadFd(info, 0, &fd)) return ThrowType(env, "localAddress: fd must be a number");
  sockaddr_storage sa;
  socklen_t len = sizeof(sa);
  if (getsockname(fd, reinterpret_cast<sockaddr*>(&sa), &len) < 0) return ThrowErrno(env, "getsockname", errno);
  return FormatAddress(env, sa);
}

Napi::Value RemoteAddress(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int fd = -1;
  if (!ReadFd(info, 0, &fd)) return ThrowType(env, "remoteAddress: fd must be a number");
  sockaddr_storage sa;
  socklen_t len = sizeof(sa);
  if (getpeername(fd, reinterpret_cast<sockaddr*>(&sa), &len) < 0) return ThrowErrno(env, "getpeername", errno);
  return FormatAddress(env, sa);
}

// originalDst(fd) -> {address, port, family} from conntrack, or null when the connection was not
// NATed. Tries the IPv4 option first, then the IPv6 one, like ztunnel.
Napi::Value OriginalDst(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int fd = -1;
  if (!ReadFd(info, 0, &fd)) return ThrowType(env, "originalDst: fd must be a number");
  sockaddr_storage sa;
  memset(&sa, 0, sizeof(sa));
  socklen_t len = sizeof(sockaddr_in);
  if (getsockopt(fd, SOL_IP, SO_ORIGINAL_DST, &sa, &len) == 0) return FormatAddress(env, sa);
  int v4_err = errno;
  memset(&sa, 0, sizeof(sa));
  len = sizeof(sockaddr_in6);
  if (getsockopt(fd, SOL_IPV6, IP6T_SO_ORIGINAL_DST, &sa, &len) == 0) return FormatAddress(env, sa);
  int v6_err = errno;
  if ((v4_err == ENOENT || v4_err == ENOPROTOOPT || v4_err == EOPNOTSUPP) &&
      (v6_err == ENOENT || v6_err == ENOPROTOOPT || v6_err == EOPNOTSUPP)) {
    return env.Null();
  }
  return ThrowErrno(env, "getsockopt(SO_ORIGINAL_DST)", v4_err == ENOENT ? v6_err : v4_err);
}

// socketError(fd) -> pending SO_ERROR (0 when none)
Napi::Value SocketError(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int fd = -1;
  if (!ReadFd(info, 0, &fd)) return ThrowType(env, "socketError: fd must be a number");
  int value = 0;
  socklen_t len = sizeof(value);
  if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &value, &len) < 0) return ThrowErrno(env, "getsockopt", errno);
  return Napi::Number::New(env, value);
}

Napi::Object Constants(Napi::Env env) {
  Napi::Object c = Napi::Object::New(env);
  c.Set("SOL_SOCKET", SOL_SOCKET);
  c.Set("SO_MARK", SO_MARK);
  c.Set("SO_REUSEADDR", SO_REUSEADDR);
  c.Set("SO_REUSEPORT", SO_REUSEPORT);
  c.Set("SO_ERROR", SO_ERROR);
  c.Set("SOL_IP", SOL_IP);
  c.Set("IP_TRANSPARENT", IP_TRANSPARENT);
  c.Set("IP_FREEBIND", IP_FREEBIND);
  c.Set("SOL_IPV6", SOL_IPV6);
  c.Set("IPV6_TRANSPARENT", IPV6_TRANSPARENT);
  c.Set("IPV6_FREEBIND", IPV6_FREEBIND);
  c.Set("IPV6_V6ONLY", IPV6_V6ONLY);
  c.Set("EINPROGRESS", EINPROGRESS);
  return c;
}

}  // namespace

void InitSockets(Napi::Env env, Napi::Object exports) {
  exports.Set("createSocket", Napi::Function::New(env, CreateSocket, "createSocket"));
  exports.Set("setsockoptInt", Napi::Function::New(env, SetsockoptInt, "setsockoptInt"));
  exports.Set("getsockoptInt", Napi::Function::New(env, GetsockoptInt, "getsockoptInt"));
  exports.Set("bindAddress", Napi::Function::New(env, BindAddress, "bindAddress"));
  exports.Set("connectAddress", Napi::Function::New(env, ConnectAddress, "connectAddress"));
  exports.Set("localAddress", Napi::Function::New(env, LocalAddress, "localAddress"));
  exports.Set("remoteAddress", Napi::Function::New(env, RemoteAddress, "remoteAddress"));
  exports.Set("originalDst", Napi::Function::New(env, OriginalDst, "originalDst"));
  exports.Set("socketError", Napi::Function::New(env, SocketError, "socketError"));
  exports.Set("constants", Constants(env));
}

}  // namespace ambient_netns
