// Device discovery and a launch self-test for the CUDA addon: plain C++ types, no N-API, so that
// the .cu side (compiled by nvcc) and the binding (compiled by the host compiler) share them.
#pragma once

#include <cstddef>
#include <string>
#include <vector>

namespace cg {

struct CudaDeviceInfo {
  int index = 0;
  std::string name;
  int major = 0;
  int minor = 0;
  size_t totalMemory = 0;
  int multiProcessorCount = 0;
  size_t sharedMemPerBlockOptin = 0;
  int l2CacheSize = 0;
  // Whether this binary holds SASS that runs on this device (see arch_runs_on).
  bool kernelsSupported = false;
};

struct CudaProbeResult {
  bool ok = false;
  int deviceCount = 0;
  std::string error;      // CUDA's description, empty when ok
  std::string errorName;  // e.g. "cudaErrorInsufficientDriver", empty when ok
  int runtimeVersion = 0; // e.g. 13000 (the statically linked runtime)
  int driverVersion = 0;  // 0 when no driver is installed
  std::vector<CudaDeviceInfo> devices;
};

// Never throws, never aborts: every failure is reported in the result.
CudaProbeResult cuda_probe() noexcept;

struct CudaSelfTestResult {
  bool ran = false;        // the kernel was launched and synchronised
  bool passed = false;     // ... and wrote what it should
  int device = -1;
  int binaryVersion = 0;   // cudaFuncAttributes::binaryVersion of the SASS picked (e.g. 90)
  int ptxVersion = 0;
  std::string error;       // set when !ran or a CUDA call failed
  std::string errorName;
};

// Launches a tiny fill kernel on `device` (when it exists) and checks its output. Never throws.
CudaSelfTestResult cuda_self_test(int device) noexcept;

// SASS targets compiled into this binary, from CMake's CUDA architectures:
// numbers (80, 89, 90) and names ("sm_80", "sm_89", "sm_90a").
const std::vector<int>& compiled_architectures();
const std::vector<std::string>& compiled_targets();

// Whether a device of compute capability major.minor can run one of the compiled SASS targets:
// sm_XY runs on X.Y' with Y' >= Y; an arch-specific sm_XYa runs on exactly X.Y.
bool arch_runs_on(int major, int minor);

}  // namespace cg
