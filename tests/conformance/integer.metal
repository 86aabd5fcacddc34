// Conformance: the integer family for every integer type, as 4-component vectors (a scalar second operand in
// some calls, to cover the mixes). Row k of `out` is the k-th function of INTEGER_FUNCTIONS in test_conformance.py.
#include <metal_stdlib>
using namespace metal;

template <typename T>
kernel void integer_ops(device const vec<T, 4>* x [[buffer(0)]], device const vec<T, 4>* y [[buffer(1)]],
                        device const vec<T, 4>* z [[buffer(2)]], device vec<T, 4>* out [[buffer(3)]],
                        uint id [[thread_position_in_grid]], uint n [[threads_per_grid]]) {
    using V = vec<T, 4>;
    const V a = x[id], b = y[id], c = z[id];
    const uint offset = uint(id % 5u), bits = uint(id % 3u) + 2u;  // offset + bits stays within 8 bits
    int k = 0;
    out[k++ * n + id] = abs(a);
    out[k++ * n + id] = absdiff(a, b);
    out[k++ * n + id] = addsat(a, b);
    out[k++ * n + id] = subsat(a, b);
    out[k++ * n + id] = clamp(a, min(b, c), max(b, c));
    out[k++ * n + id] = clz(a);
    out[k++ * n + id] = ctz(a);
    out[k++ * n + id] = popcount(a);
    out[k++ * n + id] = extract_bits(a, offset, bits);
    out[k++ * n + id] = insert_bits(a, b, offset, bits);
    out[k++ * n + id] = hadd(a, b);
    out[k++ * n + id] = rhadd(a, b);
    out[k++ * n + id] = mulhi(a, b);
    out[k++ * n + id] = madhi(a, b, c);
    out[k++ * n + id] = madsat(a, b, c);
    out[k++ * n + id] = reverse_bits(a);
    out[k++ * n + id] = rotate(a, b);
    out[k++ * n + id] = min(a, b);
    out[k++ * n + id] = max(a, b);
    out[k++ * n + id] = min3(a, b, c);
    out[k++ * n + id] = max3(a, b, c);
    out[k++ * n + id] = median3(a, b, c);
    out[k++ * n + id] = a << b;     // counts at and past the width: taken modulo the width
    out[k++ * n + id] = a >> b;
    out[k++ * n + id] = a << T(9);  // vector << scalar
    out[k++ * n + id] = a + b;
    out[k++ * n + id] = a - b;
    out[k++ * n + id] = a * b;
    out[k++ * n + id] = (a & b) | (c ^ a);
    out[k++ * n + id] = ~a;
    out[k++ * n + id] = abs(a.x) + V(T(0));  // scalar form
    out[k++ * n + id] = V(addsat(a.y, b.y), subsat(a.z, b.z), mulhi(a.w, b.w), popcount(a.x));
}

template [[host_name("integer_char")]] kernel void integer_ops<char>(device const char4*, device const char4*, device const char4*, device char4*, uint, uint);
template [[host_name("integer_uchar")]] kernel void integer_ops<uchar>(device const uchar4*, device const uchar4*, device const uchar4*, device uchar4*, uint, uint);
template [[host_name("integer_short")]] kernel void integer_ops<short>(device const short4*, device const short4*, device const short4*, device short4*, uint, uint);
template [[host_name("integer_ushort")]] kernel void integer_ops<ushort>(device const ushort4*, device const ushort4*, device const ushort4*, device ushort4*, uint, uint);
template [[host_name("integer_int")]] kernel void integer_ops<int>(device const int4*, device const int4*, device const int4*, device int4*, uint, uint);
template [[host_name("integer_uint")]] kernel void integer_ops<uint>(device const uint4*, device const uint4*, device const uint4*, device uint4*, uint, uint);
template [[host_name("integer_long")]] kernel void integer_ops<long>(device const long4*, device const long4*, device const long4*, device long4*, uint, uint);
template [[host_name("integer_ulong")]] kernel void integer_ops<ulong>(device const ulong4*, device const ulong4*, device const ulong4*, device ulong4*, uint, uint);

// mul24 and mad24: int and uint only, operands within 24 bits.
kernel void integer_24(device const int* x [[buffer(0)]], device const int* y [[buffer(1)]],
                       device int* out [[buffer(2)]], device uint* uout [[buffer(3)]],
                       uint id [[thread_position_in_grid]], uint n [[threads_per_grid]]) {
    const int a = x[id], b = y[id];
    out[0 * n + id] = mul24(a, b);
    out[1 * n + id] = mad24(a, b, a);
    uout[0 * n + id] = mul24(uint(a) & 0xffffffu, uint(b) & 0xffffffu);
    uout[1 * n + id] = mad24(uint(a) & 0xffffffu, uint(b) & 0xffffffu, uint(b));
}
