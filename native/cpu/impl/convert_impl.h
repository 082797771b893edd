// Loads and stores of whole vectors in any of the API's float dtypes, for the kernel templates.
// Included inside `namespace cg::<isa> { namespace { ... } }` after simd_<isa>.h.

// L elements of a `dt` array from index i, as float32.
inline V load_any(const void* p, DType dt, int64_t i) {
  switch (dt) {
    case DType::F32: return vload(static_cast<const float*>(p) + i);
    case DType::F16: return vload_f16(static_cast<const uint16_t*>(p) + i);
    default: return vload_bf16(static_cast<const uint16_t*>(p) + i);
  }
}

// The first n (1..L) elements; the rest of the vector is zero and no memory past them is read.
inline V load_any_n(const void* p, DType dt, int64_t i, int n) {
  if (n == L) return load_any(p, dt, i);
  switch (dt) {
    case DType::F32: return vload_n(static_cast<const float*>(p) + i, n);
    case DType::F16: return vload_f16_n(static_cast<const uint16_t*>(p) + i, n);
    default: return vload_bf16_n(static_cast<const uint16_t*>(p) + i, n);
  }
}

// Stores the first n (1..L) lanes at index i, rounding to nearest even for the 16-bit dtypes.
inline void store_any_n(void* p, DType dt, int64_t i, V v, int n) {
  switch (dt) {
    case DType::F32:
      if (n == L) vstore(static_cast<float*>(p) + i, v);
      else vstore_n(static_cast<float*>(p) + i, v, n);
      return;
    case DType::F16:
      if (n == L) vstore_f16(static_cast<uint16_t*>(p) + i, v);
      else vstore_f16_n(static_cast<uint16_t*>(p) + i, v, n);
      return;
    default:
      if (n == L) vstore_bf16(static_cast<uint16_t*>(p) + i, v);
      else vstore_bf16_n(static_cast<uint16_t*>(p) + i, v, n);
      return;
  }
}

// Converts n elements of src (dtype sdt) to float32 in dst.
inline void convert_row_to_f32(const void* src, DType sdt, int64_t n, float* dst) {
  int64_t i = 0;
  for (; i + L <= n; i += L) vstore(dst + i, load_any(src, sdt, i));
  if (i < n) vstore_n(dst + i, load_any_n(src, sdt, i, int(n - i)), int(n - i));
}

// L elements from index i of an array whose dtype is known at compile time.
template <DType WT> inline V load_weight(const void* w, int64_t i);
template <> inline V load_weight<DType::F32>(const void* w, int64_t i) { return vload(static_cast<const float*>(w) + i); }
template <> inline V load_weight<DType::F16>(const void* w, int64_t i) { return vload_f16(static_cast<const uint16_t*>(w) + i); }
template <> inline V load_weight<DType::BF16>(const void* w, int64_t i) { return vload_bf16(static_cast<const uint16_t*>(w) + i); }
