// Runs a compiled kernel's threadgroups on a pool of native threads, so that a dispatch wakes its workers without
// going through Python, and so that a fault inside a kernel (bad address, trap, integer division by zero) returns
// an error code to Python instead of killing the interpreter. Built once per compiler by backends/cpu.py.
//
// A process-wide handler for SIGSEGV, SIGBUS, SIGFPE and SIGILL jumps back to the guarded call when the fault
// happened on a thread that is inside one; any other fault goes to the handler that was installed before ours
// (Python's faulthandler, for instance) or to the default action. A fault next to the thread's stack pointer is
// reported as a stack overflow (kernels are compiled with -fstack-clash-protection, so a big frame faults on the
// guard page below a stack instead of skipping over it).
//
// Stopping a dispatch: a watchdog thread cancels a dispatch whose deadline passed (run_function's timeout) or, on
// Ctrl-C, the dispatches made from Python's main thread. Cancelling sets a flag that stops chunks not yet started
// and sends kCancelSignal to every thread inside the dispatch; its handler jumps back to the guarded call, as the
// fault handler does, so an endless loop inside one kernel thread ends too. Ctrl-C is seen through a SIGINT
// handler installed in front of Python's (mg_hook_interrupts), which calls Python's first.
#include <poll.h>
#include <sys/mman.h>
#include <pthread.h>
#include <sys/eventfd.h>
#include <sys/syscall.h>
#include <ucontext.h>
#include <unistd.h>

#include <cerrno>

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

// Statuses of this runner, beside the signal numbers of faults and the kernels' own (backends/cpu.py reads them).
enum runner_status : int { status_stack_overflow = 1003, status_interrupted = 1004, status_timed_out = 1005 };
// mg_parallel_run reads its timeout in milliseconds (0: none) from report[kTimeoutSlot] (an argument more would cost
// Python's ctypes more than the rest of the call), and takes the address of `report`, which each backend keeps for
// all its dispatches, as the name of the dispatch's owner for mg_cancel.
constexpr int kTimeoutSlot = 6;

namespace {

const int kSignals[] = {SIGSEGV, SIGBUS, SIGFPE, SIGILL};
const int kCancelSignal = SIGRTMAX - 3;
// A fault this close to the stack pointer is an overflow: stack-clash probes and pushes fault at or just below
// it, a store into a frame just allocated (less than a page, unprobed) just above it.
constexpr uintptr_t kStackReach = 8 * 1024;
struct sigaction g_previous[NSIG];
struct Job;
thread_local sigjmp_buf* t_jump = nullptr;
thread_local Job* t_job = nullptr;  // the dispatch this thread works on
thread_local volatile sig_atomic_t t_signal = 0;
thread_local void* volatile t_address = nullptr;
thread_local bool t_altstack_ready = false;
int cancel_status(const Job* job);
void start_afresh_after_fork();

uintptr_t stack_pointer(void* context) {
  const ucontext_t* uc = static_cast<const ucontext_t*>(context);
  if (uc == nullptr) return 0;
#if defined(__x86_64__)
  return uintptr_t(uc->uc_mcontext.gregs[REG_RSP]);
#elif defined(__aarch64__)
  return uintptr_t(uc->uc_mcontext.sp);
#else
  return 0;
#endif
}

void on_fault(int sig, siginfo_t* info, void* context) {
  if (t_jump != nullptr) {
    const uintptr_t address = info != nullptr ? uintptr_t(info->si_addr) : 0;
    const uintptr_t sp = stack_pointer(context);
    const bool overflow = sig == SIGSEGV && sp != 0 && address + kStackReach >= sp && address < sp + kStackReach;
    t_signal = overflow ? status_stack_overflow : sig;
    t_address = reinterpret_cast<void*>(address);
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

// A thread inside a cancelled dispatch leaves the kernel. A thread outside any dispatch of this copy of the library
// passes the signal on: another copy (built into another cache folder, so with its own handlers and thread-local
// state) may be running it.
struct sigaction g_previous_cancel;

void on_cancel(int sig, siginfo_t* info, void* context) {
  if (t_jump != nullptr && t_job != nullptr) {
    const int status = cancel_status(t_job);
    if (status == 0) return;
    t_signal = status;
    t_address = nullptr;
    siglongjmp(*t_jump, 1);
  }
  const struct sigaction& previous = g_previous_cancel;
  if ((previous.sa_flags & SA_SIGINFO) && previous.sa_sigaction != nullptr && previous.sa_sigaction != on_cancel)
    previous.sa_sigaction(sig, info, context);
}

// Once per copy of this library (mg_parallel_run calls it): installed twice, a copy would find itself as the
// handler to pass signals on to, and lose the one before it.
void install_handlers() {
  struct sigaction action = {};
  action.sa_sigaction = on_fault;
  action.sa_flags = SA_SIGINFO | SA_ONSTACK | SA_NODEFER;
  sigemptyset(&action.sa_mask);
  for (int sig : kSignals) sigaction(sig, &action, &g_previous[sig]);
  struct sigaction cancel = {};
  cancel.sa_sigaction = on_cancel;
  cancel.sa_flags = SA_SIGINFO | SA_ONSTACK | SA_RESTART;
  sigemptyset(&cancel.sa_mask);
  sigaction(kCancelSignal, &cancel, &g_previous_cancel);
  pthread_atfork(nullptr, nullptr, start_afresh_after_fork);
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
  ensure_altstack();
  sigjmp_buf jump;
  if (sigsetjmp(jump, 1) != 0) {
    t_jump = nullptr;
    *fault_address = reinterpret_cast<uintptr_t>(t_address);
    return t_signal;
  }
  t_jump = &jump;
  // A cancellation signal that came before t_jump was set found nothing to jump to: look once more.
  const int cancelled = t_job != nullptr ? cancel_status(t_job) : 0;
  const int status = cancelled != 0 ? cancelled : run(slots, dispatch, first, end, report);
  t_jump = nullptr;
  return status;
}

// One dispatch shared out in chunks of threadgroups; threads take the next chunk until none is left, one faulted or
// the dispatch was cancelled.
struct Job {
  mg_run_fn run;
  void* const* slots;
  const void* dispatch;
  uint64_t first, end, chunks;
  std::atomic<uint64_t> next{0};
  std::atomic<bool> failed{false};
  std::atomic<int> cancelled{0};  // the status a cancellation gives (interrupted, timed out), or 0
  std::mutex failure_mutex;
  int status = 0;  // of the first chunk that failed, with its address and report
  uintptr_t address = 0;
  uint32_t report[8] = {};
  // For the watchdog: the threads inside, when the dispatch is due, whether Ctrl-C stops it.
  static constexpr unsigned kMaxMembers = 1024;
  std::atomic<pthread_t> members[kMaxMembers];  // 0 until the thread has written itself (see mg_parallel_run)
  std::atomic<unsigned> member_count{0};
  std::chrono::steady_clock::time_point deadline = std::chrono::steady_clock::time_point::max();
  bool interruptible = false;
  uint64_t sequence = 0;  // of a main-thread dispatch announced in Watchdog::main_job
  const void* owner = nullptr;
  Job* next_active = nullptr;

  void cancel(int why) {
    int expected = 0;
    cancelled.compare_exchange_strong(expected, why);
  }

  void work() {
    const unsigned slot = member_count.fetch_add(1);
    if (slot < kMaxMembers) members[slot].store(pthread_self());
    Job* const outer = t_job;
    t_job = this;
    for (uint64_t chunk; !failed.load(std::memory_order_relaxed) && cancelled.load(std::memory_order_relaxed) == 0 &&
                         (chunk = next.fetch_add(1)) < chunks;) {
      const uint64_t span = end - first;
      uintptr_t chunk_address = 0;
      uint32_t chunk_report[8] = {};
      const int chunk_status = guarded_run(run, slots, dispatch, first + span * chunk / chunks,
                                           first + span * (chunk + 1) / chunks, &chunk_address, chunk_report);
      if (chunk_status != 0) fail(chunk_status, chunk_address, chunk_report);
    }
    t_job = outer;
    const int why = cancelled.load();
    if (why != 0) fail(why, 0, nullptr);
  }

  void fail(int chunk_status, uintptr_t chunk_address, const uint32_t* chunk_report) {
    std::lock_guard<std::mutex> lock(failure_mutex);
    if (!failed.exchange(true)) {
      status = chunk_status;
      address = chunk_address;
      if (chunk_report != nullptr) std::memcpy(report, chunk_report, sizeof report);
    }
  }
};

int cancel_status(const Job* job) { return job->cancelled.load(std::memory_order_relaxed); }

// The dispatches that may be cancelled, and the thread that cancels them: it sleeps in poll() on an eventfd until
// the nearest deadline, a new deadline, or Ctrl-C. A synchronous dispatch of Python's main thread with no deadline
// (the common case, which Ctrl-C must stop) is announced in one atomic slot, `main_job`, instead of the locked list,
// to keep the cost of a small dispatch down; the watchdog marks `touching` while it uses that slot's job, and the
// dispatch waits for it to clear before its Job goes away.
struct Watchdog {
  std::mutex mutex;
  Job* active = nullptr;
  int wake_fd = -1;
  std::atomic<bool> started{false};
  std::atomic<bool> interrupted{false};
  std::atomic<Job*> main_job{nullptr};
  std::atomic<bool> touching{false};
  std::atomic<uint64_t> main_sequence{0};
  uint64_t interrupted_sequence = 0;  // of the main-thread dispatch being stopped by Ctrl-C, or 0

  void announce(Job& job) {
    job.sequence = main_sequence.fetch_add(1, std::memory_order_relaxed) + 1;
    main_job.store(&job);
    if (!started) {
      std::lock_guard<std::mutex> lock(mutex);
      if (!started) start();
    }
  }

  void withdraw() {
    main_job.store(nullptr);
    while (touching.load()) std::this_thread::yield();
  }

  // Cancels the main thread's dispatch if Ctrl-C came during it; true while it still runs.
  bool interrupt_main(bool interrupt) {
    touching.store(true);
    Job* job = main_job.load();
    bool running = false;
    if (job != nullptr && job->interruptible) {
      if (interrupt) interrupted_sequence = job->sequence;
      if (interrupted_sequence == job->sequence) {
        job->cancel(status_interrupted);
        signal_members(*job);
        running = true;
      }
    }
    touching.store(false);
    if (!running) interrupted_sequence = 0;
    return running;
  }

  void add(Job& job, bool has_deadline) {
    {
      std::lock_guard<std::mutex> lock(mutex);
      job.next_active = active;
      active = &job;
      if (!started) start();
    }
    if (has_deadline) wake();
  }

  void remove(Job& job) {
    std::lock_guard<std::mutex> lock(mutex);
    for (Job** link = &active; *link != nullptr; link = &(*link)->next_active)
      if (*link == &job) {
        *link = job.next_active;
        break;
      }
  }

  // Async-signal-safe: called from the SIGINT handler.
  void wake() {
    if (wake_fd < 0) return;
    const uint64_t one = 1;
    const int saved = errno;
    ssize_t written = write(wake_fd, &one, sizeof one);
    (void)written;
    errno = saved;
  }

  void start() {
    wake_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    try {
      std::thread([this] { serve(); }).detach();
      started = true;
    } catch (const std::system_error&) {  // no thread: timeouts and Ctrl-C cannot stop kernels, all else works
    }
  }

  // Signals every thread inside a cancelled dispatch, again at each round until it has left.
  static void signal_members(Job& job) {
    const unsigned count = std::min(job.member_count.load(), Job::kMaxMembers);
    for (unsigned i = 0; i < count; ++i) {
      const pthread_t member = job.members[i].load();
      if (member != pthread_t()) pthread_kill(member, kCancelSignal);
    }
  }

  void serve() {
    sigset_t all;
    sigfillset(&all);
    pthread_sigmask(SIG_BLOCK, &all, nullptr);  // Ctrl-C must go to a thread that runs its handler promptly
    for (;;) {
      int wait_ms = -1;
      {
        std::lock_guard<std::mutex> lock(mutex);
        const bool interrupt = interrupted.exchange(false);
        if ((interrupt || interrupted_sequence != 0) && interrupt_main(interrupt)) wait_ms = 20;
        const auto now = std::chrono::steady_clock::now();
        for (Job* job = active; job != nullptr; job = job->next_active) {
          if (interrupt && job->interruptible) job->cancel(status_interrupted);
          if (job->deadline <= now) job->cancel(status_timed_out);
          if (job->cancelled.load() != 0) {
            signal_members(*job);
            wait_ms = 20;  // until every thread has left the kernel
          } else if (job->deadline != std::chrono::steady_clock::time_point::max()) {
            const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(job->deadline - now).count() + 1;
            if (wait_ms < 0 || left < wait_ms) wait_ms = int(std::min<long long>(left, 1 << 30));
          }
        }
      }
      pollfd fd = {wake_fd, POLLIN, 0};
      if (poll(&fd, 1, wait_ms) > 0) {
        uint64_t count;
        ssize_t got = read(wake_fd, &count, sizeof count);
        (void)got;
      }
    }
  }
};

Watchdog* g_watchdog = new Watchdog();  // never destroyed: its thread may still run at exit

// Ctrl-C: Python's handler first (it schedules KeyboardInterrupt), then the dispatches of the main thread stop.
struct sigaction g_python_interrupt;
bool g_interrupt_hooked = false;

void on_interrupt(int sig, siginfo_t* info, void* context) {
  const struct sigaction& python = g_python_interrupt;
  if (!(python.sa_flags & SA_SIGINFO) && python.sa_handler == SIG_IGN) return;
  if (!(python.sa_flags & SA_SIGINFO) && python.sa_handler == SIG_DFL) {
    signal(sig, SIG_DFL);
    raise(sig);
    return;
  }
  if (python.sa_flags & SA_SIGINFO)
    python.sa_sigaction(sig, info, context);
  else
    python.sa_handler(sig);
  g_watchdog->interrupted.store(true);
  g_watchdog->wake();
}

// Long-lived worker threads. The calling thread works too and starts at once; workers join as they wake, so a small
// dispatch is done by the caller alone before a sleeping worker has even woken (slow in a VM), and
// the caller waits only for workers that took part. After a dispatch a worker stays awake briefly (kSpin), so that
// back-to-back dispatches find it ready. One dispatch runs on the pool at a time; a dispatch that finds the pool
// busy (another interface's, or one that runs away) runs on its calling thread alone instead of waiting.
class Pool {
 public:
  int run(Job& job, unsigned threads) {
    std::unique_lock<std::mutex> serial(dispatch_mutex_, std::try_to_lock);
    if (!serial.owns_lock()) {
      job.work();
      return job.status;
    }
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
    sigset_t interrupt;
    sigemptyset(&interrupt);
    sigaddset(&interrupt, SIGINT);  // Ctrl-C goes to Python's threads, which run its handler
    pthread_sigmask(SIG_BLOCK, &interrupt, nullptr);
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
// A child process after fork() has none of the parent's threads, so it starts a pool and a watchdog of its own
// (the parent's may have been locked by a thread that does not exist in the child).
Pool* g_pool = nullptr;

Pool* pool() {
  static std::once_flag created;
  std::call_once(created, [] { g_pool = new (std::nothrow) Pool(); });
  return g_pool;
}

void start_afresh_after_fork() {
  if (g_pool != nullptr) g_pool = new (std::nothrow) Pool();
  g_watchdog = new (std::nothrow) Watchdog();
}

}  // namespace

// Runs threadgroups [first, end) in `chunks` pieces on `threads` threads (the caller's included). Returns 0, or the
// status of a piece that failed (see guarded_run) with its fault address and report (all of it written, so
// report[kTimeoutSlot] is 0 again); pieces not yet started when one fails are skipped. A timeout cancels the dispatch when it runs longer (status_timed_out); Ctrl-C
// cancels a dispatch of the process's main thread, where Python runs its signal handlers (status_interrupted).
extern "C" __attribute__((visibility("default"))) int mg_parallel_run(mg_run_fn run, void* const* slots,
                                                                       const void* dispatch, uint64_t first,
                                                                       uint64_t end, uint32_t threads,
                                                                       uint64_t chunks, uintptr_t* fault_address,
                                                                       uint32_t* report) {
  static std::once_flag installed;  // the one place that installs them
  std::call_once(installed, install_handlers);
  Job job;
  job.run = run;
  job.slots = slots;
  job.dispatch = dispatch;
  job.first = first;
  job.end = end;
  job.chunks = chunks < 1 ? 1 : chunks;
  // The slots of the threads that may join (the caller and threads - 1 workers): a slot claimed but not yet
  // written reads 0, which the watchdog skips.
  for (unsigned i = 0, n = std::min<unsigned>(std::max(threads, 1u), Job::kMaxMembers); i < n; ++i)
    job.members[i].store(pthread_t(), std::memory_order_relaxed);
  static thread_local const bool main_thread = pid_t(syscall(SYS_gettid)) == getpid();
  job.interruptible = main_thread && g_interrupt_hooked;
  job.owner = report;
  const uint32_t timeout_ms = report[kTimeoutSlot];
  const bool has_deadline = timeout_ms != 0;
  if (has_deadline) job.deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
  // Every dispatch is known to the watchdog: Ctrl-C, deadlines and mg_cancel_all find it.
  Watchdog* const watchdog = g_watchdog;
  const bool listed = watchdog != nullptr && (has_deadline || !job.interruptible);
  const bool announced = watchdog != nullptr && job.interruptible;
  if (listed) watchdog->add(job, has_deadline);
  if (announced) watchdog->announce(job);
  Pool* workers = threads <= 1 || job.chunks == 1 ? nullptr : pool();
  const int status = workers != nullptr ? workers->run(job, threads) : (job.work(), job.status);
  if (announced) watchdog->withdraw();
  if (listed) watchdog->remove(job);
  *fault_address = job.address;
  std::memcpy(report, job.report, sizeof job.report);
  return status;
}

// Installs the Ctrl-C handler in front of the one there now (Python's); called again after Python replaced it.
extern "C" __attribute__((visibility("default"))) void mg_hook_interrupts() {
  struct sigaction current = {};
  if (sigaction(SIGINT, nullptr, &current) != 0) return;
  if ((current.sa_flags & SA_SIGINFO) && current.sa_sigaction == on_interrupt) return;
  struct sigaction action = {};
  action.sa_sigaction = on_interrupt;
  action.sa_flags = SA_SIGINFO | SA_ONSTACK;
  sigemptyset(&action.sa_mask);
  g_python_interrupt = current;
  if (sigaction(SIGINT, &action, nullptr) == 0) g_interrupt_hooked = true;
}

// Cancels the dispatches of `owner` (null: of every owner) running now, except a synchronous one of the main thread
// (it is the caller): queued kernels stopped by Ctrl-C, or work abandoned at interpreter exit. Returns how many
// there were. A thread inside a kernel is signalled once here, and again by the watchdog until it has left.
extern "C" __attribute__((visibility("default"))) int mg_cancel(const void* owner) {
  int count = 0;
  {
    std::lock_guard<std::mutex> lock(g_watchdog->mutex);
    for (Job* job = g_watchdog->active; job != nullptr; job = job->next_active) {
      if (owner != nullptr && job->owner != owner) continue;
      job->cancel(status_interrupted);
      Watchdog::signal_members(*job);
      ++count;
    }
  }
  g_watchdog->wake();
  return count;
}
