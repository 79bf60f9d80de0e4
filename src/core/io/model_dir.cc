#include "io/model_dir.h"

#include <algorithm>
#include <cctype>
#include <cstring>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>

#include "io/json_strict.h"
#include "util/error.h"
#include "util/progress.h"

namespace amalgam {
namespace fs = std::filesystem;

namespace {

const char* const kIndexName = "model.safetensors.index.json";

bool read_text(const fs::path& p, std::string* out) {
  std::ifstream in(p, std::ios::binary);
  if (!in) return false;
  std::ostringstream ss;
  ss << in.rdbuf();
  if (in.bad()) return false;
  *out = ss.str();
  return true;
}

std::string trim(std::string s) {
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.back()))) s.pop_back();
  size_t i = 0;
  while (i < s.size() && std::isspace(static_cast<unsigned char>(s[i]))) ++i;
  return s.substr(i);
}

bool exists_file(const fs::path& p) {
  std::error_code ec;
  return fs::is_regular_file(p, ec);
}

// `org/name` or `name`, optionally `@revision`: the shapes of a Hub repo id.
bool looks_like_repo_id(const std::string& ref) {
  const size_t at = ref.find('@');
  const std::string id = ref.substr(0, at);
  if (at != std::string::npos) {
    const std::string rev = ref.substr(at + 1);
    if (rev.empty()) return false;
    for (char c : rev)
      if (!std::isalnum(static_cast<unsigned char>(c)) && !std::strchr("._-/", c)) return false;
  }
  int slashes = 0;
  bool segment_start = true;
  for (char c : id) {
    if (c == '/') {
      if (segment_start || ++slashes > 1) return false;
      segment_start = true;
      continue;
    }
    const bool alnum = std::isalnum(static_cast<unsigned char>(c));
    if (segment_start ? !alnum : !(alnum || c == '.' || c == '_' || c == '-')) return false;
    segment_start = false;
  }
  return !id.empty() && !segment_start;
}

fs::path hub_cache_root() {
  if (const char* c = std::getenv("HF_HUB_CACHE"); c && *c) return c;
  if (const char* h = std::getenv("HF_HOME"); h && *h) return fs::path(h) / "hub";
  if (const char* x = std::getenv("XDG_CACHE_HOME"); x && *x) return fs::path(x) / "huggingface" / "hub";
  const char* home = std::getenv("HOME");
  return fs::path(home ? home : "/") / ".cache" / "huggingface" / "hub";
}

[[noreturn]] void refuse_pytorch_bin(const std::string& dir, const std::string& file) {
  fail(ErrorKind::Input,
       "{}: only a PyTorch pickle checkpoint ({}) was found; amalgam reads safetensors. Convert it with: "
       "/usr/bin/python3 -c \"import torch; from safetensors.torch import save_file; "
       "sd = torch.load('{}/{}', map_location='cpu'); "
       "save_file({{k: v.contiguous() for k, v in sd.items()}}, '{}/model.safetensors', metadata={{'format': 'pt'}})\" "
       "(sharded: load every pytorch_model-*.bin into one dict first)",
       dir, file, dir, file, dir);
}

}  // namespace

std::optional<std::string> resolve_hf_cache(const std::string& repo_id) {
  std::string id = repo_id, rev = "main";
  if (auto at = id.find('@'); at != std::string::npos) {
    rev = id.substr(at + 1);
    id = id.substr(0, at);
  }
  if (id.empty() || rev.empty()) return std::nullopt;
  // The cache folder of `org/name` is `models--org--name`.
  std::string folder = "models--";
  for (size_t i = 0; i < id.size(); ++i) folder += id[i] == '/' ? std::string("--") : std::string(1, id[i]);
  const fs::path repo = hub_cache_root() / folder;
  std::error_code ec;
  std::string hash;
  if (std::string text; read_text(repo / "refs" / rev, &text)) {
    hash = trim(text);
  } else if (fs::is_directory(repo / "snapshots" / rev, ec)) {
    hash = rev;  // a commit hash given directly
  } else {
    return std::nullopt;
  }
  if (hash.empty() || hash.find('/') != std::string::npos) return std::nullopt;
  const fs::path snap = repo / "snapshots" / hash;
  if (!fs::is_directory(snap, ec)) return std::nullopt;
  return snap.string();
}

std::unique_ptr<ModelDir> ModelDir::open(const std::string& ref) {
  auto m = std::unique_ptr<ModelDir>(new ModelDir());
  m->ref_ = ref;
  std::error_code ec;
  if (fs::is_directory(ref, ec)) {
    m->path_ = ref;
  } else if (fs::exists(ref, ec)) {
    fail(ErrorKind::Input, "{}: not a directory (a model is a directory with config.json and *.safetensors)", ref);
  } else if (looks_like_repo_id(ref)) {
    auto p = resolve_hf_cache(ref);
    if (!p)
      fail(ErrorKind::Input, "{}: no such directory, and not in the Hugging Face cache {} (amalgam never downloads)",
           ref, hub_cache_root().string());
    m->path_ = *p;
  } else {
    fail(ErrorKind::Input, "{}: no such directory", ref);
  }
  const fs::path dir = m->path_;

  // config.json: optional, but when present it must be a JSON object.
  if (const fs::path cfg = dir / "config.json"; fs::exists(cfg, ec)) {
    std::string text;
    if (!read_text(cfg, &text)) fail(ErrorKind::Input, "{}: cannot read", cfg.string());
    StrictJson j = parse_json_strict(text);
    if (j.value.is_discarded()) fail(ErrorKind::Input, "{}: not valid JSON", cfg.string());
    if (!j.value.is_object()) fail(ErrorKind::Input, "{}: not a JSON object", cfg.string());
    if (!j.duplicate_key.empty()) fail(ErrorKind::Input, "{}: duplicate key '{}'", cfg.string(), j.duplicate_key);
    m->config_ = std::move(j.value);
    m->has_config_ = true;
  }

  std::vector<std::pair<std::string, std::string>> weight_map;  // tensor -> shard, index order
  std::vector<std::string> shard_files;
  if (const fs::path idx = dir / kIndexName; exists_file(idx)) {
    std::string text;
    if (!read_text(idx, &text)) fail(ErrorKind::Input, "{}: cannot read", idx.string());
    StrictOrderedJson j = parse_ordered_json_strict(text);
    if (j.value.is_discarded() || !j.value.is_object())
      fail(ErrorKind::Input, "{}: not a JSON object", idx.string());
    if (!j.duplicate_key.empty())
      fail(ErrorKind::Input, "{}: tensor or key '{}' listed twice", idx.string(), j.duplicate_key);
    auto wm = j.value.find("weight_map");
    if (wm == j.value.end() || !wm->is_object())
      fail(ErrorKind::Input, "{}: missing \"weight_map\" object", idx.string());
    for (const auto& [name, file] : wm->items()) {
      if (!file.is_string()) fail(ErrorKind::Input, "{}: weight_map entry '{}' is not a file name", idx.string(), name);
      const std::string& f = file.get_ref<const std::string&>();
      if (f.empty() || f.find('/') != std::string::npos || f == "." || f == "..")
        fail(ErrorKind::Input, "{}: weight_map entry '{}' names an invalid file '{}'", idx.string(), name, f);
      weight_map.emplace_back(name, f);
      if (std::find(shard_files.begin(), shard_files.end(), f) == shard_files.end()) shard_files.push_back(f);
    }
    if (weight_map.empty()) fail(ErrorKind::Input, "{}: weight_map lists no tensors", idx.string());
    for (const std::string& f : shard_files)
      if (!exists_file(dir / f))
        fail(ErrorKind::Input, "{}: names shard '{}', which is missing from {}", idx.string(), f, dir.string());
  } else if (exists_file(dir / "model.safetensors")) {
    shard_files.push_back("model.safetensors");
  } else {
    // No index: take every *.safetensors file (some repos shard without an index).
    for (const auto& e : fs::directory_iterator(dir, ec))
      if (e.is_regular_file() && e.path().extension() == ".safetensors") shard_files.push_back(e.path().filename());
    std::sort(shard_files.begin(), shard_files.end());
    if (shard_files.empty()) {
      for (const char* bin : {"pytorch_model.bin.index.json", "pytorch_model.bin"})
        if (exists_file(dir / bin)) refuse_pytorch_bin(dir.string(), bin);
      for (const auto& e : fs::directory_iterator(dir, ec))
        if (e.path().extension() == ".bin" && e.path().filename().string().starts_with("pytorch_model"))
          refuse_pytorch_bin(dir.string(), e.path().filename());
      fail(ErrorKind::Input, "{}: no model.safetensors, {} or *.safetensors file", dir.string(), kIndexName);
    }
  }

  std::map<std::string, size_t> file_no;
  for (const std::string& f : shard_files) {
    file_no[f] = m->files_.size();
    m->files_.push_back(std::make_unique<SafetensorsFile>((dir / f).string()));
  }
  // Where each tensor physically is; a name in two files is ambiguous, whatever an index says.
  std::map<std::string, TensorRef> located;
  for (const auto& file : m->files_)
    for (const TensorInfo& t : file->tensors()) {
      auto [it, fresh] = located.emplace(t.name, TensorRef{file.get(), &t});
      if (!fresh)
        fail(ErrorKind::Input, "{}: tensor '{}' is in two shards: {} and {}", dir.string(), t.name,
             it->second.file->path(), file->path());
    }

  if (!weight_map.empty() || exists_file(dir / kIndexName)) {
    const std::string idx = (dir / kIndexName).string();
    for (const auto& [name, f] : weight_map) {
      const SafetensorsFile* file = m->files_[file_no[f]].get();
      const TensorInfo* info = file->find(name);
      if (!info) fail(ErrorKind::Input, "{}: tensor '{}' is not in its shard {}", idx, name, file->path());
      m->names_.push_back(name);
      m->index_.emplace_back(name, TensorRef{file, info});
    }
    if (located.size() > weight_map.size()) {
      std::map<std::string, bool> listed;
      for (const auto& w : weight_map) listed[w.first] = true;
      for (const auto& [name, r] : located)
        if (!listed.count(name))
          report_warning(fmt::format("{}: tensor '{}' in {} is not listed in the index; ignored", dir.string(), name,
                                     r.file->path()));
    }
  } else {
    for (const auto& file : m->files_)
      for (const TensorInfo& t : file->tensors()) {
        m->names_.push_back(t.name);
        m->index_.emplace_back(t.name, TensorRef{file.get(), &t});
      }
  }
  std::sort(m->index_.begin(), m->index_.end(), [](const auto& a, const auto& b) { return a.first < b.first; });
  return m;
}

std::optional<TensorRef> ModelDir::find(const std::string& name) const {
  auto it = std::lower_bound(index_.begin(), index_.end(), name,
                             [](const auto& e, const std::string& n) { return e.first < n; });
  if (it == index_.end() || it->first != name) return std::nullopt;
  return it->second;
}

TensorRef ModelDir::get(const std::string& name) const {
  auto r = find(name);
  if (!r) fail(ErrorKind::Input, "{}: no tensor '{}'", ref_, name);
  return *r;
}

uint64_t ModelDir::parameter_count() const {
  uint64_t n = 0;
  for (const auto& [name, r] : index_) n += r.info->numel();
  return n;
}

uint64_t ModelDir::tensor_bytes() const {
  uint64_t n = 0;
  for (const auto& [name, r] : index_) n += r.info->nbytes();
  return n;
}

std::vector<std::string> ModelDir::tokenizer_files() const {
  static const char* const kNames[] = {
      "tokenizer.json",   "tokenizer_config.json", "special_tokens_map.json", "tokenizer.model",
      "vocab.json",       "merges.txt",            "added_tokens.json",       "vocab.txt",
      "chat_template.jinja", "chat_template.json", "spiece.model"};
  std::vector<std::string> out;
  for (const char* n : kNames)
    if (exists_file(fs::path(path_) / n)) out.push_back(n);
  return out;
}

std::optional<std::string> ModelDir::generation_config_file() const {
  if (exists_file(fs::path(path_) / "generation_config.json")) return "generation_config.json";
  return std::nullopt;
}

}  // namespace amalgam
