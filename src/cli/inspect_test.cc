// Runs the built `amalgam inspect` binary on checkpoints written by `amalgam synth`, and
// checks task-vector statistics against an independent numpy computation.
#include <sys/wait.h>
#include <unistd.h>

#include <array>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <sstream>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "cli/cli_test_util.h"

namespace {

namespace fs = std::filesystem;

using Result = amalgam::testing::CommandResult;
using amalgam::testing::slurp;
Result run(const std::string& cmd) { return amalgam::testing::run_command(cmd); }
Result amalgam(const std::string& args, const std::string& err_file = "/dev/null") {
  return amalgam::testing::run_amalgam(args, err_file);
}

// Synthetic checkpoints shared by the tests of this file (written once).
class CliInspect : public ::testing::Test {
 protected:
  static fs::path dir;
  static void SetUpTestSuite() {
    dir = fs::temp_directory_path() / ("amalgam-cli-inspect-" + std::to_string(::getpid()));
    fs::remove_all(dir);
    fs::create_directories(dir);
    ASSERT_EQ(amalgam("synth " + (dir / "llama").string() +
                      " --family llama --size 1M --experts 3 --seed 9 --shard-size 800K")
                  .status,
              0);
    ASSERT_EQ(amalgam("synth " + (dir / "gpt2").string() + " --family gpt2 --size 1M --experts 0")
                  .status,
              0);
  }
  static void TearDownTestSuite() { fs::remove_all(dir); }
  static std::string p(const std::string& rel) { return (dir / rel).string(); }
};
fs::path CliInspect::dir;

TEST_F(CliInspect, OneModelCounts) {
  Result synth = amalgam("synth " + p("unused") + " --family llama --size 1M --dry-run --json "
                         "--shard-size 800K");
  auto plan = nlohmann::json::parse(synth.out);
  Result r = amalgam("inspect " + p("llama/base") + " --json");
  ASSERT_EQ(r.status, 0) << r.out;
  auto j = nlohmann::json::parse(r.out);
  ASSERT_EQ(j["models"].size(), 1u);
  auto m = j["models"][0];
  EXPECT_EQ(m["architecture"], "LlamaForCausalLM");
  EXPECT_EQ(m["model_type"], "llama");
  EXPECT_EQ(m["params"], plan["params"]);
  EXPECT_EQ(m["tensors"], plan["tensors"]);
  EXPECT_EQ(m["layers"], plan["num_hidden_layers"]);
  EXPECT_EQ(m["shards"], plan["shards_per_model"]);
  EXPECT_GT(m["shards"].get<int>(), 1);
  EXPECT_EQ(m["tensor_bytes"], plan["bytes_per_model"]);
  EXPECT_EQ(m["dtypes"]["BF16"]["tensors"], plan["tensors"]);
  EXPECT_EQ(m["vocab_size"], plan["vocab_size"]);
  EXPECT_EQ(j["compatible"], true);

  Result human = amalgam("inspect " + p("llama/base"));
  EXPECT_EQ(human.status, 0);
  EXPECT_NE(human.out.find("LlamaForCausalLM"), std::string::npos);
  EXPECT_NE(human.out.find(std::to_string(plan["params"].get<uint64_t>())), std::string::npos);
}

TEST_F(CliInspect, CompatibilityExitStatus) {
  Result ok = amalgam("inspect " + p("llama/base") + " " + p("llama/expert_1") + " --json");
  EXPECT_EQ(ok.status, 0);
  EXPECT_EQ(nlohmann::json::parse(ok.out)["compatibility"]["compatible"], true);
  Result bad = amalgam("inspect " + p("llama/base") + " " + p("gpt2/base") + " --json");
  EXPECT_EQ(bad.status, 1);
  auto j = nlohmann::json::parse(bad.out);
  EXPECT_EQ(j["compatible"], false);
  EXPECT_GT(j["compatibility"]["models"][0]["missing"].size(), 0u);
  EXPECT_GT(j["compatibility"]["models"][0]["extra"].size(), 0u);
  Result human = amalgam("inspect " + p("llama/base") + " " + p("gpt2/base"));
  EXPECT_EQ(human.status, 1);
  EXPECT_NE(human.out.find("INCOMPATIBLE"), std::string::npos);
}

TEST_F(CliInspect, BadInputsGiveOneLine) {
  const std::string err = p("err.txt");
  Result r = amalgam("inspect " + p("nope"), err);
  EXPECT_EQ(r.status, 3);
  std::string e = slurp(err);
  EXPECT_EQ(std::count(e.begin(), e.end(), '\n'), 1) << e;
  EXPECT_NE(e.find("nope"), std::string::npos) << e;
  // A truncated shard.
  fs::copy(p("gpt2/base"), p("broken"));
  fs::resize_file(p("broken/model.safetensors"), fs::file_size(p("broken/model.safetensors")) / 2);
  r = amalgam("inspect " + p("broken"), err);
  EXPECT_EQ(r.status, 3);
  e = slurp(err);
  EXPECT_EQ(std::count(e.begin(), e.end(), '\n'), 1) << e;
  EXPECT_NE(e.find("model.safetensors"), std::string::npos) << e;
}

// numpy reference: per group norms, cosines, pairwise and overall sign conflicts.
const char* kReference = R"PY(
import json, re, struct, sys, glob, os
import numpy as np
def load(d):
    out = {}
    for f in sorted(glob.glob(os.path.join(d, "*.safetensors"))):
        raw = open(f, "rb").read()
        n = struct.unpack("<Q", raw[:8])[0]
        head = json.loads(raw[8:8 + n])
        data = raw[8 + n:]
        for name, t in head.items():
            if name == "__metadata__": continue
            assert t["dtype"] == "BF16"
            b, e = t["data_offsets"]
            u = np.frombuffer(data[b:e], dtype=np.uint16).astype(np.uint32) << 16
            out[name] = u.view(np.float32).astype(np.float64)
    return out
def group(name):
    m = re.search(r"\.(layers|h|blocks|layer)\.(\d+)\.", name)
    if m: return "layer " + m.group(2)
    return "embed" if any(k in name for k in ("embed", "wte", "wpe")) else "other"
base = load(sys.argv[1]); models = [load(d) for d in sys.argv[2:]]
groups = {}
for name in base:
    for g in (group(name), "total"):
        groups.setdefault(g, []).append(name)
res = {}
for g, names in groups.items():
    d = np.stack([np.concatenate([m[n] - base[n] for n in names]) for m in models])
    k = len(models)
    norm = np.sqrt((d * d).sum(axis=1))
    cos = [[float(d[i] @ d[j] / (norm[i] * norm[j])) for j in range(k)] for i in range(k)]
    conf = [[0.0] * k for _ in range(k)]
    for i in range(k):
        for j in range(k):
            both = (d[i] != 0) & (d[j] != 0)
            conf[i][j] = float((np.sign(d[i][both]) != np.sign(d[j][both])).mean())
    nz = (d != 0).sum(axis=0)
    multi = nz >= 2
    mixed = (d > 0).any(axis=0) & (d < 0).any(axis=0)
    res[g] = {"norm": norm.tolist(), "cos": cos, "conf": conf,
              "all": float(mixed[multi].mean()), "elements": int(d.shape[1])}
print(json.dumps(res))
)PY";

TEST_F(CliInspect, TaskVectorStatsMatchNumpy) {
  if (!fs::exists("/usr/bin/python3")) GTEST_SKIP() << "no /usr/bin/python3";
  std::ofstream(p("ref.py")) << kReference;
  const std::string models = p("llama/expert_1") + " " + p("llama/expert_2") + " " + p("llama/expert_3");
  Result ref = run("/usr/bin/python3 " + p("ref.py") + " " + p("llama/base") + " " + models);
  ASSERT_EQ(ref.status, 0) << ref.out;
  auto want = nlohmann::json::parse(ref.out);

  Result r = amalgam("inspect " + models + " --base " + p("llama/base") + " --json --threads 3");
  ASSERT_EQ(r.status, 0) << r.out;
  auto tv = nlohmann::json::parse(r.out)["task_vectors"];
  auto groups = tv["groups"];
  groups.push_back(tv["total"]);
  ASSERT_EQ(groups.size(), want.size());
  for (const auto& g : groups) {
    const std::string name = g["group"];
    ASSERT_TRUE(want.contains(name)) << name;
    const auto& w = want[name];
    EXPECT_EQ(g["elements"], w["elements"]) << name;
    for (int i = 0; i < 3; ++i) {
      const double n = w["norm"][i];
      EXPECT_NEAR(g["norm"][i].get<double>(), n, 1e-9 * n) << name;
      EXPECT_GT(n, 0);
      for (int k = 0; k < 3; ++k) {
        EXPECT_NEAR(g["cosine"][i][k].get<double>(), w["cos"][i][k].get<double>(), 1e-9) << name;
        EXPECT_NEAR(g["sign_conflict"][i][k].get<double>(), w["conf"][i][k].get<double>(), 1e-12)
            << name;
      }
    }
    EXPECT_NEAR(g["sign_conflict_all"].get<double>(), w["all"].get<double>(), 1e-12) << name;
  }
  // Fine-tunes of synth are related but disagree on many coordinates.
  const double cos12 = tv["total"]["cosine"][0][1], conf12 = tv["total"]["sign_conflict"][0][1];
  EXPECT_GT(cos12, 0.05);
  EXPECT_GT(conf12, 0.2);

  Result human = amalgam("inspect " + models + " --base " + p("llama/base"));
  EXPECT_EQ(human.status, 0);
  EXPECT_NE(human.out.find("layer 0"), std::string::npos);
  EXPECT_NE(human.out.find("conf-all"), std::string::npos);
}

}  // namespace
