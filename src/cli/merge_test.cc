// `amalgam merge` through the built binary: exact properties, determinism (bytes for
// --threads 1/2 and chunk sizes), sharded output, option handling, one-line errors with
// non-zero exit, and crash safety (SIGKILL at random points, SIGINT, existing OUT_DIR).
#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <random>
#include <thread>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "exec/exec_test_util.h"
#include "io/model_dir.h"

namespace amalgam {
namespace {
namespace fs = std::filesystem;
using exec_test::ModelSpec;

struct CmdResult {
  int status = -1;  // exit status, or 128 + signal
  std::string out, err;
};

CmdResult amalgam(const std::string& args, const std::string& cwd) {
  std::string o = cwd + "/.stdout", e = cwd + "/.stderr";
  std::string cmd = "cd '" + cwd + "' && '" AMALGAM_BINARY "' " + args + " >'" + o + "' 2>'" + e + "'";
  int rc = std::system(cmd.c_str());
  CmdResult r;
  r.status = WIFEXITED(rc) ? WEXITSTATUS(rc) : 128 + WTERMSIG(rc);
  r.out = exec_test::read_bytes(o);
  r.err = exec_test::read_bytes(e);
  return r;
}

int lines(const std::string& s) { return static_cast<int>(std::count(s.begin(), s.end(), '\n')); }

// One scratch dir holding base + 2 experts (bf16) and recipes that name them relatively.
struct Fixture {
  std::string dir;
  static ModelSpec bf16() {
    ModelSpec s;
    s.dtype = DType::BF16;
    return s;
  }
  explicit Fixture(const std::string& name, ModelSpec spec = bf16()) {
    dir = exec_test::scratch_dir("cli_" + name);
    spec.noise = 0;
    exec_test::write_model(dir + "/base", spec);
    for (int i = 1; i <= 2; ++i) {
      spec.seed = i;
      spec.noise = 0.02f;
      exec_test::write_model(dir + "/e" + std::to_string(i), spec);
    }
  }
  void recipe(const std::string& name, const std::string& text) const {
    exec_test::write_text(dir + "/" + name, text);
  }
};

const char* kTies =
    "merge_method: ties\nbase_model: base\nmodels:\n"
    "  - model: e1\n    parameters: {weight: 1.0, density: 0.5}\n"
    "  - model: e2\n    parameters: {weight: 0.6, density: 0.4}\n";

bool leftovers(const std::string& dir) {
  for (auto& e : fs::directory_iterator(dir)) {
    std::string n = e.path().filename().string();
    if (n.find(".tmp-") != std::string::npos || n.find(".old-") != std::string::npos) return true;
  }
  return false;
}

TEST(MergeCli, LinearOneZeroReturnsModelOneBitForBit) {
  Fixture f("lin");
  f.recipe("r.yaml",
           "merge_method: linear\nmodels:\n  - model: e1\n    parameters: {weight: 1}\n"
           "  - model: e2\n    parameters: {weight: 0}\n");
  CmdResult r = amalgam("merge r.yaml out -j 2 --quiet", f.dir);
  ASSERT_EQ(r.status, 0) << r.err;
  EXPECT_EQ(exec_test::weight_bytes(f.dir + "/out"), exec_test::weight_bytes(f.dir + "/e1"));
}

TEST(MergeCli, SameBytesForAnyThreadCountAndChunkSize) {
  Fixture f("det");
  f.recipe("r.yaml", kTies);
  f.recipe("d.yaml", std::string(kTies).replace(std::string(kTies).find("ties"), 4, "dare_ties"));
  for (const char* recipe : {"r.yaml", "d.yaml"}) {
    std::string ref;
    int i = 0;
    for (const char* opts : {"--threads 1", "--threads 2", "-j 2 --chunk-size 65536",
                             "--num-threads 3 --chunk-size 1000000 --fsync"}) {
      std::string out = "out" + std::to_string(i++) + recipe;
      CmdResult r = amalgam(std::string("merge ") + recipe + " " + out + " -q --random-seed 7 " + opts, f.dir);
      ASSERT_EQ(r.status, 0) << r.err;
      std::string bytes = exec_test::weight_bytes(f.dir + "/" + out);
      if (ref.empty()) ref = bytes;
      EXPECT_TRUE(bytes == ref) << recipe << " with " << opts;
    }
  }
}

TEST(MergeCli, ShardedOutputWithIndexLoads) {
  Fixture f("shard");
  f.recipe("r.yaml", kTies);
  ASSERT_EQ(amalgam("merge r.yaml one -q", f.dir).status, 0);
  CmdResult r = amalgam("merge r.yaml many -q --out-shard-size 300K", f.dir);
  ASSERT_EQ(r.status, 0) << r.err;
  ASSERT_TRUE(fs::exists(f.dir + "/many/model.safetensors.index.json"));
  auto idx = nlohmann::json::parse(exec_test::read_bytes(f.dir + "/many/model.safetensors.index.json"));
  EXPECT_GT(idx["weight_map"].size(), 5u);
  auto a = ModelDir::open(f.dir + "/one"), b = ModelDir::open(f.dir + "/many");
  EXPECT_GE(b->files().size(), 3u);
  for (const auto& name : a->tensor_names()) {
    TensorRef x = a->get(name), y = b->get(name);
    ASSERT_EQ(x.info->nbytes(), y.info->nbytes());
    EXPECT_EQ(0, std::memcmp(x.file->data(*x.info), y.file->data(*y.info), x.info->nbytes())) << name;
  }
}

TEST(MergeCli, ExistingOutDirRefusedWithoutForce) {
  Fixture f("exists");
  f.recipe("r.yaml", kTies);
  fs::create_directories(f.dir + "/out");
  exec_test::write_text(f.dir + "/out/keep", "mine");
  CmdResult r = amalgam("merge r.yaml out", f.dir);
  EXPECT_NE(r.status, 0);
  EXPECT_EQ(lines(r.err), 1) << r.err;
  EXPECT_NE(r.err.find("--force"), std::string::npos) << r.err;
  EXPECT_TRUE(fs::exists(f.dir + "/out/keep"));
  r = amalgam("merge r.yaml out --force -q", f.dir);
  ASSERT_EQ(r.status, 0) << r.err;
  EXPECT_FALSE(fs::exists(f.dir + "/out/keep"));
  EXPECT_TRUE(fs::exists(f.dir + "/out/model.safetensors"));
  EXPECT_FALSE(leftovers(f.dir));
}

TEST(MergeCli, DryRunWritesNothingAndJsonParses) {
  Fixture f("dry");
  f.recipe("r.yaml", kTies);
  CmdResult r = amalgam("merge r.yaml out --dry-run", f.dir);
  ASSERT_EQ(r.status, 0) << r.err;
  EXPECT_NE(r.out.find("estimated peak memory"), std::string::npos) << r.out;
  EXPECT_FALSE(fs::exists(f.dir + "/out"));
  r = amalgam("merge r.yaml out --dry-run --json", f.dir);
  ASSERT_EQ(r.status, 0) << r.err;
  auto j = nlohmann::json::parse(r.out);
  EXPECT_EQ(j["tensors"].get<int>(), static_cast<int>(exec_test::llama_shapes({}).size()));
  EXPECT_GT(j["estimated_peak_memory_bytes"].get<uint64_t>(), 0u);
  EXPECT_FALSE(fs::exists(f.dir + "/out"));
  r = amalgam("merge r.yaml out --json -j 2", f.dir);
  ASSERT_EQ(r.status, 0) << r.err;
  j = nlohmann::json::parse(r.out);
  EXPECT_TRUE(j["written"].get<bool>());
  EXPECT_GT(j["bytes_written"].get<uint64_t>(), 0u);
}

TEST(MergeCli, MergekitOptionsAcceptedAndMemoryLimit) {
  Fixture f("opts");
  f.recipe("r.yaml", kTies);
  CmdResult r = amalgam("merge r.yaml out --cuda --lazy-unpickle --low-cpu-memory --allow-crimes "
                  "--no-copy-tokenizer --no-write-model-card --random-seed 3 --memory-limit 2G",
                  f.dir);
  ASSERT_EQ(r.status, 0) << r.err;
  EXPECT_NE(r.err.find("--cuda ignored"), std::string::npos) << r.err;
  EXPECT_FALSE(fs::exists(f.dir + "/out/README.md"));
  EXPECT_FALSE(fs::exists(f.dir + "/out/tokenizer_config.json"));
  r = amalgam("merge r.yaml out2 --memory-limit 1M", f.dir);
  EXPECT_EQ(r.status, 2) << r.err;
  EXPECT_EQ(lines(r.err), 1) << r.err;
  EXPECT_NE(r.err.find("--memory-limit"), std::string::npos) << r.err;
  EXPECT_FALSE(fs::exists(f.dir + "/out2"));
}

TEST(MergeCli, RecipeErrorsAreOneLineWithNonZeroExit) {
  Fixture f("errors");
  ModelSpec wide;
  wide.hidden = 96;
  exec_test::write_model(f.dir + "/wide", wide);
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"unknown method", "merge_method: frobnicate\nmodels:\n  - model: e1\n"},
      {"missing model", "merge_method: linear\nmodels:\n  - model: nowhere\n    parameters: {weight: 1}\n"},
      {"bad yaml", "merge_method: linear\nmodels: [\n"},
      {"missing weight", "merge_method: linear\nmodels:\n  - model: e1\n  - model: e2\n"},
      {"no base for ties", "merge_method: ties\nmodels:\n  - model: e1\n    parameters: {weight: 1}\n"},
      {"string parameter", "merge_method: linear\nmodels:\n  - model: e1\n    parameters: {weight: heavy}\n"},
      {"shape mismatch", "merge_method: linear\nmodels:\n  - model: e1\n    parameters: {weight: 1}\n"
                         "  - model: wide\n    parameters: {weight: 1}\n"},
      {"density zero", "merge_method: ties\nbase_model: base\nmodels:\n  - model: e1\n"
                       "    parameters: {weight: 1, density: 0}\n"},
      {"bad dtype", "merge_method: linear\ndtype: float7\nmodels:\n  - model: e1\n    parameters: {weight: 1}\n"},
  };
  for (const auto& [what, text] : cases) {
    f.recipe("bad.yaml", text);
    CmdResult r = amalgam("merge bad.yaml out", f.dir);
    EXPECT_NE(r.status, 0) << what;
    EXPECT_LT(r.status, 128) << what << ": crashed";
    EXPECT_EQ(lines(r.err), 1) << what << ": " << r.err;
    EXPECT_EQ(r.err.rfind("amalgam: error: ", 0), 0u) << what << ": " << r.err;
    EXPECT_FALSE(fs::exists(f.dir + "/out")) << what;
    EXPECT_FALSE(leftovers(f.dir)) << what;
  }
  CmdResult r = amalgam("merge missing.yaml out", f.dir);
  EXPECT_NE(r.status, 0);
  EXPECT_EQ(lines(r.err), 1) << r.err;
}

pid_t spawn(const std::string& cwd, const std::vector<std::string>& args) {
  pid_t pid = fork();
  if (pid == 0) {
    if (chdir(cwd.c_str()) != 0) _exit(127);
    std::vector<char*> argv{const_cast<char*>(AMALGAM_BINARY)};
    for (auto& a : args) argv.push_back(const_cast<char*>(a.c_str()));
    argv.push_back(nullptr);
    int devnull = open("/dev/null", O_WRONLY);
    dup2(devnull, 1);
    dup2(devnull, 2);
    execv(AMALGAM_BINARY, argv.data());
    _exit(127);
  }
  return pid;
}

// A merge big enough to take a noticeable time: f32, larger tensors, one thread.
struct SlowFixture : Fixture {
  SlowFixture(const std::string& name) : Fixture(name, big()) { recipe("r.yaml", kTies); }
  static ModelSpec big() {
    ModelSpec s;
    s.dtype = DType::F32;
    s.layers = 4;
    s.vocab = 8192;
    s.hidden = 256;
    s.intermediate = 2048;
    s.shard_bytes = 4 << 20;
    return s;
  }
};

TEST(MergeCli, SigkillAtRandomPointsNeverLeavesPartialOutput_slow) {
  SlowFixture f("kill");
  auto t0 = std::chrono::steady_clock::now();
  ASSERT_EQ(amalgam("merge r.yaml ref -q -j 1 --chunk-size 65536", f.dir).status, 0);
  double full = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  std::string ref = exec_test::weight_bytes(f.dir + "/ref");
  std::mt19937 rng(12345);
  int killed_mid = 0;
  for (int round = 0; round < 6; ++round) {
    pid_t pid = spawn(f.dir, {"merge", "r.yaml", "out", "-q", "-j", "1", "--chunk-size", "65536"});
    std::uniform_real_distribution<double> when(0.0, full * 1.2);
    std::this_thread::sleep_for(std::chrono::duration<double>(when(rng)));
    kill(pid, SIGKILL);
    int st = 0;
    waitpid(pid, &st, 0);
    if (WIFSIGNALED(st)) ++killed_mid;
    // OUT_DIR is either absent or the complete model, never partial.
    if (fs::exists(f.dir + "/out")) {
      EXPECT_TRUE(exec_test::weight_bytes(f.dir + "/out") == ref) << "round " << round;
      fs::remove_all(f.dir + "/out");
    }
  }
  EXPECT_GT(killed_mid, 0);
  // The next merge removes the staging dirs SIGKILL left behind.
  ASSERT_EQ(amalgam("merge r.yaml out -q", f.dir).status, 0);
  EXPECT_FALSE(leftovers(f.dir));
  EXPECT_TRUE(exec_test::weight_bytes(f.dir + "/out") == ref);
}

TEST(MergeCli, SigintAndSigtermRemoveTheStagingDir) {
  SlowFixture f("int");
  int interrupted = 0;
  for (int sig : {SIGINT, SIGTERM}) {
    pid_t pid = spawn(f.dir, {"merge", "r.yaml", "out", "-q", "-j", "1", "--chunk-size", "65536"});
    std::string staging = f.dir + "/.out.tmp-" + std::to_string(pid);
    for (int i = 0; i < 2000 && !fs::exists(staging); ++i)
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
    kill(pid, sig);
    int st = 0;
    waitpid(pid, &st, 0);
    if (WIFSIGNALED(st)) {
      ++interrupted;
      EXPECT_EQ(WTERMSIG(st), sig);
      EXPECT_FALSE(fs::exists(f.dir + "/out"));
    } else {
      // The merge finished before the signal landed: then the output is complete.
      EXPECT_EQ(WEXITSTATUS(st), 0);
      fs::remove_all(f.dir + "/out");
    }
    EXPECT_FALSE(fs::exists(staging)) << "signal " << sig;
    EXPECT_FALSE(leftovers(f.dir));
  }
  EXPECT_GT(interrupted, 0) << "every merge finished before its signal";
}

}  // namespace
}  // namespace amalgam

namespace amalgam {
namespace {

std::string output_chat_template(const std::string& out) {
  auto j = nlohmann::json::parse(exec_test::read_bytes(out + "/tokenizer_config.json"));
  return j.value("chat_template", std::string());
}

TEST(MergeCli, ChatTemplateNamedAutoOrLiteralIsWritten) {
  Fixture f("chat");
  const std::string head =
      "merge_method: linear\nmodels:\n  - model: e1\n    parameters: {weight: 1}\n"
      "  - model: e2\n    parameters: {weight: 1}\n";
  // e1 and e2 carry templates: auto takes the one most inputs have (here: a tie, e1 first).
  exec_test::write_text(f.dir + "/e1/tokenizer_config.json", R"({"model_max_length": 64, "chat_template": "{{ A }}"})");
  exec_test::write_text(f.dir + "/e2/tokenizer_config.json", R"({"chat_template": "{{ B }}"})");
  f.recipe("auto.yaml", head + "chat_template: auto\n");
  f.recipe("chatml.yaml", head + "chat_template: chatml\n");
  f.recipe("lit.yaml", head + "chat_template: \"{% for m in messages %}{{ m['content'] }}{% endfor %}\"\n");
  f.recipe("bad.yaml", head + "chat_template: vicuna_v9\n");
  CmdResult r = amalgam("merge auto.yaml out_auto -q", f.dir);
  ASSERT_EQ(r.status, 0) << r.err;
  EXPECT_EQ(output_chat_template(f.dir + "/out_auto"), "{{ A }}");
  r = amalgam("merge chatml.yaml out_chatml -q", f.dir);
  ASSERT_EQ(r.status, 0) << r.err;
  EXPECT_NE(output_chat_template(f.dir + "/out_chatml").find("<|im_start|>"), std::string::npos);
  r = amalgam("merge lit.yaml out_lit -q", f.dir);
  ASSERT_EQ(r.status, 0) << r.err;
  EXPECT_EQ(output_chat_template(f.dir + "/out_lit"), "{% for m in messages %}{{ m['content'] }}{% endfor %}");
  r = amalgam("merge bad.yaml out_bad -q", f.dir);
  EXPECT_EQ(r.status, 4);
  EXPECT_NE(r.err.find("bad.yaml:7:"), std::string::npos) << r.err;
  EXPECT_EQ(lines(r.err), 1) << r.err;
  EXPECT_FALSE(fs::exists(f.dir + "/out_bad"));
  // auto with no template anywhere: a recipe error before anything is written.
  fs::remove(f.dir + "/e1/tokenizer_config.json");
  fs::remove(f.dir + "/e2/tokenizer_config.json");
  r = amalgam("merge auto.yaml out_none -q", f.dir);
  EXPECT_EQ(r.status, 4) << r.err;
  EXPECT_NE(r.err.find("none of the input models has a chat template"), std::string::npos) << r.err;
  EXPECT_FALSE(fs::exists(f.dir + "/out_none"));
}

}  // namespace
}  // namespace amalgam

namespace amalgam {
namespace {

// Core commands never load libtorch (the torch commands are a plugin, cli/main.cc).
TEST(MergeCli, CoreCommandsDoNotLoadLibtorch) {
  std::string dir = exec_test::scratch_dir("nolibtorch");
  CmdResult r = amalgam("merge --help", dir);
  ASSERT_EQ(r.status, 0) << r.err;
  std::string cmd = "cd '" + dir + "' && LD_DEBUG=files '" AMALGAM_BINARY "' merge --help >/dev/null 2>'" + dir + "/ld.txt'";
  ASSERT_EQ(std::system(cmd.c_str()), 0);
  std::string log = exec_test::read_bytes(dir + "/ld.txt");
  EXPECT_FALSE(log.empty());  // LD_DEBUG worked: the test can fail
  EXPECT_EQ(log.find("libtorch"), std::string::npos);
  EXPECT_EQ(log.find("amalgam_torch_cli"), std::string::npos);
}

}  // namespace
}  // namespace amalgam
