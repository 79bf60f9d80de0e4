// Task specs, JSONL documents, prompt templates and few-shot selection; see task.h.
#include "torch/eval/task.h"

#include <filesystem>
#include <fstream>

#include <yaml-cpp/yaml.h>

#include "util/error.h"

namespace amalgam {
namespace {

namespace fs = std::filesystem;

// YAML -> JSON with plain scalars typed (int, float, bool, null) and quoted ones strings.
nlohmann::json yaml_to_json(const YAML::Node& n) {
  switch (n.Type()) {
    case YAML::NodeType::Null:
    case YAML::NodeType::Undefined: return nullptr;
    case YAML::NodeType::Sequence: {
      auto a = nlohmann::json::array();
      for (const auto& e : n) a.push_back(yaml_to_json(e));
      return a;
    }
    case YAML::NodeType::Map: {
      auto o = nlohmann::json::object();
      for (const auto& kv : n) o[kv.first.as<std::string>()] = yaml_to_json(kv.second);
      return o;
    }
    case YAML::NodeType::Scalar: break;
  }
  std::string s = n.Scalar();
  if (n.Tag() == "!") return s;  // quoted
  if (s == "true" || s == "True") return true;
  if (s == "false" || s == "False") return false;
  if (s == "null" || s == "~") return nullptr;
  try {
    size_t used = 0;
    long long i = std::stoll(s, &used);
    if (used == s.size()) return i;
    double d = std::stod(s, &used);
    if (used == s.size()) return d;
  } catch (const std::exception&) {
  }
  return s;
}

std::string read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) fail(ErrorKind::Input, "{}: cannot open", path);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

uint64_t splitmix64(uint64_t& state) {
  uint64_t z = (state += 0x9E3779B97F4A7C15ull);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

std::string trim(const std::string& s) {
  size_t b = s.find_first_not_of(" \t\r\n"), e = s.find_last_not_of(" \t\r\n");
  return b == std::string::npos ? "" : s.substr(b, e - b + 1);
}

}  // namespace

std::string task_type_name(TaskType t) {
  switch (t) {
    case TaskType::Perplexity: return "perplexity";
    case TaskType::MultipleChoice: return "multiple_choice";
    case TaskType::Generate: return "generate";
  }
  return "?";
}

TaskSpec TaskSpec::load(const std::string& path) {
  std::string text = read_file(path);
  nlohmann::json j;
  std::string ext = fs::path(path).extension().string();
  if (ext == ".json") {
    j = nlohmann::json::parse(text, nullptr, false);
    if (j.is_discarded()) fail(ErrorKind::Input, "{}: not valid JSON", path);
  } else {
    try {
      j = yaml_to_json(YAML::Load(text));
    } catch (const YAML::Exception& e) {
      fail(ErrorKind::Input, "{}:{}: {}", path, e.mark.line + 1, e.msg);
    }
  }
  return from_json(j, path);
}

TaskSpec TaskSpec::from_json(const nlohmann::json& j, const std::string& path) {
  if (!j.is_object()) fail(ErrorKind::Input, "{}: a task spec is a mapping", path);
  static const char* known[] = {"name", "task", "type", "data", "fewshot_data", "num_fewshot", "fewshot_seed",
                                "prompt", "target", "text", "choices", "target_delimiter",
                                "fewshot_delimiter", "until", "max_new_tokens", "description"};
  for (const auto& [key, value] : j.items()) {
    bool ok = false;
    for (const char* k : known) ok = ok || key == k;
    if (!ok) fail(ErrorKind::Input, "{}: unknown key '{}'", path, key);
  }
  auto str = [&](const char* key, const std::string& fallback) {
    if (!j.contains(key) || j[key].is_null()) return fallback;
    if (!j[key].is_string()) fail(ErrorKind::Input, "{}: '{}' must be a string", path, key);
    return j[key].get<std::string>();
  };
  auto integer = [&](const char* key, int64_t fallback) {
    if (!j.contains(key)) return fallback;
    if (!j[key].is_number_integer() || j[key].get<int64_t>() < 0)
      fail(ErrorKind::Input, "{}: '{}' must be a non-negative integer", path, key);
    return j[key].get<int64_t>();
  };
  TaskSpec s;
  s.spec_path = path;
  s.name = str("name", str("task", fs::path(path).stem().string()));
  std::string type = str("type", "");
  if (type == "perplexity") s.type = TaskType::Perplexity;
  else if (type == "multiple_choice") s.type = TaskType::MultipleChoice;
  else if (type == "generate") s.type = TaskType::Generate;
  else fail(ErrorKind::Input, "{}: 'type' must be perplexity, multiple_choice or generate (got '{}')", path, type);
  fs::path base = fs::path(path).parent_path();
  std::string data = str("data", "");
  if (data.empty()) fail(ErrorKind::Input, "{}: 'data' (the JSONL file) is required", path);
  s.data_path = (base / data).string();
  std::string fewshot = str("fewshot_data", "");
  if (!fewshot.empty()) s.fewshot_path = (base / fewshot).string();
  s.num_fewshot = integer("num_fewshot", 0);
  s.fewshot_seed = static_cast<uint64_t>(integer("fewshot_seed", 1234));
  s.prompt = str("prompt", "");
  s.target = str("target", "");
  s.text = str("text", s.text);
  s.target_delimiter = str("target_delimiter", s.target_delimiter);
  s.fewshot_delimiter = str("fewshot_delimiter", s.fewshot_delimiter);
  s.max_new_tokens = integer("max_new_tokens", s.max_new_tokens);
  if (j.contains("until")) {
    const auto& u = j["until"];
    if (u.is_string()) s.until = {u.get<std::string>()};
    else if (u.is_array() && std::all_of(u.begin(), u.end(), [](const auto& e) { return e.is_string(); }))
      s.until = u.get<std::vector<std::string>>();
    else fail(ErrorKind::Input, "{}: 'until' must be a string or a list of strings", path);
  } else {
    s.until = {s.fewshot_delimiter};
  }
  if (j.contains("choices")) {
    const auto& c = j["choices"];
    if (c.is_string()) s.choices_field = c.get<std::string>();
    else if (c.is_array() && std::all_of(c.begin(), c.end(), [](const auto& e) { return e.is_string(); }))
      s.choice_templates = c.get<std::vector<std::string>>();
    else fail(ErrorKind::Input, "{}: 'choices' must be a field name or a list of templates", path);
  }
  if (s.type != TaskType::Perplexity && s.prompt.empty())
    fail(ErrorKind::Input, "{}: 'prompt' is required for a {} task", path, type);
  if (s.type != TaskType::Perplexity && s.target.empty())
    fail(ErrorKind::Input, "{}: 'target' is required for a {} task", path, type);
  if (s.type == TaskType::MultipleChoice && s.choices_field.empty() && s.choice_templates.empty())
    fail(ErrorKind::Input, "{}: 'choices' is required for a multiple_choice task", path);
  return s;
}

std::vector<TaskDoc> read_jsonl(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) fail(ErrorKind::Input, "{}: cannot open task data", path);
  std::vector<TaskDoc> docs;
  std::string line;
  size_t n = 0;
  while (std::getline(in, line)) {
    ++n;
    if (trim(line).empty()) continue;
    auto j = nlohmann::json::parse(line, nullptr, false);
    if (j.is_discarded()) fail(ErrorKind::Input, "{}:{}: not valid JSON", path, n);
    if (!j.is_object()) fail(ErrorKind::Input, "{}:{}: each line must be a JSON object", path, n);
    docs.push_back({std::move(j), n});
  }
  return docs;
}

std::string render_template(const std::string& tmpl, const TaskDoc& doc, const std::string& where) {
  std::string out;
  size_t pos = 0;
  while (true) {
    size_t open = tmpl.find("{{", pos);
    if (open == std::string::npos) break;
    size_t close = tmpl.find("}}", open + 2);
    if (close == std::string::npos) fail(ErrorKind::Input, "{}: unclosed '{{{{' in template '{}'", where, tmpl);
    out.append(tmpl, pos, open - pos);
    std::string field = trim(tmpl.substr(open + 2, close - open - 2));
    auto it = doc.fields.find(field);
    if (it == doc.fields.end()) fail(ErrorKind::Input, "{}: the document has no field '{}'", where, field);
    out += it->is_string() ? it->get<std::string>() : it->dump();
    pos = close + 2;
  }
  out.append(tmpl, pos);
  return out;
}

std::vector<size_t> choose_fewshot(size_t n, size_t k, uint64_t seed, uint64_t doc_index,
                                   std::optional<size_t> skip) {
  std::vector<size_t> pool;
  for (size_t i = 0; i < n; ++i)
    if (!skip || i != *skip) pool.push_back(i);
  k = std::min(k, pool.size());
  uint64_t state = seed * 0x9E3779B97F4A7C15ull ^ (doc_index + 1) * 0xD1B54A32D192ED03ull;
  // Partial Fisher-Yates with a generator whose output is fixed by its definition, so the
  // selection is the same on every platform and standard library.
  for (size_t i = 0; i < k; ++i) {
    size_t j = i + splitmix64(state) % (pool.size() - i);
    std::swap(pool[i], pool[j]);
  }
  pool.resize(k);
  return pool;
}

TaskRenderer::TaskRenderer(const TaskSpec& spec, const std::vector<TaskDoc>* pool) : spec_(spec), pool_(pool) {}

std::string TaskRenderer::where(const TaskDoc& doc) const {
  // Few-shot documents point into the pool: their file is fewshot_data when set.
  bool from_pool = pool_ && !pool_->empty() && &doc >= pool_->data() && &doc < pool_->data() + pool_->size();
  const std::string& file = from_pool && spec_.fewshot_path ? *spec_.fewshot_path : spec_.data_path;
  return fmt::format("{} (task {}): {}:{}", spec_.spec_path, spec_.name, file, doc.line);
}

std::vector<std::string> TaskRenderer::render_choices(const TaskDoc& doc) const {
  std::vector<std::string> out;
  if (!spec_.choices_field.empty()) {
    auto it = doc.fields.find(spec_.choices_field);
    if (it == doc.fields.end() || !it->is_array() || it->empty())
      fail(ErrorKind::Input, "{}: field '{}' must be a non-empty list of choices", where(doc), spec_.choices_field);
    for (const auto& c : *it) out.push_back(c.is_string() ? c.get<std::string>() : c.dump());
  } else {
    for (const auto& t : spec_.choice_templates) out.push_back(render_template(t, doc, where(doc)));
  }
  return out;
}

int64_t TaskRenderer::gold_index(const TaskDoc& doc, const std::vector<std::string>& choices) const {
  std::string gold = render_template(spec_.target, doc, where(doc));
  for (size_t i = 0; i < choices.size(); ++i)
    if (choices[i] == gold) return static_cast<int64_t>(i);
  // Not a choice's text: an index (lm-eval's usual doc_to_target).
  try {
    size_t used = 0;
    long long i = std::stoll(gold, &used);
    if (used == gold.size() && i >= 0 && i < static_cast<long long>(choices.size())) return i;
  } catch (const std::exception&) {
  }
  fail(ErrorKind::Input, "{}: target '{}' is neither a choice nor a choice index", where(doc), gold);
}

RenderedDoc TaskRenderer::render(const TaskDoc& doc, size_t doc_index, bool pool_is_data) const {
  RenderedDoc r;
  std::string w = where(doc);
  if (spec_.type == TaskType::Perplexity) {
    r.text = render_template(spec_.text, doc, w);
    return r;
  }
  std::string shots;
  if (spec_.num_fewshot > 0 && pool_ && !pool_->empty()) {
    auto skip = pool_is_data ? std::optional<size_t>(doc_index) : std::nullopt;
    for (size_t i : choose_fewshot(pool_->size(), spec_.num_fewshot, spec_.fewshot_seed, doc_index, skip)) {
      const TaskDoc& ex = (*pool_)[i];
      std::string answer;
      if (spec_.type == TaskType::MultipleChoice) {
        auto choices = render_choices(ex);
        answer = choices[gold_index(ex, choices)];
      } else {
        answer = render_template(spec_.target, ex, where(ex));
      }
      shots += render_template(spec_.prompt, ex, where(ex)) + spec_.target_delimiter + answer +
               spec_.fewshot_delimiter;
    }
  }
  r.context = shots + render_template(spec_.prompt, doc, w);
  if (spec_.type == TaskType::MultipleChoice) {
    r.choices = render_choices(doc);
    r.gold = gold_index(doc, r.choices);
  } else {
    r.target = render_template(spec_.target, doc, w);
  }
  return r;
}

}  // namespace amalgam
