// Per-method throughput of merge_in_memory: base + 4 models of ROWS x COLS bf16-rounded
// values, counted as bf16 input bytes per CPU second (the figure docs/methods.md quotes).
// Also prints an FNV hash of the output bits so that before/after builds can be compared.
// Usage: bench_methods [THREADS=1] [ROWS=4096] [COLS=4096] [REPS=3] [METHOD...]
#include <time.h>

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>
#include <random>
#include <string>
#include <vector>

#include "methods/in_memory.h"
#include "methods/method.h"

using namespace amalgam;

namespace {

double cpu_seconds() {
  timespec ts;
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
  return ts.tv_sec + ts.tv_nsec * 1e-9;
}

std::vector<std::vector<float>> models(size_t n_models, size_t numel) {
  std::mt19937_64 rng(1234);
  std::normal_distribution<float> nd(0.0f, 1.0f);
  std::vector<std::vector<float>> out(n_models, std::vector<float>(numel));
  for (size_t i = 0; i < numel; ++i) out[0][i] = nd(rng);
  for (size_t m = 1; m < n_models; ++m)
    for (size_t i = 0; i < numel; ++i) out[m][i] = out[0][i] + 0.05f * nd(rng);
  for (auto& v : out)
    for (float& x : v) {  // round to bf16 (nearest even)
      uint32_t u;
      std::memcpy(&u, &x, 4);
      u = (u + 0x7fff + ((u >> 16) & 1)) & 0xffff0000u;
      std::memcpy(&x, &u, 4);
    }
  return out;
}

struct Case {
  const char* method;
  std::map<std::string, double> mp, p;
};

}  // namespace

int main(int argc, char** argv) {
  int threads = argc > 1 ? std::atoi(argv[1]) : 1;
  int64_t rows = argc > 2 ? std::atoll(argv[2]) : 4096;
  int64_t cols = argc > 3 ? std::atoll(argv[3]) : 4096;
  int reps = argc > 4 ? std::atoi(argv[4]) : 3;
  std::vector<std::string> only(argv + std::min(argc, 5), argv + argc);
  const size_t N = static_cast<size_t>(rows * cols), n_in = 5;
  auto in = models(n_in, N);
  const std::vector<Case> cases = {
      {"linear", {{"weight", 0.2}}, {}},
      {"task_arithmetic", {{"weight", 0.3}}, {}},
      {"ties", {{"weight", 0.3}, {"density", 0.3}}, {}},
      {"dare_ties", {{"weight", 0.3}, {"density", 0.3}}, {}},
      {"breadcrumbs", {{"weight", 0.3}, {"density", 0.3}, {"gamma", 0.01}}, {}},
      {"della", {{"weight", 0.3}, {"density", 0.3}, {"epsilon", 0.1}}, {}},
  };
  std::printf("%-16s %9s %9s %7s %18s\n", "method", "cpu_ms", "GB/s/core", "passes", "output_fnv");
  for (const auto& c : cases) {
    if (!only.empty() && std::find(only.begin(), only.end(), c.method) == only.end()) continue;
    const MergeMethod* m = find_method(c.method);
    TensorJob job;
    job.name = "model.layers.0.mlp.down_proj.weight";
    job.shape = {rows, cols};
    for (size_t i = 0; i < n_in; ++i) job.input_labels.push_back("model" + std::to_string(i));
    job.base = std::string(c.method) == "linear" ? -1 : 0;
    job.model_params.assign(n_in, c.mp);
    if (job.base == 0) job.model_params[0] = {};
    job.params = c.p;
    int passes = static_cast<int>(m->create(job)->stat_passes());
    double best = 1e30;
    uint64_t h = 1469598103934665603ull;
    for (int r = 0; r < reps; ++r) {
      double t0 = cpu_seconds();
      auto out = merge_in_memory(*m, job, in, 1 << 20, threads);
      double t = cpu_seconds() - t0;
      best = std::min(best, t);
      if (r == 0)
        for (float x : out) {
          uint32_t u;
          std::memcpy(&u, &x, 4);
          h = (h ^ u) * 1099511628211ull;
        }
    }
    double bytes = static_cast<double>(N) * n_in * 2;
    std::printf("%-16s %9.1f %9.2f %7d %18llx\n", c.method, best * 1e3, bytes / best / 1e9, passes,
                static_cast<unsigned long long>(h));
  }
  return 0;
}
