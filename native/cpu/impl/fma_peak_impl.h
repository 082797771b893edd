// Included inside namespace cg::<isa> with V (vector type), kLanes, and fmadd/set1/add/reduce
// helpers defined. 12 independent accumulator chains cover the FMA latency (4-5 cycles) times
// two FMA ports.
double fma_loop_flops(int64_t iterations) {
  V a0 = set1(1.0f), a1 = set1(1.1f), a2 = set1(1.2f), a3 = set1(1.3f), a4 = set1(1.4f), a5 = set1(1.5f);
  V a6 = set1(1.6f), a7 = set1(1.7f), a8 = set1(1.8f), a9 = set1(1.9f), a10 = set1(2.0f), a11 = set1(2.1f);
  const V m = set1(0.9999999f), c = set1(1e-7f);
  for (int64_t i = 0; i < iterations; ++i) {
    a0 = fmadd(a0, m, c); a1 = fmadd(a1, m, c); a2 = fmadd(a2, m, c); a3 = fmadd(a3, m, c);
    a4 = fmadd(a4, m, c); a5 = fmadd(a5, m, c); a6 = fmadd(a6, m, c); a7 = fmadd(a7, m, c);
    a8 = fmadd(a8, m, c); a9 = fmadd(a9, m, c); a10 = fmadd(a10, m, c); a11 = fmadd(a11, m, c);
    __asm__ volatile("" : "+x"(a0), "+x"(a1), "+x"(a2), "+x"(a3), "+x"(a4), "+x"(a5));
  }
  V s = add(add(add(a0, a1), add(a2, a3)), add(add(a4, a5), add(a6, a7)));
  s = add(s, add(add(a8, a9), add(a10, a11)));
  // The sum is returned through the flop count's last bit so the loop cannot be optimised away.
  return double(iterations) * 12.0 * kLanes * 2.0 + (reduce(s) > 1e30f ? 1.0 : 0.0);
}
