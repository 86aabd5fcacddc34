// Conformance: half and bfloat: conversions (round to nearest even, overflow, subnormals), arithmetic rounded
// once per operation, and half math.
#include <metal_stdlib>
using namespace metal;

kernel void narrow_convert(device const float* x [[buffer(0)]], device half* h [[buffer(1)]],
                           device bfloat* b [[buffer(2)]], device float* back [[buffer(3)]],
                           uint id [[thread_position_in_grid]], uint n [[threads_per_grid]]) {
    const float f = x[id];
    h[id] = half(f);
    b[id] = bfloat(f);
    back[0 * n + id] = float(half(f));
    back[1 * n + id] = float(bfloat(f));
}

kernel void half_arith(device const half* x [[buffer(0)]], device const half* y [[buffer(1)]],
                       device half* out [[buffer(2)]],
                       uint id [[thread_position_in_grid]], uint n [[threads_per_grid]]) {
    const half a = x[id], b = y[id];
    int k = 0;
    out[k++ * n + id] = a + b;
    out[k++ * n + id] = a - b;
    out[k++ * n + id] = a * b;
    out[k++ * n + id] = a / b;
    out[k++ * n + id] = -a;
    out[k++ * n + id] = a * 2.5h + 1;
    out[k++ * n + id] = half2(half4(a, b, a, b).zw).x;
}

kernel void bfloat_arith(device const bfloat* x [[buffer(0)]], device const bfloat* y [[buffer(1)]],
                         device bfloat* out [[buffer(2)]],
                         uint id [[thread_position_in_grid]], uint n [[threads_per_grid]]) {
    const bfloat a = x[id], b = y[id];
    int k = 0;
    out[k++ * n + id] = a + b;
    out[k++ * n + id] = a - b;
    out[k++ * n + id] = a * b;
    out[k++ * n + id] = a / b;
    out[k++ * n + id] = -a;
    out[k++ * n + id] = bfloat2(a, b).y;
}

#define HALF_FUNCTIONS(F) \
    F(sin) F(cos) F(tan) F(exp) F(exp2) F(log) F(log2) F(sqrt) F(rsqrt) F(atan) F(tanh) F(floor) F(fract)
#define EMIT_HALF(NAME) out[k++ * n + id] = NAME(a);

kernel void half_math(device const half* x [[buffer(0)]], device half* out [[buffer(1)]],
                      uint id [[thread_position_in_grid]], uint n [[threads_per_grid]]) {
    const half a = x[id];
    int k = 0;
    HALF_FUNCTIONS(EMIT_HALF)
    out[k++ * n + id] = pow(abs(a), 0.5h);
    out[k++ * n + id] = fma(a, a, a);
    out[k++ * n + id] = half4(cos(half4(a))).w;
}

// fma of three halves, rounded once (Table 8.3: correctly rounded).
kernel void half_fma(device const half* a [[buffer(0)]], device const half* b [[buffer(1)]],
                     device const half* c [[buffer(2)]], device half* out [[buffer(3)]],
                     uint id [[thread_position_in_grid]]) {
    out[id] = fma(a[id], b[id], c[id]);
}
