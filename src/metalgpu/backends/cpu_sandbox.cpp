// The dispatch loop of a sandboxed worker process (Interface(isolate=True); backends/cpu_isolated.py starts the
// process, backends/cpu_sandbox_worker.py loads the modules and calls mg_sandbox_serve). Built once per compiler,
// as cpu_guard.cpp is.
//
// mg_sandbox_serve never returns. It starts the native runner's threads, sets the resource limits, installs a
// seccomp filter that allows only the system calls the loop and the runner make, then serves the parent's
// messages on a socket: describe a kernel (its binding records), map or unmap a segment of the parent's shared
// memory file, run a kernel, run a self test. No code of the modules runs before the filter is installed: they
// were loaded (their initialisers were refused when they were built), and their functions are called only here.
// A system call outside the filter is never executed: SIGSYS reports it to the parent, and the process exits.
// The records below are mirrored by cpu_isolated.py (RUN_DTYPE, REPLY_DTYPE, ...), checked by tests/test_sandbox.py
// through mg_sandbox_layout.
#include <fcntl.h>
#include <linux/audit.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <pthread.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include <cerrno>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <unordered_map>
#include <vector>

#if defined(__x86_64__)
#define MG_AUDIT_ARCH AUDIT_ARCH_X86_64
#elif defined(__aarch64__)
#define MG_AUDIT_ARCH AUDIT_ARCH_AARCH64
#else
#error "the sandbox's seccomp filter knows the system calls of x86-64 and ARM64 Linux only"
#endif

typedef int (*mg_run_fn)(void* const*, const void*, uint64_t, uint64_t, uint32_t*);
typedef const void* (*mg_info_fn)(int32_t*);
typedef uint32_t (*mg_max_threads_fn)();
typedef int (*mg_parallel_run_fn)(mg_run_fn, void* const*, const void*, uint64_t, uint64_t, uint32_t, uint64_t,
                                  uintptr_t*, uint32_t*);

namespace {

constexpr int kSlots = 31;
constexpr int kDispatchWords = 3 + 3 + 3 + kSlots;  // mg::dispatch_t (msl/abi.py CPU_DISPATCH_FIELDS)
constexpr uint64_t kUnbound = ~uint64_t(0);          // slot_offset of a slot bound to nothing
constexpr int kTimeoutSlot = 6;                      // report[6]: the runner's timeout in milliseconds
constexpr size_t kMaxMessage = 64 * 1024;

enum message_type : uint32_t {
  message_run = 1,
  message_map = 2,
  message_unmap = 3,
  message_self_test = 4,
  message_describe = 5,
};
// Statuses of the sandbox, beside the runner's (signal numbers, 1001-1005).
enum sandbox_status : int32_t {
  status_ready = 0,
  status_forbidden_call = 1101,  // report[0]: the system call's number, report[1]: its audit architecture
  status_bad_message = 1102,
  status_map_failed = 1103,      // report[0]: errno of the last mapping that failed since the previous reply
  status_setup_failed = 1104,    // report[0]: errno, report[1]: the step (see seal)
};
enum self_test : uint32_t {
  test_open = 1,
  test_socket = 2,
  test_exec = 3,
  test_exec_memory = 4,
  test_hang = 5,
  test_allowed = 6,
};

// A kernel to run: slot i is segment slot_segment[i] at slot_offset[i], or (segment 0) the constant bytes that
// follow the record at that offset, or nothing (kUnbound). The constants start at kConstantsAt.
struct run_message {
  uint32_t type;
  uint32_t kernel;  // index into the entries mg_sandbox_serve was given
  uint64_t groups;
  uint32_t threads;
  uint32_t chunks;
  uint32_t timeout_ms;
  uint32_t constant_bytes;
  uint64_t slot_segment[kSlots];
  uint64_t slot_offset[kSlots];
  uint32_t dispatch[kDispatchWords];
};
constexpr size_t kConstantsAt = (sizeof(run_message) + 63) / 64 * 64;

// `count` segments follow: `pages` pages of the shared file from `file_offset` on, followed by a guard page
// (readable zeros; inaccessible, and one before them too, when `leading_guard`).
struct map_entry {
  uint64_t segment;
  uint64_t file_offset;
  uint64_t pages;
  uint64_t leading_guard;
};
struct map_message {
  uint32_t type;
  uint32_t count;
};
struct unmap_message {
  uint32_t type;
  uint32_t count;  // segment ids (uint64) follow
};
struct self_test_message {
  uint32_t type;
  uint32_t test;
};
// Answered by a reply with report[0] = the number of binding records, report[1] = the kernel's own limit on threads
// per threadgroup, followed by the records (msl/abi.py's mg::binding_info).
struct describe_message {
  uint32_t type;
  uint32_t kernel;
};

struct reply {
  int32_t status;
  uint32_t reserved;
  uint64_t fault_segment;  // the segment whose mapping holds fault_address, or 0
  int64_t fault_offset;    // fault_address relative to that segment's data
  uint64_t fault_address;
  uint32_t report[8];
  uint64_t cpu_ns;  // CPU time the worker has used so far
};

struct segment {
  unsigned char* base;  // the whole mapping, guard pages included
  size_t bytes;
  unsigned char* data;
};

int g_socket = -1;
int g_arena = -1;
size_t g_page = 4096;
std::unordered_map<uint64_t, segment> g_segments;
int g_map_error = 0;
alignas(64) unsigned char g_message[kMaxMessage];

uint64_t cpu_time_ns() {
  timespec now = {};
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &now);
  return uint64_t(now.tv_sec) * 1000000000u + uint64_t(now.tv_nsec);
}

void send_reply(reply& answer) {
  answer.cpu_ns = cpu_time_ns();
  ssize_t sent = write(g_socket, &answer, sizeof answer);
  (void)sent;  // a parent that went away ends us at the next read
}

[[noreturn]] void leave(int code) {
  syscall(SYS_exit_group, code);
  for (;;) {
  }
}

// SIGSYS from the filter: the call was not made. Tell the parent which one, and end.
void on_forbidden_call(int, siginfo_t* info, void*) {
  reply answer = {};
  answer.status = status_forbidden_call;
  answer.report[0] = uint32_t(info->si_syscall);
  answer.report[1] = info->si_arch;
  send_reply(answer);
  leave(128 + SIGSYS);
}

// -- the filter ----------------------------------------------------------------------------------------------------

class Filter {
 public:
  // Each check below starts with the call's number in the accumulator and, for another call, jumps past its own
  // instructions to the next check with the accumulator unchanged.
  // An allowed call, with no look at its arguments.
  void allow(long number) {
    jump_unless(number, 1);
    ret(SECCOMP_RET_ALLOW);
  }
  // An allowed call whose argument `arg` (its low 32 bits) has none of `bits` set, else refused.
  void allow_without_bits(long number, int arg, uint32_t bits) {
    jump_unless(number, 4);
    load(argument_low(arg));
    code_.push_back(BPF_JUMP(BPF_JMP | BPF_JSET | BPF_K, bits, 1, 0));
    ret(SECCOMP_RET_ALLOW);
    ret(SECCOMP_RET_TRAP);
  }
  // An allowed call whose argument `arg` (its low 32 bits) is `value`, else refused.
  void allow_if_equal(long number, int arg, uint32_t value) {
    jump_unless(number, 4);
    load(argument_low(arg));
    code_.push_back(BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, value, 0, 1));
    ret(SECCOMP_RET_ALLOW);
    ret(SECCOMP_RET_TRAP);
  }
  // A call that fails with `error` instead of running.
  void fail(long number, int error) {
    jump_unless(number, 1);
    ret(SECCOMP_RET_ERRNO | (uint32_t(error) & SECCOMP_RET_DATA));
  }

  void start() {
    load(offsetof(seccomp_data, arch));  // a call through another architecture's table has other numbers
    code_.push_back(BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, MG_AUDIT_ARCH, 1, 0));
    ret(SECCOMP_RET_KILL_PROCESS);
    load(offsetof(seccomp_data, nr));
#if defined(__x86_64__)
    code_.push_back(BPF_JUMP(BPF_JMP | BPF_JGE | BPF_K, 0x40000000u, 0, 1));  // the x32 ABI's numbers
    ret(SECCOMP_RET_KILL_PROCESS);
#endif
  }

  int install() {
    ret(SECCOMP_RET_TRAP);  // everything not allowed above
    sock_fprog program = {static_cast<unsigned short>(code_.size()), code_.data()};
    // TSYNC: the runner's threads, started before, get the filter too
    const long failed_thread = syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, SECCOMP_FILTER_FLAG_TSYNC, &program);
    return failed_thread == 0 ? 0 : (failed_thread > 0 ? ESRCH : errno);
  }

 private:
  static uint32_t argument_low(int arg) {  // little-endian: the low half of the 64-bit argument comes first
    return uint32_t(offsetof(seccomp_data, args) + 8 * arg);
  }
  void load(uint32_t offset) { code_.push_back(BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offset)); }
  void ret(uint32_t action) { code_.push_back(BPF_STMT(BPF_RET | BPF_K, action)); }
  // Skips `length` instructions unless the call is `number` (the accumulator holds the call's number).
  void jump_unless(long number, uint8_t length) {
    code_.push_back(BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, uint32_t(number), 0, length));
  }
  std::vector<sock_filter> code_;
};

// What the loop, the native runner (its pool, watchdog and fault handling) and the C library under them call once
// every thread has started: reading and writing the socket and the watchdog's eventfd, locks, memory without
// execute permission, signals among its own threads, clocks, and leaving.
int install_filter() {
  Filter filter;
  filter.start();
  for (long number : {long(SYS_read), long(SYS_write), long(SYS_futex), long(SYS_munmap), long(SYS_madvise),
                      long(SYS_brk), long(SYS_mremap), long(SYS_rt_sigreturn), long(SYS_rt_sigprocmask), long(SYS_rt_sigaction),
                      long(SYS_sigaltstack), long(SYS_getpid), long(SYS_gettid), long(SYS_ppoll),
                      long(SYS_clock_gettime), long(SYS_clock_nanosleep), long(SYS_nanosleep),
                      long(SYS_sched_yield), long(SYS_restart_syscall), long(SYS_exit), long(SYS_exit_group)})
    filter.allow(number);
#if defined(SYS_poll)
  filter.allow(SYS_poll);
#endif
  // A thread started before the seal may run its first lines after it: the C library registers its restartable
  // sequences and its robust futex list there (its signals still blocked, so a refusal would end the process).
  filter.allow(SYS_set_robust_list);
  // Where it cannot read /sys, the C library counts processors from this process's CPU mask.
  filter.allow(SYS_sched_getaffinity);
#if defined(SYS_rseq)
  filter.allow(SYS_rseq);
#endif
  filter.allow_without_bits(SYS_mmap, 2, PROT_EXEC);
  filter.allow_without_bits(SYS_mprotect, 2, PROT_EXEC);
  filter.allow_if_equal(SYS_tgkill, 0, uint32_t(getpid()));  // the watchdog stops this process's threads only
  // No new threads or processes: every thread the runner needs exists already, and a pool that cannot grow
  // carries on with the threads it has.
  filter.fail(SYS_clone, EPERM);
#if defined(SYS_clone3)
  filter.fail(SYS_clone3, EPERM);
#endif
  // Files stay shut, but as a refusal rather than the end of the worker: the C library opens some on its own
  // (glibc 2.39 reads /sys/devices/system/cpu/online to count processors) and carries on when it cannot.
  filter.fail(SYS_openat, EACCES);
#if defined(SYS_open)
  filter.fail(SYS_open, EACCES);
#endif
#if defined(SYS_openat2)
  filter.fail(SYS_openat2, EACCES);
#endif
  return filter.install();
}

// -- segments of the shared file -----------------------------------------------------------------------------------

void map_segment(const map_entry& entry) {
  const size_t lead = entry.leading_guard ? g_page : 0;
  const size_t data_bytes = entry.pages * g_page;
  const size_t total = lead + data_bytes + g_page;
  // The guard pages: readable zeros after the data (kernels of the libraries read past an operand's end and
  // discard what they read, as Apple's GPUs allow), inaccessible in debug mode; writes fault either way.
  void* base = mmap(nullptr, total, entry.leading_guard ? PROT_NONE : PROT_READ,
                    MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
  if (base == MAP_FAILED) {
    g_map_error = errno;
    return;
  }
  unsigned char* data = static_cast<unsigned char*>(base) + lead;
  if (mmap(data, data_bytes, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_FIXED, g_arena, off_t(entry.file_offset)) ==
      MAP_FAILED) {
    g_map_error = errno;
    munmap(base, total);
    return;
  }
  if (data_bytes >= (4u << 20)) madvise(data, data_bytes, MADV_HUGEPAGE);  // where shared memory may have them
  g_segments[entry.segment] = segment{static_cast<unsigned char*>(base), total, data};
}

void unmap_segment(uint64_t id) {
  const auto found = g_segments.find(id);
  if (found == g_segments.end()) return;
  munmap(found->second.base, found->second.bytes);
  g_segments.erase(found);
}

// The segment whose mapping (guards included) holds `address`, for the parent to name the buffer.
void locate_fault(reply& answer) {
  const uintptr_t address = answer.fault_address;
  for (const auto& [id, mapped] : g_segments) {
    const uintptr_t base = uintptr_t(mapped.base);
    if (address >= base && address < base + mapped.bytes) {
      answer.fault_segment = id;
      answer.fault_offset = int64_t(address - uintptr_t(mapped.data));
      return;
    }
  }
}

// -- the loop ------------------------------------------------------------------------------------------------------

struct kernel_entry {
  mg_run_fn run;
  mg_info_fn info;
  mg_max_threads_fn max_threads;
};
std::vector<kernel_entry> g_entries;
size_t g_record_bytes = 0;
mg_parallel_run_fn g_parallel_run = nullptr;

int noop_kernel(void* const*, const void*, uint64_t, uint64_t, uint32_t*) { return 0; }

void run(size_t length) {
  reply answer = {};
  const run_message& message = *reinterpret_cast<const run_message*>(g_message);
  if (length < kConstantsAt + message.constant_bytes || message.kernel >= g_entries.size()) {
    answer.status = status_bad_message;
    send_reply(answer);
    return;
  }
  if (g_map_error != 0) {
    answer.status = status_map_failed;
    answer.report[0] = uint32_t(g_map_error);
    g_map_error = 0;
    send_reply(answer);
    return;
  }
  void* slots[kSlots];
  for (int i = 0; i < kSlots; ++i) {
    const uint64_t offset = message.slot_offset[i];
    slots[i] = nullptr;
    if (offset == kUnbound) continue;
    if (message.slot_segment[i] == 0) {
      if (offset >= message.constant_bytes) answer.status = status_bad_message;
      else slots[i] = g_message + kConstantsAt + offset;
      continue;
    }
    const auto found = g_segments.find(message.slot_segment[i]);
    if (found == g_segments.end()) answer.status = status_bad_message;
    else slots[i] = found->second.data + offset;
  }
  if (answer.status != 0) {
    send_reply(answer);
    return;
  }
  uintptr_t fault = 0;
  answer.report[kTimeoutSlot] = message.timeout_ms;
  answer.status = g_parallel_run(g_entries[message.kernel].run, slots, message.dispatch, 0, message.groups,
                                 message.threads, message.chunks, &fault, answer.report);
  answer.fault_address = fault;
  if (fault != 0) locate_fault(answer);
  send_reply(answer);
}

void describe(uint32_t kernel) {
  alignas(8) unsigned char out[sizeof(reply) + kMaxMessage];
  reply answer = {};
  int32_t count = 0;
  const void* records = kernel < g_entries.size() ? g_entries[kernel].info(&count) : nullptr;
  const size_t bytes = records != nullptr && count > 0 ? size_t(count) * g_record_bytes : 0;
  if (kernel >= g_entries.size() || count < 0 || bytes > kMaxMessage) {
    answer.status = status_bad_message;
    send_reply(answer);
    return;
  }
  answer.report[0] = uint32_t(count);
  answer.report[1] = g_entries[kernel].max_threads();
  answer.cpu_ns = cpu_time_ns();
  std::memcpy(out, &answer, sizeof answer);
  if (bytes != 0) std::memcpy(out + sizeof answer, records, bytes);
  ssize_t sent = write(g_socket, out, sizeof answer + bytes);
  (void)sent;
}

// Calls the filter must refuse, for tests: each ends the process (see on_forbidden_call) before it returns,
// but opening a file, which fails with EACCES.
void self_test(uint32_t test) {
  reply answer = {};
  switch (test) {
    case test_open: {  // refused with EACCES: the worker answers
      const long opened = syscall(SYS_openat, AT_FDCWD, "/etc/hostname", O_RDONLY);
      answer.report[0] = uint32_t(opened < 0);
      answer.report[1] = uint32_t(opened < 0 ? errno : 0);
      break;
    }
    case test_socket:
      syscall(SYS_socket, AF_INET, SOCK_STREAM, 0);
      break;
    case test_exec: {
      const char* argv[] = {"/bin/sh", "-c", "true", nullptr};
      syscall(SYS_execve, "/bin/sh", argv, nullptr);
      break;
    }
    case test_exec_memory:
      mmap(nullptr, g_page, PROT_READ | PROT_WRITE | PROT_EXEC, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
      break;
    case test_hang: {  // a worker that stops answering, with the runner's cancel signals blocked
      sigset_t all;
      sigfillset(&all);
      pthread_sigmask(SIG_BLOCK, &all, nullptr);
      for (volatile uint64_t spin = 0;; spin = spin + 1) {
      }
    }
    case test_allowed: {  // what the filter lets through: a clock, and memory without execute permission
      void* memory = mmap(nullptr, g_page, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
      answer.report[0] = uint32_t(cpu_time_ns() != 0);
      answer.report[1] = uint32_t(memory != MAP_FAILED && munmap(memory, g_page) == 0);
      break;
    }
  }
  send_reply(answer);
}

[[noreturn]] void serve() {
  for (;;) {
    const ssize_t length = read(g_socket, g_message, sizeof g_message);
    if (length <= 0) leave(0);  // the parent closed its end, or went away
    const uint32_t type = *reinterpret_cast<const uint32_t*>(g_message);
    if (type == message_run && size_t(length) >= sizeof(run_message)) {
      run(size_t(length));
    } else if (type == message_map && size_t(length) >= sizeof(map_message)) {
      const auto& header = *reinterpret_cast<const map_message*>(g_message);
      const auto* entries = reinterpret_cast<const map_entry*>(g_message + sizeof(map_message));
      for (uint32_t i = 0; i < header.count && sizeof(map_message) + (i + 1) * sizeof(map_entry) <= size_t(length);
           ++i)
        map_segment(entries[i]);
    } else if (type == message_unmap && size_t(length) >= sizeof(unmap_message)) {
      const auto& header = *reinterpret_cast<const unmap_message*>(g_message);
      const auto* ids = reinterpret_cast<const uint64_t*>(g_message + sizeof(unmap_message));
      for (uint32_t i = 0; i < header.count && sizeof(unmap_message) + (i + 1) * 8 <= size_t(length); ++i)
        unmap_segment(ids[i]);
    } else if (type == message_describe && size_t(length) >= sizeof(describe_message)) {
      describe(reinterpret_cast<const describe_message*>(g_message)->kernel);
    } else if (type == message_self_test && size_t(length) >= sizeof(self_test_message)) {
      self_test(reinterpret_cast<const self_test_message*>(g_message)->test);
    } else {
      reply answer = {};
      answer.status = status_bad_message;
      send_reply(answer);
    }
  }
}

[[noreturn]] void setup_failed(int step) {
  reply answer = {};
  answer.status = status_setup_failed;
  answer.report[0] = uint32_t(errno);
  answer.report[1] = uint32_t(step);
  send_reply(answer);
  leave(1);
}

}  // namespace

// The records' layout, for the test that compares it with cpu_isolated.py's: sizes and offsets in a fixed order.
extern "C" __attribute__((visibility("default"))) int mg_sandbox_layout(uint64_t* out) {
  const uint64_t values[] = {sizeof(run_message), offsetof(run_message, kernel), offsetof(run_message, groups),
                             offsetof(run_message, threads), offsetof(run_message, chunks),
                             offsetof(run_message, timeout_ms), offsetof(run_message, constant_bytes),
                             offsetof(run_message, slot_segment), offsetof(run_message, slot_offset),
                             offsetof(run_message, dispatch), kConstantsAt, sizeof(map_message), sizeof(map_entry),
                             sizeof(unmap_message), sizeof(self_test_message), sizeof(describe_message),
                             sizeof(reply),
                             offsetof(reply, fault_segment), offsetof(reply, fault_offset),
                             offsetof(reply, fault_address), offsetof(reply, report), offsetof(reply, cpu_ns),
                             kMaxMessage};
  std::memcpy(out, values, sizeof values);
  return int(sizeof values / sizeof values[0]);
}

// Seals this process and serves the parent on `socket` until it closes it. The modules are loaded already; for
// each of their kernels, in order, `entries` holds mg_run_<i>, mg_info_<i> and mg_max_threads_<i>, and
// `record_bytes` is the size of one binding record. `data_bytes` and `cpu_seconds` become RLIMIT_DATA and
// RLIMIT_CPU.
// Steps that fail are reported on the socket (status_setup_failed, with the step's number).
extern "C" __attribute__((visibility("default"))) void mg_sandbox_serve(int socket, int arena, int parent,
                                                                        mg_parallel_run_fn parallel_run,
                                                                        void* const* entries, uint32_t count,
                                                                        uint32_t record_bytes, uint32_t threads,
                                                                        uint64_t data_bytes, uint64_t cpu_seconds) {
  g_socket = socket;
  g_arena = arena;
  g_page = size_t(sysconf(_SC_PAGESIZE));
  g_parallel_run = parallel_run;
  for (uint32_t i = 0; i < count; ++i)
    g_entries.push_back(kernel_entry{reinterpret_cast<mg_run_fn>(entries[3 * i]),
                                     reinterpret_cast<mg_info_fn>(entries[3 * i + 1]),
                                     reinterpret_cast<mg_max_threads_fn>(entries[3 * i + 2])});
  g_record_bytes = record_bytes;
  g_segments.reserve(1024);
  // 1: end with the parent, whichever way it ends (a kernel in an endless loop reads no end of file)
  if (prctl(PR_SET_PDEATHSIG, SIGKILL) != 0 || getppid() != parent) setup_failed(1);
  // 2: start the runner's pool and watchdog (threads made later would need clone), install its fault handlers
  const uint32_t dispatch[kDispatchWords] = {threads, 1, 1, 1, 1, 1, threads, 1, 1};
  uint32_t report[8] = {};
  uintptr_t fault = 0;
  if (parallel_run(noop_kernel, nullptr, dispatch, 0, threads, threads, threads, &fault, report) != 0)
    setup_failed(2);
  // 3: the limits; no core files of a worker the kernel ends
  const rlimit data = {rlim_t(data_bytes), rlim_t(data_bytes)};
  const rlimit cpu = {rlim_t(cpu_seconds), rlim_t(cpu_seconds + 2)};  // SIGXCPU, then SIGKILL
  const rlimit no_core = {0, 0};
  if (setrlimit(RLIMIT_DATA, &data) != 0 || setrlimit(RLIMIT_CPU, &cpu) != 0 || setrlimit(RLIMIT_CORE, &no_core) != 0)
    setup_failed(3);
  // 4: nothing to read or write but the socket
  const int null = open("/dev/null", O_RDWR | O_CLOEXEC);
  if (null < 0 || dup2(null, 0) < 0 || dup2(null, 1) < 0 || dup2(null, 2) < 0) setup_failed(4);
  close(null);
  // 5: the filter
  struct sigaction forbidden = {};
  forbidden.sa_sigaction = on_forbidden_call;
  forbidden.sa_flags = SA_SIGINFO;
  sigemptyset(&forbidden.sa_mask);
  if (sigaction(SIGSYS, &forbidden, nullptr) != 0 || prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0) setup_failed(5);
  const int error = install_filter();
  if (error != 0) {
    errno = error;
    setup_failed(6);
  }
  reply ready = {};
  ready.status = status_ready;
  send_reply(ready);
  serve();
}
