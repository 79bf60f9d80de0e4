#include "synth/synth.h"

#include <unistd.h>

#include <atomic>
#include <filesystem>
#include <fstream>
#include <memory>
#include <mutex>
#include <thread>

#include "io/safetensors_writer.h"
#include "kernels/convert.h"
#include "synth/values.h"
#include "util/error.h"

namespace amalgam::synth {

namespace fs = std::filesystem;

namespace {

void check_options(const SynthOptions& o) {
  if (o.dtype != DType::BF16 && o.dtype != DType::F16 && o.dtype != DType::F32)
    fail(ErrorKind::Usage, "synth writes bf16, f16 or f32, not {}", dtype_name(o.dtype));
  if (o.experts < 0 || o.experts > 64)
    fail(ErrorKind::Usage, "--experts must be between 0 and 64 (got {})", o.experts);
  if (o.threads < 1) fail(ErrorKind::Usage, "--threads must be at least 1");
  if (o.chunk_elements == 0) fail(ErrorKind::Usage, "chunk size must be positive");
}

void write_text(const fs::path& path, const std::string& text) {
  std::ofstream f(path, std::ios::binary);
  f << text;
  f.close();
  if (!f) fail(ErrorKind::Io, "cannot write {}", path.string());
}

struct WorkItem {
  size_t tensor;
  uint64_t first, count;
};

// One model directory: config files, then every tensor chunk by chunk on `threads`.
void write_model(const fs::path& dir, const SynthPlan& plan, const SynthOptions& o, int model) {
  fs::create_directories(dir);
  const nlohmann::json config = config_json(plan.shape, o.dtype);
  write_text(dir / "config.json", config.dump(2) + "\n");
  nlohmann::json gen = {{"_from_model_config", true},
                        {"bos_token_id", config["bos_token_id"]},
                        {"eos_token_id", config["eos_token_id"]},
                        {"transformers_version", config["transformers_version"]}};
  write_text(dir / "generation_config.json", gen.dump(2) + "\n");

  const std::vector<TensorSpec> specs = tensor_specs(plan.shape);
  std::vector<OutputTensor> outputs;
  outputs.reserve(specs.size());
  for (const auto& s : specs) outputs.push_back({s.name, o.dtype, s.shape});
  ShardedWriter writer(dir.string(), std::move(outputs), o.max_shard_bytes,
                       o.env ? o.env : FileEnv::posix());

  std::vector<WorkItem> items;
  std::vector<std::atomic<uint64_t>> remaining(specs.size());
  for (size_t t = 0; t < specs.size(); ++t) {
    const uint64_t n = specs[t].numel();
    uint64_t chunks = 0;
    for (uint64_t first = 0; first < n; first += o.chunk_elements, ++chunks)
      items.push_back({t, first, std::min(o.chunk_elements, n - first)});
    remaining[t] = chunks;
  }
  // A tensor's generator (its low-rank factors) is built by the first chunk that needs
  // it and dropped after its last chunk, so at most ~threads of them are alive.
  std::vector<std::once_flag> built(specs.size());
  std::vector<std::unique_ptr<TensorValues>> values(specs.size());
  std::atomic<size_t> next{0};
  std::atomic<bool> failed{false};
  std::exception_ptr error;
  std::mutex error_mu;
  const size_t esize = dtype_size(o.dtype);

  auto worker = [&] {
    std::vector<float> f32(o.chunk_elements);
    std::vector<uint8_t> bytes(o.chunk_elements * esize);
    try {
      while (!failed) {
        const size_t i = next.fetch_add(1);
        if (i >= items.size()) break;
        const WorkItem& w = items[i];
        std::call_once(built[w.tensor], [&] {
          values[w.tensor] = std::make_unique<TensorValues>(o.seed, specs[w.tensor], model);
        });
        values[w.tensor]->fill(w.first, w.count, f32.data());
        from_f32(o.dtype, f32.data(), bytes.data(), w.count);
        writer.write(w.tensor, w.first * esize, bytes.data(), w.count * esize);
        if (o.progress) o.progress(w.count * esize);
        if (remaining[w.tensor].fetch_sub(1) == 1) values[w.tensor].reset();
      }
    } catch (...) {
      std::lock_guard<std::mutex> lock(error_mu);
      if (!error) error = std::current_exception();
      failed = true;
    }
  };
  std::vector<std::thread> pool;
  for (int t = 1; t < o.threads; ++t) pool.emplace_back(worker);
  worker();
  for (auto& t : pool) t.join();
  if (error) std::rethrow_exception(error);
  writer.finish();
}

bool is_empty_dir(const fs::path& p) {
  return fs::is_directory(p) && fs::directory_iterator(p) == fs::directory_iterator();
}

}  // namespace

SynthPlan plan_synth(const SynthOptions& o) {
  check_options(o);
  SynthPlan plan;
  plan.shape = shape_for_size(o.family, o.params);
  const auto specs = tensor_specs(plan.shape);
  plan.tensors = specs.size();
  // Same layout rule as ShardedWriter: tensors in order, a new shard when the next
  // tensor would overflow a non-empty one.
  uint64_t shard_bytes = 0;
  plan.shards_per_model = 1;
  for (const auto& s : specs) {
    const uint64_t b = s.numel() * dtype_size(o.dtype);
    plan.params += s.numel();
    plan.bytes_per_model += b;
    if (shard_bytes > 0 && shard_bytes + b > o.max_shard_bytes) ++plan.shards_per_model, shard_bytes = 0;
    shard_bytes += b;
  }
  plan.models.push_back("base");
  for (int e = 1; e <= o.experts; ++e) plan.models.push_back("expert_" + std::to_string(e));
  return plan;
}

SynthPlan write_synth(const std::string& out_dir, const SynthOptions& o) {
  SynthPlan plan = plan_synth(o);
  fs::path out = fs::path(out_dir).lexically_normal();
  if (out.empty()) fail(ErrorKind::Usage, "empty output directory");
  if (out.filename().empty()) out = out.parent_path();  // "out/" -> "out"
  std::error_code ec;
  if (fs::exists(out, ec)) {
    if (!fs::is_directory(out))
      fail(ErrorKind::Usage, "{} exists and is not a directory", out.string());
    if (!is_empty_dir(out) && !o.force)
      fail(ErrorKind::Usage, "{} is not empty (use --force to replace it)", out.string());
  }
  fs::path tmp = out;
  tmp += ".amalgam-synth-" + std::to_string(::getpid());
  try {
    fs::remove_all(tmp);
    fs::create_directories(tmp);
    for (size_t m = 0; m < plan.models.size(); ++m)
      write_model(tmp / plan.models[m], plan, o, static_cast<int>(m));
    if (fs::exists(out)) fs::remove_all(out);
    fs::rename(tmp, out);
  } catch (const fs::filesystem_error& e) {
    fs::remove_all(tmp, ec);
    fail(ErrorKind::Io, "writing {}: {}", out.string(), e.what());
  } catch (...) {
    fs::remove_all(tmp, ec);
    throw;
  }
  return plan;
}

nlohmann::json plan_json(const SynthPlan& plan, const SynthOptions& o) {
  const ModelShape& s = plan.shape;
  return {{"family", family_name(s.family)},
          {"preset", s.preset.empty() ? nlohmann::json(nullptr) : nlohmann::json(s.preset)},
          {"requested_params", o.params},
          {"params", plan.params},
          {"tensors", plan.tensors},
          {"dtype", std::string(torch_dtype_name(o.dtype))},
          {"seed", o.seed},
          {"hidden_size", s.hidden},
          {"num_hidden_layers", s.layers},
          {"num_attention_heads", s.heads},
          {"num_key_value_heads", s.kv_heads},
          {"head_dim", s.head_dim},
          {"intermediate_size", s.intermediate},
          {"vocab_size", s.vocab},
          {"tie_word_embeddings", s.tied},
          {"bytes_per_model", plan.bytes_per_model},
          {"shards_per_model", plan.shards_per_model},
          {"total_bytes", plan.total_bytes()},
          {"models", plan.models}};
}

}  // namespace amalgam::synth
