#include "exec/scheduler.h"
#include "util/byte_buffer.h"

#include <algorithm>
#include <chrono>
#include <condition_variable>
#include <cstring>
#include <deque>
#include <exception>
#include <map>
#include <memory>
#include <mutex>
#include <thread>

#include "exec/cancel.h"
#include "exec/chunking.h"
#include "exec/tensor_reader.h"
#include "kernels/convert.h"
#include "util/error.h"

namespace amalgam {

namespace {

// One tensor in flight. Fields other than the merger are guarded by Scheduler::mu_.
struct TensorTask {
  size_t index = 0;
  const PlannedTensor* planned = nullptr;
  std::unique_ptr<TensorMerger> merger;
  std::vector<InputReader> inputs;
  std::vector<ChunkRange> chunks;
  int pass = 0, passes = 1;  // passes = stat passes + the merge pass
  uint64_t input_bytes_per_element = 0;  // stored bytes of all inputs: progress counts these
  // Inputs kept in memory (stored bytes) for the passes after the first: multi-pass
  // methods then read the page cache once instead of once per pass. Empty when not used.
  std::vector<ByteBuffer> resident;
  // The merge pass reads the stored bf16 bits and writes bf16 through merge_bf16; the
  // statistics passes read them through accumulate_bf16.
  bool bf16_merge = false, bf16_accumulate = false;
  size_t next = 0, done = 0;
  bool finishing = false;     // finish_pass() running: hand out no chunks meanwhile
  std::once_flag sampled;     // the merger's sample (before the first chunk of pass 0)
};

// Per-worker scratch; grows to the largest chunk it sees and is then reused.
struct WorkerBuffers {
  std::vector<float> in, out;
  ByteBuffer bytes, raw;  // raw: the stored bf16 inputs of a block (bf16 path)
  std::vector<const uint16_t*> raw_ptrs;
  std::vector<uint8_t> scratch;
  std::vector<const float*> ptrs;
  std::vector<ReadSegment> segments;
};

bool is_nonfinite(float x) {  // for the rare error path; the scan is any_nonfinite
  uint32_t b;
  std::memcpy(&b, &x, 4);
  return (b & 0x7f800000u) == 0x7f800000u;
}

class Scheduler {
 public:
  Scheduler(const MergePlan& plan, const ModelSet& models, const ScheduleOptions& options)
      : plan_(plan), models_(models), opt_(options),
        window_(static_cast<size_t>(std::max(1, options.threads)) + 1) {}

  ScheduleResult run() {
    int n = std::max(1, opt_.threads);
    std::vector<std::thread> workers;
    workers.reserve(n);
    std::thread writer;
    // A writer thread only where a core is left for it (see queue_write).
    writer_thread_ = opt_.write && static_cast<unsigned>(n) < std::max(1u, std::thread::hardware_concurrency());
    if (writer_thread_) writer = std::thread([this] { write_loop(); });
    for (int i = 0; i < n; ++i) workers.emplace_back([this] { work(); });
    {
      std::unique_lock lock(mu_);
      while (running_ > 0) {
        if (cancel_requested() && !error_)
          set_error(std::make_exception_ptr(Error(ErrorKind::Io, "merge interrupted")));
        size_t td = tensors_done_;
        uint64_t bd = bytes_done_;
        lock.unlock();
        if (opt_.progress) opt_.progress(td, bd);
        lock.lock();
        cv_main_.wait_for(lock, std::chrono::milliseconds(200));
      }
    }
    for (auto& w : workers) w.join();
    if (writer.joinable()) {
      {
        std::lock_guard wlock(wmu_);
        workers_done_ = true;
      }
      cv_write_.notify_all();
      writer.join();
    }
    if (error_) std::rethrow_exception(error_);
    if (opt_.progress) opt_.progress(tensors_done_, bytes_done_);
    ScheduleResult r;
    r.bytes_read = bytes_read_;
    for (auto& [line, count] : warnings_)
      r.warnings.push_back(count > 1 ? line + fmt::format(" (x{})", count) : line);
    return r;
  }

 private:
  bool finished() const { return next_tensor_ == plan_.tensors.size() && active_.empty(); }

  void set_error(std::exception_ptr e) {  // mu_ held
    if (!error_) error_ = std::move(e);
    cv_.notify_all();
    cv_main_.notify_all();
  }

  // Multi-pass tensors whose inputs fit resident_bytes get them in memory (allocated
  // here, filled by the first pass's chunks): at most window_ such tensors are in flight,
  // so memory stays bounded by threads, not by the model (estimate: exec/executor.cc).
  void keep_resident(TensorTask& task) {
    for (const auto& in : task.inputs)
      if (!in.reads_raw()) return;
    if (merge_input_bytes(*task.planned) > opt_.resident_bytes) return;
    task.resident.resize(task.inputs.size());
    for (size_t i = 0; i < task.inputs.size(); ++i) {
      // Reuse a finished tensor's buffer: fresh memory would page-fault and be zeroed,
      // which cost more than the re-reads it saves. The best fit (smallest that holds
      // the input, else the largest): a buffer too small is freed and reallocated, and
      // faults in again.
      const size_t need = shape_numel(task.planned->job.shape) * dtype_size(task.inputs[i].stored_dtype());
      if (!spare_.empty()) {
        auto better = [need](size_t c, size_t b) {  // capacity c beats capacity b
          if ((c >= need) != (b >= need)) return c >= need;
          return c >= need ? c < b : c > b;
        };
        size_t best = 0;
        for (size_t k = 1; k < spare_.size(); ++k)
          if (better(spare_[k].capacity(), spare_[best].capacity())) best = k;
        task.resident[i] = std::move(spare_[best]);
        spare_[best] = std::move(spare_.back());
        spare_.pop_back();
      }
      resize_discarding(task.resident[i], need);
    }
  }

  // Creates the merger and input readers of the next tensor (mu_ held: cheap, no I/O).
  void activate() {
    size_t index = next_tensor_++;
    const PlannedTensor& pt = plan_.tensors[index];
    auto task = std::make_unique<TensorTask>();
    task->index = index;
    task->planned = &pt;
    if (!pt.method) fail(ErrorKind::Internal, "tensor {}: no merge method planned", pt.job.name);
    task->merger = pt.method->create(pt.job);
    for (const auto& ref : pt.inputs) task->inputs.emplace_back(models_, ref, pt.job.shape, pt.load_dtype);
    task->passes = task->merger->stat_passes() + 1;
    for (const auto& ref : pt.inputs) task->input_bytes_per_element += dtype_size(ref.dtype);
    if (task->passes > 1) keep_resident(*task);
    bool bf16_inputs = opt_.bf16_merge;
    for (const auto& in : task->inputs) bf16_inputs &= in.reads_raw() && in.stored_dtype() == DType::BF16;
    task->bf16_merge = bf16_inputs && pt.out_dtype == DType::BF16 && task->merger->has_bf16_merge();
    task->bf16_accumulate = bf16_inputs && task->merger->has_bf16_accumulate();
    uint64_t chunk =
        chunk_size_for(opt_.chunk_elements, reduction_block(task->merger->row_length()));
    task->chunks = split_chunks(shape_numel(pt.job.shape), chunk);
    if (task->chunks.empty()) {  // an empty tensor: run the passes over no chunks
      for (int p = 0; p + 1 < task->passes; ++p) task->merger->finish_pass(p);
      complete(*task);
      return;
    }
    active_.push_back(std::move(task));
  }

  void complete(TensorTask& task) {  // mu_ held
    for (auto& w : task.merger->warnings()) ++warnings_[w];
    ++tensors_done_;
  }

  void work() {
    WorkerBuffers buf;
    std::unique_lock lock(mu_);
    try {
      while (!error_) {
        if (cancel_requested()) {
          set_error(std::make_exception_ptr(Error(ErrorKind::Io, "merge interrupted")));
          break;
        }
        TensorTask* task = nullptr;
        for (auto& t : active_)
          if (!t->finishing && t->next < t->chunks.size()) {
            task = t.get();
            break;
          }
        if (!task) {
          if (next_tensor_ < plan_.tensors.size() && active_.size() < window_) {
            activate();
            continue;
          }
          if (finished()) break;
          cv_.wait(lock);
          continue;
        }
        ChunkRange range = task->chunks[task->next++];
        int pass = task->pass;
        lock.unlock();
        uint64_t read = process(*task, pass, range, buf);
        lock.lock();
        bytes_read_ += read;
        if (pass + 1 == task->passes) bytes_done_ += range.count * task->input_bytes_per_element;
        if (++task->done < task->chunks.size()) continue;
        if (pass + 1 < task->passes) {
          task->finishing = true;
          lock.unlock();
          task->merger->finish_pass(pass);
          lock.lock();
          task->finishing = false;
          task->pass++;
          // A merger may learn after a pass that it needs more (or fewer) of them, e.g. a
          // radix select whose threshold bucket is still too coarse: ask again.
          task->passes = std::max(task->pass, task->merger->stat_passes()) + 1;
          task->next = task->done = 0;
        } else {
          complete(*task);
          auto it = std::find_if(active_.begin(), active_.end(),
                                 [&](const auto& t) { return t.get() == task; });
          std::unique_ptr<TensorTask> owned = std::move(*it);
          active_.erase(it);
          for (auto& b : owned->resident) spare_.push_back(std::move(b));
          lock.unlock();
          owned.reset();  // frees the merger's state outside the lock
          lock.lock();
        }
        cv_.notify_all();
      }
    } catch (...) {
      if (!lock.owns_lock()) lock.lock();
      set_error(std::current_exception());
    }
    --running_;
    cv_.notify_all();
    cv_main_.notify_all();
  }

  // Reads the chunk's inputs, then accumulates (stats pass) or merges, checks and writes.
  // The chunk is worked through one reduction block at a time (any multiple of a block is
  // a valid chunk for a merger: methods/method.h), so that the f32 inputs just converted
  // are still in cache when the merger reads them; the output bytes of the whole chunk go
  // out in one write.
  uint64_t process(TensorTask& task, int pass, ChunkRange range, WorkerBuffers& buf) {
    const PlannedTensor& pt = *task.planned;
    const size_t n = task.inputs.size();
    const bool merging = pass + 1 == task.passes;
    const uint64_t block = std::min(range.count, reduction_block(task.merger->row_length()));
    const size_t osz = dtype_size(pt.out_dtype);
    if (buf.in.size() < n * block) buf.in.resize(n * block);
    if (merging && buf.out.size() < block) buf.out.resize(block);
    if (merging && buf.bytes.size() < range.count * osz) buf.bytes.resize(range.count * osz);
    buf.ptrs.resize(n);
    uint64_t read = 0;
    // Workers reaching the tensor's first chunks meanwhile wait here for the sample.
    if (pass == 0) std::call_once(task.sampled, [&] { read += take_sample(task, buf); });
    const bool bf16 = merging ? task.bf16_merge : task.bf16_accumulate;
    if (bf16) {
      buf.raw_ptrs.resize(n);
      if (task.resident.empty() && buf.raw.size() < n * block * 2) resize_discarding(buf.raw, n * block * 2);
    }
    for (uint64_t at = 0; at < range.count; at += block) {
      const uint64_t cnt = std::min(block, range.count - at);
      if (bf16) {
        read += read_bf16(task, pass, merging, range.begin + at, cnt, block, buf);
        const Bf16Chunk chunk{range.begin + at, cnt, std::span<const uint16_t* const>(buf.raw_ptrs.data(), n)};
        if (!merging) {
          task.merger->accumulate_bf16(pass, chunk);
          continue;
        }
        if (task.merger->merge_bf16(chunk, reinterpret_cast<uint16_t*>(buf.bytes.data() + at * osz))) continue;
        // Some result was not finite: merge() on this block gives the same bits where
        // finite, and its check below tells an error from non-finite inputs (§8.2).
        for (size_t i = 0; i < n; ++i) {
          to_f32(DType::BF16, buf.raw_ptrs[i], buf.in.data() + i * block, cnt);
          buf.ptrs[i] = buf.in.data() + i * block;
        }
        merge_f32(task, Chunk{range.begin + at, cnt, std::span<const float* const>(buf.ptrs.data(), n)},
                  buf.bytes.data() + at * osz, buf);
        continue;
      }
      for (size_t i = 0; i < n; ++i) {
        float* dst = buf.in.data() + i * block;
        if (!reads_input(task, pass, merging, i)) {
          buf.ptrs[i] = nullptr;
          continue;
        }
        if (task.resident.empty()) {
          read += task.inputs[i].read(range.begin + at, cnt, dst, buf.segments, buf.scratch);
        } else {
          // First pass: fill this chunk's part of the resident copy; later: convert from it.
          const DType dt = task.inputs[i].stored_dtype();
          uint8_t* raw = task.resident[i].data() + (range.begin + at) * dtype_size(dt);
          if (pass == 0) read += task.inputs[i].read_raw(range.begin + at, cnt, raw);
          to_f32(dt, raw, dst, cnt);
        }
        buf.ptrs[i] = dst;
      }
      Chunk chunk{range.begin + at, cnt, std::span<const float* const>(buf.ptrs.data(), n)};
      if (!merging) {
        task.merger->accumulate(pass, chunk);
        continue;
      }
      merge_f32(task, chunk, buf.bytes.data() + at * osz, buf);
    }
    if (merging && opt_.write) queue_write(task.index, range, buf.bytes);
    return read;
  }

  // merge() into the worker's f32 buffer, the §8.2 check, and the output dtype's bytes.
  static void merge_f32(TensorTask& task, const Chunk& chunk, uint8_t* dst, WorkerBuffers& buf) {
    const PlannedTensor& pt = *task.planned;
    float* out = buf.out.data();
    task.merger->merge(chunk, out);
    if (any_nonfinite(out, chunk.count)) check_nonfinite(pt, chunk, out);
    from_f32(pt.out_dtype, out, dst, chunk.count);
  }

  // Whether this pass reads input i: merges and resident copies read every input.
  static bool reads_input(const TensorTask& task, int pass, bool merging, size_t i) {
    return merging || !task.resident.empty() || task.merger->pass_reads(pass, i);
  }

  // Points buf.raw_ptrs at the stored bf16 bits of elements [begin, begin + count) of
  // every input the pass reads (the others: null): in the resident copy when there is one
  // (read into it by pass 0), else read into buf.raw (`block` elements per input).
  // Returns the bytes read.
  static uint64_t read_bf16(TensorTask& task, int pass, bool merging, uint64_t begin, uint64_t count,
                            uint64_t block, WorkerBuffers& buf) {
    uint64_t read = 0;
    for (size_t i = 0; i < task.inputs.size(); ++i) {
      if (!reads_input(task, pass, merging, i)) {
        buf.raw_ptrs[i] = nullptr;
        continue;
      }
      if (!task.resident.empty()) {
        uint8_t* raw = task.resident[i].data() + begin * 2;
        if (pass == 0) read += task.inputs[i].read_raw(begin, count, raw);
        buf.raw_ptrs[i] = reinterpret_cast<const uint16_t*>(raw);
        continue;
      }
      uint8_t* dst = buf.raw.data() + i * block * 2;
      read += task.inputs[i].read_raw(begin, count, dst);
      buf.raw_ptrs[i] = reinterpret_cast<const uint16_t*>(dst);
    }
    return read;
  }

  // The merger's sample (methods/method.h): pieces spread over the tensor, read into the
  // worker's input buffers before the first pass.
  uint64_t take_sample(TensorTask& task, WorkerBuffers& buf) {
    const size_t n = task.inputs.size();
    uint64_t read = 0;
    for (int round = 0; round < kMaxSampleRounds; ++round) {
      const uint64_t want = task.merger->sample_elements();
      if (want == 0) break;
      for (const auto& [begin, count] : sample_pieces(shape_numel(task.planned->job.shape), want)) {
        if (buf.in.size() < n * count) buf.in.resize(n * count);
        for (size_t i = 0; i < n; ++i) {
          float* dst = buf.in.data() + i * count;
          read += task.inputs[i].read(begin, count, dst, buf.segments, buf.scratch);
          buf.ptrs[i] = dst;
        }
        task.merger->observe_sample(Chunk{begin, count, std::span<const float* const>(buf.ptrs.data(), n)});
      }
      task.merger->sample_done();
    }
    return read;
  }

  // Output chunks are written one at a time: two workers writing one file at once made
  // the kernel spin on its inode lock (up to 16% of a ties merge's CPU). With a core to
  // spare, a writer thread writes them while the workers go on computing. Otherwise the
  // worker that queues a chunk while no write is in progress writes out the queue (its
  // chunk and any queued meanwhile) itself: handing every chunk to a writer thread cost a
  // wakeup and a context switch per chunk, most of a merge's futex calls (2026-12-03:
  // about 4K context switches per linear merge of the 0.5B bench). The queue holds at
  // most kMaxPendingWrites chunks (memory: exec/executor.cc); a full queue makes the
  // worker wait.
  struct PendingWrite {
    size_t tensor;
    ChunkRange range;
    ByteBuffer bytes;
  };
  static constexpr size_t kMaxPendingWrites = kPendingWrites - 1;

  // Queues `bytes` and leaves `bytes` holding a spare buffer.
  void queue_write(size_t tensor, ChunkRange range, ByteBuffer& bytes) {
    std::unique_lock wlock(wmu_);
    cv_space_.wait(wlock, [&] { return pending_.size() < kMaxPendingWrites || write_failed_; });
    if (write_failed_) return;  // the error is already set; the worker stops at its next chunk
    pending_.push_back({tensor, range, std::move(bytes)});
    bytes.clear();
    if (!spare_bytes_.empty()) {
      bytes = std::move(spare_bytes_.back());
      spare_bytes_.pop_back();
    }
    if (writer_thread_) {
      cv_write_.notify_one();
      return;
    }
    if (writing_) return;  // the worker writing now writes this chunk too
    writing_ = true;
    while (!pending_.empty()) write_front(wlock);
    writing_ = false;
  }

  void write_loop() {
    std::unique_lock wlock(wmu_);
    for (;;) {
      cv_write_.wait(wlock, [&] { return !pending_.empty() || workers_done_; });
      if (pending_.empty()) return;
      write_front(wlock);
    }
  }

  // Writes the queue's first chunk (wmu_ held by `wlock`, released while writing). Only
  // one thread at a time writes (the writer thread, or the worker that set writing_), and
  // only it sets write_failed_: after a failure the queue drains without writing.
  void write_front(std::unique_lock<std::mutex>& wlock) {
    PendingWrite w = std::move(pending_.front());
    pending_.pop_front();
    const bool failed = write_failed_;
    wlock.unlock();
    bool ok = true;
    try {
      if (!failed) opt_.write(w.tensor, w.range.begin, w.range.count, w.bytes.data());
    } catch (...) {
      ok = false;
      std::lock_guard lock(mu_);
      set_error(std::current_exception());
    }
    wlock.lock();
    if (!ok) write_failed_ = true;
    spare_bytes_.push_back(std::move(w.bytes));
    cv_space_.notify_all();
  }

  // METHODS.md §8.2: a non-finite output where every input was finite is an error.
  [[noreturn]] static void nonfinite_error(const PlannedTensor& pt, uint64_t element, float v) {
    fail(ErrorKind::Recipe,
         "tensor {}: method {} produced a non-finite value ({}) at element {} from finite "
         "inputs (e.g. a zero weight sum under normalize); nothing was written",
         pt.job.name, pt.method->name(), v, element);
  }
  static void check_nonfinite(const PlannedTensor& pt, const Chunk& chunk, const float* out) {
    for (uint64_t k = 0; k < chunk.count; ++k) {
      if (!is_nonfinite(out[k])) continue;
      bool inputs_finite = true;
      for (const float* in : chunk.inputs) inputs_finite &= !is_nonfinite(in[k]);
      if (inputs_finite) nonfinite_error(pt, chunk.begin + k, out[k]);
    }
  }

  const MergePlan& plan_;
  const ModelSet& models_;
  const ScheduleOptions& opt_;
  const size_t window_;
  std::mutex mu_;
  std::condition_variable cv_, cv_main_;
  std::deque<std::unique_ptr<TensorTask>> active_;
  std::vector<ByteBuffer> spare_;  // resident buffers of finished tensors
  size_t next_tensor_ = 0, tensors_done_ = 0;
  int running_ = 0;
  uint64_t bytes_read_ = 0, bytes_done_ = 0;
  std::map<std::string, size_t> warnings_;
  std::exception_ptr error_;
  // The write queue (queue_write / write_loop / write_front), guarded by wmu_.
  std::mutex wmu_;
  std::condition_variable cv_write_, cv_space_;
  std::deque<PendingWrite> pending_;
  std::vector<ByteBuffer> spare_bytes_;
  bool workers_done_ = false, write_failed_ = false;
  bool writer_thread_ = false, writing_ = false;

 public:
  void set_running(int n) { running_ = n; }
};

}  // namespace

uint64_t merge_input_bytes(const PlannedTensor& t) {
  uint64_t n = shape_numel(t.job.shape), total = 0;
  for (const auto& in : t.inputs) total += n * dtype_size(in.dtype);
  return total;
}

ScheduleResult run_schedule(const MergePlan& plan, const ModelSet& models,
                            const ScheduleOptions& options) {
  Scheduler s(plan, models, options);
  s.set_running(std::max(1, options.threads));
  return s.run();
}

}  // namespace amalgam
