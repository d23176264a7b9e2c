// Readiness watcher: a uv_poll on Node's own event loop for descriptors libuv cannot wrap
// (SOCK_SEQPACKET). The JS callback must drain the fd: the poll is level-triggered.
//
// A JS exception thrown by the callback is re-raised as an uncaught exception of the process
// (napi_fatal_exception) instead of being dropped, so a failing handler cannot spin silently.
#include "native-common.h"

#include <uv.h>

namespace ambient_netns {

namespace {

struct Watcher {
  uv_poll_t poll;
  napi_env env;
  napi_ref callback;
  napi_async_context async_context;
  bool closing;
  // Owners: the uv handle (until its close callback) and the JS External (until finalized).
  int owners;
};

void Release(Watcher* w) {
  if (--w->owners == 0) delete w;
}

void OnClosed(uv_handle_t* handle) {
  Release(static_cast<Watcher*>(handle->data));
}

void StopAndClose(Watcher* w) {
  w->closing = true;
  uv_poll_stop(&w->poll);
  napi_delete_reference(w->env, w->callback);
  napi_async_destroy(w->env, w->async_context);
  uv_close(reinterpret_cast<uv_handle_t*>(&w->poll), OnClosed);
}

void OnPoll(uv_poll_t* handle, int status, int events) {
  auto* w = static_cast<Watcher*>(handle->data);
  if (w->closing) return;
  napi_env env = w->env;
  napi_handle_scope scope;
  if (napi_open_handle_scope(env, &scope) != napi_ok) return;
  napi_value callback;
  napi_value recv;
  napi_value argv[2];
  if (napi_get_reference_value(env, w->callback, &callback) == napi_ok && callback != nullptr &&
      napi_get_global(env, &recv) == napi_ok && napi_create_int32(env, status, &argv[0]) == napi_ok &&
      napi_create_int32(env, events, &argv[1]) == napi_ok) {
    napi_value result;
    napi_status call_status = napi_make_callback(env, w->async_context, recv, callback, 2, argv, &result);
    bool pending = false;
    napi_is_exception_pending(env, &pending);
    if (call_status == napi_pending_exception || pending) {
      napi_value exception;
      if (napi_get_and_clear_last_exception(env, &exception) == napi_ok) napi_fatal_exception(env, exception);
    }
  }
  napi_close_handle_scope(env, scope);
}

void Finalize(Napi::Env, Watcher* w) {
  // The JS handle was collected, possibly without unwatch(): stop the poll, then drop our share.
  if (!w->closing) StopAndClose(w);
  Release(w);
}

// watch(fd, events, callback(status, events)) -> handle
Napi::Value Watch(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (!info[0].IsNumber() || !info[1].IsNumber() || !info[2].IsFunction()) {
    return ThrowType(env, "watch: expected (fd, events, callback)");
  }
  int fd = info[0].As<Napi::Number>().Int32Value();
  int events = info[1].As<Napi::Number>().Int32Value();
  uv_loop_t* loop = nullptr;
  if (napi_get_uv_event_loop(env, &loop) != napi_ok || loop == nullptr) {
    return ThrowType(env, "watch: no libuv loop for this environment");
  }
  auto* w = new Watcher();
  w->env = env;
  w->closing = false;
  w->owners = 2;
  int rc = uv_poll_init(loop, &w->poll, fd);
  if (rc < 0) {
    delete w;
    return ThrowErrno(env, "uv_poll_init", -rc);
  }
  w->poll.data = w;
  napi_create_reference(env, info[2], 1, &w->callback);
  napi_async_init(env, nullptr, Napi::String::New(env, "ambient-netns:watch"), &w->async_context);
  rc = uv_poll_start(&w->poll, events, OnPoll);
  if (rc < 0) {
    w->owners = 1;  // no External will own it
    StopAndClose(w);
    return ThrowErrno(env, "uv_poll_start", -rc);
  }
  return Napi::External<Watcher>::New(env, w, Finalize);
}

Watcher* ReadWatcher(const Napi::CallbackInfo& info) {
  if (!info[0].IsExternal()) return nullptr;
  return info[0].As<Napi::External<Watcher>>().Data();
}

// unwatch(handle): stops the poll; the fd stays open. Safe to call twice.
Napi::Value Unwatch(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Watcher* w = ReadWatcher(info);
  if (w == nullptr) return ThrowType(env, "unwatch: expected a watch handle");
  if (!w->closing) StopAndClose(w);
  return env.Undefined();
}

// setWatchRef(handle, ref): whether the watch keeps the event loop alive.
Napi::Value SetWatchRef(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Watcher* w = ReadWatcher(info);
  if (w == nullptr || !info[1].IsBoolean()) return ThrowType(env, "setWatchRef: expected (handle, boolean)");
  if (w->closing) return env.Undefined();
  if (info[1].As<Napi::Boolean>().Value()) {
    uv_ref(reinterpret_cast<uv_handle_t*>(&w->poll));
  } else {
    uv_unref(reinterpret_cast<uv_handle_t*>(&w->poll));
  }
  return env.Undefined();
}

}  // namespace

void InitWatch(Napi::Env env, Napi::Object exports) {
  exports.Set("watch", Napi::Function::New(env, Watch, "watch"));
  exports.Set("unwatch", Napi::Function::New(env, Unwatch, "unwatch"));
  exports.Set("setWatchRef", Napi::Function::New(env, SetWatchRef, "setWatchRef"));
  Napi::Object events = Napi::Object::New(env);
  events.Set("READABLE", Napi::Number::New(env, UV_READABLE));
  events.Set("WRITABLE", Napi::Number::New(env, UV_WRITABLE));
  events.Set("DISCONNECT", Napi::Number::New(env, UV_DISCONNECT));
  exports.Set("watchEvents", events);
}

}  // namespace ambient_netns
