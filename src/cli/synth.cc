// `amalgam synth OUT_DIR --family F --size S`: writes a synthetic base model and N
// fine-tunes of a real model family (see core/synth/synth.h) for tests and benchmarks.
#include <cstdio>
#include <memory>
#include <optional>

#include <fmt/format.h>

#include "cli/command.h"
#include "io/safetensors_writer.h"
#include "synth/synth.h"
#include "util/error.h"
#include "util/progress.h"

namespace amalgam::cli {
namespace {

struct SynthArgs {
  std::string out_dir, family, size, dtype = "bf16", shard_size = "5B";
  int experts = 2, threads = 0;
  uint64_t seed = 0;
  bool json = false, dry_run = false, force = false;
};

std::string human_bytes(double n) {
  if (n >= 1e9) return fmt::format("{:.2f} GB", n / 1e9);
  if (n >= 1e6) return fmt::format("{:.1f} MB", n / 1e6);
  return fmt::format("{:.1f} KB", n / 1e3);
}

std::string human_count(double n) {
  if (n >= 1e9) return fmt::format("{:.2f}B", n / 1e9);
  if (n >= 1e6) return fmt::format("{:.1f}M", n / 1e6);
  if (n >= 1e3) return fmt::format("{:.1f}K", n / 1e3);
  return fmt::format("{:.0f}", n);
}

void run(const SynthArgs& a) {
  synth::SynthOptions o;
  o.family = synth::parse_family(a.family);
  o.params = synth::parse_param_count(a.size);
  std::optional<DType> dtype = parse_torch_dtype(a.dtype);
  if (a.dtype == "bf16") dtype = DType::BF16;
  if (a.dtype == "f16" || a.dtype == "fp16") dtype = DType::F16;
  if (a.dtype == "f32" || a.dtype == "fp32") dtype = DType::F32;
  if (!dtype) fail(ErrorKind::Usage, "unknown --dtype '{}' (expected bf16, f16 or f32)", a.dtype);
  o.dtype = *dtype;
  o.experts = a.experts;
  o.seed = a.seed;
  o.max_shard_bytes = parse_byte_size(a.shard_size);
  o.threads = a.threads > 0 ? a.threads : default_threads();
  o.force = a.force;

  synth::SynthPlan plan = synth::plan_synth(o);
  if (!a.dry_run) {
    Progress progress("synth", plan.total_bytes(), "B");
    o.progress = [&](uint64_t n) { progress.advance(n); };
    plan = synth::write_synth(a.out_dir, o);
    progress.finish();
  }
  if (a.json) {
    nlohmann::json j = synth::plan_json(plan, o);
    j["out_dir"] = a.out_dir;
    j["written"] = !a.dry_run;
    fmt::print("{}\n", j.dump(2));
    return;
  }
  const auto& s = plan.shape;
  fmt::print("{} {} {}: hidden {}, {} layers, {} heads ({} kv, head_dim {}), intermediate {}, "
             "vocab {}{}\n",
             a.dry_run ? "would write" : "wrote", synth::family_name(s.family),
             s.preset.empty() ? "(scaled)" : s.preset, s.hidden, s.layers, s.heads, s.kv_heads,
             s.head_dim, s.intermediate, s.vocab, s.tied ? ", tied embeddings" : "");
  fmt::print("  {} params ({} requested), {} tensors, {} {} in {} shard(s) per model\n",
             human_count(plan.params), human_count(o.params), plan.tensors,
             human_bytes(plan.bytes_per_model), a.dtype, plan.shards_per_model);
  for (const auto& m : plan.models) fmt::print("  {}/{}\n", a.out_dir, m);
}

Command synth_command(20, "synth", [](CLI::App& app) {
  auto args = std::make_shared<SynthArgs>();
  CLI::App* c = app.add_subcommand(
      "synth", "Write a deterministic synthetic base model + fine-tunes of a real family");
  c->add_option("OUT_DIR", args->out_dir, "Output directory (gets base/, expert_1/, ...)")
      ->required();
  c->add_option("--family", args->family, "llama, mistral, qwen2 or gpt2")->required();
  c->add_option("--size", args->size, "Parameter count: 1M, 10M, 0.5B, 3B, ...")->required();
  c->add_option("--dtype", args->dtype, "bf16, f16 or f32")->capture_default_str();
  c->add_option("--experts", args->experts, "Number of fine-tunes")->capture_default_str();
  c->add_option("--seed", args->seed, "Generator seed")->capture_default_str();
  c->add_option("--shard-size", args->shard_size, "Largest shard (5B, 500M, 2Gi)")
      ->capture_default_str();
  c->add_option("--threads", args->threads, "Worker threads (default: all cores)");
  c->add_flag("--json", args->json, "Print the summary as JSON");
  c->add_flag("--dry-run", args->dry_run, "Show shapes and sizes, write nothing");
  c->add_flag("--force", args->force, "Replace a non-empty OUT_DIR");
  c->callback([args] { run(*args); });
});

}  // namespace
}  // namespace amalgam::cli
