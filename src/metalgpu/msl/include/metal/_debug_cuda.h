// Bounds-checked buffers for Interface(debug=True) on CUDA. The translator shadows each pointer [[buffer(i)]]
// parameter of a kernel by a checked<T> (msl/translate.py, _check_bounds), which tests every access against the
// length of the buffer bound at slot i. An access outside it is recorded (the first one wins), reads give and
// writes go to a scratch element, and the kernel runs on: the host raises DispatchError naming the parameter,
// and the CUDA context stays usable, where a real out-of-bounds access would have poisoned it.
#pragma once

extern "C" {
// Set by the host before each launch, in the launch's stream (so a dispatch still running keeps its own): the byte
// length of the buffer bound at each slot, then the launch's number.
__device__ unsigned long long mg_debug_bytes[32];
// The first out-of-bounds access: slot + 1 (0: none yet), element index, buffer length in elements, launch number.
__device__ long long mg_debug_fault[4];
// Where out-of-bounds accesses go.
__device__ __align__(16) unsigned char mg_debug_sink[4096];
}

namespace mg {

template <class T> struct checked {
    T* base;
    long long offset;  // in elements, from base
    long long count;   // elements in the buffer
    int slot;

    MG_FUNC T& at(long long i) const {
        const long long k = offset + i;
        if (k < 0 || k >= count) {
            if (atomicCAS(reinterpret_cast<unsigned long long*>(&mg_debug_fault[0]), 0ull,
                          static_cast<unsigned long long>(slot + 1)) == 0ull) {
                mg_debug_fault[1] = k;
                mg_debug_fault[2] = count;
                mg_debug_fault[3] = static_cast<long long>(mg_debug_bytes[31]);
            }
            return *reinterpret_cast<T*>(mg_debug_sink);
        }
        return base[k];
    }
    template <class I> MG_FUNC T& operator[](I i) const { return at(static_cast<long long>(i)); }
    MG_FUNC T& operator*() const { return at(0); }
    MG_FUNC T* operator->() const { return &at(0); }
    // Passed on to a function that takes a plain pointer: from there on unchecked.
    MG_FUNC operator T*() const { return base + offset; }
    template <class U> MG_FUNC explicit operator U*() const { return (U*)(base + offset); }

    template <class I> MG_FUNC checked operator+(I i) const { return {base, offset + static_cast<long long>(i), count, slot}; }
    template <class I> MG_FUNC checked operator-(I i) const { return {base, offset - static_cast<long long>(i), count, slot}; }
    template <class I> MG_FUNC checked& operator+=(I i) { offset += static_cast<long long>(i); return *this; }
    template <class I> MG_FUNC checked& operator-=(I i) { offset -= static_cast<long long>(i); return *this; }
    MG_FUNC checked& operator++() { ++offset; return *this; }
    MG_FUNC checked& operator--() { --offset; return *this; }
    MG_FUNC checked operator++(int) { checked old = *this; ++offset; return old; }
    MG_FUNC checked operator--(int) { checked old = *this; --offset; return old; }
};

// A kernel's parameter as the kernel body sees it in debug mode: pointers to sized elements (at most the scratch
// element's size) are checked, anything else (void pointers, references, values) is passed through.
template <class P> struct bounds_for {
    static MG_FUNC P make(P p, int) { return p; }
};
template <class T> struct bounds_for<T*> {
    static constexpr bool sized = !is_void<detail::remove_cv_t<T>>::value;
    static MG_FUNC auto make(T* p, int slot) {
        if constexpr (sized && sizeof(T) <= sizeof(mg_debug_sink))
            return checked<T>{p, 0, static_cast<long long>(mg_debug_bytes[slot] / sizeof(T)), slot};
        else
            return p;
    }
};
template <class P> MG_FUNC auto check_bounds(P p, int slot) { return bounds_for<P>::make(p, slot); }

}  // namespace mg

// The atomic functions deduce their element type from a pointer, which a checked<T> is not: overloads that check
// the element and pass its address on.
namespace metal {
#define MG_CHECKED_ATOMIC(NAME)                                                                          \
    template <class A, class... R>                                                                       \
    MG_FUNC auto NAME(const mg::checked<A>& p, R... r) -> decltype(NAME(&p.at(0), r...)) {               \
        return NAME(&p.at(0), r...);                                                                     \
    }
MG_CHECKED_ATOMIC(atomic_load_explicit) MG_CHECKED_ATOMIC(atomic_store_explicit)
MG_CHECKED_ATOMIC(atomic_exchange_explicit) MG_CHECKED_ATOMIC(atomic_compare_exchange_weak_explicit)
MG_CHECKED_ATOMIC(atomic_compare_exchange_strong_explicit) MG_CHECKED_ATOMIC(atomic_fetch_add_explicit)
MG_CHECKED_ATOMIC(atomic_fetch_sub_explicit) MG_CHECKED_ATOMIC(atomic_fetch_and_explicit)
MG_CHECKED_ATOMIC(atomic_fetch_or_explicit) MG_CHECKED_ATOMIC(atomic_fetch_xor_explicit)
MG_CHECKED_ATOMIC(atomic_fetch_min_explicit) MG_CHECKED_ATOMIC(atomic_fetch_max_explicit)
MG_CHECKED_ATOMIC(atomic_max_explicit) MG_CHECKED_ATOMIC(atomic_min_explicit)
#undef MG_CHECKED_ATOMIC
}  // namespace metal
