// Declarations that differ only by address space, and qualifiers that would repeat once address spaces are erased.
#include <metal_stdlib>
using namespace metal;

struct Counter {
    int value;
    Counter() thread = default;
    Counter() threadgroup = default;
    Counter() device = default;
    Counter() constant = default;
    constexpr Counter(int v) thread : value(v) {}
    constexpr Counter(int v) constant : value(v) {}
    int get() const thread { return value; }
    int get() const device { return value; }
    int get() const constant { return value; }
    // a non-const thread operator and a const device one: still two functions once erased
    operator int() thread { return value + 1000; }
    operator int() const device { return value + 2000; }
};

template <typename T> struct element {};
template <typename T> struct element<thread T*> { using type = T; static constant constexpr const int space = 1; };
template <typename T> struct element<device T*> { using type = T; static constant constexpr const int space = 1; };
template <typename T> struct element<threadgroup T*> { using type = T; static constant constexpr const int space = 1; };
template <typename T> struct element<constant T*> { using type = T; static constant constexpr const int space = 2; };

void bump(thread int& x, int by) { x += by; }
void bump(device int& x, int by) { x += by; }
void bump(threadgroup int& x, int by) { x += by; }
int twice(constant int& x) { return 2 * x; }
int twice(const device int& x) { return 2 * x; }

static constant constexpr const int program_scale = 3;
constant Counter program_counter(7);

kernel void address_spaces(device int* out [[buffer(0)]],
                           constant const int& offset [[buffer(1)]],
                           const constant int* table [[buffer(2)]],
                           volatile coherent(system) device int* flag [[buffer(3)]],
                           uint id [[thread_position_in_grid]]) {
    thread Counter local = Counter(int(id));
    int value = local.get() + program_counter.get() * program_scale;  // id + 21
    bump(value, offset);                                              // + offset
    bump(out[id], value);                                             // out[id] += value
    element<device int*>::type from_device = table[id % 4];
    element<constant int*>::type from_constant = twice(table[0]);
    out[id] += from_device + from_constant * element<constant int*>::space + element<device int*>::space;
    const device Counter* as_device = (const device Counter*)table;
    thread Counter mutable_counter(5);
    out[id] += 10000 * (int(mutable_counter) == 1005) + 20000 * (int(*as_device) == table[0] + 2000);
    if (id == 0) {
        flag[0] = 1;
    }
}
