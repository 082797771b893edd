// One-lane "vectors" for the kernel templates that also serve as the portable path
// (lowrank_impl.h): V is a float, L = 1. Included inside `namespace cg::scalar { namespace {` by
// files compiled for the baseline ISA.

using V = float;
constexpr int L = 1;

inline V vzero() { return 0.0f; }
inline V vset1(float f) { return f; }
inline V vload(const float* p) { return *p; }
inline void vstore(float* p, V v) { *p = v; }
inline V vbcast(const float* p) { return *p; }
inline V vfma(V a, V b, V c) { return a * b + c; }
inline V vadd(V a, V b) { return a + b; }
inline V vmul(V a, V b) { return a * b; }
inline V vload_n(const float* p, int) { return *p; }
inline void vstore_n(float* p, V v, int) { *p = v; }
inline V vload_f16(const uint16_t* p) { return f16_to_f32(*p); }
inline V vload_bf16(const uint16_t* p) { return bf16_to_f32(*p); }
inline V vload_f16_n(const uint16_t* p, int) { return f16_to_f32(*p); }
inline V vload_bf16_n(const uint16_t* p, int) { return bf16_to_f32(*p); }
inline void vstore_f16(uint16_t* p, V v) { *p = f32_to_f16(v); }
inline void vstore_bf16(uint16_t* p, V v) { *p = f32_to_bf16(v); }
inline void vstore_f16_n(uint16_t* p, V v, int) { *p = f32_to_f16(v); }
inline void vstore_bf16_n(uint16_t* p, V v, int) { *p = f32_to_bf16(v); }
