// SIMD-group matrices as tensor cores run them on CUDA (and the CPU's emulation of them in the tests): products of
// every element type, operands loaded from device and threadgroup memory with strides and transposes, and
// thread_elements() in Apple's layout around products, written by some lanes only.
#include <metal_stdlib>
using namespace metal;

// Where the operands lie: C (n x m) += A (n x k) * B (k x m), each with its row stride, and whether memory holds
// the matrix's transpose.
struct Layout {
    uint n, k, m;
    uint lda, ldb, ldc;
    uint a_transposed, b_transposed, c_transposed;
};

// One SIMD-group (a threadgroup of 32) per 8x8 tile of C. A comes from device memory through simdgroup_load; each
// 8x8 block of B is copied to threadgroup memory transposed, at an odd stride, and read back with
// transpose_matrix; C starts as loaded from device memory and is stored back there.
template <typename InA, typename InB, typename Acc>
kernel void product(device const InA* A [[buffer(0)]], device const InB* B [[buffer(1)]],
                    device Acc* C [[buffer(2)]], constant Layout& s [[buffer(3)]],
                    uint2 tile [[threadgroup_position_in_grid]], ushort lane [[thread_index_in_simdgroup]]) {
    threadgroup InB block[8 * 9];
    const uint row0 = tile.y * 8, col0 = tile.x * 8;
    const bool c_transposed = s.c_transposed != 0;
    const ulong2 c_origin = c_transposed ? ulong2(row0, col0) : ulong2(col0, row0);
    simdgroup_matrix<Acc, 8, 8> acc;
    simdgroup_load(acc, C, s.ldc, c_origin, c_transposed);
    for (uint k = 0; k < s.k; k += 8) {
        simdgroup_matrix<InA, 8, 8> a;
        simdgroup_matrix<InB, 8, 8> b;
        simdgroup_load(a, A, s.lda, s.a_transposed ? ulong2(row0, k) : ulong2(k, row0), s.a_transposed != 0);
        for (uint i = lane; i < 64; i += 32) {  // block[c][r] = B(k + r, col0 + c)
            const uint r = i / 8, c = i % 8;
            block[c * 9 + r] = s.b_transposed ? B[(col0 + c) * s.ldb + k + r] : B[(k + r) * s.ldb + col0 + c];
        }
        simdgroup_barrier(mem_flags::mem_threadgroup);
        simdgroup_load(b, block, 9, ulong2(0), true);
        simdgroup_multiply_accumulate(acc, a, b, acc);
    }
    simdgroup_store(acc, C, s.ldc, c_origin, c_transposed);
}

template [[host_name("product_float")]] kernel void product<float, float, float>(
    device const float*, device const float*, device float*, constant Layout&, uint2, ushort);
template [[host_name("product_half_into_float")]] kernel void product<half, half, float>(
    device const half*, device const half*, device float*, constant Layout&, uint2, ushort);
template [[host_name("product_half")]] kernel void product<half, half, half>(
    device const half*, device const half*, device half*, constant Layout&, uint2, ushort);
template [[host_name("product_bfloat_into_float")]] kernel void product<bfloat, bfloat, float>(
    device const bfloat*, device const bfloat*, device float*, constant Layout&, uint2, ushort);
template [[host_name("product_bfloat")]] kernel void product<bfloat, bfloat, bfloat>(
    device const bfloat*, device const bfloat*, device bfloat*, constant Layout&, uint2, ushort);
template [[host_name("product_float_half")]] kernel void product<float, half, float>(
    device const float*, device const half*, device float*, constant Layout&, uint2, ushort);
template [[host_name("product_half_float")]] kernel void product<half, float, float>(
    device const half*, device const float*, device float*, constant Layout&, uint2, ushort);
template [[host_name("product_half_bfloat")]] kernel void product<half, bfloat, float>(
    device const half*, device const bfloat*, device float*, constant Layout&, uint2, ushort);

// The product two steps of k at a time, from device memory, into a float accumulator: on CUDA the two products of
// a step run as one m16n8k16. s.k is a multiple of 16.
template <typename T>
kernel void paired_product(device const T* A [[buffer(0)]], device const T* B [[buffer(1)]],
                           device float* C [[buffer(2)]], constant Layout& s [[buffer(3)]],
                           uint2 tile [[threadgroup_position_in_grid]]) {
    const uint row0 = tile.y * 8, col0 = tile.x * 8;
    const bool a_transposed = s.a_transposed != 0, b_transposed = s.b_transposed != 0;
    const bool c_transposed = s.c_transposed != 0;
    const ulong2 c_origin = c_transposed ? ulong2(row0, col0) : ulong2(col0, row0);
    simdgroup_float8x8 acc;
    simdgroup_load(acc, C, s.ldc, c_origin, c_transposed);
    for (uint k = 0; k < s.k; k += 16) {
        simdgroup_matrix<T, 8, 8> a0, a1, b0, b1;
        simdgroup_load(a0, A, s.lda, a_transposed ? ulong2(row0, k) : ulong2(k, row0), a_transposed);
        simdgroup_load(a1, A, s.lda, a_transposed ? ulong2(row0, k + 8) : ulong2(k + 8, row0), a_transposed);
        simdgroup_load(b0, B, s.ldb, b_transposed ? ulong2(k, col0) : ulong2(col0, k), b_transposed);
        simdgroup_load(b1, B, s.ldb, b_transposed ? ulong2(k + 8, col0) : ulong2(col0, k + 8), b_transposed);
        simdgroup_multiply_accumulate(acc, a0, b0, acc);
        simdgroup_multiply_accumulate(acc, a1, b1, acc);
    }
    simdgroup_store(acc, C, s.ldc, c_origin, c_transposed);
}

template [[host_name("paired_half_into_float")]] kernel void paired_product<half>(
    device const half*, device const half*, device float*, constant Layout&, uint2);
template [[host_name("paired_bfloat_into_float")]] kernel void paired_product<bfloat>(
    device const bfloat*, device const bfloat*, device float*, constant Layout&, uint2);

// The product for a 16-row tile, two accumulators (rows 0-7 and 8-15) reading each B block in a pair of statements,
// two steps of k at a time: on CUDA each pair of half or bfloat products runs as one m16n8k8 with both halves used
// (float ones too in plain TF32), and the two pairs of a step as one m16n8k16. s.n and s.k are multiples of 16.
template <typename T>
kernel void row_paired_product(device const T* A [[buffer(0)]], device const T* B [[buffer(1)]],
                               device float* C [[buffer(2)]], constant Layout& s [[buffer(3)]],
                               uint2 tile [[threadgroup_position_in_grid]]) {
    const uint row0 = tile.y * 16, col0 = tile.x * 8;
    const bool a_transposed = s.a_transposed != 0, b_transposed = s.b_transposed != 0;
    const bool c_transposed = s.c_transposed != 0;
    simdgroup_float8x8 acc[2];
    for (uint i = 0; i < 2; ++i) {
        const uint row = row0 + 8 * i;
        simdgroup_load(acc[i], C, s.ldc, c_transposed ? ulong2(row, col0) : ulong2(col0, row), c_transposed);
    }
    for (uint k = 0; k < s.k; k += 16) {
        simdgroup_matrix<T, 8, 8> a[2][2], b[2];
        for (uint step = 0; step < 2; ++step) {
            const uint kk = k + 8 * step;
            for (uint i = 0; i < 2; ++i) {
                const uint row = row0 + 8 * i;
                simdgroup_load(a[step][i], A, s.lda, a_transposed ? ulong2(row, kk) : ulong2(kk, row), a_transposed);
            }
            simdgroup_load(b[step], B, s.ldb, b_transposed ? ulong2(kk, col0) : ulong2(col0, kk), b_transposed);
        }
        simdgroup_multiply_accumulate(acc[0], a[0][0], b[0], acc[0]);
        simdgroup_multiply_accumulate(acc[1], a[0][1], b[0], acc[1]);
        simdgroup_multiply_accumulate(acc[0], a[1][0], b[1], acc[0]);
        simdgroup_multiply_accumulate(acc[1], a[1][1], b[1], acc[1]);
    }
    for (uint i = 0; i < 2; ++i) {
        const uint row = row0 + 8 * i;
        simdgroup_store(acc[i], C, s.ldc, c_transposed ? ulong2(row, col0) : ulong2(col0, row), c_transposed);
    }
}

template [[host_name("row_paired_half_into_float")]] kernel void row_paired_product<half>(
    device const half*, device const half*, device float*, constant Layout&, uint2);
template [[host_name("row_paired_bfloat_into_float")]] kernel void row_paired_product<bfloat>(
    device const bfloat*, device const bfloat*, device float*, constant Layout&, uint2);
template [[host_name("row_paired_float")]] kernel void row_paired_product<float>(
    device const float*, device const float*, device float*, constant Layout&, uint2);

// The same product with A's and B's blocks staged in threadgroup memory whose rows are 16-byte aligned (16
// elements apart, each block at column 8), as a tiled GEMM keeps them: on CUDA, half and bfloat operands are then
// read with ldmatrix. A block is held transposed when its operand is transposed in device memory, and read back
// with transpose_matrix.
template <typename T, typename Acc>
kernel void staged_product(device const T* A [[buffer(0)]], device const T* B [[buffer(1)]],
                           device Acc* C [[buffer(2)]], constant Layout& s [[buffer(3)]],
                           uint2 tile [[threadgroup_position_in_grid]], ushort lane [[thread_index_in_simdgroup]]) {
    threadgroup T a_block[8 * 16];
    threadgroup T b_block[8 * 16];
    const uint row0 = tile.y * 8, col0 = tile.x * 8;
    const bool a_transposed = s.a_transposed != 0, b_transposed = s.b_transposed != 0;
    const bool c_transposed = s.c_transposed != 0;
    const ulong2 c_origin = c_transposed ? ulong2(row0, col0) : ulong2(col0, row0);
    simdgroup_matrix<Acc, 8, 8> acc;
    simdgroup_load(acc, C, s.ldc, c_origin, c_transposed);
    for (uint k = 0; k < s.k; k += 8) {
        for (uint i = lane; i < 64; i += 32) {  // element (r, c) of each block at [r][8 + c], or [c][8 + r]
            const uint r = i / 8, c = i % 8;
            a_block[a_transposed ? c * 16 + 8 + r : r * 16 + 8 + c] =
                a_transposed ? A[(k + c) * s.lda + row0 + r] : A[(row0 + r) * s.lda + k + c];
            b_block[b_transposed ? c * 16 + 8 + r : r * 16 + 8 + c] =
                b_transposed ? B[(col0 + c) * s.ldb + k + r] : B[(k + r) * s.ldb + col0 + c];
        }
        threadgroup_barrier(mem_flags::mem_threadgroup);
        simdgroup_matrix<T, 8, 8> a, b;
        simdgroup_load(a, a_block, 16, ulong2(8, 0), a_transposed);
        simdgroup_load(b, b_block, 16, ulong2(8, 0), b_transposed);
        simdgroup_multiply_accumulate(acc, a, b, acc);
        threadgroup_barrier(mem_flags::mem_threadgroup);  // read before the next step writes the blocks
    }
    simdgroup_store(acc, C, s.ldc, c_origin, c_transposed);
}

template [[host_name("staged_half_into_float")]] kernel void staged_product<half, float>(
    device const half*, device const half*, device float*, constant Layout&, uint2, ushort);
template [[host_name("staged_bfloat")]] kernel void staged_product<bfloat, bfloat>(
    device const bfloat*, device const bfloat*, device bfloat*, constant Layout&, uint2, ushort);
template [[host_name("staged_float")]] kernel void staged_product<float, float>(
    device const float*, device const float*, device float*, constant Layout&, uint2, ushort);

// Eight 8x8 results (out[slot * 64 + row * 8 + column]) around thread_elements(), each lane writing its two
// elements where Apple's layout formula puts them (slots 0, 1, 6) or stored by simdgroup_store.
template <typename P, typename T> void put(P out, uint slot, const simdgroup_matrix<T, 8, 8>& m, ushort lane) {
    const uint row = (lane / 16) * 4 + (lane / 2) % 4, column = ((lane / 8) % 2) * 4 + (lane % 2) * 2;
    for (uint k = 0; k < 2; ++k) out[slot * 64 + row * 8 + column + k] = m.thread_elements()[k];
}

template <typename T>
kernel void elements(device const T* A [[buffer(0)]], device const T* B [[buffer(1)]], device T* out [[buffer(2)]],
                     ushort lane [[thread_index_in_simdgroup]]) {
    simdgroup_matrix<T, 8, 8> a, b;
    simdgroup_load(a, A);
    simdgroup_load(b, B);
    put(out, 0, a, lane);                          // 0: as loaded
    simdgroup_matrix<T, 8, 8> p = a * b;
    put(out, 1, p, lane);                          // 1: a product
    if (lane % 3 == 0) p.thread_elements() *= T(2);  // some lanes double their elements of p
    simdgroup_store(p, out + 2 * 64, 8);           // 2: p after those writes
    simdgroup_store(p * b, out + 3 * 64, 8);       // 3: ... as the left operand
    simdgroup_store(a * p, out + 4 * 64, 8);       // 4: ... as the right operand
    simdgroup_store(a * (a * b), out + 5 * 64, 8); // 5: a product as the right operand
    const uint row = (lane / 16) * 4 + (lane / 2) % 4, column = ((lane / 8) % 2) * 4 + (lane % 2) * 2;
    simdgroup_matrix<T, 8, 8> m;
    m.thread_elements()[0] = A[row * 8 + column];
    m.thread_elements()[1] = A[row * 8 + column + 1];
    put(out, 6, m * b, lane);                      // 6: a matrix made by thread_elements() alone, times b
    simdgroup_matrix<T, 8, 8> r;
    simdgroup_multiply_accumulate(r, simdgroup_matrix<T, 8, 8>(T(2)), a, make_filled_simdgroup_matrix<T, 8>(T(1)));
    simdgroup_store(r, out + 7 * 64, 8);           // 7: 2 I * a + 1
}

template [[host_name("elements_float")]] kernel void elements<float>(device const float*, device const float*,
                                                                       device float*, ushort);
template [[host_name("elements_half")]] kernel void elements<half>(device const half*, device const half*,
                                                                     device half*, ushort);
template [[host_name("elements_bfloat")]] kernel void elements<bfloat>(device const bfloat*, device const bfloat*,
                                                                         device bfloat*, ushort);

// A matrix that products read only as their B operand (`only_b`: so its loads read that operand's layout first,
// msl/operand_loads.py), read from aligned threadgroup memory, plain or transposed, then used in every other way:
// stored, as the left operand of an operator product, and through thread_elements(). Results in out[slot * 64 + ...].
template <typename T>
kernel void b_operand_reused(device const T* A [[buffer(0)]], device const T* B [[buffer(1)]],
                             device T* out [[buffer(2)]], constant uint& transposed [[buffer(3)]],
                             ushort lane [[thread_index_in_simdgroup]]) {
    threadgroup T block[8 * 16];
    for (uint i = lane; i < 64; i += 32) {  // B(r, c) at [r][8 + c], or [c][8 + r]
        const uint r = i / 8, c = i % 8;
        block[transposed != 0 ? c * 16 + 8 + r : r * 16 + 8 + c] = B[i];
    }
    threadgroup_barrier(mem_flags::mem_threadgroup);
    simdgroup_matrix<T, 8, 8> a, only_b, p;
    simdgroup_load(a, A);
    simdgroup_load(only_b, block, 16, ulong2(8, 0), transposed != 0);
    simdgroup_multiply(p, a, only_b);
    simdgroup_store(p, out, 8);                    // 0: a * b
    simdgroup_store(only_b, out + 64, 8);          // 1: b as loaded
    simdgroup_store(only_b * a, out + 2 * 64, 8);  // 2: b * a
    put(out, 3, only_b, lane);                     // 3: b's elements, as the lanes hold them
}

template [[host_name("b_operand_reused_half")]] kernel void b_operand_reused<half>(
    device const half*, device const half*, device half*, constant uint&, ushort);
template [[host_name("b_operand_reused_bfloat")]] kernel void b_operand_reused<bfloat>(
    device const bfloat*, device const bfloat*, device bfloat*, constant uint&, ushort);

// The two 8x8 halves of a 16 x 8 A, loaded by two statements in a row and read by a pair of products that share
// their B (so the loads are joined, msl/operand_loads.py): from threadgroup rows `ld` elements apart (16: aligned
// for one ldmatrix.x2; 17: not), plain or transposed. out = A * B, 16 x 8 floats.
template <typename T>
kernel void a_pair(device const T* A [[buffer(0)]], device const T* B [[buffer(1)]], device float* out [[buffer(2)]],
                   constant uint2& how [[buffer(3)]], ushort lane [[thread_index_in_simdgroup]]) {
    threadgroup T block[16 * 17];
    const uint ld = how.x;
    const bool transposed = how.y != 0;
    for (uint i = lane; i < 128; i += 32) {  // A(r, c) at [r][c], or [c][r]
        const uint r = i / 8, c = i % 8;
        block[transposed ? c * ld + r : r * ld + c] = A[i];
    }
    threadgroup_barrier(mem_flags::mem_threadgroup);
    simdgroup_matrix<T, 8, 8> top, bottom, b;
    simdgroup_matrix<float, 8, 8> c0 = make_filled_simdgroup_matrix<float, 8>(0.0f), c1 = c0;
    simdgroup_load(b, B);
    simdgroup_load(top, block, ld, ulong2(0, 0), transposed);
    simdgroup_load(bottom, block, ld, transposed ? ulong2(8, 0) : ulong2(0, 8), transposed);
    simdgroup_multiply_accumulate(c0, top, b, c0);
    simdgroup_multiply_accumulate(c1, bottom, b, c1);
    simdgroup_store(c0, out, 8);
    simdgroup_store(c1, out + 64, 8);
}

template [[host_name("a_pair_half")]] kernel void a_pair<half>(device const half*, device const half*, device float*,
                                                                 constant uint2&, ushort);
template [[host_name("a_pair_bfloat")]] kernel void a_pair<bfloat>(device const bfloat*, device const bfloat*,
                                                                     device float*, constant uint2&, ushort);

// A 16 x 16 A times a 16 x 8 B as two pairs of products of depth 8 into the same two accumulators (one product of
// depth 16 on tensor cores), A's four 8x8 blocks loaded by four statements in a row and B's two by two (so the loads
// are joined, msl/operand_loads.py): from threadgroup rows `ld` elements apart (24: aligned for one ldmatrix.x4 and
// .x2; 25: not), plain or transposed. out = A * B, 16 x 8 floats.
template <typename T>
kernel void deep_operands(device const T* A [[buffer(0)]], device const T* B [[buffer(1)]],
                          device float* out [[buffer(2)]], constant uint2& how [[buffer(3)]],
                          ushort lane [[thread_index_in_simdgroup]]) {
    threadgroup T a_block[16 * 25];
    threadgroup T b_block[16 * 25];
    const uint ld = how.x;
    const bool transposed = how.y != 0;
    for (uint i = lane; i < 256; i += 32) {  // A(r, c) at [r][c], or [c][r]
        const uint r = i / 16, c = i % 16;
        a_block[transposed ? c * ld + r : r * ld + c] = A[i];
    }
    for (uint i = lane; i < 128; i += 32) {  // B(k, n) at [k][n], or [n][k]
        const uint k = i / 8, n = i % 8;
        b_block[transposed ? n * ld + k : k * ld + n] = B[i];
    }
    threadgroup_barrier(mem_flags::mem_threadgroup);
    // a: rows 0-7 and 8-15 at depth 0, then at depth 8; b_deep: B at depths 0 and 8 (a name that only B operands
    // take in this file, so that its loads are named as B operands: msl/operand_loads.py tests names)
    simdgroup_matrix<T, 8, 8> a[4], b_deep[2];
    simdgroup_matrix<float, 8, 8> c[2];
    c[0] = c[1] = make_filled_simdgroup_matrix<float, 8>(0.0f);
    simdgroup_load(a[0], a_block, ld, ulong2(0, 0), transposed);
    simdgroup_load(a[1], a_block, ld, transposed ? ulong2(8, 0) : ulong2(0, 8), transposed);
    simdgroup_load(a[2], a_block, ld, transposed ? ulong2(0, 8) : ulong2(8, 0), transposed);
    simdgroup_load(a[3], a_block, ld, ulong2(8, 8), transposed);
    simdgroup_load(b_deep[0], b_block, ld, ulong2(0, 0), transposed);
    simdgroup_load(b_deep[1], b_block, ld, transposed ? ulong2(8, 0) : ulong2(0, 8), transposed);
    simdgroup_multiply_accumulate(c[0], a[0], b_deep[0], c[0]);
    simdgroup_multiply_accumulate(c[1], a[1], b_deep[0], c[1]);
    simdgroup_multiply_accumulate(c[0], a[2], b_deep[1], c[0]);
    simdgroup_multiply_accumulate(c[1], a[3], b_deep[1], c[1]);
    simdgroup_store(c[0], out, 8);
    simdgroup_store(c[1], out + 64, 8);
}

template [[host_name("deep_operands_half")]] kernel void deep_operands<half>(
    device const half*, device const half*, device float*, constant uint2&, ushort);
template [[host_name("deep_operands_bfloat")]] kernel void deep_operands<bfloat>(
    device const bfloat*, device const bfloat*, device float*, constant uint2&, ushort);

// Block X of an 8 x 8 matrix (rows x_stride elements apart in x) into threadgroup memory where
// simdgroup_load(m, at, stride, origin, transposed) reads it.
template <typename T>
void put_block(threadgroup T* at, uint stride, uint2 origin, bool transposed, device const T* x, uint x_stride,
               ushort lane) {
    for (uint e = lane; e < 64; e += 32) {
        const uint i = e / 8, j = e % 8;
        at[transposed ? (origin.y + j) * stride + origin.x + i : (origin.y + i) * stride + origin.x + j] =
            x[i * x_stride + j];
    }
}

// deep_operands' product with each operand's blocks scattered: A's first depth in one threadgroup array (rows
// `ld` elements apart, at column 8, the second row block through a pointer 8 rows on), its second depth in another
// (rows ld + 8 apart, through a pointer 2 rows on, and at row 10); B's two depths in two arrays (ld, and ld + 16
// through a pointer 16 elements on). The joined loads' matrices then lie apart by distances that mix arrays, strides
// and origins. ld 24: every row 16-byte aligned; 25: none.
template <typename T>
kernel void scattered_operands(device const T* A [[buffer(0)]], device const T* B [[buffer(1)]],
                               device float* out [[buffer(2)]], constant uint2& how [[buffer(3)]],
                               ushort lane [[thread_index_in_simdgroup]]) {
    threadgroup T a_low[16 * 26], a_high[18 * 34], b_low[8 * 26], b_high[8 * 42 + 16];
    const uint ld = how.x;
    const bool transposed = how.y != 0;
    // T named: a debug build's checked pointers would not deduce it
    put_block<T>(a_low, ld, uint2(8, 0), transposed, A, 16, lane);                          // rows 0-7, depth 0-7
    put_block<T>(a_low + 8 * ld, ld, uint2(8, 0), transposed, A + 8 * 16, 16, lane);        // rows 8-15
    put_block<T>(a_high + 2 * (ld + 8), ld + 8, uint2(0, 0), transposed, A + 8, 16, lane);  // rows 0-7, depth 8-15
    put_block<T>(a_high, ld + 8, uint2(0, 10), transposed, A + 8 * 16 + 8, 16, lane);       // rows 8-15
    put_block<T>(b_low, ld, uint2(0, 0), transposed, B, 8, lane);                           // depth 0-7
    put_block<T>(b_high + 16, ld + 16, uint2(0, 0), transposed, B + 64, 8, lane);           // depth 8-15
    threadgroup_barrier(mem_flags::mem_threadgroup);
    simdgroup_matrix<T, 8, 8> a[4], b_scattered[2];  // b_scattered: a name only B operands take in this file
    simdgroup_matrix<float, 8, 8> c[2];
    c[0] = c[1] = make_filled_simdgroup_matrix<float, 8>(0.0f);
    simdgroup_load(a[0], a_low, ld, ulong2(8, 0), transposed);
    simdgroup_load(a[1], a_low + 8 * ld, ld, ulong2(8, 0), transposed);
    simdgroup_load(a[2], a_high + 2 * (ld + 8), ld + 8, ulong2(0, 0), transposed);
    simdgroup_load(a[3], a_high, ld + 8, ulong2(0, 10), transposed);
    simdgroup_load(b_scattered[0], b_low, ld, ulong2(0, 0), transposed);
    simdgroup_load(b_scattered[1], b_high + 16, ld + 16, ulong2(0, 0), transposed);
    simdgroup_multiply_accumulate(c[0], a[0], b_scattered[0], c[0]);
    simdgroup_multiply_accumulate(c[1], a[1], b_scattered[0], c[1]);
    simdgroup_multiply_accumulate(c[0], a[2], b_scattered[1], c[0]);
    simdgroup_multiply_accumulate(c[1], a[3], b_scattered[1], c[1]);
    simdgroup_store(c[0], out, 8);
    simdgroup_store(c[1], out + 64, 8);
}

template [[host_name("scattered_operands_half")]] kernel void scattered_operands<half>(
    device const half*, device const half*, device float*, constant uint2&, ushort);
template [[host_name("scattered_operands_bfloat")]] kernel void scattered_operands<bfloat>(
    device const bfloat*, device const bfloat*, device float*, constant uint2&, ushort);

// Eight half or bfloat products into one float accumulator, the accumulator read between them in every way a kernel
// may: stored, read by the lanes, partly rewritten by some lanes, used as an operand of a float product, and a
// product of the other 16-bit type into it. Results in out[slot * 64 + row * 8 + column].
template <typename T, typename Other>
kernel void chained(device const T* A [[buffer(0)]], device const T* B [[buffer(1)]],
                    device const Other* X [[buffer(2)]], device const Other* Y [[buffer(3)]],
                    device float* out [[buffer(4)]], ushort lane [[thread_index_in_simdgroup]]) {
    simdgroup_matrix<T, 8, 8> a[8], b[8];
    for (uint i = 0; i < 8; ++i) {
        simdgroup_load(a[i], A + 64 * i);
        simdgroup_load(b[i], B + 64 * i);
    }
    simdgroup_float8x8 acc = make_filled_simdgroup_matrix<float, 8>(0.5f);
    simdgroup_multiply_accumulate(acc, a[0], b[0], acc);
    simdgroup_multiply_accumulate(acc, a[1], b[1], acc);
    simdgroup_store(acc, out, 8);                                 // 0: two products
    simdgroup_multiply_accumulate(acc, a[2], b[2], acc);
    put(out, 1, acc, lane);                                       // 1: three, read by the lanes
    simdgroup_multiply_accumulate(acc, a[3], b[3], acc);
    simdgroup_store(acc, out + 2 * 64, 8);                        // 2: four
    simdgroup_multiply_accumulate(acc, a[4], b[4], acc);
    if (lane % 3 == 0) acc.thread_elements() *= 2.0f;             // some lanes double their elements of five
    simdgroup_multiply_accumulate(acc, a[5], b[5], acc);
    simdgroup_store(acc, out + 3 * 64, 8);                        // 3: ... plus a sixth
    simdgroup_multiply_accumulate(acc, a[6], b[6], acc);
    simdgroup_float8x8 twice;
    simdgroup_multiply(twice, simdgroup_float8x8(2.0f), acc);
    simdgroup_store(twice, out + 4 * 64, 8);                      // 4: 2 I times seven, a float product
    simdgroup_multiply_accumulate(acc, a[7], b[7], acc);
    simdgroup_store(acc, out + 5 * 64, 8);                        // 5: eight
    simdgroup_matrix<Other, 8, 8> x, y;
    simdgroup_load(x, X);
    simdgroup_load(y, Y);
    simdgroup_multiply_accumulate(acc, a[0], b[0], acc);
    simdgroup_multiply_accumulate(acc, x, y, acc);
    simdgroup_multiply_accumulate(acc, a[1], b[1], acc);
    simdgroup_store(acc, out + 6 * 64, 8);                        // 6: eight, then a[0] b[0], x y, a[1] b[1]
    simdgroup_float8x8 fresh;
    fresh.thread_elements() = float2(float(lane), -1.0f);        // a matrix set by its lanes alone
    simdgroup_multiply_accumulate(fresh, a[2], b[2], fresh);
    simdgroup_multiply_accumulate(fresh, a[3], b[3], fresh);
    put(out, 7, fresh, lane);                                     // 7: that, plus two products
}

template [[host_name("chained_half")]] kernel void chained<half, bfloat>(device const half*, device const half*,
    device const bfloat*, device const bfloat*, device float*, ushort);
template [[host_name("chained_bfloat")]] kernel void chained<bfloat, half>(device const bfloat*, device const bfloat*,
    device const half*, device const half*, device float*, ushort);

// Pairs of half or bfloat products into float matrices p and q that read one B matrix, the matrices read between
// them, and pairs the header must run one after the other: the first's result an operand of the second, or two B
// matrices. Results in out[slot * 64 + row * 8 + column].
template <typename T>
kernel void row_pairs(device const T* A [[buffer(0)]], device const T* B [[buffer(1)]],
                      device float* out [[buffer(2)]], ushort lane [[thread_index_in_simdgroup]]) {
    simdgroup_matrix<T, 8, 8> a[8], b[4];
    for (uint i = 0; i < 8; ++i) simdgroup_load(a[i], A + 64 * i);
    for (uint j = 0; j < 4; ++j) simdgroup_load(b[j], B + 64 * j);
    simdgroup_float8x8 p = make_filled_simdgroup_matrix<float, 8>(0.5f);
    simdgroup_float8x8 q = make_filled_simdgroup_matrix<float, 8>(-1.0f);
    simdgroup_float8x8 r = make_filled_simdgroup_matrix<float, 8>(0.25f);
    simdgroup_multiply_accumulate(p, a[0], b[0], p);
    simdgroup_multiply_accumulate(q, a[1], b[0], q);
    simdgroup_multiply_accumulate(p, a[2], b[1], p);
    simdgroup_multiply_accumulate(q, a[3], b[1], q);
    simdgroup_store(p, out, 8);                                   // 0: p + a0 b0 + a2 b1
    simdgroup_store(q, out + 64, 8);                              // 1: q + a1 b0 + a3 b1
    simdgroup_multiply_accumulate(p, a[4], b[2], p);
    simdgroup_multiply_accumulate(q, a[5], b[2], q);
    put(out, 2, p, lane);                                         // 2: read by the lanes
    simdgroup_multiply_accumulate(p, a[6], b[3], p);
    simdgroup_multiply_accumulate(q, a[7], b[3], q);
    simdgroup_store(q, out + 3 * 64, 8);                          // 3
    if (lane % 3 == 0) p.thread_elements() *= 2.0f;               // some lanes double their elements
    simdgroup_multiply_accumulate(p, a[0], b[1], p);
    simdgroup_multiply_accumulate(q, a[1], b[1], q);
    simdgroup_store(p, out + 4 * 64, 8);                          // 4
    simdgroup_multiply_accumulate(r, a[2], b[2], q);
    simdgroup_multiply_accumulate(q, a[3], b[2], r);
    simdgroup_store(r, out + 5 * 64, 8);                          // 5: r = q + a2 b2, the operand of ...
    simdgroup_store(q, out + 6 * 64, 8);                          // 6: q = r + a3 b2
    simdgroup_multiply_accumulate(r, a[4], b[3], p);
    simdgroup_multiply_accumulate(p, a[5], b[3], p);
    simdgroup_store(r, out + 7 * 64, 8);                          // 7: r = p + a4 b3, with p as it was ...
    simdgroup_store(p, out + 8 * 64, 8);                          // 8: p = p + a5 b3
    simdgroup_multiply_accumulate(r, a[6], b[0], r);
    simdgroup_multiply_accumulate(p, a[7], b[1], p);
    simdgroup_store(r, out + 9 * 64, 8);                          // 9: two B matrices
    simdgroup_store(p, out + 10 * 64, 8);                         // 10
}

template [[host_name("row_pairs_half")]] kernel void row_pairs<half>(device const half*, device const half*,
    device float*, ushort);
template [[host_name("row_pairs_bfloat")]] kernel void row_pairs<bfloat>(device const bfloat*, device const bfloat*,
    device float*, ushort);
