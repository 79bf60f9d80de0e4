// load_weights: every float tensor of a model directory into a WeightMap, converted to the
// compute dtype through the core conversion kernels (exact for 8/16-bit floats), and the
// thread/BLAS set-up that every torch command runs first.
#include <dlfcn.h>

#include <fstream>
#include <mutex>
#include <string>

#include "io/model_dir.h"
#include "torch/eval/causal_lm.h"
#include "util/error.h"
#include "util/heap.h"
#include "util/progress.h"

namespace amalgam {

WeightMap load_weights(const ModelDir& model, torch::Dtype dtype) {
  if (dtype != torch::kFloat32 && dtype != torch::kBFloat16)
    fail(ErrorKind::Usage, "load_weights: compute dtype must be f32 or bf16");
  WeightMap weights;
  for (const auto& name : model.tensor_names()) {
    TensorRef ref = model.get(name);
    // Integer/bool buffers (e.g. old GPT-2 causal-mask buffers) are not weights.
    if (!dtype_is_float(ref.info->dtype)) continue;
    auto t = torch::empty(ref.info->shape, torch::kFloat32);
    ref.file->read_f32(*ref.info, 0, ref.info->numel(), t.data_ptr<float>());
    weights.emplace(name, dtype == torch::kFloat32 ? t : t.to(dtype));
  }
  return weights;
}

namespace {

bool blas_is_openblas() {
  std::ifstream maps("/proc/self/maps");
  std::string line;
  while (std::getline(maps, line))
    if (line.find("openblas") != std::string::npos) return true;
  return false;
}

}  // namespace

void configure_torch_threads(int threads) {
  if (threads < 1) threads = 1;
  torch::set_num_threads(threads);
  // OpenBLAS keeps its own pool, which torch's setting does not reach.
  using SetThreads = void (*)(int);
  if (auto fn = reinterpret_cast<SetThreads>(dlsym(RTLD_DEFAULT, "openblas_set_num_threads"))) fn(threads);
  static std::once_flag checked;
  std::call_once(checked, [] {
    // Every activation and logits buffer of a forward pass page-faulted and zeroed its
    // memory anew: ~8% of an eval in the kernel. Keeping such blocks in the heap made the
    // eval benchmark 10-20% faster (bench/eval_bench.py).
    retain_freed_heap_memory();
    // The BLAS library is only mapped once torch has used it: run one small matmul first.
    auto a = torch::ones({64, 64});
    (void)torch::mm(a, a);
    if (!blas_is_openblas())
      report_warning(
          "warning: the BLAS behind libtorch is not OpenBLAS; matrix products will be 20-45x "
          "slower (install libopenblas0-pthread)");
  });
}

}  // namespace amalgam
