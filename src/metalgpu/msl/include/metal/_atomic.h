// metal/_atomic.h -- Metal's atomic types and functions, and the memory-flag names that barriers take.
//
// One definition for both targets. atomic<T> is a bare T in memory (Metal's layout: a buffer of uint binds to
// `device atomic_uint*`); every operation goes through one of the per-target primitives in mg::atomics:
//   CPU:  the GCC/Clang __atomic builtins, so operations are atomic across the OS threads that run threadgroups
//         in parallel. Metal only has memory_order_relaxed; other orders are accepted and honoured.
//   CUDA: atomicAdd/atomicCAS/... (device-wide, relaxed; fences for stronger orders); loads and stores
//         are volatile accesses.
// What the hardware has no instruction for (float add, min and max on the CPU; float min/max and bool on CUDA)
// is a compare-and-swap loop on the value's bits.
#pragma once

namespace metal {

enum memory_order {
    memory_order_relaxed = 0,
    memory_order_consume = 1,
    memory_order_acquire = 2,
    memory_order_release = 3,
    memory_order_acq_rel = 4,
    memory_order_seq_cst = 5,
};

enum class thread_scope { thread = 0, simdgroup = 1, threadgroup = 2, device = 3 };

// What a barrier orders. Combined with |, as in mem_flags::mem_device | mem_flags::mem_threadgroup.
enum class mem_flags : unsigned int {
    mem_none = 0,
    mem_device = 1,
    mem_threadgroup = 2,
    mem_texture = 4,
    mem_threadgroup_imageblock = 8,
    mem_object_data = 16,
};
MG_FUNC constexpr mem_flags operator|(mem_flags a, mem_flags b) {
    return mem_flags(static_cast<unsigned int>(a) | static_cast<unsigned int>(b));
}
MG_FUNC constexpr mem_flags operator&(mem_flags a, mem_flags b) {
    return mem_flags(static_cast<unsigned int>(a) & static_cast<unsigned int>(b));
}

// An atomic object: the value's bits and nothing else. Not copyable, as in Metal; trivially default
// constructible, so `threadgroup atomic_uint n;` needs no initialiser.
template <class T> struct atomic {
    static_assert(sizeof(T) == 1 || sizeof(T) == 4 || sizeof(T) == 8, "Metal atomics hold 8, 32 or 64-bit values");
    using value_type = T;
    alignas(sizeof(T)) T value;

    atomic() = default;
    atomic(const atomic&) = delete;
    atomic& operator=(const atomic&) = delete;
};

typedef atomic<int> atomic_int;
typedef atomic<uint> atomic_uint;
typedef atomic<bool> atomic_bool;
typedef atomic<float> atomic_float;
typedef atomic<long> atomic_long;
typedef atomic<ulong> atomic_ulong;

}  // namespace metal

namespace mg {
namespace atomics {

// An unsigned integer of the same size as T: the bits that compare-and-swap works on.
template <int Size> struct bits_of;
template <> struct bits_of<1> { using type = unsigned char; };
template <> struct bits_of<4> { using type = unsigned int; };
template <> struct bits_of<8> { using type = unsigned long long; };
template <class T> using bits_t = typename bits_of<int(sizeof(T))>::type;

#if defined(MG_TARGET_CUDA)

template <class T> MG_FUNC T load(volatile T* p) { return *p; }
template <class T> MG_FUNC void store(volatile T* p, T v) { *p = v; }

// A compare-and-swap of the bits of *p; returns the bits that were there. Bytes go through their 32-bit word.
template <class T> MG_FUNC bits_t<T> cas_bits(volatile T* p, bits_t<T> expected, bits_t<T> desired) {
    if constexpr (sizeof(T) == 4) {
        return atomicCAS((unsigned int*)p, expected, desired);
    } else if constexpr (sizeof(T) == 8) {
        return atomicCAS((unsigned long long*)p, expected, desired);
    } else {
        unsigned long long address = (unsigned long long)p;
        unsigned int* word = (unsigned int*)(address & ~3ull);
        const unsigned int shift = unsigned(address & 3ull) * 8u;
        unsigned int old = *(volatile unsigned int*)word;
        for (;;) {
            const unsigned char current = (unsigned char)(old >> shift);
            if (current != expected) return current;
            const unsigned int replaced = (old & ~(0xffu << shift)) | (unsigned int)(desired) << shift;
            const unsigned int seen = atomicCAS(word, old, replaced);
            if (seen == old) return current;
            old = seen;
        }
    }
}

#else  // the CPU

MG_FUNC int gcc_order(int order) {
    switch (order) {
        case metal::memory_order_relaxed: return __ATOMIC_RELAXED;
        case metal::memory_order_consume: return __ATOMIC_CONSUME;
        case metal::memory_order_acquire: return __ATOMIC_ACQUIRE;
        case metal::memory_order_release: return __ATOMIC_RELEASE;
        case metal::memory_order_acq_rel: return __ATOMIC_ACQ_REL;
        default: return __ATOMIC_SEQ_CST;
    }
}

template <class T> MG_FUNC T load(volatile T* p) {
    bits_t<T> b = __atomic_load_n(reinterpret_cast<volatile bits_t<T>*>(p), __ATOMIC_SEQ_CST);
    return mg::detail::bit_cast<T>(b);
}
template <class T> MG_FUNC void store(volatile T* p, T v) {
    __atomic_store_n(reinterpret_cast<volatile bits_t<T>*>(p), mg::detail::bit_cast<bits_t<T>>(v), __ATOMIC_SEQ_CST);
}
template <class T> MG_FUNC bits_t<T> cas_bits(volatile T* p, bits_t<T> expected, bits_t<T> desired) {
    __atomic_compare_exchange_n(reinterpret_cast<volatile bits_t<T>*>(p), &expected, desired, false,
                                __ATOMIC_SEQ_CST, __ATOMIC_SEQ_CST);
    return expected;  // on failure the builtin stored what it saw there
}

#endif

// Memory orders. CUDA's atomic functions are relaxed: an order that releases gets a device-wide fence before the
// operation, one that acquires a fence after it (__threadfence() is a sequentially consistent fence). The CPU's
// operations are sequentially consistent already.
MG_FUNC void fence_before(metal::memory_order order) {
#if defined(MG_TARGET_CUDA)
    if (order == metal::memory_order_release || order == metal::memory_order_acq_rel ||
        order == metal::memory_order_seq_cst)
        __threadfence();
#else
    (void)order;
#endif
}
MG_FUNC void fence_after(metal::memory_order order) {
#if defined(MG_TARGET_CUDA)
    if (order != metal::memory_order_relaxed && order != metal::memory_order_release) __threadfence();
#else
    (void)order;
#endif
}

// fetch-op by compare-and-swap: *p = op(*p, v), returning the old value.
template <class T, class Op> MG_FUNC T fetch_by_cas(volatile T* p, T v, Op op) {
    bits_t<T> old = mg::detail::bit_cast<bits_t<T>>(load(p));
    for (;;) {
        const T updated = op(mg::detail::bit_cast<T>(old), v);
        const bits_t<T> seen = cas_bits(p, old, mg::detail::bit_cast<bits_t<T>>(updated));
        if (seen == old) return mg::detail::bit_cast<T>(old);
        old = seen;
    }
}

struct add_op { template <class T> MG_FUNC T operator()(T a, T b) const { return T(a + b); } };
struct sub_op { template <class T> MG_FUNC T operator()(T a, T b) const { return T(a - b); } };
struct and_op { template <class T> MG_FUNC T operator()(T a, T b) const { return T(a & b); } };
struct or_op { template <class T> MG_FUNC T operator()(T a, T b) const { return T(a | b); } };
struct xor_op { template <class T> MG_FUNC T operator()(T a, T b) const { return T(a ^ b); } };
struct min_op { template <class T> MG_FUNC T operator()(T a, T b) const { return b < a ? b : a; } };
struct max_op { template <class T> MG_FUNC T operator()(T a, T b) const { return a < b ? b : a; } };
struct exchange_op { template <class T> MG_FUNC T operator()(T, T b) const { return b; } };

template <class T> MG_FUNC T exchange(volatile T* p, T v) {
#if defined(MG_TARGET_CUDA)
    if constexpr (sizeof(T) == 4 && !mg::detail::is_same<T, bool>::value)
        return mg::detail::bit_cast<T>(atomicExch((unsigned int*)p, mg::detail::bit_cast<unsigned int>(v)));
    else if constexpr (sizeof(T) == 8)
        return mg::detail::bit_cast<T>(
            atomicExch((unsigned long long*)p, mg::detail::bit_cast<unsigned long long>(v)));
    else
        return fetch_by_cas(p, v, exchange_op{});
#else
    return mg::detail::bit_cast<T>(__atomic_exchange_n(reinterpret_cast<volatile bits_t<T>*>(p),
                                                       mg::detail::bit_cast<bits_t<T>>(v), __ATOMIC_SEQ_CST));
#endif
}

// The fetch-ops with a native instruction on the target; the others are CAS loops.
template <class T, class Op> MG_FUNC T fetch(volatile T* p, T v, Op op) {
#if defined(MG_TARGET_CUDA)
    using mg::detail::is_same;
    // 32-bit integers are int or uint; 64-bit ones (long, ulong) use the unsigned long long instructions, which
    // give the same bits for signed values except in min/max, which has a signed long long form.
    using U64 = unsigned long long;
    constexpr bool integer = mg::detail::is_integral<T>::value && !is_same<T, bool>::value;
    constexpr bool int32 = integer && sizeof(T) == 4;
    constexpr bool int64 = integer && sizeof(T) == 8;
    constexpr bool signed64 = int64 && mg::detail::is_signed<T>::value;
    constexpr bool real = is_same<T, float>::value;
    if constexpr (is_same<Op, add_op>::value && (int32 || real)) return atomicAdd((T*)p, v);
    else if constexpr (is_same<Op, add_op>::value && int64) return T(atomicAdd((U64*)p, U64(v)));
    else if constexpr (is_same<Op, sub_op>::value && int32) return atomicSub((T*)p, v);
    else if constexpr (is_same<Op, sub_op>::value && int64) return T(atomicAdd((U64*)p, U64(0) - U64(v)));
    else if constexpr (is_same<Op, sub_op>::value && real) return atomicAdd((float*)p, -v);
    else if constexpr (is_same<Op, and_op>::value && int32) return atomicAnd((T*)p, v);
    else if constexpr (is_same<Op, and_op>::value && int64) return T(atomicAnd((U64*)p, U64(v)));
    else if constexpr (is_same<Op, or_op>::value && int32) return atomicOr((T*)p, v);
    else if constexpr (is_same<Op, or_op>::value && int64) return T(atomicOr((U64*)p, U64(v)));
    else if constexpr (is_same<Op, xor_op>::value && int32) return atomicXor((T*)p, v);
    else if constexpr (is_same<Op, xor_op>::value && int64) return T(atomicXor((U64*)p, U64(v)));
    else if constexpr (is_same<Op, min_op>::value && int32) return atomicMin((T*)p, v);
    else if constexpr (is_same<Op, min_op>::value && signed64) return T(atomicMin((long long*)p, (long long)v));
    else if constexpr (is_same<Op, min_op>::value && int64) return T(atomicMin((U64*)p, U64(v)));
    else if constexpr (is_same<Op, max_op>::value && int32) return atomicMax((T*)p, v);
    else if constexpr (is_same<Op, max_op>::value && signed64) return T(atomicMax((long long*)p, (long long)v));
    else if constexpr (is_same<Op, max_op>::value && int64) return T(atomicMax((U64*)p, U64(v)));
    else return fetch_by_cas(p, v, op);
#else
    constexpr bool integral = mg::detail::is_integral<T>::value && !mg::detail::is_same<T, bool>::value;
    volatile T* q = p;
    if constexpr (integral && mg::detail::is_same<Op, add_op>::value) return __atomic_fetch_add(q, v, __ATOMIC_SEQ_CST);
    else if constexpr (integral && mg::detail::is_same<Op, sub_op>::value) return __atomic_fetch_sub(q, v, __ATOMIC_SEQ_CST);
    else if constexpr (integral && mg::detail::is_same<Op, and_op>::value) return __atomic_fetch_and(q, v, __ATOMIC_SEQ_CST);
    else if constexpr (integral && mg::detail::is_same<Op, or_op>::value) return __atomic_fetch_or(q, v, __ATOMIC_SEQ_CST);
    else if constexpr (integral && mg::detail::is_same<Op, xor_op>::value) return __atomic_fetch_xor(q, v, __ATOMIC_SEQ_CST);
    else return fetch_by_cas(p, v, op);
#endif
}

}  // namespace atomics
}  // namespace mg

namespace metal {

// Every function takes a pointer to a (volatile) atomic in device or threadgroup memory; the address-space
// keywords are gone after translation, and a non-volatile pointer converts to a volatile one.
// The memory_order arguments are accepted for every function; on the CPU the operations are sequentially
// consistent, which is at least as strong as anything asked for; on CUDA orders other than relaxed add fences.
template <class T> MG_FUNC T atomic_load_explicit(const volatile atomic<T>* object, memory_order order) {
    const T value = mg::atomics::load(const_cast<volatile T*>(&object->value));
    mg::atomics::fence_after(order);
    return value;
}
template <class T, class U>
MG_FUNC void atomic_store_explicit(volatile atomic<T>* object, U desired, memory_order order) {
    mg::atomics::fence_before(order);
    mg::atomics::store(&object->value, T(desired));
}
template <class T, class U>
MG_FUNC T atomic_exchange_explicit(volatile atomic<T>* object, U desired, memory_order order) {
    mg::atomics::fence_before(order);
    const T old = mg::atomics::exchange(&object->value, T(desired));
    mg::atomics::fence_after(order);
    return old;
}
// On failure *expected receives the value found. Never fails spuriously here, which `weak` allows. Values are
// compared by their bits, as C++ compares object representations.
template <class T, class U>
MG_FUNC bool atomic_compare_exchange_weak_explicit(volatile atomic<T>* object, T* expected, U desired,
                                                   memory_order success, memory_order failure) {
    using B = mg::atomics::bits_t<T>;
    const B want = mg::detail::bit_cast<B>(*expected);
    mg::atomics::fence_before(success);
    const B seen = mg::atomics::cas_bits(&object->value, want, mg::detail::bit_cast<B>(T(desired)));
    if (seen == want) {
        mg::atomics::fence_after(success);
        return true;
    }
    mg::atomics::fence_after(failure);
    *expected = mg::detail::bit_cast<T>(seen);
    return false;
}
template <class T, class U>
MG_FUNC bool atomic_compare_exchange_strong_explicit(volatile atomic<T>* object, T* expected, U desired,
                                                     memory_order success, memory_order failure) {
    return atomic_compare_exchange_weak_explicit(object, expected, desired, success, failure);
}

#define MG_ATOMIC_FETCH(NAME, OP)                                                                           \
    template <class T, class U> MG_FUNC T atomic_fetch_##NAME##_explicit(volatile atomic<T>* object, U operand, \
                                                                         memory_order order) {               \
        mg::atomics::fence_before(order);                                                                    \
        const T old = mg::atomics::fetch(&object->value, T(operand), mg::atomics::OP{});                     \
        mg::atomics::fence_after(order);                                                                     \
        return old;                                                                                          \
    }
MG_ATOMIC_FETCH(add, add_op) MG_ATOMIC_FETCH(sub, sub_op) MG_ATOMIC_FETCH(and, and_op)
MG_ATOMIC_FETCH(or, or_op) MG_ATOMIC_FETCH(xor, xor_op) MG_ATOMIC_FETCH(min, min_op) MG_ATOMIC_FETCH(max, max_op)
#undef MG_ATOMIC_FETCH

// Metal 3.1's 64-bit atomic_ulong min/max, which return nothing.
template <class U> MG_FUNC void atomic_min_explicit(volatile atomic_ulong* object, U operand, memory_order order) {
    atomic_fetch_min_explicit(object, operand, order);
}
template <class U> MG_FUNC void atomic_max_explicit(volatile atomic_ulong* object, U operand, memory_order order) {
    atomic_fetch_max_explicit(object, operand, order);
}

MG_FUNC void atomic_thread_fence(mem_flags, memory_order, thread_scope = thread_scope::device) {
#if defined(MG_TARGET_CUDA)
    __threadfence();
#else
    __atomic_thread_fence(__ATOMIC_SEQ_CST);
#endif
}

}  // namespace metal
