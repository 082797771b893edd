// CUDA error checking for the CUDA addon. Every CUDA runtime call goes through CG_CUDA_CHECK,
// which turns a failing cudaError_t into a cg::CudaError (a C++ exception carrying the CUDA
// error's name, e.g. "cudaErrorInvalidValue", and its description). The N-API layer catches it
// and throws a JS Error with code 'ERR_CUDA'. Nothing here ever calls abort() or exit().
//
// Plain C++ (no N-API), so that .cu files compiled by nvcc can include it.
#pragma once

#include <cuda_runtime_api.h>

#include <stdexcept>
#include <string>

namespace cg {

class CudaError : public std::runtime_error {
 public:
  CudaError(cudaError_t code, const std::string& where)
      : std::runtime_error(format(code, where)), code_(code), name_(name_of(code)), where_(where) {}

  cudaError_t code() const noexcept { return code_; }
  // e.g. "cudaErrorInsufficientDriver"
  const std::string& name() const noexcept { return name_; }
  // the failing call and its source location, e.g. "cudaMalloc(&p, n) at device_query.cu:42"
  const std::string& where() const noexcept { return where_; }
  // CUDA's own description, e.g. "CUDA driver version is insufficient for CUDA runtime version"
  std::string description() const { return string_of(code_); }

  static std::string name_of(cudaError_t code) {
    const char* s = cudaGetErrorName(code);  // never null for a valid enum; guard anyway
    return s ? std::string(s) : "cudaError(" + std::to_string(int(code)) + ")";
  }
  static std::string string_of(cudaError_t code) {
    const char* s = cudaGetErrorString(code);
    return s ? std::string(s) : "unknown CUDA error " + std::to_string(int(code));
  }

 private:
  static std::string format(cudaError_t code, const std::string& where) {
    std::string msg = name_of(code) + ": " + string_of(code);
    if (!where.empty()) msg += " (" + where + ")";
    return msg;
  }

  cudaError_t code_;
  std::string name_;
  std::string where_;
};

// Throws cg::CudaError when `code` is not cudaSuccess.
inline void cuda_check(cudaError_t code, const char* expr, const char* file, int line) {
  if (code == cudaSuccess) return;
  std::string where = std::string(expr) + " at " + file + ":" + std::to_string(line);
  throw CudaError(code, where);
}

}  // namespace cg

#define CG_CUDA_CHECK(expr) ::cg::cuda_check((expr), #expr, __FILE__, __LINE__)

// After a kernel launch: launch-configuration errors are reported by cudaGetLastError (and
// cleared by it; they are not sticky).
#define CG_CUDA_CHECK_LAUNCH() ::cg::cuda_check(cudaGetLastError(), "kernel launch", __FILE__, __LINE__)
