// The cpu backend's asynchronous queue and its batches, in native code: an asynchronous dispatch (or a batch of
// them) is one call from Python that appends it to the Interface's queue, and a native thread of the queue runs
// it on the thread pool of cpu_guard.cpp, so no Python thread takes part and nothing returns to Python between
// the dispatches of a batch. backends/cpu.py compiles this file last, after cpu_guard.cpp and
// cpu_thread_memory.cpp, as one translation unit; Python calls only the extern "C" functions below, and this file
// calls only cpu_guard.cpp's own extern "C" ones.
//
// Each submission is an array of entries (msl/abi.py's CPU_QUEUE_ENTRY_FIELDS, uint64 each) and a status record
// that Python owns (CPU_QUEUE_STATUS_FIELDS): the queue writes the outcome there, then marks it done. Submissions
// of one queue run in order, one at a time; the entries of one run in order, and the first that fails ends it.
// From cpu_guard.cpp: mg_run_fn, kTimeoutSlot, mg_parallel_run, mg_cancel.
#include <signal.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <mutex>
#include <new>
#include <system_error>
#include <thread>
#include <vector>

namespace mg_queue {

// The fields, in msl/abi.py's order (tests/test_batches.py compares them through mg_queue_layout).
enum EntryField { kRun, kSlots, kRecord, kGroups, kThreads, kChunks, kTimeoutMs, kEntryFields };
enum StatusField { kState, kStatus, kFailedIndex, kAddress, kNanoseconds, kReport, kStatusFields = kReport + 8 };
enum State : uint64_t { kQueued = 0, kDone = 1 };
// Statuses of this file, beside cpu_guard.cpp's (backends/cpu.py reads them).
constexpr uint64_t kStatusCancelled = 1006;  // never started: the queue was cancelled (Ctrl-C, exit) before it ran

// The state is written last, with release order: whoever reads it done (mg_queue_is_done) sees the rest.
void mark_done(uint64_t* status) { __atomic_store_n(&status[kState], uint64_t(kDone), __ATOMIC_RELEASE); }

struct Submission {
  std::vector<uint64_t> entries;  // copied: Python may reuse its array at once
  uint64_t* status;
};

// Runs `count` entries in order on this thread and the pool; `report` names the dispatches to mg_cancel. Returns
// after the first that fails, with its status, index, address and report in `status` (all but the state).
void run_entries(const uint64_t* entries, uint64_t count, uint64_t* status, uint32_t* report,
                 const std::atomic<uint64_t>* cancelled, uint64_t generation) {
  const auto started = std::chrono::steady_clock::now();
  for (uint64_t i = 0; i < count; ++i) {
    const uint64_t* entry = entries + i * kEntryFields;
    if (cancelled != nullptr && cancelled->load() != generation) {
      status[kStatus] = kStatusCancelled;
      status[kFailedIndex] = i;
      break;
    }
    report[kTimeoutSlot] = uint32_t(entry[kTimeoutMs]);
    uintptr_t address = 0;
    const int code = mg_parallel_run(reinterpret_cast<mg_run_fn>(entry[kRun]),
                                     reinterpret_cast<void* const*>(entry[kSlots]),
                                     reinterpret_cast<const void*>(entry[kRecord]), 0, entry[kGroups],
                                     uint32_t(entry[kThreads]), entry[kChunks], &address, report);
    if (code != 0) {
      status[kStatus] = uint64_t(code);
      status[kFailedIndex] = i;
      status[kAddress] = address;
      for (int k = 0; k < 8; ++k) status[kReport + k] = report[k];
      break;
    }
  }
  status[kNanoseconds] = uint64_t(
      std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::steady_clock::now() - started).count());
}

// One Interface's queue and the native thread that serves it. The thread starts with the first submission and
// ends after close(); the object is deleted by the last of the two.
class Queue {
 public:
  // 0, or -1 when no thread can be started (Python then runs the submission itself).
  int submit(const uint64_t* entries, uint64_t count, uint64_t* status) {
    auto* submission = new (std::nothrow) Submission();
    if (submission == nullptr) return -1;
    try {
      submission->entries.assign(entries, entries + count * kEntryFields);
    } catch (const std::bad_alloc&) {
      delete submission;
      return -1;
    }
    submission->status = status;
    std::lock_guard<std::mutex> lock(mutex_);
    if (!started_) {
      try {
        std::thread([this] { serve(); }).detach();
      } catch (const std::system_error&) {
        delete submission;
        return -1;
      }
      started_ = true;
    }
    waiting_.push_back(submission);
    queued_.fetch_add(1, std::memory_order_release);
    if (sleeping_) work_.notify_one();  // else the thread is busy or spinning, and finds it by itself
    return 0;
  }

  // Waits up to `timeout_ms` for `status` to be marked done; returns whether it is.
  bool wait(const uint64_t* status, uint32_t timeout_ms) {
    std::unique_lock<std::mutex> lock(mutex_);
    return finished_.wait_for(lock, std::chrono::milliseconds(timeout_ms),
                              [status] { return status[kState] == kDone; });
  }

  // The submissions not yet started are marked cancelled; the one running stops as a timeout stops it.
  int cancel() {
    std::lock_guard<std::mutex> lock(mutex_);
    int count = 0;
    for (Submission* submission : waiting_) {
      submission->status[kStatus] = kStatusCancelled;
      submission->status[kFailedIndex] = 0;
      mark_done(submission->status);
      delete submission;
      ++count;
    }
    waiting_.clear();
    if (running_) {
      generation_.fetch_add(1);  // the entries of the running submission not yet started are skipped
      mg_cancel(report_);
      ++count;
    }
    finished_.notify_all();
    return count;
  }

  void close() {
    std::lock_guard<std::mutex> lock(mutex_);
    closing_ = true;
    work_.notify_one();  // whether it sleeps or spins: it waits on work_ after its spin
    if (!started_) delete_later_ = true;
  }

  bool delete_now() const { return delete_later_; }

 private:
  void serve() {
    sigset_t interrupt;
    sigemptyset(&interrupt);
    sigaddset(&interrupt, SIGINT);  // Ctrl-C goes to Python's threads, which run its handler
    pthread_sigmask(SIG_BLOCK, &interrupt, nullptr);
    std::unique_lock<std::mutex> lock(mutex_);
    for (;;) {
      if (waiting_.empty() && !closing_) {
        // Back-to-back submissions find the thread awake: a wake-up costs more than a small dispatch.
        const uint64_t seen = queued_.load(std::memory_order_acquire);
        lock.unlock();
        const auto until = std::chrono::steady_clock::now() + kSpin;
        while (queued_.load(std::memory_order_acquire) == seen && std::chrono::steady_clock::now() < until)
          std::this_thread::yield();
        lock.lock();
      }
      sleeping_ = true;
      work_.wait(lock, [this] { return closing_ || !waiting_.empty(); });
      sleeping_ = false;
      if (waiting_.empty()) break;  // closing, and nothing left to run
      Submission* submission = waiting_.front();
      waiting_.pop_front();
      running_ = true;
      const uint64_t generation = generation_.load();
      lock.unlock();
      const uint64_t count = submission->entries.size() / kEntryFields;
      run_entries(submission->entries.data(), count, submission->status, report_, &generation_, generation);
      lock.lock();
      running_ = false;
      mark_done(submission->status);
      delete submission;
      finished_.notify_all();
    }
    lock.unlock();
    delete this;
  }

  static constexpr std::chrono::microseconds kSpin{100};  // as the pool's workers spin (cpu_guard.cpp)

  std::mutex mutex_;
  std::condition_variable work_, finished_;
  std::atomic<uint64_t> queued_{0};  // submissions so far: the spinning thread watches it
  bool sleeping_ = false;
  std::deque<Submission*> waiting_;
  bool started_ = false, running_ = false, closing_ = false, delete_later_ = false;
  std::atomic<uint64_t> generation_{0};
  uint32_t report_[8] = {};  // the running dispatch's report; its address names the queue's dispatches to mg_cancel
};

}  // namespace mg_queue

extern "C" __attribute__((visibility("default"))) void* mg_queue_create() {
  return new (std::nothrow) mg_queue::Queue();
}

// Appends a submission of `count` entries; 0, or -1 when it cannot be queued (Python then runs it itself).
extern "C" __attribute__((visibility("default"))) int mg_queue_submit(void* queue, const uint64_t* entries,
                                                                      uint64_t count, uint64_t* status) {
  return static_cast<mg_queue::Queue*>(queue)->submit(entries, count, status);
}

// 1 once `status` is done, 0 after `timeout_ms` without (Python waits in slices, so Ctrl-C is seen between them).
extern "C" __attribute__((visibility("default"))) int mg_queue_wait(void* queue, const uint64_t* status,
                                                                    uint32_t timeout_ms) {
  return static_cast<mg_queue::Queue*>(queue)->wait(status, timeout_ms) ? 1 : 0;
}

extern "C" __attribute__((visibility("default"))) int mg_queue_cancel(void* queue) {
  return static_cast<mg_queue::Queue*>(queue)->cancel();
}

// Whether `status` is done (an acquire load: its other fields are then complete), without waiting.
extern "C" __attribute__((visibility("default"))) int mg_queue_is_done(const uint64_t* status) {
  return __atomic_load_n(&status[mg_queue::kState], __ATOMIC_ACQUIRE) == mg_queue::kDone ? 1 : 0;
}

// The queue's thread ends once what was submitted has run; the queue goes with it.
extern "C" __attribute__((visibility("default"))) void mg_queue_close(void* queue) {
  auto* q = static_cast<mg_queue::Queue*>(queue);
  q->close();
  if (q->delete_now()) delete q;
}

// A batch run on the calling thread (Python's, while the queue is idle): the entries in order, as the queue's
// thread runs them, with the backend's `report`. Fills `status` but its state.
extern "C" __attribute__((visibility("default"))) void mg_run_entries(const uint64_t* entries, uint64_t count,
                                                                      uint64_t* status, uint32_t* report) {
  mg_queue::run_entries(entries, count, status, report, nullptr, 0);
}

// The field indices of both records, for tests: entry fields, then status fields, then the cancelled status.
extern "C" __attribute__((visibility("default"))) void mg_queue_layout(int64_t* out) {
  using namespace mg_queue;
  const int64_t values[] = {kRun,   kSlots,  kRecord,      kGroups,   kThreads,     kChunks,
                            kTimeoutMs, kEntryFields, kState, kStatus, kFailedIndex, kAddress,
                            kNanoseconds, kReport, kStatusFields, int64_t(kStatusCancelled)};
  for (size_t i = 0; i < sizeof values / sizeof values[0]; ++i) out[i] = values[i];
}
