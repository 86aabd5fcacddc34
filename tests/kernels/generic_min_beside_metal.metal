#include <metal_stdlib>
using namespace metal;

// A library's own min and max for two integral types of any kind (PyTorch's c10::metal::min(T, U)), visible
// beside Metal's through two using-directives: for two arguments of one type Metal's are taken, as Apple's
// per-type overloads are.
namespace library {
template <typename T, typename U, enable_if_t<is_integral_v<T> && is_integral_v<U>, bool> = true>
T min(T a, U b) {
    return a < T(b) ? T(1000) : T(2000);  // marks that this one ran
}
template <typename T, typename U, enable_if_t<is_integral_v<T> && is_integral_v<U>, bool> = true>
T max(T a, U b) {
    return a < T(b) ? T(3000) : T(4000);
}
}  // namespace library
using namespace library;

kernel void generic_min_beside_metal(device const uint* a [[buffer(0)]], device uint* out [[buffer(1)]],
                                     uint i [[thread_position_in_grid]]) {
    const uint b = 10u;
    out[3 * i + 0] = min(a[i], b);         // one type: Metal's
    out[3 * i + 1] = max(a[i] + 1u, b);    // one type: Metal's
    out[3 * i + 2] = min(a[i], ushort(5)); // two types: only the library's takes them exactly
}
