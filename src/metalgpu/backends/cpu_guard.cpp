// Runs a compiled kernel's threadgroups on a pool of native threads, so that a dispatch wakes its workers without
// going through Python, and so that a fault inside a kernel (bad address, trap, integer division by zero) returns
// an error code to Python instead of killing the interpreter. Built once per compiler by backends/cpu.py.
//
// A process-wide handler for SIGSEGV, SIGBUS, SIGFPE and SIGILL jumps back to the guarded call when the fault
// happened on a thread that is inside one; any other fault goes to the handler that was installed before ours
// (Python's faulthandler, for instance) or to the default action.
#include <pthread.h>
#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <csetjmp>
#include <csignal>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <mutex>
#include <new>
#include <system_error>
#include <thread>
#include <vector>

// The kernels' half is the compiler's _Float16 (metal/_target.h). Built first by the backend, this file turns a
// compiler without it into one clear error instead of one on every kernel.
#if !defined(__FLT16_MAX__)
#error "this C++ compiler has no _Float16, which the kernels' half needs: use g++ 12 or later, or clang 15 or later"
#endif

// Returns 0, or a status of its own (>= 1000, see metal/_cooperative_cpu.h) with details in report[0..4].
typedef int (*mg_run_fn)(void* const*, const void*, uint64_t, uint64_t, uint32_t*);

namespace {

const int kSignals[] = {SIGSEGV, SIGBUS, SIGFPE, SIGILL};
struct sigaction g_previous[NSIG];
thread_local sigjmp_buf* t_jump = nullptr;
thread_local volatile sig_atomic_t t_signal = 0;
thread_local void* volatile t_address = nullptr;
thread_local bool t_altstack_ready = false;

void on_fault(int sig, siginfo_t* info, void* context) {
  if (t_jump != nullptr) {
    t_signal = sig;
    t_address = info != nullptr ? info->si_addr : nullptr;
    siglongjmp(*t_jump, 1);
  }
  const struct sigaction& previous = g_previous[sig];
  if ((previous.sa_flags & SA_SIGINFO) && previous.sa_sigaction != nullptr) {
    previous.sa_sigaction(sig, info, context);
    return;
  }
  if (!(previous.sa_flags & SA_SIGINFO) && previous.sa_handler != SIG_DFL && previous.sa_handler != SIG_IGN) {
    previous.sa_handler(sig);
    return;
  }
  signal(sig, SIG_DFL);
  raise(sig);
}

void install_handlers() {
  struct sigaction action = {};
  action.sa_sigaction = on_fault;
  action.sa_flags = SA_SIGINFO | SA_ONSTACK | SA_NODEFER;
  sigemptyset(&action.sa_mask);
  for (int sig : kSignals) sigaction(sig, &action, &g_previous[sig]);
}

// A fault from stack overflow can only be handled on a stack of its own.
void ensure_altstack() {
  if (t_altstack_ready) return;
  stack_t current = {};
  if (sigaltstack(nullptr, &current) == 0 && !(current.ss_flags & SS_DISABLE)) {
    t_altstack_ready = true;
    return;
  }
  static const size_t kSize = 64 * 1024;
  stack_t stack = {};
  stack.ss_sp = std::malloc(kSize);  // lives as long as the thread; threads of the pool are long-lived
  stack.ss_size = kSize;
  if (stack.ss_sp != nullptr && sigaltstack(&stack, nullptr) == 0) t_altstack_ready = true;
}

// Runs groups [first, end) of a dispatch. Returns 0 when the range ran to completion, else the number of the signal
// that stopped it, with the faulting address in *fault_address, or the kernel's own status (a barrier deadlock, ...)
// with its details in report.
int guarded_run(mg_run_fn run, void* const* slots, const void* dispatch, uint64_t first, uint64_t end,
                uintptr_t* fault_address, uint32_t* report) {
  static std::once_flag installed;
  std::call_once(installed, install_handlers);
  ensure_altstack();
  sigjmp_buf jump;
  if (sigsetjmp(jump, 1) != 0) {
    t_jump = nullptr;
    *fault_address = reinterpret_cast<uintptr_t>(t_address);
    return t_signal;
  }
  t_jump = &jump;
  const int status = run(slots, dispatch, first, end, report);
  t_jump = nullptr;
  return status;
}

// One dispatch shared out in chunks of threadgroups; threads take the next chunk until none is left or one faulted.
struct Job {
  mg_run_fn run;
  void* const* slots;
  const void* dispatch;
  uint64_t first, end, chunks;
  std::atomic<uint64_t> next{0};
  std::atomic<bool> failed{false};
  std::mutex failure_mutex;
  int status = 0;  // of the first chunk that failed, with its address and report
  uintptr_t address = 0;
  uint32_t report[8] = {};

  void work() {
    for (uint64_t chunk; !failed.load(std::memory_order_relaxed) && (chunk = next.fetch_add(1)) < chunks;) {
      const uint64_t span = end - first;
      uintptr_t chunk_address = 0;
      uint32_t chunk_report[8] = {};
      const int chunk_status = guarded_run(run, slots, dispatch, first + span * chunk / chunks,
                                           first + span * (chunk + 1) / chunks, &chunk_address, chunk_report);
      if (chunk_status != 0) {
        std::lock_guard<std::mutex> lock(failure_mutex);
        if (!failed.exchange(true)) {
          status = chunk_status;
          address = chunk_address;
          std::memcpy(report, chunk_report, sizeof report);
        }
      }
    }
  }
};

// Long-lived worker threads. The calling thread works too and starts at once; workers join as they wake, so a small
// dispatch is done by the caller alone before a sleeping worker has even woken (slow in a VM), and
// the caller waits only for workers that took part. After a dispatch a worker stays awake briefly (kSpin), so that
// back-to-back dispatches find it ready. One dispatch runs at a time; others wait for the pool (they would only
// compete for the same cores).
class Pool {
 public:
  int run(Job& job, unsigned threads) {
    std::lock_guard<std::mutex> serial(dispatch_mutex_);
    while (workers_.size() < threads - 1) {
      const unsigned index = unsigned(workers_.size());
      try {
        workers_.emplace_back([this, index] { serve(index); });
      } catch (const std::system_error&) {  // the system refuses more threads: go on with those there are
        break;
      }
    }
    const unsigned helpers = std::min(threads - 1, unsigned(workers_.size()));
    bool sleepers;
    {
      std::lock_guard<std::mutex> lock(mutex_);
      job_ = &job;
      helpers_ = helpers;
      generation_.fetch_add(1, std::memory_order_release);
      sleepers = sleeping_ > 0;
    }
    if (sleepers) wake_.notify_all();
    job.work();
    std::unique_lock<std::mutex> lock(mutex_);
    job_ = nullptr;  // workers that look from now on find nothing to do
    finished_.wait(lock, [this] { return working_ == 0; });
    return job.status;
  }

 private:
  static constexpr std::chrono::microseconds kSpin{100};

  void serve(unsigned index) {
    uint64_t seen = 0;
    for (;;) {
      const auto until = std::chrono::steady_clock::now() + kSpin;
      while (generation_.load(std::memory_order_acquire) == seen && std::chrono::steady_clock::now() < until)
        std::this_thread::yield();
      std::unique_lock<std::mutex> lock(mutex_);
      ++sleeping_;
      wake_.wait(lock, [&] { return generation_.load(std::memory_order_relaxed) != seen; });
      --sleeping_;
      seen = generation_.load(std::memory_order_relaxed);
      Job* job = job_;
      if (job == nullptr || index >= helpers_) continue;
      ++working_;
      lock.unlock();
      job->work();
      lock.lock();
      if (--working_ == 0) finished_.notify_one();
    }
  }

  std::mutex dispatch_mutex_, mutex_;
  std::condition_variable wake_, finished_;
  std::vector<std::thread> workers_;
  Job* job_ = nullptr;
  unsigned helpers_ = 0, working_ = 0, sleeping_ = 0;
  std::atomic<uint64_t> generation_{0};
};

// Never destroyed: at exit the workers are still waiting, and destroying a joinable std::thread would abort.
// A child process after fork() has none of the parent's workers, so it starts a pool of its own.
Pool* g_pool = nullptr;

Pool* pool() {
  static std::once_flag created;
  std::call_once(created, [] {
    g_pool = new (std::nothrow) Pool();
    pthread_atfork(nullptr, nullptr, [] { g_pool = new (std::nothrow) Pool(); });
  });
  return g_pool;
}

}  // namespace

// Fiber stacks for cooperative kernels (metal/_fibers_cpu.h), one pool per OS thread for every loaded module:
// each stack below an inaccessible guard page, so that two mappings a stack. Kept by each module, they grew with
// the modules times the threads and ran into the kernel's limit on mappings (vm.max_map_count) after a few hundred
// libraries. backends/cpu.py loads this file into the global scope, where the modules' weak reference finds it.
namespace {

struct StackPool {
  unsigned char* base = nullptr;
  std::size_t count = 0;
  std::size_t stride = 0;
  ~StackPool() {
    if (base != nullptr) munmap(base, count * stride);
  }
};
thread_local StackPool t_stacks;

}  // namespace

// The base of at least `count` stacks of `stack_bytes` each, `*stride` apart (guard page first), or nullptr when
// they cannot be mapped. Valid until the next call on this thread.
extern "C" __attribute__((visibility("default"))) unsigned char* mg_fiber_stacks(uint32_t count,
                                                                                std::size_t stack_bytes,
                                                                                std::size_t* stride) {
  StackPool& pool = t_stacks;
  const std::size_t page = std::size_t(sysconf(_SC_PAGESIZE));
  const std::size_t want_stride = page + (stack_bytes + page - 1) / page * page;
  if (pool.base == nullptr || pool.count < count || pool.stride != want_stride) {
    std::size_t want = pool.count != 0 && pool.stride == want_stride ? pool.count * 2 : 64;
    while (want < count) want *= 2;
    void* memory = mmap(nullptr, want * want_stride, PROT_READ | PROT_WRITE,
                        MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (memory == MAP_FAILED) return nullptr;
    unsigned char* bytes = static_cast<unsigned char*>(memory);
    for (std::size_t i = 0; i < want; ++i) mprotect(bytes + i * want_stride, page, PROT_NONE);
    if (pool.base != nullptr) munmap(pool.base, pool.count * pool.stride);
    pool.base = bytes;
    pool.count = want;
    pool.stride = want_stride;
  }
  *stride = pool.stride;
  return pool.base;
}

// Runs threadgroups [first, end) in `chunks` pieces on `threads` threads (the caller's included). Returns 0, or the
// status of a piece that failed (see guarded_run) with its fault address and report; pieces not yet started when
// one fails are skipped.
extern "C" __attribute__((visibility("default"))) int mg_parallel_run(mg_run_fn run, void* const* slots,
                                                                       const void* dispatch, uint64_t first,
                                                                       uint64_t end, uint32_t threads,
                                                                       uint64_t chunks, uintptr_t* fault_address,
                                                                       uint32_t* report) {
  Job job;
  job.run = run;
  job.slots = slots;
  job.dispatch = dispatch;
  job.first = first;
  job.end = end;
  job.chunks = chunks < 1 ? 1 : chunks;
  Pool* workers = threads <= 1 || job.chunks == 1 ? nullptr : pool();
  const int status = workers != nullptr ? workers->run(job, threads) : (job.work(), job.status);
  *fault_address = job.address;
  std::memcpy(report, job.report, sizeof job.report);
  return status;
}
