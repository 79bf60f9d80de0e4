// The built-in chat templates, rendered by an independent Jinja engine
// (@huggingface/jinja under node, tests/oracles/render_chat.mjs) on one conversation and
// compared with each format's documented layout. Skipped without node or
// tests/oracles/node_modules (tests/oracles/setup installs it).
#include "recipe/chat_templates.h"

#include <gtest/gtest.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <map>
#include <fstream>
#include <sstream>

#include <unistd.h>

#include <nlohmann/json.hpp>

#include "recipe/recipe.h"

namespace amalgam {
namespace {
namespace fs = std::filesystem;

const std::string kOracles = std::string(AMALGAM_SOURCE_DIR) + "/tests/oracles";

std::string render(const std::string& tmpl, bool generation_prompt) {
  nlohmann::json in = {{"template", tmpl},
                       {"messages",
                        {{{"role", "system"}, {"content", "Be brief."}},
                         {{"role", "user"}, {"content", "Hi"}},
                         {{"role", "assistant"}, {"content", "Hello"}},
                         {{"role", "user"}, {"content", "Bye"}}}},
                       {"add_generation_prompt", generation_prompt},
                       {"bos_token", "<s>"},
                       {"eos_token", "</s>"}};
  const fs::path dir = fs::temp_directory_path() / ("amalgam-chat-" + std::to_string(::getpid()));
  fs::create_directories(dir);
  std::ofstream(dir / "in.json") << in.dump();
  const std::string cmd = "node " + kOracles + "/render_chat.mjs < " + (dir / "in.json").string() + " > " +
                          (dir / "out.txt").string();
  EXPECT_EQ(std::system(cmd.c_str()), 0) << cmd;
  std::stringstream ss;
  ss << std::ifstream(dir / "out.txt").rdbuf();
  fs::remove_all(dir);
  return ss.str();
}

bool have_oracle() {
  return std::system("command -v node >/dev/null 2>&1") == 0 &&
         fs::exists(kOracles + "/node_modules/@huggingface/jinja");
}

TEST(ChatTemplates, NamesAreKnownToTheRecipeChecker) {
  for (const auto& name : builtin_chat_template_names()) {
    EXPECT_TRUE(chat_template_value_ok(name)) << name;
    ASSERT_TRUE(builtin_chat_template(name).has_value()) << name;
  }
  EXPECT_FALSE(builtin_chat_template("vicuna_v9").has_value());
  EXPECT_FALSE(chat_template_value_ok("vicuna_v9"));
  EXPECT_TRUE(chat_template_value_ok("auto"));
}

TEST(ChatTemplates, RenderAsEachFormatDocuments) {
  if (!have_oracle()) GTEST_SKIP() << "node or tests/oracles/node_modules missing (run tests/oracles/setup)";
  const std::map<std::string, std::string> want = {
      {"chatml",
       "<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\nHello<|im_end|>\n"
       "<|im_start|>user\nBye<|im_end|>\n<|im_start|>assistant\n"},
      {"llama3",
       "<s><|start_header_id|>system<|end_header_id|>\n\nBe brief.<|eot_id|><|start_header_id|>user<|end_header_id|>\n\n"
       "Hi<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\nHello<|eot_id|><|start_header_id|>user"
       "<|end_header_id|>\n\nBye<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\n"},
      {"alpaca",
       "<s>Be brief.\n\n### Instruction:\nHi\n\n### Response:\nHello</s>\n\n### Instruction:\nBye\n\n### Response:\n"},
      {"mistral", "<s>[INST] Hi [/INST]Hello</s>[INST] Bye [/INST]"},
      {"zephyr",
       "<|system|>\nBe brief.</s>\n<|user|>\nHi</s>\n<|assistant|>\nHello</s>\n<|user|>\nBye</s>\n<|assistant|>\n"},
      {"gemma",
       "<s><start_of_turn>system\nBe brief.<end_of_turn>\n<start_of_turn>user\nHi<end_of_turn>\n<start_of_turn>model\n"
       "Hello<end_of_turn>\n<start_of_turn>user\nBye<end_of_turn>\n<start_of_turn>model\n"},
  };
  ASSERT_EQ(want.size(), builtin_chat_template_names().size());
  for (const auto& name : builtin_chat_template_names()) {
    EXPECT_EQ(render(*builtin_chat_template(name), true), want.at(name)) << name;
  }
}

}  // namespace
}  // namespace amalgam
