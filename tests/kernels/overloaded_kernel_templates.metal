#include <metal_stdlib>
using namespace metal;

// Two kernel templates of one name, told apart by their template parameters (MLX's block_masked_gemm): each
// explicit instantiation names the one that takes its template arguments.
template <typename T, typename M, int N>
[[kernel]] void scaled(device T* out [[buffer(0)]], uint i [[thread_position_in_grid]]) {
    out[i] = T(i * N) + T(sizeof(M));
}

template <typename T, int N, bool twice = false>
[[kernel]] void scaled(device T* out [[buffer(0)]], device T* other [[buffer(1)]], uint i [[thread_position_in_grid]]) {
    out[i] = T(i * N * (twice ? 2 : 1));
    other[i] = T(1);
}

template [[host_name("scaled_three")]] [[kernel]] decltype(scaled<float, int, 3>) scaled<float, int, 3>;
template [[host_name("scaled_two")]] [[kernel]] decltype(scaled<float, 5>) scaled<float, 5>;
