#include "inspect/task_vectors.h"

#include <atomic>
#include <climits>
#include <cmath>
#include <map>
#include <mutex>
#include <thread>

#include <fmt/format.h>

#include "inspect/summary.h"
#include "plan/plan.h"
#include "util/error.h"

namespace amalgam::inspect {

namespace {

// Sums over a set of coordinates; combined in a fixed order.
struct Acc {
  explicit Acc(size_t m = 0) : dot(m * m), both(m * m), disagree(m * m) {}
  std::vector<double> dot;                // [i*m+j], i <= j
  std::vector<uint64_t> both, disagree;   // [i*m+j], i < j
  uint64_t multi = 0, multi_conflict = 0, elements = 0;
  void add(const Acc& o) {
    for (size_t k = 0; k < dot.size(); ++k) {
      dot[k] += o.dot[k];
      both[k] += o.both[k];
      disagree[k] += o.disagree[k];
    }
    multi += o.multi;
    multi_conflict += o.multi_conflict;
    elements += o.elements;
  }
};

struct Item {
  size_t tensor, group;
  uint64_t first, count;
};

GroupStats finish(const Acc& a, size_t m, std::string name, int layer) {
  GroupStats g;
  g.group = std::move(name);
  g.layer = layer;
  g.elements = a.elements;
  const double nan = std::nan("");
  g.norm.resize(m);
  g.cosine.assign(m, std::vector<double>(m, nan));
  g.conflict.assign(m, std::vector<double>(m, nan));
  for (size_t i = 0; i < m; ++i) g.norm[i] = std::sqrt(a.dot[i * m + i]);
  for (size_t i = 0; i < m; ++i)
    for (size_t j = 0; j < m; ++j) {
      const size_t lo = std::min(i, j), hi = std::max(i, j);
      const double denom = g.norm[i] * g.norm[j];
      if (denom > 0) g.cosine[i][j] = a.dot[lo * m + hi] / denom;
      if (i == j) {
        g.conflict[i][j] = 0;
        continue;
      }
      const uint64_t both = a.both[lo * m + hi];
      if (both > 0) g.conflict[i][j] = static_cast<double>(a.disagree[lo * m + hi]) / both;
    }
  g.conflict_all = a.multi > 0 ? static_cast<double>(a.multi_conflict) / a.multi : nan;
  return g;
}

// The per-coordinate statistics of one chunk: d_m = model_m - base, in f64.
void accumulate(const float* base, const std::vector<const float*>& in, uint64_t n, Acc& a) {
  const size_t m = in.size();
  std::vector<double> d(m);
  for (uint64_t k = 0; k < n; ++k) {
    int nonzero = 0;
    bool pos = false, neg = false;
    for (size_t i = 0; i < m; ++i) {
      d[i] = static_cast<double>(in[i][k]) - static_cast<double>(base[k]);
      if (d[i] != 0) ++nonzero, (d[i] > 0 ? pos : neg) = true;
    }
    for (size_t i = 0; i < m; ++i) {
      if (d[i] == 0) continue;  // contributes nothing to any sum below
      for (size_t j = i; j < m; ++j) {
        a.dot[i * m + j] += d[i] * d[j];
        if (j > i && d[j] != 0) {
          ++a.both[i * m + j];
          if ((d[i] > 0) != (d[j] > 0)) ++a.disagree[i * m + j];
        }
      }
    }
    if (nonzero >= 2) {
      ++a.multi;
      if (pos && neg) ++a.multi_conflict;
    }
  }
  a.elements += n;
}

std::string fmt_value(double v, const char* spec) {
  return std::isnan(v) ? std::string("-") : fmt::format(fmt::runtime(spec), v);
}

nlohmann::json num(double v) { return std::isnan(v) ? nlohmann::json(nullptr) : nlohmann::json(v); }

nlohmann::json matrix_json(const std::vector<std::vector<double>>& mat) {
  nlohmann::json a = nlohmann::json::array();
  for (const auto& row : mat) {
    nlohmann::json r = nlohmann::json::array();
    for (double v : row) r.push_back(num(v));
    a.push_back(r);
  }
  return a;
}

nlohmann::json group_json(const GroupStats& g) {
  nlohmann::json norms = nlohmann::json::array();
  for (double v : g.norm) norms.push_back(num(v));
  return {{"group", g.group},
          {"layer", g.layer >= 0 ? nlohmann::json(g.layer) : nlohmann::json(nullptr)},
          {"elements", g.elements},
          {"norm", norms},
          {"cosine", matrix_json(g.cosine)},
          {"sign_conflict", matrix_json(g.conflict)},
          {"sign_conflict_all", num(g.conflict_all)}};
}

}  // namespace

std::string tensor_group(const std::string& name, int* layer) {
  const int l = layer_index(name);
  if (layer) *layer = l;
  if (l >= 0) return "layer " + std::to_string(l);
  for (const char* key : {"embed", "wte", "wpe", "tok_embeddings"})
    if (name.find(key) != std::string::npos) return "embed";
  return "other";
}

TaskVectorReport task_vector_stats(const ModelDir& base, const std::vector<const ModelDir*>& models,
                                   const TaskVectorOptions& o) {
  if (models.empty()) fail(ErrorKind::Usage, "--base needs at least one other model");
  const size_t m = models.size();
  const uint64_t chunk = std::max<uint64_t>(1, o.chunk_elements);
  TaskVectorReport r;
  r.base = base.ref();
  for (const auto* md : models) r.models.push_back(md->ref());

  // Tensors every model has with the base's shape, grouped; groups ordered embed,
  // layer 0..L-1, other.
  std::vector<std::vector<TensorRef>> refs;  // [tensor][0 = base, 1..m]
  std::map<int, std::pair<std::string, int>> group_keys;  // order key -> (name, layer)
  std::vector<int> tensor_key;
  for (const auto& name : base.tensor_names()) {
    std::vector<TensorRef> row{base.get(name)};
    bool ok = dtype_is_float(row[0].info->dtype);
    for (const auto* md : models) {
      auto t = md->find(name);
      ok = ok && t && t->info->shape == row[0].info->shape && dtype_is_float(t->info->dtype);
      if (ok) row.push_back(*t);
    }
    if (!ok) {
      r.skipped.push_back(name);
      continue;
    }
    int layer = -1;
    std::string g = tensor_group(name, &layer);
    const int key = layer >= 0 ? layer : (g == "embed" ? -1 : INT_MAX);
    group_keys[key] = {g, layer};
    tensor_key.push_back(key);
    refs.push_back(std::move(row));
  }
  std::map<int, size_t> group_index;
  for (const auto& [key, _] : group_keys) group_index.emplace(key, group_index.size());

  std::vector<Item> items;
  for (size_t t = 0; t < refs.size(); ++t) {
    const uint64_t n = refs[t][0].info->numel();
    for (uint64_t first = 0; first < n; first += chunk)
      items.push_back({t, group_index[tensor_key[t]], first, std::min(chunk, n - first)});
  }

  std::vector<Acc> partial(items.size());
  std::atomic<size_t> next{0};
  std::atomic<bool> failed{false};
  std::exception_ptr error;
  std::mutex error_mu;
  auto worker = [&] {
    try {
      std::vector<std::vector<float>> buf(m + 1, std::vector<float>(chunk));
      std::vector<const float*> in(m);
      for (size_t i = 1; i <= m; ++i) in[i - 1] = buf[i].data();
      while (!failed) {
        const size_t k = next.fetch_add(1);
        if (k >= items.size()) break;
        const Item& it = items[k];
        uint64_t bytes = 0;
        for (size_t i = 0; i <= m; ++i) {
          const TensorRef& ref = refs[it.tensor][i];
          ref.file->read_f32(*ref.info, it.first, it.count, buf[i].data());
          ref.file->release(*ref.info, it.first, it.count);
          bytes += it.count * dtype_size(ref.info->dtype);
        }
        Acc a(m);
        accumulate(buf[0].data(), in, it.count, a);
        partial[k] = std::move(a);
        if (o.progress) o.progress(bytes);
      }
    } catch (...) {
      std::lock_guard<std::mutex> lock(error_mu);
      if (!error) error = std::current_exception();
      failed = true;
    }
  };
  std::vector<std::thread> pool;
  for (int t = 1; t < std::max(1, o.threads); ++t) pool.emplace_back(worker);
  worker();
  for (auto& t : pool) t.join();
  if (error) std::rethrow_exception(error);

  // Fixed-order reduction: item order, independent of which thread did what.
  std::vector<Acc> groups(group_index.size(), Acc(m));
  Acc total(m);
  for (size_t k = 0; k < items.size(); ++k) {
    groups[items[k].group].add(partial[k]);
    total.add(partial[k]);
  }
  for (const auto& [key, idx] : group_index) {
    const auto& [name, layer] = group_keys[key];
    r.groups.push_back(finish(groups[idx], m, name, layer));
  }
  r.total = finish(total, m, "total", -1);
  return r;
}

nlohmann::json to_json(const TaskVectorReport& r) {
  nlohmann::json groups = nlohmann::json::array();
  for (const auto& g : r.groups) groups.push_back(group_json(g));
  return {{"base", r.base},
          {"models", r.models},
          {"groups", groups},
          {"total", group_json(r.total)},
          {"skipped_tensors", r.skipped}};
}

std::string format_table(const TaskVectorReport& r) {
  const size_t m = r.models.size();
  std::string out = fmt::format("task vectors (model - base), base {}\n", r.base);
  for (size_t i = 0; i < m; ++i) out += fmt::format("  #{} {}\n", i + 1, r.models[i]);
  std::vector<std::string> head{"group", "elements"};
  for (size_t i = 0; i < m; ++i) head.push_back(fmt::format("|tau#{}|", i + 1));
  for (size_t i = 0; i < m; ++i)
    for (size_t j = i + 1; j < m; ++j) head.push_back(fmt::format("cos{}-{}", i + 1, j + 1));
  for (size_t i = 0; i < m; ++i)
    for (size_t j = i + 1; j < m; ++j) head.push_back(fmt::format("conf{}-{}", i + 1, j + 1));
  if (m > 2) head.push_back("conf-all");
  std::vector<std::vector<std::string>> rows{head};
  auto row = [&](const GroupStats& g) {
    std::vector<std::string> c{g.group, std::to_string(g.elements)};
    for (double v : g.norm) c.push_back(fmt_value(v, "{:.4g}"));
    for (size_t i = 0; i < m; ++i)
      for (size_t j = i + 1; j < m; ++j) c.push_back(fmt_value(g.cosine[i][j], "{:.3f}"));
    for (size_t i = 0; i < m; ++i)
      for (size_t j = i + 1; j < m; ++j)
        c.push_back(fmt_value(g.conflict[i][j] * 100, "{:.1f}%"));
    if (m > 2) c.push_back(fmt_value(g.conflict_all * 100, "{:.1f}%"));
    rows.push_back(c);
  };
  for (const auto& g : r.groups) row(g);
  row(r.total);
  std::vector<size_t> width(head.size(), 0);
  for (const auto& rw : rows)
    for (size_t k = 0; k < rw.size(); ++k) width[k] = std::max(width[k], rw[k].size());
  for (size_t i = 0; i < rows.size(); ++i) {
    std::string line;
    for (size_t k = 0; k < rows[i].size(); ++k)
      line += k == 0 ? fmt::format("{:<{}}", rows[i][k], width[k])
                     : fmt::format("  {:>{}}", rows[i][k], width[k]);
    out += line + "\n";
    if (i == 0 || i + 2 == rows.size()) out += std::string(line.size(), '-') + "\n";
  }
  if (!r.skipped.empty())
    out += fmt::format("{} base tensor(s) skipped (missing, reshaped or not float in some model)\n",
                       r.skipped.size());
  return out;
}

}  // namespace amalgam::inspect
