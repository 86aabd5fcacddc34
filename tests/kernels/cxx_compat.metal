// C++ that Apple's compiler accepts and g++ or NVRTC do not, as real kernel libraries write it.
#include <metal_stdlib>
using namespace metal;

// Explicit specialisations of member function templates at class scope (CWG 727).
struct Halve {
    template <typename T> T operator()(T x) thread { return x / 2; }
    template <> int operator()(int x) thread { return x >> 1; }
    template <> float operator()(float x) thread { return x * 0.5f + 100.0f; }
};
template <typename U> struct Offset {
    template <typename T> T apply(T x) const thread { return x + U(1); }
    template <> float apply(float x) const thread { return x + U(1000); }
};

// Out-of-class definitions of static constexpr data members.
struct Sizes {
    static constexpr constant int count = 4;
    static constexpr constant float weights[2] = {0.25f, 0.75f};
};
constexpr constant int Sizes::count;
constexpr constant float Sizes::weights[2];
template <typename T> struct Width { static constexpr constant int bytes = sizeof(T); };
template <typename T> constexpr constant int Width<T>::bytes;

// out[8 * id + k]
kernel void cxx_compat(device float* out [[buffer(0)]], uint id [[thread_position_in_grid]]) {
    device float* o = out + 8 * id;
    Halve halve;
    Offset<int> offset;
    o[0] = halve(int(id) * 4 + 3);            // int specialisation: (4 id + 3) >> 1
    o[1] = halve(float(id));                   // float specialisation: id / 2 + 100
    o[2] = offset.apply(float(id)) + offset.apply(1);  // id + 1000 + 2
    float designated[6] = { [0 ... 3] = 0.5h, [5] = 2 };  // GNU range designators; [4] is zero
    float total = 0;
    for (int i = 0; i < 6; ++i) {
        total += designated[i] * (i + 1);
    }
    o[3] = total;                              // 0.5 * (1 + 2 + 3 + 4) + 2 * 6 = 17
    o[4] = Sizes::count * Sizes::weights[id % 2] + Width<short>::bytes;
}

// Explicit instantiations whose template arguments are deduced from their parameter lists.
template <typename T>
[[kernel]] void scale_by(device T* data [[buffer(0)]], constant float& factor [[buffer(1)]],
                         uint id [[thread_position_in_grid]]) {
    data[id] = T(float(data[id]) * factor);
}
template <typename T>
[[kernel]] void scale_by(device T* data [[buffer(0)]], constant int& factor [[buffer(1)]],
                         uint id [[thread_position_in_grid]]) {
    data[id] = data[id] * T(factor) + T(1);
}
template [[host_name("scale_float")]] [[kernel]] void scale_by(device float*, constant float&, uint);
template [[host_name("scale_int")]] [[kernel]] void scale_by(device int*, constant int&, uint);
