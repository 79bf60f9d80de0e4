// merge_in_memory: a small executor over resident tensors. Chunks are handed out through
// an atomic counter, so with several threads the visiting order varies from run to run,
// which is exactly what the determinism tests want to exercise.
#include "methods/in_memory.h"

#include <atomic>
#include <exception>
#include <mutex>
#include <thread>

#include "util/error.h"

namespace amalgam {

namespace {
template <class F>
void run_chunks(uint64_t n_chunks, int threads, F&& body) {
  std::atomic<uint64_t> next{0};
  std::exception_ptr err;
  std::mutex mu;
  auto worker = [&] {
    try {
      for (uint64_t c; (c = next.fetch_add(1)) < n_chunks;) body(c);
    } catch (...) {
      std::lock_guard<std::mutex> lock(mu);
      if (!err) err = std::current_exception();
    }
  };
  if (threads <= 1 || n_chunks <= 1) {
    worker();
  } else {
    std::vector<std::thread> pool;
    int t = static_cast<int>(std::min<uint64_t>(threads, n_chunks));
    for (int i = 0; i < t; ++i) pool.emplace_back(worker);
    for (auto& th : pool) th.join();
  }
  if (err) std::rethrow_exception(err);
}
}  // namespace

std::vector<float> merge_in_memory(const MergeMethod& method, const TensorJob& job,
                                   const std::vector<std::vector<float>>& inputs,
                                   uint64_t chunk_elements, int threads) {
  const uint64_t n = job.numel();
  if (inputs.size() != job.n_inputs())
    fail(ErrorKind::Internal, "tensor {}: {} inputs given, job has {}", job.name, inputs.size(),
         job.n_inputs());
  for (size_t i = 0; i < inputs.size(); ++i)
    if (inputs[i].size() != n)
      fail(ErrorKind::Internal, "tensor {}: input {} has {} elements, expected {}", job.name, i,
           inputs[i].size(), n);
  auto merger = method.create(job);
  const uint64_t block = reduction_block(merger->row_length());
  uint64_t chunk = std::max<uint64_t>(chunk_elements, 1);
  chunk = (chunk + block - 1) / block * block;
  const uint64_t n_chunks = n == 0 ? 0 : (n + chunk - 1) / chunk;

  auto make_chunk = [&](uint64_t c, std::vector<const float*>& ptrs) {
    Chunk ch;
    ch.begin = c * chunk;
    ch.count = std::min(chunk, n - ch.begin);
    ptrs.resize(inputs.size());
    for (size_t i = 0; i < inputs.size(); ++i) ptrs[i] = inputs[i].data() + ch.begin;
    ch.inputs = std::span<const float* const>(ptrs.data(), ptrs.size());
    return ch;
  };
  for (int round = 0; round < kMaxSampleRounds; ++round) {
    const uint64_t want = merger->sample_elements();
    if (want == 0) break;
    std::vector<const float*> ptrs(inputs.size());
    for (const auto& [begin, count] : sample_pieces(n, want)) {
      for (size_t i = 0; i < inputs.size(); ++i) ptrs[i] = inputs[i].data() + begin;
      merger->observe_sample(Chunk{begin, count, std::span<const float* const>(ptrs.data(), ptrs.size())});
    }
    merger->sample_done();
  }
  // stat_passes() is re-read after every pass: a merger may learn that it needs fewer.
  for (int pass = 0; pass < merger->stat_passes(); ++pass) {
    run_chunks(n_chunks, threads, [&](uint64_t c) {
      std::vector<const float*> ptrs;
      Chunk ch = make_chunk(c, ptrs);
      // As the executor: the inputs this pass does not read are null.
      for (size_t i = 0; i < ptrs.size(); ++i)
        if (!merger->pass_reads(pass, i)) ptrs[i] = nullptr;
      merger->accumulate(pass, ch);
    });
    merger->finish_pass(pass);
  }
  std::vector<float> out(n);
  run_chunks(n_chunks, threads, [&](uint64_t c) {
    std::vector<const float*> ptrs;
    Chunk ch = make_chunk(c, ptrs);
    merger->merge(ch, out.data() + ch.begin);
  });
  return out;
}

}  // namespace amalgam
