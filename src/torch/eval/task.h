// An evaluation task: a JSONL file of documents plus a small spec (YAML or JSON) saying
// how a document becomes a prompt and what is scored (docs/eval.md has the format). This
// module only reads files and renders text: no model, no torch, so it is cheap to test.
// Every error is Error(Input) naming the spec or data file (and line).
#pragma once
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace amalgam {

enum class TaskType { Perplexity, MultipleChoice, Generate };

struct TaskDoc {
  nlohmann::json fields;  // the JSONL object
  size_t line = 0;        // 1-based line in its file, for messages
};

struct TaskSpec {
  std::string name, spec_path;
  TaskType type = TaskType::Generate;
  std::string data_path;                    // resolved against the spec's directory
  std::optional<std::string> fewshot_path;  // train/dev split for examples; else `data`
  int64_t num_fewshot = 0;
  uint64_t fewshot_seed = 1234;
  std::string prompt;   // template with {{field}}
  std::string target;   // generate: the expected answer; multiple_choice: gold index or text
  std::string text = "{{text}}";  // perplexity
  std::string choices_field;             // a field holding a list of strings, or
  std::vector<std::string> choice_templates;  // one template per choice
  std::string target_delimiter = " ";    // between prompt and answer (lm-eval's default)
  std::string fewshot_delimiter = "\n\n";  // between few-shot examples
  std::vector<std::string> until;          // stop strings; default {fewshot_delimiter}
  int64_t max_new_tokens = 64;

  // Reads a spec (.yaml/.yml/.json). Throws Error(Input) naming the file.
  static TaskSpec load(const std::string& path);
  static TaskSpec from_json(const nlohmann::json& spec, const std::string& path);
};

std::string task_type_name(TaskType type);

// Reads a JSONL file: one JSON object per non-blank line. Error(Input) "file:line: ...".
std::vector<TaskDoc> read_jsonl(const std::string& path);

// "{{field}}" (spaces allowed inside the braces) replaced by the document's field: a
// string as is, anything else as JSON. Error(Input) naming `where` for a missing field.
std::string render_template(const std::string& tmpl, const TaskDoc& doc, const std::string& where);

// The pieces of one document, rendered.
struct RenderedDoc {
  std::string context;               // few-shot examples + prompt
  std::string target;                // generate: expected answer
  std::vector<std::string> choices;  // multiple_choice
  int64_t gold = -1;                 // multiple_choice: index into choices
  std::string text;                  // perplexity
};

// Renders the documents of a task; few-shot examples are drawn per document from the
// few-shot pool with a generator keyed by (seed, document index), so the same document
// gets the same examples whatever --limit is. A document never serves as its own example.
class TaskRenderer {
 public:
  TaskRenderer(const TaskSpec& spec, const std::vector<TaskDoc>* fewshot_pool);
  RenderedDoc render(const TaskDoc& doc, size_t doc_index, bool pool_is_data) const;
  std::vector<std::string> render_choices(const TaskDoc& doc) const;
  int64_t gold_index(const TaskDoc& doc, const std::vector<std::string>& choices) const;

 private:
  std::string where(const TaskDoc& doc) const;
  const TaskSpec& spec_;
  const std::vector<TaskDoc>* pool_;
};

// Deterministic choice of k distinct indices out of n (excluding `skip` when set).
std::vector<size_t> choose_fewshot(size_t n, size_t k, uint64_t seed, uint64_t doc_index,
                                   std::optional<size_t> skip);

}  // namespace amalgam
