// AF_UNIX SOCK_SEQPACKET sockets with SCM_RIGHTS: the ZDS transport between the CNI agent and
// ztunnel. Every descriptor is non-blocking and close-on-exec; received fds get MSG_CMSG_CLOEXEC.
#include "native-common.h"

#include <errno.h>
#include <string.h>
#include <sys/un.h>
#include <unistd.h>

#include <vector>

namespace ambient_netns {

namespace {

constexpr size_t kMaxFdsPerMessage = 16;

bool FillUnixAddress(const std::string& path, sockaddr_un* addr) {
  memset(addr, 0, sizeof(*addr));
  if (path.empty() || path.size() >= sizeof(addr->sun_path)) return false;
  addr->sun_family = AF_UNIX;
  memcpy(addr->sun_path, path.data(), path.size());
  return true;
}

// seqpacketListen(path, backlog) -> listening fd
Napi::Value SeqpacketListen(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (!info[0].IsString() || !info[1].IsNumber()) {
    return ThrowType(env, "seqpacketListen: expected (path, backlog)");
  }
  sockaddr_un addr;
  std::string path = info[0].As<Napi::String>().Utf8Value();
  if (!FillUnixAddress(path, &addr)) return ThrowType(env, "seqpacketListen: path is empty or longer than 107 bytes");
  int fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) return ThrowErrno(env, "socket", errno);
  if (bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) < 0) {
    int err = errno;
    close(fd);
    return ThrowErrno(env, "bind", err);
  }
  if (listen(fd, info[1].As<Napi::Number>().Int32Value()) < 0) {
    int err = errno;
    close(fd);
    return ThrowErrno(env, "listen", err);
  }
  return Napi::Number::New(env, fd);
}

// seqpacketConnect(path) -> connected fd. A local connect completes at once or fails.
Napi::Value SeqpacketConnect(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (!info[0].IsString()) return ThrowType(env, "seqpacketConnect: path must be a string");
  sockaddr_un addr;
  std::string path = info[0].As<Napi::String>().Utf8Value();
  if (!FillUnixAddress(path, &addr)) return ThrowType(env, "seqpacketConnect: path is empty or longer than 107 bytes");
  int fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) return ThrowErrno(env, "socket", errno);
  if (connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) < 0) {
    int err = errno;
    close(fd);
    return ThrowErrno(env, "connect", err);
  }
  return Napi::Number::New(env, fd);
}

// seqpacketAccept(fd) -> accepted fd, or null when no connection is pending.
Napi::Value SeqpacketAccept(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (!info[0].IsNumber()) return ThrowType(env, "seqpacketAccept: fd must be a number");
  int fd = accept4(info[0].As<Napi::Number>().Int32Value(), nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
  if (fd < 0) {
    if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR || errno == ECONNABORTED) return env.Null();
    return ThrowErrno(env, "accept4", errno);
  }
  return Napi::Number::New(env, fd);
}

// peerCredentials(fd) -> { pid, uid, gid } of the peer process as of connect (the client for an
// accepted socket, the listener for a connected one): SO_PEERCRED, which the peer cannot forge.
Napi::Value PeerCredentials(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (!info[0].IsNumber()) return ThrowType(env, "peerCredentials: expected (fd)");
  struct ucred cred;
  socklen_t len = sizeof(cred);
  if (getsockopt(info[0].As<Napi::Number>().Int32Value(), SOL_SOCKET, SO_PEERCRED, &cred, &len) < 0) {
    return ThrowErrno(env, "getsockopt(SO_PEERCRED)", errno);
  }
  Napi::Object result = Napi::Object::New(env);
  result.Set("pid", Napi::Number::New(env, cred.pid));
  result.Set("uid", Napi::Number::New(env, cred.uid));
  result.Set("gid", Napi::Number::New(env, cred.gid));
  return result;
}

// seqpacketPair() -> [fdA, fdB], a connected pair
Napi::Value SeqpacketPair(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int fds[2];
  if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, fds) < 0) {
    return ThrowErrno(env, "socketpair", errno);
  }
  Napi::Array result = Napi::Array::New(env, 2);
  result.Set(uint32_t{0}, Napi::Number::New(env, fds[0]));
  result.Set(uint32_t{1}, Napi::Number::New(env, fds[1]));
  return result;
}

// sendWithFds(fd, buffer, fds[]) -> bytes sent. One call is one record.
Napi::Value SendWithFds(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (!info[0].IsNumber() || !info[1].IsBuffer() || !info[2].IsArray()) {
    return ThrowType(env, "sendWithFds: expected (fd, Buffer, number[])");
  }
  int fd = info[0].As<Napi::Number>().Int32Value();
  Napi::Buffer<uint8_t> data = info[1].As<Napi::Buffer<uint8_t>>();
  Napi::Array fd_array = info[2].As<Napi::Array>();
  uint32_t count = fd_array.Length();
  if (count > kMaxFdsPerMessage) return ThrowType(env, "sendWithFds: at most 16 fds per message");
  std::vector<int> fds;
  fds.reserve(count);
  for (uint32_t i = 0; i < count; i++) {
    Napi::Value v = fd_array.Get(i);
    if (!v.IsNumber()) return ThrowType(env, "sendWithFds: fds must be numbers");
    fds.push_back(v.As<Napi::Number>().Int32Value());
  }

  iovec iov;
  iov.iov_base = data.Data();
  iov.iov_len = data.Length();
  msghdr msg;
  memset(&msg, 0, sizeof(msg));
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  alignas(cmsghdr) char control[CMSG_SPACE(sizeof(int) * kMaxFdsPerMessage)];
  if (!fds.empty()) {
    memset(control, 0, sizeof(control));
    msg.msg_control = control;
    msg.msg_controllen = CMSG_SPACE(sizeof(int) * fds.size());
    cmsghdr* cmsg = CMSG_FIRSTHDR(&msg);
    cmsg->cmsg_level = SOL_SOCKET;
    cmsg->cmsg_type = SCM_RIGHTS;
    cmsg->cmsg_len = CMSG_LEN(sizeof(int) * fds.size());
    memcpy(CMSG_DATA(cmsg), fds.data(), sizeof(int) * fds.size());
  }
  ssize_t sent;
  do {
    sent = sendmsg(fd, &msg, MSG_NOSIGNAL | MSG_DONTWAIT);
  } while (sent < 0 && errno == EINTR);
  if (sent < 0) return ThrowErrno(env, "sendmsg", errno);
  return Napi::Number::New(env, static_cast<double>(sent));
}

// recvWithFds(fd, maxBytes) -> null when nothing is queued, {eof: true} at end of stream, or
// {data, fds, truncated}. A record longer than maxBytes is cut and reported as truncated; so are
// lost descriptors (MSG_CTRUNC).
Napi::Value RecvWithFds(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (!info[0].IsNumber() || !info[1].IsNumber()) return ThrowType(env, "recvWithFds: expected (fd, maxBytes)");
  int fd = info[0].As<Napi::Number>().Int32Value();
  size_t max_bytes = static_cast<size_t>(info[1].As<Napi::Number>().Int64Value());
  if (max_bytes == 0 || max_bytes > (1u << 24)) return ThrowType(env, "recvWithFds: maxBytes must be 1..16 MiB");
  std::vector<uint8_t> buffer(max_bytes);
  iovec iov;
  iov.iov_base = buffer.data();
  iov.iov_len = buffer.size();
  alignas(cmsghdr) char control[CMSG_SPACE(sizeof(int) * kMaxFdsPerMessage)];
  msghdr msg;
  memset(&msg, 0, sizeof(msg));
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  msg.msg_control = control;
  msg.msg_controllen = sizeof(control);
  ssize_t received;
  do {
    received = recvmsg(fd, &msg, MSG_DONTWAIT | MSG_CMSG_CLOEXEC | MSG_TRUNC);
  } while (received < 0 && errno == EINTR);
  if (received < 0) {
    if (errno == EAGAIN || errno == EWOULDBLOCK) return env.Null();
    return ThrowErrno(env, "recvmsg", errno);
  }

  Napi::Array fds = Napi::Array::New(env);
  uint32_t fd_count = 0;
  for (cmsghdr* cmsg = CMSG_FIRSTHDR(&msg); cmsg != nullptr; cmsg = CMSG_NXTHDR(&msg, cmsg)) {
    if (cmsg->cmsg_level != SOL_SOCKET || cmsg->cmsg_type != SCM_RIGHTS) continue;
    size_t n = (cmsg->cmsg_len - CMSG_LEN(0)) / sizeof(int);
    const unsigned char* p = CMSG_DATA(cmsg);
    for (size_t i = 0; i < n; i++) {
      int received_fd;
      memcpy(&received_fd, p + i * sizeof(int), sizeof(int));
      fds.Set(fd_count++, Napi::Number::New(env, received_fd));
    }
  }

  Napi::Object result = Napi::Object::New(env);
  if (received == 0 && fd_count == 0) {
    result.Set("eof", Napi::Boolean::New(env, true));
    return result;
  }
  size_t kept = static_cast<size_t>(received) < max_bytes ? static_cast<size_t>(received) : max_bytes;
  result.Set("eof", Napi::Boolean::New(env, false));
  result.Set("data", Napi::Buffer<uint8_t>::Copy(env, buffer.data(), kept));
  result.Set("fds", fds);
  result.Set("truncated", Napi::Boolean::New(env, (msg.msg_flags & (MSG_TRUNC | MSG_CTRUNC)) != 0));
  result.Set("size", Napi::Number::New(env, static_cast<double>(received)));
  return result;
}

}  // namespace

void InitSeqpacket(Napi::Env env, Napi::Object exports) {
  exports.Set("seqpacketListen", Napi::Function::New(env, SeqpacketListen, "seqpacketListen"));
  exports.Set("seqpacketConnect", Napi::Function::New(env, SeqpacketConnect, "seqpacketConnect"));
  exports.Set("seqpacketAccept", Napi::Function::New(env, SeqpacketAccept, "seqpacketAccept"));
  exports.Set("seqpacketPair", Napi::Function::New(env, SeqpacketPair, "seqpacketPair"));
  exports.Set("peerCredentials", Napi::Function::New(env, PeerCredentials, "peerCredentials"));
  exports.Set("sendWithFds", Napi::Function::New(env, SendWithFds, "sendWithFds"));
  exports.Set("recvWithFds", Napi::Function::New(env, RecvWithFds, "recvWithFds"));
}

}  // namespace ambient_netns
