"""The parser on kernel signatures in the styles of real projects, and on error positions."""
import pytest

from metalgpu.errors import ShaderCompileError, SourcePos
from metalgpu.msl.parser import FunctionConstant, KernelDecl, Param, Program, parse
from metalgpu.msl.preprocess import preprocess


def program(source: str) -> Program:
    result = preprocess(source, "k.metal")
    return parse(result.tokens, result.sources)


def kernel(source: str, host_name: str) -> KernelDecl:
    return next(k for k in program(source).kernels if k.host_name == host_name)


def bindings(k: KernelDecl) -> list[tuple]:
    return [(p.name, p.binding, p.index, p.builtin) for p in k.params]


def error_of(source: str) -> ShaderCompileError:
    with pytest.raises(ShaderCompileError) as info:
        program(source)
    return info.value


MATMUL = """#include <metal_stdlib>
using namespace metal;
struct Dims { uint M; uint N; };
kernel void matmul(device const float* A [[buffer(0)]],
                   device float* C [[buffer(2)]],
                   constant Dims& dims [[buffer(3)]],
                   uint2 gid [[thread_position_in_grid]])
{
    C[gid.y * dims.N + gid.x] = A[gid.x];
}
"""


def test_plain_kernel_params():
    prog = program(MATMUL)
    assert len(prog.kernels) == 1 and prog.function_constants == ()
    k = prog.kernels[0]
    assert (k.name, k.host_name, k.template_args, k.pos) == ("matmul", "matmul", None, SourcePos("k.metal", 4, 13))
    assert k.params[0] == Param("A", "device const float *", "device", True, False, "buffer", 0, None,
                                SourcePos("k.metal", 4, 40))
    assert k.params[2] == Param("dims", "constant Dims &", "constant", False, True, "buffer", 3, None,
                                SourcePos("k.metal", 6, 35))
    assert k.params[3] == Param("gid", "uint2", None, False, False, "builtin", None, "thread_position_in_grid",
                                SourcePos("k.metal", 7, 26))
    tokens = preprocess(MATMUL, "k.metal").tokens
    start, end = k.body
    assert tokens[start].text == "{" and tokens[end - 1].text == "}" and end == len(tokens)


@pytest.mark.parametrize("head, host_name", [
    ("kernel void f", "f"),
    ("[[kernel]] void f", "f"),
    ("[[kernel, max_total_threads_per_threadgroup(1024)]] void f", "f"),
    ("[[max_total_threads_per_threadgroup(256)]] kernel void f", "f"),
    ('[[host_name("custom")]] kernel void f', "custom"),
    ("static inline kernel void f", "f"),
])
def test_kernel_forms(head, host_name):
    prog = program(f"{head}(device float* a [[buffer(0)]]) {{ a[0] = 1; }}")
    assert [(k.name, k.host_name) for k in prog.kernels] == [("f", host_name)]


def test_helpers_structs_lambdas_and_constants_are_not_kernels():
    source = """
    constexpr constant int kTile = 16;
    constant float lut[4] = {1, 2, 3, 4};
    struct Op { float operator()(float x) const { return x; } };
    inline float helper(device float* p [[buffer(0)]], float x [[maybe_unused]]) { return x; }
    vertex float4 vs(uint v [[vertex_id]]) { return float4(0); }
    kernel void fwd(device float* a [[buffer(0)]]);
    kernel void k(device float* a [[buffer(0)]], uint i [[thread_index_in_threadgroup]]) {
        auto f = [&](float v) { struct Local { int x; }; return v * kTile; };
        a[i] = f(a[i]) + Op{}(lut[i % 4]);
    }
    """
    assert [k.host_name for k in program(source).kernels] == ["k"]


MLX_STYLE = """
template <typename T, typename Op>
[[kernel]] void unary(device const T* in [[buffer(0)]], device T* out [[buffer(1)]],
                      constant uint& size [[buffer(2)]], uint index [[thread_position_in_grid]]) {
    if (index < size) out[index] = Op()(in[index]);
}
struct Abs { template <typename U> U operator()(U x) { return metal::abs(x); } };
#define instantiate_unary(name, type, op) \\
  template [[host_name(name)]] [[kernel]] decltype(unary<type, op>) unary<type, op>;
instantiate_unary("abs_float32", float, Abs)
instantiate_unary("abs_float16", half, Abs)
template [[host_name("abs_int32")]] [[kernel]] void unary<int, Abs>(
    device const int* in [[buffer(0)]], device int* out [[buffer(1)]],
    constant uint& size [[buffer(2)]], uint index [[thread_position_in_grid]]);
"""


def test_templated_kernels_and_both_instantiation_forms():
    prog = program(MLX_STYLE)
    assert [(k.name, k.host_name, k.template_args) for k in prog.kernels] == [
        ("unary", "abs_float32", "float, Abs"), ("unary", "abs_float16", "half, Abs"),
        ("unary", "abs_int32", "int, Abs"),
    ]
    decltype_form, _, explicit_form = prog.kernels
    assert decltype_form.pos == SourcePos("k.metal", 10, 1)  # the macro invocation
    assert decltype_form.params[0].type_text == "device const T *"  # read from the template
    assert decltype_form.params[0].pos == SourcePos("k.metal", 3, 39)
    assert explicit_form.params[0].type_text == "device const int *"  # read from the instantiation
    assert bindings(decltype_form) == bindings(explicit_form) == [
        ("in", "buffer", 0, None), ("out", "buffer", 1, None), ("size", "buffer", 2, None),
        ("index", "builtin", None, "thread_position_in_grid")]
    assert decltype_form.body == explicit_form.body and decltype_form.body is not None


def test_ggml_style_typedef_instantiation():
    source = """
    template <typename T, short N>
    kernel void kernel_add(device const char* src0, device const char* src1, device char* dst,
                           constant int64_t& ne [[buffer(7)]], uint3 tgpig [[threadgroup_position_in_grid]],
                           ushort tpitg [[thread_index_in_threadgroup]]) {}
    typedef decltype(kernel_add<float, 4>) kernel_add_t;
    template [[host_name("kernel_add_f32")]] kernel kernel_add_t kernel_add<float, 4>;
    """
    k = kernel(source, "kernel_add_f32")
    assert (k.name, k.template_args) == ("kernel_add", "float, 4")
    assert bindings(k) == [("src0", "buffer", 0, None), ("src1", "buffer", 1, None), ("dst", "buffer", 2, None),
                           ("ne", "buffer", 7, None), ("tgpig", "builtin", None, "threadgroup_position_in_grid"),
                           ("tpitg", "builtin", None, "thread_index_in_threadgroup")]


def test_implicit_indices_take_the_lowest_free_index():
    source = """
    kernel void k(device float* a, constant uint& n, device float* b [[buffer(0)]], device half* c [[buffer(2)]],
                  device int* d, threadgroup float* shm, threadgroup float* shm2 [[threadgroup(0)]],
                  uint3 lid [[thread_position_in_threadgroup]]) {}
    """
    assert bindings(kernel(source, "k")) == [
        ("a", "buffer", 1, None), ("n", "buffer", 3, None), ("b", "buffer", 0, None), ("c", "buffer", 2, None),
        ("d", "buffer", 4, None), ("shm", "threadgroup", 1, None), ("shm2", "threadgroup", 0, None),
        ("lid", "builtin", None, "thread_position_in_threadgroup")]


def test_candle_style_macro_generated_kernels_and_namespaces():
    source = """
    namespace ops { namespace detail { inline float relu(float x) { return x > 0 ? x : 0; } }
    #define UNARY(FN, NAME, T) \\
    kernel void NAME(constant size_t& dim, device const T* in, device T* out, uint tid [[thread_position_in_grid]]) \\
    { if (tid < dim) out[tid] = FN(in[tid]); }
    UNARY(detail::relu, relu_f32, float)
    UNARY(detail::relu, relu_f16, half)
    }
    inline namespace v1 { kernel void top(device float* x [[buffer(0)]]) {} }
    """
    prog = program(source)
    assert [(k.name, k.host_name, k.pos.line) for k in prog.kernels] == [
        ("ops::relu_f32", "relu_f32", 6), ("ops::relu_f16", "relu_f16", 7), ("v1::top", "top", 9)]
    assert bindings(prog.kernels[0]) == [("dim", "buffer", 0, None), ("in", "buffer", 1, None),
                                         ("out", "buffer", 2, None),
                                         ("tid", "builtin", None, "thread_position_in_grid")]


def test_pytorch_mps_style_types():
    source = """
    template <typename T> struct Pair { T a, b; };
    kernel void k(device vec<float, 4>* v [[buffer(0)]], constant metal::packed_float3& p [[buffer(1)]],
                  device const volatile Pair<half>* pairs [[buffer(2)]], const device atomic_uint* c [[buffer(3)]],
                  threadgroup float (&tile)[16] [[threadgroup(0)]], ushort2 tg [[threads_per_threadgroup]],
                  uint sg [[simdgroup_index_in_threadgroup]], uint w [[thread_execution_width]]) {}
    """
    k = kernel(source, "k")
    assert [(p.name, p.type_text, p.address_space, p.is_pointer, p.is_reference) for p in k.params[:5]] == [
        ("v", "device vec<float, 4> *", "device", True, False),
        ("p", "constant metal::packed_float3 &", "constant", False, True),
        ("pairs", "device const volatile Pair<half> *", "device", True, False),
        ("c", "const device atomic_uint *", "device", True, False),
        ("tile", "threadgroup float (&) [16]", "threadgroup", False, True),
    ]
    assert [p.builtin for p in k.params[5:]] == ["threads_per_threadgroup", "simdgroup_index_in_threadgroup",
                                                 "thread_execution_width"]


def test_extra_harmless_attribute_items_are_ignored():
    k = kernel("kernel void k(device float* a [[buffer(1), raster_order_group(0)]]) {}", "k")
    assert bindings(k) == [("a", "buffer", 1, None)]


def test_function_constants():
    source = """
    constant bool has_bias [[function_constant(0)]];
    constant uint tile_size [[function_constant(7)]];
    constant bool use_bias = has_bias && is_function_constant_defined(has_bias);
    kernel void k(device float* a [[buffer(0)]]) { if (has_bias) a[0] = 1; }
    """
    prog = program(source)
    tokens = preprocess(source, "k.metal").tokens
    first, second = prog.function_constants
    assert first == FunctionConstant("has_bias", "bool", 0, SourcePos("k.metal", 2, 19), (0, 12))
    assert (second.name, second.type_text, second.index) == ("tile_size", "uint", 7)
    assert [t.text for t in tokens[second.span[0]:second.span[1]]][:3] == ["constant", "uint", "tile_size"]
    assert tokens[second.span[1] - 1].text == ";"
    assert [k.host_name for k in prog.kernels] == ["k"]


# ----- errors ----------------------------------------------------------------------------------

@pytest.mark.parametrize("source, message, line, column", [
    ("kernel void f(device float* a [[buffer(0)]]) {}\n"
     "kernel void f(device int* a [[buffer(0)]]) {}",
     "kernel 'f' is defined twice; Metal kernels cannot be overloaded", 2, 13),
    ("template <typename T> kernel void f(device T* a [[buffer(0)]]) {}\n"
     "template [[host_name(\"f\")]] kernel decltype(f<int>) f<int>;\n"
     "template [[host_name(\"f\")]] kernel decltype(f<float>) f<float>;",
     "kernel 'f' is defined twice", 3, 55),
    ("kernel void f(device float* a [[texture(0)]]) {}", "unsupported attribute [[texture]] on parameter 'a'", 1, 33),
    ("kernel void f(device float* a [[buffer(0)]],\n   uint n) {}",
     "parameter 'n' of kernel 'f' needs an attribute such as [[buffer(n)]]", 2, 9),
    ("kernel void f(float* a) {}", "parameter 'a' of kernel 'f' needs an attribute", 1, 22),
    ("kernel void f(device float* a [[buffer(1)]], device float* b [[buffer(1)]]) {}",
     "buffer index 1 is used twice in kernel 'f'", 1, 60),
    ("kernel void f(device float* a [[buffer(31)]]) {}", "buffer index 31 is outside 0..30", 1, 40),
    ("kernel void f(device float* a [[buffer(0), thread_position_in_grid]]) {}", "has two bindings", 1, 44),
    ("kernel int f(device float* a [[buffer(0)]]) {}", "kernel 'f' must return void", 1, 12),
    ("template <typename T> kernel void f(device T* a [[buffer(0)]]) {}\n"
     "template kernel decltype(f<int>) f<int>;", '[[host_name("...")]]', 2, 34),
    ("template [[host_name(\"g\")]] kernel decltype(g<int>) g<int>;", "no template definition of 'g'", 1, 53),
    ("constant bool b [[function_constant(0)]] = true;", "no initializer", 1, 15),
    ("kernel void f(device float* a [[buffer(0)]]) {\n  if (x) {\n}", "unmatched '{'", 1, 46),
    ("uint wg [[threadgroup_position_in_grid]];\nkernel void f(device float* a [[buffer(0)]]) { a[wg] = 1; }",
     "[[threadgroup_position_in_grid]] on a variable at program scope is not supported", 1, 11),
])
def test_errors_are_located(source, message, line, column):
    error = error_of(source)
    assert message in str(error)
    assert error.pos == SourcePos("k.metal", line, column)


def test_error_shows_the_source_line():
    error = error_of("kernel void f(device float* a [[bogus]]) {}")
    assert "kernel void f(device float* a [[bogus]]) {}" in str(error) and "[[bogus]]" in str(error)


def test_many_kernels_parse_in_one_pass():
    unit = "kernel void k{0}(device float* a [[buffer(0)]], uint i [[thread_position_in_grid]]) {{ a[i] = {0}; }}\n"
    prog = program("".join(unit.format(i) for i in range(500)))
    assert len(prog.kernels) == 500 and prog.kernels[-1].host_name == "k499"


def test_instantiation_may_leave_out_names_and_attributes():
    source = """
    template <typename T>
    kernel void scale(device T* data [[buffer(0)]], constant T& factor [[buffer(1)]],
                      uint id [[thread_position_in_grid]]) { data[id] *= factor; }
    template [[host_name("scale_float")]] kernel void scale<float>(device float*, constant float&, uint);
    """
    k = kernel(source, "scale_float")
    assert [(p.name, p.type_text, p.binding, p.index, p.builtin) for p in k.params] == [
        ("data", "device float *", "buffer", 0, None), ("factor", "constant float &", "buffer", 1, None),
        ("id", "uint", "builtin", None, "thread_position_in_grid")]
    assert k.params[0].pos == SourcePos("k.metal", 3, 33)  # where the template names it


def test_the_definitions_attributes_win_over_an_instantiations():
    # Apple's compiler instantiates from the definition: a row kernel that reads its row from
    # [[threadgroup_position_in_grid]] keeps that builtin though its instantiation writes another (PyTorch's
    # RMSNorm does this, and computes rows right on Metal)
    source = """
    template <typename T>
    [[kernel]] void rows(device T* out, uint gid [[threadgroup_position_in_grid]]) { out[gid] = T(gid); }
    template [[host_name("rows_float")]] [[kernel]] void rows<float>(device float* out,
                                                                     uint gid [[thread_position_in_grid]]);
    template [[host_name("rows_half")]] [[kernel]] void rows<half>(device half* out [[buffer(3)]], uint gid);
    """
    assert bindings(kernel(source, "rows_float")) == [("out", "buffer", 0, None),
                                                      ("gid", "builtin", None, "threadgroup_position_in_grid")]
    # where the definition has none, the instantiation's attribute is taken
    assert bindings(kernel(source, "rows_half")) == [("out", "buffer", 3, None),
                                                     ("gid", "builtin", None, "threadgroup_position_in_grid")]


def test_unnamed_parameter_of_a_plain_kernel_is_an_error():
    error = error_of("kernel void f(device float* [[buffer(0)]]) {}")
    assert "a parameter of kernel 'f' has no name" in str(error) and error.pos == SourcePos("k.metal", 1, 15)


# ----- names and indices written as expressions ------------------------------------------------

def test_host_names_built_by_macros_from_adjacent_string_literals():
    source = """
    template <typename T> [[kernel]] void scale(device T* a [[buffer(0)]], uint i [[thread_position_in_grid]]) {}
    #define instantiate_scale(tname, type) \\
      template [[host_name("scale_" #tname)]] [[kernel]] void scale<type>(device type*, uint);
    instantiate_scale(float32, float)
    instantiate_scale(float16, half)
    """
    prog = program(source)
    assert [(k.host_name, k.template_args) for k in prog.kernels] == [("scale_float32", "float"),
                                                                     ("scale_float16", "half")]
    assert prog.kernels[0].pos == SourcePos("k.metal", 5, 5)  # the macro's name


def test_attribute_indices_are_integer_constant_expressions():
    source = """
    #define FC_BASE 300
    #define N 1
    constant bool flag [[function_constant(FC_BASE + 2)]];
    constant short op [[function_constant((FC_BASE + 1) * 2 - 'a' + 97)]];
    kernel void k(device float* a [[buffer(N + 2)]], device float* b [[buffer(N << 2 | 1)]],
                  threadgroup float* t [[threadgroup(2 * N)]], device float* c [[buffer(true ? 0 : 1 / 0)]]) {}
    """
    prog = program(source)
    assert [(c.name, c.index) for c in prog.function_constants] == [("flag", 302), ("op", 602)]
    assert bindings(prog.kernels[0]) == [("a", "buffer", 3, None), ("b", "buffer", 5, None),
                                         ("t", "threadgroup", 2, None), ("c", "buffer", 0, None)]


def test_attribute_indices_may_name_namespace_scope_constants_and_enumerators():
    source = """
    constant constexpr int kBase = 2;
    static constexpr constant uint kNext = kBase + 1;
    typedef enum Slot { SlotIn, SlotOut = kNext + 1, SlotAux } Slot;
    enum class Group : int { Tile = 1 };
    namespace lib { constexpr int kFc = 7; namespace detail { enum { Hidden = kFc * 2 }; } }
    constant int kNotConstant[2] = {1, 2};
    constant bool has_x [[function_constant(lib::kFc)]];
    namespace lib {
      constant bool has_y [[function_constant(detail::Hidden)]];
      kernel void k(device float* a [[buffer(SlotIn)]], device float* b [[buffer(SlotAux)]],
                    device float* c [[buffer(Slot::SlotOut)]], device float* d [[buffer(kFc + ::kBase)]],
                    threadgroup float* t [[threadgroup(Group::Tile)]]) {}
    }
    """
    prog = program(source)
    assert [(c.name, c.index) for c in prog.function_constants] == [("has_x", 7), ("has_y", 14)]
    assert bindings(prog.kernels[0]) == [("a", "buffer", 0, None), ("b", "buffer", 5, None),
                                         ("c", "buffer", 4, None), ("d", "buffer", 9, None),
                                         ("t", "threadgroup", 1, None)]


@pytest.mark.parametrize("index, message, line, column", [
    ("kMissing + 1", "'kMissing' has no value metalgpu knows here", 3, 40),
    ("Tile", "'Tile' has no value", 3, 40),  # a scoped enumerator is named through its enum
    ("2 - 3", "buffer index -1 is outside 0..30", 3, 40),
    ("4 / (2 - 2)", "division by zero in the index of [[buffer]]", 3, 42),
    ("1 +", "the index of [[buffer]] ends too early", 3, 40),
    ("kSelf", "'kSelf' is defined in terms of itself", 2, 23),
])
def test_index_expression_errors_are_located(index, message, line, column):
    error = error_of("enum class G { Tile };\nconstexpr int kSelf = kSelf;\n"
                     f"kernel void f(device float* a [[buffer({index})]]) {{}}")
    assert message in str(error)
    assert error.pos == SourcePos("k.metal", line, column)


# ----- function constants and array parameters -------------------------------------------------

def test_function_constants_with_extra_specifiers_in_any_order():
    source = """
    #define STEEL_CONST static constant constexpr const
    STEEL_CONST int radix [[function_constant(0)]];
    constant const bool a [[function_constant(1)]];
    const constant metal::uint b [[function_constant(2)]];
    constexpr constant half4 c [[function_constant(3)]];
    bool constant d [[function_constant(4)]];
    kernel void k(device float* x [[buffer(0)]]) { if (a && radix > 0) x[0] = b; }
    """
    prog = program(source)
    assert [(c.name, c.type_text, c.index) for c in prog.function_constants] == [
        ("radix", "int", 0), ("a", "bool", 1), ("b", "metal::uint", 2), ("c", "half4", 3), ("d", "bool", 4)]
    assert prog.function_constants[0].pos == SourcePos("k.metal", 3, 21)
    assert prog.function_constants[1].pos == SourcePos("k.metal", 4, 25)


@pytest.mark.parametrize("declaration, column", [
    ("device int x [[function_constant(0)]];", 12),      # not in the constant address space
    ("constant int* x [[function_constant(0)]];", 15),   # not a value
    ("constant int x[2] [[function_constant(0)]];", 14),
    ("static constexpr x [[function_constant(0)]];", 18),
])
def test_malformed_function_constants_are_located(declaration, column):
    error = error_of(declaration)
    assert "a function constant is declared as: constant T name [[function_constant(n)]]" in str(error)
    assert error.pos == SourcePos("k.metal", 1, column)


def test_a_parameter_enabled_by_a_function_constant_does_not_make_the_kernel_one():
    source = """
    constant bool has_bias [[function_constant(0)]];
    kernel void k(device float* a [[buffer(0)]], device const float* bias [[buffer(1), function_constant(has_bias)]],
                  uint i [[thread_position_in_grid]]) {}
    """
    prog = program(source)
    assert [c.name for c in prog.function_constants] == ["has_bias"]
    assert bindings(prog.kernels[0]) == [("a", "buffer", 0, None), ("bias", "buffer", 1, None),
                                         ("i", "builtin", None, "thread_position_in_grid")]


def test_array_parameters_are_bound_like_pointers():
    source = """
    kernel void k(constant const int64_t strides[2] [[buffer(3)]], device float out[], constant int shape[] ,
                  threadgroup float (&tile)[16] [[threadgroup(0)]]) {}
    """
    k = kernel(source, "k")
    assert [(p.name, p.type_text, p.address_space, p.is_pointer, p.is_reference, p.binding, p.index)
            for p in k.params] == [
        ("strides", "constant const int64_t [2]", "constant", True, False, "buffer", 3),
        ("out", "device float []", "device", True, False, "buffer", 0),
        ("shape", "constant int []", "constant", True, False, "buffer", 1),
        ("tile", "threadgroup float (&) [16]", "threadgroup", False, True, "threadgroup", 0)]


def test_an_instantiation_may_name_its_template_from_the_global_namespace():
    source = """
    namespace ns { template <typename T> kernel void fill(device T* o [[buffer(0)]]) {} }
    template [[host_name("f")]] kernel void ::ns::fill<float>(device float*);
    namespace other { template [[host_name("g")]] kernel void ::ns::fill<int>(device int*); }
    """
    assert [(k.name, k.template_args) for k in program(source).kernels] == [("ns::fill", "float"), ("ns::fill", "int")]


def test_function_constant_at_the_end_of_the_file_needs_its_semicolon():
    source = "kernel void k(device float* o [[buffer(0)]]) {}\nconstant bool flag [[function_constant(0)]]"
    error = error_of(source)
    assert "expected ';'" in str(error) and error.diagnostics[0].pos == SourcePos("k.metal", 2, 15)
