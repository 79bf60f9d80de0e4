#include "inspect/summary.h"

#include <set>

#include "plan/plan.h"
#include "util/error.h"

namespace amalgam::inspect {

namespace {

std::optional<int64_t> config_vocab(const ModelDir& m) {
  const auto& c = m.config();
  if (!c.is_object()) return std::nullopt;
  auto it = c.find("vocab_size");
  if (it == c.end() && c.contains("text_config") && c["text_config"].is_object()) {
    it = c["text_config"].find("vocab_size");
    if (it == c["text_config"].end()) return std::nullopt;
  }
  if (it == c.end() || !it->is_number_integer()) return std::nullopt;
  return it->get<int64_t>();
}

nlohmann::json optional_json(const std::optional<int64_t>& v) {
  return v ? nlohmann::json(*v) : nlohmann::json(nullptr);
}

}  // namespace

std::string shape_string(const std::vector<int64_t>& shape) {
  std::string s = "[";
  for (size_t i = 0; i < shape.size(); ++i) s += (i ? ", " : "") + std::to_string(shape[i]);
  return s + "]";
}

ModelSummary summarize(const ModelDir& m) {
  ModelSummary s;
  s.ref = m.ref();
  s.path = m.path();
  const auto& c = m.config();
  if (c.is_object()) {
    auto a = c.find("architectures");
    if (a != c.end() && a->is_array() && !a->empty() && (*a)[0].is_string())
      s.architecture = (*a)[0].get<std::string>();
    auto t = c.find("model_type");
    if (t != c.end() && t->is_string()) s.model_type = t->get<std::string>();
  }
  s.vocab_size = config_vocab(m);
  s.shards = m.files().size();
  for (const auto& f : m.files()) s.file_bytes += f->file_size();
  std::set<int> layers;
  for (const auto& name : m.tensor_names()) {
    TensorRef r = m.get(name);
    const uint64_t n = r.info->numel();
    s.params += n;
    s.tensor_bytes += r.info->nbytes();
    ++s.tensors;
    const std::string d(dtype_name(r.info->dtype));
    ++s.dtype_tensors[d];
    s.dtype_params[d] += n;
    int l = layer_index(name);
    if (l >= 0) layers.insert(l);
  }
  s.layers = static_cast<int>(layers.size());
  return s;
}

nlohmann::json to_json(const ModelSummary& s) {
  nlohmann::json dtypes = nlohmann::json::object();
  for (const auto& [d, n] : s.dtype_tensors)
    dtypes[d] = {{"tensors", n}, {"params", s.dtype_params.at(d)}};
  return {{"ref", s.ref},
          {"path", s.path},
          {"architecture", s.architecture.empty() ? nlohmann::json(nullptr) : nlohmann::json(s.architecture)},
          {"model_type", s.model_type.empty() ? nlohmann::json(nullptr) : nlohmann::json(s.model_type)},
          {"params", s.params},
          {"tensors", s.tensors},
          {"layers", s.layers},
          {"shards", s.shards},
          {"tensor_bytes", s.tensor_bytes},
          {"file_bytes", s.file_bytes},
          {"vocab_size", optional_json(s.vocab_size)},
          {"dtypes", dtypes}};
}

bool CompatReport::compatible() const {
  for (const auto& m : models)
    if (!m.compatible()) return false;
  return true;
}

CompatReport check_compatibility(const std::vector<const ModelDir*>& models) {
  if (models.size() < 2) fail(ErrorKind::Internal, "compatibility needs at least two models");
  const ModelDir& ref = *models[0];
  CompatReport r;
  r.reference = ref.ref();
  r.reference_vocab = config_vocab(ref);
  for (size_t i = 1; i < models.size(); ++i) {
    const ModelDir& m = *models[i];
    CompatEntry e;
    e.ref = m.ref();
    e.vocab_size = config_vocab(m);
    e.vocab_matches = !r.reference_vocab || !e.vocab_size || *r.reference_vocab == *e.vocab_size;
    for (const auto& name : ref.tensor_names()) {
      auto other = m.find(name);
      if (!other) {
        e.missing.push_back(name);
        continue;
      }
      const TensorInfo& a = *ref.get(name).info;
      const TensorInfo& b = *other->info;
      if (a.shape != b.shape) e.shape.push_back({name, shape_string(a.shape), shape_string(b.shape)});
      if (a.dtype != b.dtype)
        e.dtype.push_back({name, std::string(dtype_name(a.dtype)), std::string(dtype_name(b.dtype))});
    }
    for (const auto& name : m.tensor_names())
      if (!ref.find(name)) e.extra.push_back(name);
    r.models.push_back(std::move(e));
  }
  return r;
}

nlohmann::json to_json(const CompatReport& r) {
  nlohmann::json models = nlohmann::json::array();
  auto mismatches = [](const std::vector<Mismatch>& v) {
    nlohmann::json a = nlohmann::json::array();
    for (const auto& m : v) a.push_back({{"tensor", m.tensor}, {"reference", m.reference}, {"model", m.other}});
    return a;
  };
  for (const auto& e : r.models)
    models.push_back({{"ref", e.ref},
                      {"compatible", e.compatible()},
                      {"missing", e.missing},
                      {"extra", e.extra},
                      {"shape_mismatches", mismatches(e.shape)},
                      {"dtype_mismatches", mismatches(e.dtype)},
                      {"vocab_size", optional_json(e.vocab_size)},
                      {"vocab_matches", e.vocab_matches}});
  return {{"reference", r.reference},
          {"reference_vocab_size", optional_json(r.reference_vocab)},
          {"compatible", r.compatible()},
          {"models", models}};
}

}  // namespace amalgam::inspect
