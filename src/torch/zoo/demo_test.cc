// `amalgam demo` on the micro preset: real merges through the merge engine, a recipe per
// merge that `amalgam merge` accepts, scores in [0, 1], the normalized table, a report.
#include <gtest/gtest.h>

#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>

#include <nlohmann/json.hpp>

#include "torch/zoo/demo.h"

namespace amalgam::zoo {
namespace {
namespace fs = std::filesystem;

std::string read_file(const std::string& path) {
  std::ifstream is(path, std::ios::binary);
  std::stringstream ss;
  ss << is.rdbuf();
  return ss.str();
}

TEST(Demo, MicroPresetMergesScoresAndReports) {
  const auto tmp = fs::temp_directory_path() / ("amalgam-demo-" + std::to_string(::getpid()));
  fs::remove_all(tmp);
  DemoOptions o;
  o.preset = "micro";
  o.seed = 1;
  o.out_dir = (tmp / "out").string();
  o.zoo_root = (tmp / "zoo").string();
  o.threads = 1;
  o.quiet = true;
  const DemoResult r = run_demo(o);
  // micro has 3 held-in families: merges of 2 and 3 experts, four methods each.
  ASSERT_EQ(r.merges.size(), 8u);
  EXPECT_EQ(r.models_trained, 5);  // base, instruct, 3 experts: nothing else
  for (const auto& m : r.merges) {
    EXPECT_TRUE(fs::exists(m.model_dir + "/model.safetensors")) << m.name;
    EXPECT_TRUE(fs::exists(m.model_dir + "/config.json")) << m.name;
    EXPECT_TRUE(fs::exists(m.recipe_path)) << m.name;
    for (const auto& [f, s] : m.scores) {
      EXPECT_GE(s, 0.0);
      EXPECT_LE(s, 1.0);
    }
    EXPECT_EQ(m.scores.size(), 4u);
  }
  // Linear over the same experts is the same merge whatever the run: re-merging the
  // written recipe with the CLI reproduces the bytes.
  const auto& lin = r.merges[0];
  ASSERT_EQ(lin.method, "linear");
  const std::string again = (tmp / "again").string();
  const std::string cmd = std::string(AMALGAM_BINARY) + " merge " + lin.recipe_path + " " + again +
                          " > /dev/null 2>&1";
  ASSERT_EQ(std::system(cmd.c_str()), 0) << cmd;
  EXPECT_EQ(read_file(again + "/model.safetensors"), read_file(lin.model_dir + "/model.safetensors"));

  const std::string html = read_file(r.report_path);
  EXPECT_NE(html.find("<svg"), std::string::npos);
  EXPECT_NE(html.find("ties-n3"), std::string::npos);
  const auto j = nlohmann::json::parse(read_file(o.out_dir + "/results.json"));
  EXPECT_EQ(j["merges"].size(), 8u);
  EXPECT_NE(r.table_text().find("dare_ties"), std::string::npos);

  // Cached second run: trains nothing; a dry run now reports every model as cached.
  const DemoResult r2 = run_demo(o);
  EXPECT_EQ(r2.models_trained, 0);
  EXPECT_EQ(r2.models_cached, 5);
  for (const auto& m : plan_demo(o)["models"]) EXPECT_TRUE(m["cached"].get<bool>()) << m["name"];
  fs::remove_all(tmp);
}

TEST(Demo, DryRunListsThePlanAndWritesNothing) {
  const auto tmp = fs::temp_directory_path() / ("amalgam-demo-dry-" + std::to_string(::getpid()));
  fs::remove_all(tmp);
  fs::create_directories(tmp);
  const std::string zoo = (tmp / "zoo").string(), out = (tmp / "out").string();
  const std::string cmd = std::string(AMALGAM_BINARY) + " demo --dry-run --json --preset micro --seed 2" +
                          " --zoo-dir " + zoo + " --out " + out + " > " + (tmp / "plan.json").string();
  ASSERT_EQ(std::system(cmd.c_str()), 0) << cmd;
  const auto j = nlohmann::json::parse(read_file((tmp / "plan.json").string()));
  EXPECT_EQ(j["zoo_root"], zoo);
  ASSERT_EQ(j["models"].size(), 5u);  // base, instruct, 3 experts from instruct
  EXPECT_EQ(j["models"][0]["name"], "base");
  EXPECT_EQ(j["models"][4]["name"], "expert-instruct-successor");
  for (const auto& m : j["models"]) EXPECT_FALSE(m["cached"].get<bool>()) << m["name"];
  ASSERT_EQ(j["merges"].size(), 8u);
  EXPECT_EQ(j["merges"][7]["name"], "dare_ties-n3");
  EXPECT_EQ(j["merges"][7]["recipe"], out + "/recipes/dare_ties-n3.yaml");
  EXPECT_EQ(j["report"], out + "/report.html");
  EXPECT_EQ(j["held_out"].size(), 1u);
  // The text form says the same and, like the JSON one, creates nothing.
  const std::string text_cmd = std::string(AMALGAM_BINARY) + " demo --dry-run --preset micro --zoo-dir " +
                               zoo + " --out " + out + " > " + (tmp / "plan.txt").string();
  ASSERT_EQ(std::system(text_cmd.c_str()), 0) << text_cmd;
  const std::string text = read_file((tmp / "plan.txt").string());
  EXPECT_NE(text.find("expert-instruct-reverse"), std::string::npos) << text;
  EXPECT_NE(text.find("to train"), std::string::npos) << text;
  EXPECT_NE(text.find("ties-n2"), std::string::npos) << text;
  EXPECT_FALSE(fs::exists(zoo)) << "a dry run trains nothing";
  EXPECT_FALSE(fs::exists(out)) << "a dry run writes nothing";
  fs::remove_all(tmp);
}

}  // namespace
}  // namespace amalgam::zoo
