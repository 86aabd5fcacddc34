// Runs a compiled kernel range so that a fault inside it (bad address, trap, integer division by zero) returns
// an error code to Python instead of killing the interpreter. Built once per compiler by backends/cpu.py.
//
// A process-wide handler for SIGSEGV, SIGBUS, SIGFPE and SIGILL jumps back to the guarded call when the fault
// happened on a thread that is inside one; any other fault goes to the handler that was installed before ours
// (Python's faulthandler, for instance) or to the default action.
#include <csetjmp>
#include <csignal>
#include <cstdint>
#include <cstdlib>
#include <mutex>

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

}  // namespace

// Returns 0 when the range ran to completion, else the number of the signal that stopped it, with the faulting
// address in *fault_address, or the kernel's own status (a barrier deadlock, ...) with its details in report.
extern "C" __attribute__((visibility("default"))) int mg_guarded_run(mg_run_fn run, void* const* slots,
                                                                      const void* dispatch, uint64_t first,
                                                                      uint64_t end, uintptr_t* fault_address,
                                                                      uint32_t* report) {
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
