#include "exec/executor.h"

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <set>

#include "exec/cancel.h"
#include "exec/chat_template.h"
#include "exec/chunking.h"
#include "exec/model_card.h"
#include "exec/scheduler.h"
#include "exec/staging_dir.h"
#include "exec/tensor_reader.h"
#include "io/safetensors_writer.h"
#include "util/error.h"

namespace amalgam {
namespace fs = std::filesystem;
namespace {

// Heap, libraries, plan and headers: what a merge costs before its first chunk.
constexpr uint64_t kBaselineBytes = 48ull << 20;
// Per worker: mmap fault-around keeps up to 64 KiB mapped past each released range.
constexpr uint64_t kFaultAroundBytes = 64ull << 10;

void check_cancel() {
  if (cancel_requested()) fail(ErrorKind::Io, "merge interrupted");
}

// Every job is created once before anything is written, so a bad parameter or input
// shape is reported before the staging directory exists (ARCHITECTURE.md idea 4).
void validate_jobs(const MergePlan& plan, const ModelSet& models) {
  for (const auto& pt : plan.tensors) {
    if (!pt.method) fail(ErrorKind::Internal, "tensor {}: no merge method planned", pt.job.name);
    pt.method->create(pt.job);
    for (const auto& ref : pt.inputs) InputReader(models, ref, pt.job.shape, pt.load_dtype, /*for_reading=*/false);
  }
}

// config.json, tokenizer, generation config, model card and recipe into the staging dir.
std::vector<std::string> write_side_files(const MergePlan& plan, const ModelSet& models,
                                          const Recipe& recipe, const std::string& dir,
                                          const std::string& out_name, const ExecOptions& o,
                                          FileEnv* env) {
  std::vector<std::string> files;
  auto put = [&](const std::string& name, const std::string& bytes) {
    write_file(env, dir + "/" + name, bytes);
    files.push_back(name);
  };
  if (!plan.output_config.is_null() && !plan.output_config.empty())
    put("config.json", plan.output_config.dump(2) + "\n");
  std::set<std::string> copied(files.begin(), files.end());
  auto copy = [&](const ModelDir& model, const std::string& file, const std::string& as) {
    fs::path src = fs::path(file).is_absolute() ? fs::path(file) : fs::path(model.path()) / file;
    if (!copied.insert(as).second) return;
    copy_file(env, src.string(), dir + "/" + as);
    files.push_back(as);
  };
  if (o.copy_tokenizer && plan.tokenizer_donor) {
    // The output vocabulary's own files first; the donor's others are copied beside them.
    for (const auto& [name, bytes] : plan.tokenizer_files) {
      put(name, bytes);
      copied.insert(name);
    }
    const ModelDir& donor = models.at(*plan.tokenizer_donor);
    for (const auto& f : donor.tokenizer_files()) copy(donor, f, fs::path(f).filename().string());
  }
  if (plan.config_donor < models.size()) {
    const ModelDir& donor = models.at(plan.config_donor);
    if (auto gen = donor.generation_config_file()) copy(donor, *gen, "generation_config.json");
  }
  if (o.write_model_card) put("README.md", model_card(plan, models, recipe, out_name));
  if (!recipe.text.empty()) put("mergekit_config.yml", recipe.text);
  return files;
}

}  // namespace

MemoryEstimate estimate_memory(const MergePlan& plan, const ExecOptions& options) {
  const uint64_t threads = static_cast<uint64_t>(std::max(1, options.threads));
  uint64_t per_worker = 0, metadata = 0, resident = 0, held = 0, out_chunk = 0;
  for (const auto& pt : plan.tensors) {
    metadata += 512 + pt.job.name.size() * (pt.inputs.size() + 2);
    if (!pt.inputs.empty() && pt.inputs[0].remap) metadata += pt.inputs[0].remap->bytes();
    if (!pt.method) continue;
    auto merger = pt.method->create(pt.job);
    uint64_t chunk = chunk_size_for(options.chunk_elements, reduction_block(merger->row_length()));
    uint64_t c = std::min<uint64_t>(chunk, shape_numel(pt.job.shape));
    uint64_t n = pt.inputs.size();
    uint64_t stored = 0;
    for (const auto& in : pt.inputs) stored += dtype_size(in.dtype);
    // f32 inputs + f32 output + out-dtype bytes + load-rounding scratch + the stored
    // bytes of the bf16 path + mapped input pages until they are released.
    uint64_t bytes = c * (4 * (n + 1) + dtype_size(pt.out_dtype) + 2 + 2 * stored) +
                     n * kFaultAroundBytes;
    per_worker = std::max(per_worker, bytes);
    out_chunk = std::max(out_chunk, c * dtype_size(pt.out_dtype));
    // Multi-pass tensors that fit resident_bytes keep their stored inputs in memory.
    const uint64_t whole = merge_input_bytes(pt);
    if (merger->stat_passes() > 0 && whole <= options.resident_bytes) resident = std::max(resident, whole);
    held = std::max(held, merger->held_bytes());
  }
  // Up to threads + 1 tensors are in flight at once (exec/scheduler.h), and a few output
  // chunks wait for the writer thread.
  return {kBaselineBytes + metadata + threads * per_worker + (threads + 1) * (resident + held) +
          kPendingWrites * out_chunk};
}

ExecResult execute_plan(const MergePlan& plan, const ModelSet& models, const Recipe& recipe,
                        const std::string& out_dir, const ExecOptions& options) {
  auto start = std::chrono::steady_clock::now();
  FileEnv* env = options.env ? options.env : FileEnv::posix(options.durable);
  validate_jobs(plan, models);
  // Resolved before any work, so that "auto" without a template fails early.
  std::optional<std::string> chat_template;
  if (recipe.chat_template) chat_template = resolve_chat_template(*recipe.chat_template, models);
  check_cancel();

  StagingDir staging(out_dir, options.force);  // removed again unless published
  std::vector<OutputTensor> outputs;
  outputs.reserve(plan.tensors.size());
  uint64_t total_input = 0;
  for (const auto& pt : plan.tensors) {
    outputs.push_back({pt.job.name, pt.out_dtype, pt.job.shape});
    total_input += merge_input_bytes(pt);
  }

  ExecResult result;
  {
    ShardedWriter writer(staging.path(), outputs, options.max_shard_bytes, env);
    ScheduleOptions so;
    so.threads = std::max(1, options.threads);
    so.chunk_elements = std::max<uint64_t>(1, options.chunk_elements);
    so.resident_bytes = options.resident_bytes;
    so.bf16_merge = options.bf16_merge;
    so.write = [&](size_t index, uint64_t begin, uint64_t count, const void* bytes) {
      size_t size = dtype_size(outputs[index].dtype);
      writer.write(index, begin * size, bytes, count * size);
    };
    if (options.progress) {
      so.progress = [&](size_t done, uint64_t bytes) {
        options.progress(done, plan.tensors.size(), bytes, total_input);
      };
    }
    ScheduleResult sr = run_schedule(plan, models, so);
    check_cancel();
    result.files = writer.finish();
    result.bytes_read = sr.bytes_read;
    result.bytes_written = writer.total_bytes();
    result.warnings = std::move(sr.warnings);
  }
  std::string out_name = fs::path(staging.out_dir()).filename().string();
  for (auto& f : write_side_files(plan, models, recipe, staging.path(), out_name, options, env))
    result.files.push_back(std::move(f));
  if (chat_template)
    for (auto& f : write_chat_template(staging.path(), *chat_template, env)) result.files.push_back(std::move(f));
  check_cancel();
  staging.publish();
  result.seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  return result;
}

}  // namespace amalgam
