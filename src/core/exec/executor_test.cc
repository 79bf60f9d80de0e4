// execute_plan end to end on small synthetic checkpoints (real reader, planner, methods,
// writer): exactness properties, determinism across threads and chunk sizes, the output
// directory contents, and failure paths (full disk, non-finite result, cancel).
#include "exec/executor.h"

#include <atomic>
#include <filesystem>
#include <memory>

#include <gtest/gtest.h>

#include "exec/cancel.h"
#include "exec/exec_test_util.h"
#include "io/model_dir.h"
#include "io/safetensors_reader.h"
#include "util/error.h"

namespace amalgam {
namespace {
namespace fs = std::filesystem;
using exec_test::ModelSpec;

struct Models {
  std::string root, base, e1, e2, e3;
};

// Base + 3 experts in `dt`, written once per dtype and shared by the tests.
const Models& models(DType dt) {
  static std::map<DType, Models> cache;
  auto it = cache.find(dt);
  if (it != cache.end()) return it->second;
  Models m;
  m.root = exec_test::scratch_dir(std::string("models_") + std::string(dtype_name(dt)));
  ModelSpec s;
  s.dtype = dt;
  m.base = m.root + "/base";
  s.noise = 0;
  exec_test::write_model(m.base, s);
  std::string* experts[] = {&m.e1, &m.e2, &m.e3};
  for (int i = 0; i < 3; ++i) {
    *experts[i] = m.root + "/expert" + std::to_string(i + 1);
    s.seed = i + 1;
    s.noise = 0.02f;
    exec_test::write_model(*experts[i], s);
  }
  return cache[dt] = m;
}

using exec_test::merge_text;

std::string gta_recipe(const std::string& method, const Models& m, const std::string& extra) {
  return "merge_method: " + method + "\nbase_model: " + m.base + "\nmodels:\n" +
         "  - model: " + m.e1 + "\n    parameters: {weight: 1.0, density: 0.5}\n" +
         "  - model: " + m.e2 + "\n    parameters: {weight: 0.5, density: 0.5}\n" +
         "  - model: " + m.e3 + "\n    parameters: {weight: 0.8, density: 0.5}\n" + extra;
}

bool no_leftovers(const std::string& parent) {
  for (auto& e : fs::directory_iterator(parent)) {
    std::string n = e.path().filename().string();
    if (n.find(".tmp-") != std::string::npos || n.find(".old-") != std::string::npos) return false;
  }
  return true;
}

TEST(Executor, LinearOneZeroReturnsModelOneBitForBit) {
  const Models& m = models(DType::BF16);
  std::string out = exec_test::scratch_dir("lin10") + "/out";
  merge_text("merge_method: linear\nmodels:\n  - model: " + m.e1 +
            "\n    parameters: {weight: 1.0}\n  - model: " + m.e2 +
            "\n    parameters: {weight: 0.0}\n",
        out);
  EXPECT_EQ(exec_test::weight_bytes(out), exec_test::weight_bytes(m.e1));
}

TEST(Executor, MergingAModelWithItselfReturnsIt) {
  const Models& m = models(DType::BF16);
  std::string root = exec_test::scratch_dir("self");
  // A recipe may not list one directory twice: merge it with a byte-identical copy.
  fs::copy(m.e1, root + "/copy", fs::copy_options::recursive);
  merge_text("merge_method: linear\nmodels:\n  - model: " + m.e1 +
            "\n    parameters: {weight: 0.3}\n  - model: " + root + "/copy" +
            "\n    parameters: {weight: 0.7}\n",
        root + "/lin");
  EXPECT_EQ(exec_test::weight_bytes(root + "/lin"), exec_test::weight_bytes(m.e1));
  merge_text("merge_method: ties\nbase_model: " + m.e2 + "\nmodels:\n  - model: " + m.e2 +
            "\n    parameters: {weight: 1.0, density: 0.5}\n",
        root + "/ties");
  EXPECT_EQ(exec_test::weight_bytes(root + "/ties"), exec_test::weight_bytes(m.e2));
}

TEST(Executor, DeterministicAcrossThreadsAndChunkSizes) {
  const Models& m = models(DType::BF16);
  for (std::string method : {"ties", "dare_ties", "breadcrumbs", "della"}) {
    std::string root = exec_test::scratch_dir("det_" + method);
    std::string recipe = gta_recipe(method, m, method == "breadcrumbs" ? "parameters: {gamma: 0.05}\n" : "");
    std::string reference;
    int run = 0;
    // Inputs kept in memory between passes (the default for these small tensors) or
    // re-read in every pass (resident 0): the same bytes.
    const std::tuple<int, uint64_t, uint64_t> configs[] = {
        {1, 1 << 20, 0}, {2, 1, 64 << 20}, {4, 100000, 0}, {2, 1 << 20, 64 << 20}, {3, 65536, 64 << 20}};
    for (auto [threads, chunk, resident] : configs) {
      {
        ExecOptions o;
        o.threads = threads;
        o.chunk_elements = chunk;
        o.resident_bytes = resident;
        std::string out = root + "/out" + std::to_string(run++);
        merge_text(recipe, out, o);
        std::string bytes = exec_test::weight_bytes(out);
        if (reference.empty()) reference = bytes;
        EXPECT_TRUE(bytes == reference) << method << " threads " << threads << " chunk " << chunk;
      }
    }
  }
}

// bf16 checkpoints merged to bf16 take TensorMerger::merge_bf16: the same bytes as the f32
// path, with inputs kept in memory between passes or re-read, in one chunk or many.
TEST(Executor, Bf16MergePathWritesTheBytesOfTheF32Path) {
  const Models& m = models(DType::BF16);
  for (std::string method : {"task_arithmetic", "ties", "dare_ties", "dare_linear", "breadcrumbs",
                             "breadcrumbs_ties", "della", "della_linear", "linear"}) {
    std::string root = exec_test::scratch_dir("bf16_" + method);
    std::string recipe =
        method == "linear"
            ? "merge_method: linear\nmodels:\n  - model: " + m.e1 + "\n    parameters: {weight: 0.3}\n  - model: " +
                  m.e2 + "\n    parameters: {weight: 0.7}\n"
            : gta_recipe(method, m, method.starts_with("breadcrumbs") ? "parameters: {gamma: 0.05}\n" : "");
    std::string reference;
    int run = 0;
    for (bool bf16 : {false, true})
      for (auto [chunk, resident] : {std::pair<uint64_t, uint64_t>{1 << 20, 64 << 20}, {1, 0}}) {
        ExecOptions o;
        o.threads = 2;
        o.chunk_elements = chunk;
        o.resident_bytes = resident;
        o.bf16_merge = bf16;
        std::string out = root + "/out" + std::to_string(run++);
        merge_text(recipe, out, o);
        std::string bytes = exec_test::weight_bytes(out);
        if (reference.empty()) reference = bytes;
        EXPECT_TRUE(bytes == reference) << method << " bf16 path " << bf16 << " chunk " << chunk;
      }
  }
}

TEST(Executor, WritesConfigTokenizerCardAndRecipe) {
  const Models& m = models(DType::BF16);
  std::string out = exec_test::scratch_dir("files") + "/out";
  std::string recipe = gta_recipe("task_arithmetic", m, "");
  ExecResult r = merge_text(recipe, out);
  for (auto f : {"model.safetensors", "config.json", "tokenizer_config.json",
                 "generation_config.json", "README.md", "mergekit_config.yml"}) {
    EXPECT_TRUE(fs::exists(out + "/" + f)) << f;
    EXPECT_NE(std::find(r.files.begin(), r.files.end(), f), r.files.end()) << f;
  }
  EXPECT_EQ(exec_test::read_bytes(out + "/mergekit_config.yml"), recipe);
  std::string card = exec_test::read_bytes(out + "/README.md");
  EXPECT_NE(card.find("```yaml\n" + recipe), std::string::npos);
  EXPECT_NE(card.find("task_arithmetic"), std::string::npos);
  // The tokenizer comes from the base model (its tokenizer_config names seed 0).
  EXPECT_EQ(exec_test::read_bytes(out + "/tokenizer_config.json"),
            exec_test::read_bytes(m.base + "/tokenizer_config.json"));
  EXPECT_GT(r.bytes_read, 0u);
  EXPECT_TRUE(no_leftovers(fs::path(out).parent_path().string()));

  ExecOptions bare;
  bare.copy_tokenizer = false;
  bare.write_model_card = false;
  merge_text(recipe, out + "2", bare);
  EXPECT_FALSE(fs::exists(out + "2/tokenizer_config.json"));
  EXPECT_FALSE(fs::exists(out + "2/README.md"));
}

TEST(Executor, ShardedOutputLoadsLikeSingleFile) {
  const Models& m = models(DType::F32);
  std::string root = exec_test::scratch_dir("sharded");
  std::string recipe = gta_recipe("ties", m, "");
  merge_text(recipe, root + "/single");
  ExecOptions o;
  o.max_shard_bytes = 600000;
  o.threads = 2;
  merge_text(recipe, root + "/sharded", o);
  EXPECT_TRUE(fs::exists(root + "/sharded/model.safetensors.index.json"));
  auto a = ModelDir::open(root + "/single");
  auto b = ModelDir::open(root + "/sharded");
  EXPECT_GT(b->files().size(), 2u);
  ASSERT_EQ(a->tensor_names().size(), b->tensor_names().size());
  for (const auto& name : a->tensor_names()) {
    TensorRef x = a->get(name), y = b->get(name);
    ASSERT_EQ(x.info->nbytes(), y.info->nbytes()) << name;
    EXPECT_EQ(0, std::memcmp(x.file->data(*x.info), y.file->data(*y.info), x.info->nbytes())) << name;
  }
}

// A disk that fills up after `limit` bytes.
class FullDiskEnv : public FileEnv {
 public:
  explicit FullDiskEnv(uint64_t limit) : limit_(limit) {}
  std::unique_ptr<WritableFile> create(const std::string& path) override {
    class File : public WritableFile {
     public:
      File(std::unique_ptr<WritableFile> f, FullDiskEnv* env, std::string path)
          : f_(std::move(f)), env_(env), path_(std::move(path)) {}
      void write_at(uint64_t offset, const void* data, size_t n) override {
        if (env_->used_.fetch_add(n) + n > env_->limit_)
          throw Error(ErrorKind::Io, path_ + ": No space left on device");
        f_->write_at(offset, data, n);
      }
      void sync() override { f_->sync(); }
      void close() override { f_->close(); }

     private:
      std::unique_ptr<WritableFile> f_;
      FullDiskEnv* env_;
      std::string path_;
    };
    return std::make_unique<File>(FileEnv::posix()->create(path), this, path);
  }
  std::atomic<uint64_t> used_{0};
  uint64_t limit_;
};

TEST(Executor, PadToMultipleOfAddsMeanRows) {
  // tokenizer.pad_to_multiple_of (METHODS.md §4 step 4): 2048 real rows -> 3072; each
  // extra row of a model is the mean of its real rows. Linear [1, 0] keeps e1's real rows
  // bit for bit and its mean row exactly; vocab_size follows; any chunk size, any thread
  // count gives the same bytes (the mean is read once, in row order).
  const Models& m = models(DType::F32);
  std::string root = exec_test::scratch_dir("pad");
  const std::string recipe = "merge_method: linear\nmodels:\n  - model: " + m.e1 +
                             "\n    parameters: {weight: 1.0}\n  - model: " + m.e2 +
                             "\n    parameters: {weight: 0.0}\n"
                             "tokenizer:\n  source: " + m.e1 + "\n  pad_to_multiple_of: 1536\n";
  merge_text(recipe, root + "/a");
  ExecOptions o;
  o.threads = 3;
  o.chunk_elements = 70000;
  merge_text(recipe, root + "/b", o);
  EXPECT_EQ(exec_test::weight_bytes(root + "/a"), exec_test::weight_bytes(root + "/b"));
  auto in = ModelDir::open(m.e1);
  auto out = ModelDir::open(root + "/a");
  TensorRef x = in->get("model.embed_tokens.weight"), y = out->get("model.embed_tokens.weight");
  ASSERT_EQ(y.info->shape, (std::vector<int64_t>{3072, 64}));
  std::vector<float> src(2048 * 64), got(3072 * 64);
  x.file->read_f32(*x.info, 0, src.size(), src.data());
  y.file->read_f32(*y.info, 0, got.size(), got.data());
  EXPECT_EQ(0, std::memcmp(src.data(), got.data(), src.size() * 4));
  for (int c = 0; c < 64; ++c) {
    double sum = 0;
    for (int r = 0; r < 2048; ++r) sum += src[r * 64 + c];
    const float mean = static_cast<float>(sum / 2048);
    for (int r = 2048; r < 3072; ++r) ASSERT_EQ(got[r * 64 + c], mean) << r << "," << c;
  }
  auto cfg = nlohmann::json::parse(exec_test::read_bytes(root + "/a/config.json"));
  EXPECT_EQ(cfg["vocab_size"], 3072);
}

TEST(Executor, FullDiskRemovesStagingAndLeavesNoOutput) {
  const Models& m = models(DType::BF16);
  std::string root = exec_test::scratch_dir("fulldisk");
  for (uint64_t limit : {uint64_t{100}, uint64_t{700000}, uint64_t{1500000}}) {
    FullDiskEnv env(limit);
    ExecOptions o;
    o.env = &env;
    o.threads = 2;
    try {
      merge_text(gta_recipe("ties", m, ""), root + "/out", o);
      FAIL() << "merge succeeded on a full disk (limit " << limit << ")";
    } catch (const Error& e) {
      EXPECT_EQ(e.kind(), ErrorKind::Io) << e.what();
      EXPECT_NE(std::string(e.what()).find("No space left"), std::string::npos) << e.what();
    }
    EXPECT_FALSE(fs::exists(root + "/out"));
    EXPECT_TRUE(no_leftovers(root));
  }
}

TEST(Executor, NonFiniteResultFromFiniteInputsIsAnError) {
  const Models& m = models(DType::F32);
  std::string root = exec_test::scratch_dir("nonfinite");
  try {  // weights sum to zero under normalize: mergekit would write inf/NaN
    merge_text("merge_method: linear\nmodels:\n  - model: " + m.e1 +
              "\n    parameters: {weight: 1.0}\n  - model: " + m.e2 +
              "\n    parameters: {weight: -1.0}\n",
          root + "/out");
    FAIL() << "no error";
  } catch (const Error& e) {
    std::string msg = e.what();
    EXPECT_NE(msg.find("linear"), std::string::npos) << msg;
    EXPECT_NE(msg.find("model."), std::string::npos) << msg;  // names the tensor
  }
  EXPECT_FALSE(fs::exists(root + "/out"));
  EXPECT_TRUE(no_leftovers(root));
}

TEST(Executor, CancelStopsBetweenChunksAndCleansUp) {
  const Models& m = models(DType::F32);
  std::string root = exec_test::scratch_dir("cancel");
  ExecOptions o;
  o.threads = 2;
  o.chunk_elements = 1;
  o.progress = [](size_t, size_t, uint64_t, uint64_t) { request_cancel(); };
  try {
    merge_text(gta_recipe("ties", m, ""), root + "/out", o);
    clear_cancel();
    FAIL() << "not interrupted";
  } catch (const Error& e) {
    clear_cancel();
    EXPECT_NE(std::string(e.what()).find("interrupted"), std::string::npos) << e.what();
  }
  EXPECT_FALSE(fs::exists(root + "/out"));
  EXPECT_TRUE(no_leftovers(root));
}

TEST(Executor, ExistingOutputNeedsForce) {
  const Models& m = models(DType::BF16);
  std::string root = exec_test::scratch_dir("exists");
  std::string recipe = "merge_method: linear\nmodels:\n  - model: " + m.e1 +
                       "\n    parameters: {weight: 1.0}\n";
  fs::create_directories(root + "/out");
  EXPECT_THROW(merge_text(recipe, root + "/out"), Error);
  EXPECT_FALSE(fs::exists(root + "/out/model.safetensors"));
  ExecOptions o;
  o.force = true;
  merge_text(recipe, root + "/out", o);
  EXPECT_EQ(exec_test::weight_bytes(root + "/out"), exec_test::weight_bytes(m.e1));
  EXPECT_TRUE(no_leftovers(root));
}

TEST(Executor, MemoryEstimateScalesWithThreadsAndChunkNotModel) {
  const Models& m = models(DType::BF16);
  Recipe recipe = parse_recipe_text(gta_recipe("ties", m, ""));
  ModelSet set;
  MergePlan plan = make_plan(recipe, set, PlanOptions{});
  ExecOptions one, two, big;
  one.chunk_elements = two.chunk_elements = 65536;
  two.threads = 2;
  big.chunk_elements = 1 << 20;
  uint64_t a = estimate_memory(plan, one).peak_bytes, b = estimate_memory(plan, two).peak_bytes;
  uint64_t c = estimate_memory(plan, big).peak_bytes;
  EXPECT_GT(b, a);
  EXPECT_GT(c, a);  // largest tensor (131072 elements) exceeds one 65536 chunk
  // 4 inputs + output, f32, per thread, plus mapped bf16 pages: well under 10 MB per chunk.
  EXPECT_LT(b - a, 10u << 20);
}

}  // namespace
}  // namespace amalgam
