// One way to run a native call, sync or async (sharp's "baton", onnxruntime-node's run):
//
//   capture  on the JS thread: every argument is read once, into a plain C++ struct (the Call),
//            and checked; from then on no JS value is read again;
//   run      on any thread: kernels only, touching no JS value;
//   deliver  on the JS thread: the result becomes a JS value.
//
// A Call provides `void run()`, `Napi::Value deliver(Napi::Env)` and `int cores() const` (the
// threads its kernels use: an async call waits for that many free cores before it runs, see
// CoreLease in cpu/runtime/thread_pool.h). One error convention for
// both steps: throw CallFailure (a coded error that becomes a TypeError, RangeError or Error
// with that `code`) or std::bad_alloc (ERR_OUT_OF_MEMORY). call_sync throws the JS error;
// call_async returns a Promise and rejects it.
//
// Teardown: when a worker thread is terminated, or the process exits, with calls in flight,
// their completion runs while the environment is being torn down and can no longer run JS; a
// N-API call then fails, and a C++ exception escaping a completion callback would abort the whole
// process. So settle() catches everything: a promise that cannot be settled has nobody
// awaiting it. (binding.gyp also defines NODE_API_SWALLOW_UNTHROWABLE_EXCEPTIONS, the switch
// node-addon-api documents for exceptions it cannot deliver.)
#pragma once
#include <napi.h>

#include <memory>
#include <new>
#include <string>

#include "binding/args.h"
#include "cpu/runtime/thread_pool.h"

namespace cg {
namespace binding {

struct CallFailure {
  enum Kind { Type, Range, Plain } kind;
  const char* code;
  std::string message;
};

static inline Napi::Error to_js(const Napi::Env& env, const CallFailure& f) {
  switch (f.kind) {
    case CallFailure::Type: return coded(Napi::TypeError::New(env, f.message), f.code);
    case CallFailure::Range: return coded(Napi::RangeError::New(env, f.message), f.code);
    default: return coded(Napi::Error::New(env, f.message), f.code);
  }
}

template <class Call>
Napi::Value call_sync(const Napi::Env& env, Call& call) {
  try {
    call.run();
    return call.deliver(env);
  } catch (const CallFailure& f) {
    throw to_js(env, f);
  } catch (const std::bad_alloc&) {
    throw out_of_memory(env);
  }
}

template <class Call>
class CallWorker : public Napi::AsyncWorker {
 public:
  CallWorker(const Napi::Env& env, const char* name, std::unique_ptr<Call> call)
      : Napi::AsyncWorker(env, name), call_(std::move(call)), deferred_(env) {}

  Napi::Promise promise() { return deferred_.Promise(); }

  void Execute() override {
    try {
      CoreLease lease(call_->cores());
      call_->run();
    } catch (const CallFailure& f) {
      failure_.reset(new CallFailure(f));
    } catch (const std::bad_alloc&) {
      oom_ = true;
    }
  }
  // Failures are kept in failure_/oom_ (SetError is never called), so OnOK always settles.
  void OnOK() override { settle(); }

 private:
  void settle() {
    const Napi::Env env = Env();
    try {
      if (oom_) {
        deferred_.Reject(out_of_memory(env).Value());
      } else if (failure_) {
        deferred_.Reject(to_js(env, *failure_).Value());
      } else {
        try {
          deferred_.Resolve(call_->deliver(env));
        } catch (const CallFailure& f) {
          deferred_.Reject(to_js(env, f).Value());
        }
      }
    } catch (...) {
      // The environment is being torn down (see the top of this file): nothing can be settled.
    }
    call_.reset();  // drop the call's references on the JS thread
  }

  std::unique_ptr<Call> call_;
  Napi::Promise::Deferred deferred_;
  std::unique_ptr<CallFailure> failure_;
  bool oom_ = false;
};

template <class Call>
Napi::Value call_async(const Napi::Env& env, const char* name, std::unique_ptr<Call> call) {
  auto* worker = new CallWorker<Call>(env, name, std::move(call));
  Napi::Promise p = worker->promise();
  worker->Queue();
  return p;
}

}  // namespace binding
}  // namespace cg
