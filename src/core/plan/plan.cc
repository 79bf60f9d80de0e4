// make_plan: recipe + opened models -> one resolved job per output tensor (METHODS.md
// §1.2-§1.6, §3). Steps: normalise the recipe into output slices, list the output
// tensors from the template model's names (pre, layers slice by slice, post), then for
// every tensor find its inputs, reconcile shapes, resolve parameters, and let the method
// validate the job, so that every problem is reported before anything is written.
#include "plan/plan.h"

#include <algorithm>
#include <map>
#include <set>

#include "plan/output_config.h"
#include "plan/param_resolver.h"
#include "plan/shape_rules.h"
#include "plan/tensor_names.h"
#include "plan/tokenizer_merge.h"
#include "plan/vocabulary.h"
#include "util/error.h"

namespace amalgam {
namespace {

uint64_t numel_of(const std::vector<int64_t>& s) {
  uint64_t n = 1;
  for (int64_t d : s) n *= static_cast<uint64_t>(d);
  return n;
}

struct Source {
  size_t model = 0;                  // ModelSet index
  std::string ref;                   // as written in the recipe
  int begin = 0;                     // first input layer
  const ParamMap* params = nullptr;  // nullptr: the auto-added base
  int line = 0;
};

struct OutSlice {
  const MergeMethod* method = nullptr;
  int method_line = 0;
  const ParamMap* params = nullptr;  // slice-level parameters (slices: form)
  std::vector<Source> sources;       // job input order
  int base = -1;                     // index into sources of the base model, -1 if none
  int length = 0;                    // layers
  int out_begin = 0;                 // first output layer
  int line = 0;
  size_t reference = 0;  // source whose layer tensor names define the slice
};

class Planner {
 public:
  Planner(const Recipe& r, ModelSet& models, const PlanOptions& o)
      : recipe_(r), models_(models), options_(o) {}

  MergePlan run() {
    build_slices();
    check_architectures();
    choose_donors();
    list_and_plan_tensors();
    finish_config();
    finish_warnings();
    return std::move(plan_);
  }

 private:
  size_t open(const std::string& ref, int line) {
    try {
      return models_.index_of(ref);
    } catch (const Error& e) {
      throw Error(e.kind(), recipe_.where(line) + "model '" + ref + "': " + e.what());
    }
  }
  const ModelDir& model(size_t i) const { return models_.at(i); }

  int layers_of(size_t m) {
    auto it = layer_count_.find(m);
    if (it != layer_count_.end()) return it->second;
    return layer_count_[m] = count_layers(model(m));
  }

  const std::vector<std::string>& layer_names(size_t m, int layer) {
    auto& per_model = layer_names_[m];
    if (per_model.empty()) {
      for (const std::string& n : model(m).tensor_names()) {
        int l = layer_index(n);
        if (l >= 0) per_model[l].push_back(n);
      }
      per_model[-1];  // marks the model as indexed
    }
    return per_model[layer];
  }

  const MergeMethod* method_named(const std::string& name, int line) {
    const MergeMethod* m = find_method(name);
    if (!m) {
      throw Error(ErrorKind::Recipe,
                  fmt::format("{}merge_method: unknown method '{}' (known: {})",
                              recipe_.where(line), name, fmt::join(method_names(), ", ")));
    }
    return m;
  }

  // Sets `slice.base` from the base model reference, or fails when the method needs one.
  void attach_base(OutSlice& slice, std::optional<size_t> base, int where_line) {
    BaseRole role = slice.method->base_role();
    if (role == BaseRole::Ignored || role == BaseRole::CountedAsInput) return;
    if (base) {
      for (size_t i = 0; i < slice.sources.size(); ++i)
        if (slice.sources[i].model == *base) slice.base = static_cast<int>(i);
    }
    if (role == BaseRole::Required && slice.base < 0) {
      throw Error(
          ErrorKind::Recipe,
          base ? fmt::format("{}method {} needs the base model '{}' among this slice's "
                             "sources",
                             recipe_.where(where_line), slice.method->name(), model(*base).ref())
               : fmt::format("{}method {} needs base_model", recipe_.where(where_line),
                             slice.method->name()));
    }
  }

  // §1.2: the recipe as a list of output slices.
  void build_slices() {
    const MergeMethod* top = method_named(recipe_.merge_method, recipe_.merge_method_line);
    if (recipe_.base_model) base_ = open(*recipe_.base_model, recipe_.base_model_line);
    if (!recipe_.uses_slices()) {
      OutSlice s;
      s.method = top;
      s.method_line = s.line = recipe_.merge_method_line;
      std::set<size_t> seen;
      for (const SourceSpec& m : recipe_.models) {
        size_t idx = open(m.model, m.line);
        if (!seen.insert(idx).second) {
          throw Error(ErrorKind::Recipe,
                      fmt::format("{}model '{}' is listed twice", recipe_.where(m.line), m.model));
        }
        s.sources.push_back({idx, m.model, 0, &m.parameters, m.line});
      }
      if (base_ && !seen.count(*base_) && top->base_role() != BaseRole::Ignored) {
        // Appended for every method, as mergekit does; linear/karcher then average it in.
        s.sources.push_back({*base_, *recipe_.base_model, 0, nullptr, recipe_.base_model_line});
        if (top->base_role() == BaseRole::CountedAsInput) {
          plan_.warnings.push_back(fmt::format(
              "{}base_model '{}' is not listed under models: and method {} counts it as one more "
              "input (as mergekit does)",
              recipe_.where(recipe_.base_model_line), *recipe_.base_model, top->name()));
        }
      }
      attach_base(s, base_, recipe_.merge_method_line);
      s.reference = s.base >= 0 ? s.base : 0;
      s.length = layers_of(s.sources[s.reference].model);
      for (const Source& src : s.sources) {
        if (layers_of(src.model) != s.length) {
          throw Error(ErrorKind::Input,
                      fmt::format("{}model '{}' has {} layers but '{}' has {}; use slices: with "
                                  "layer_range to merge models of different depth",
                                  recipe_.where(src.line), src.ref, layers_of(src.model),
                                  s.sources[s.reference].ref, s.length));
        }
      }
      slices_.push_back(std::move(s));
      template_ = base_ ? *base_ : slices_[0].sources[0].model;
      return;
    }
    int out_layer = 0;
    for (const SliceSpec& spec : recipe_.slices) {
      OutSlice s;
      s.line = spec.line;
      s.method = spec.merge_method ? method_named(*spec.merge_method, spec.line) : top;
      s.method_line = spec.merge_method ? spec.line : recipe_.merge_method_line;
      s.params = &spec.parameters;
      std::set<size_t> seen;
      for (const SourceSpec& src : spec.sources) {
        size_t idx = open(src.model, src.line);
        if (!seen.insert(idx).second) {
          throw Error(ErrorKind::Recipe, fmt::format("{}model '{}' appears twice in this slice",
                                                     recipe_.where(src.line), src.model));
        }
        auto [a, b] = *src.layer_range;
        if (b > layers_of(idx)) {
          throw Error(ErrorKind::Recipe,
                      fmt::format("{}layer_range [{}, {}] is past the end of model '{}', which has "
                                  "{} layers",
                                  recipe_.where(src.line), a, b, src.model, layers_of(idx)));
        }
        if (!s.sources.empty() && b - a != s.length) {
          throw Error(ErrorKind::Recipe,
                      fmt::format("{}layer_range [{}, {}] has {} layers but this slice's first "
                                  "source has {}; all sources of a slice must have the same length",
                                  recipe_.where(src.line), a, b, b - a, s.length));
        }
        s.length = b - a;
        s.sources.push_back({idx, src.model, a, &src.parameters, src.line});
      }
      std::optional<size_t> base = base_;
      if (spec.base_model) base = open(*spec.base_model, spec.line);
      attach_base(s, base, spec.line);
      s.reference = s.base >= 0 ? s.base : 0;
      s.out_begin = out_layer;
      out_layer += s.length;
      slices_.push_back(std::move(s));
    }
    template_ = base_ ? *base_ : slices_[0].sources[0].model;
  }

  // mergekit refuses models of different architectures unless --allow-crimes.
  void check_architectures() {
    std::string first_type;
    size_t first = 0;
    for (size_t i = 0; i < models_.size(); ++i) {
      const auto& c = model(i).config();
      if (!c.is_object() || !c.contains("model_type") || !c["model_type"].is_string()) continue;
      std::string t = c["model_type"];
      if (first_type.empty()) {
        first_type = t, first = i;
      } else if (t != first_type && !options_.allow_crimes) {
        throw Error(ErrorKind::Input,
                    fmt::format("models of different architectures: '{}' is {} but '{}' is {} "
                                "(pass --allow-crimes to merge them anyway)",
                                model(first).ref(), first_type, model(i).ref(), t));
      }
    }
  }

  void choose_donors() {
    plan_.config_donor = template_;
    plan_.tokenizer_donor = template_;
    std::optional<std::string> source = recipe_.tokenizer_source;
    if (recipe_.tokenizer) source = recipe_.tokenizer->source;
    if (!source) return;
    int line = recipe_.tokenizer_line;
    std::optional<size_t> source_model;
    if (*source == "union" || *source == "base") {
      vocab_model_ = template_;
    } else {
      source_model = open(*source, line);
      vocab_model_ = source_model;
    }
    plan_.tokenizer_donor = vocab_model_;
    // Every model of the merge, in recipe order (METHODS.md §8.8).
    std::vector<size_t> order;
    for (const OutSlice& s : slices_)
      for (const Source& src : s.sources)
        if (std::find(order.begin(), order.end(), src.model) == order.end()) order.push_back(src.model);
    const std::vector<TokenSpec>& tokens = recipe_tokens();
    try {
      vocab_ = plan_vocabulary(*source, template_, source_model, order, models_, tokens);
    } catch (const Error& e) {
      throw Error(e.kind(), recipe_.where(line) + e.what());
    }
    if (!vocab_) {
      // No tokenizer file to read a vocabulary from: rows are taken as stored.
      if (!tokens.empty())
        throw Error(ErrorKind::Recipe,
                    fmt::format("{}tokenizer.tokens needs the tokenizer of '{}', which has none",
                                recipe_.where(line), model(template_).ref()));
      if (*source == "union") {
        for (size_t i = 0; i < models_.size(); ++i) {
          if (!same_vocabulary(model(template_), model(i))) {
            throw Error(ErrorKind::Recipe,
                        fmt::format("{}tokenizer_source: union needs the tokenizer of '{}' "
                                    "(tokenizer.json, vocab.json, vocab.txt or tokenizer.model), "
                                    "since '{}' has a different vocabulary",
                                    recipe_.where(line), model(template_).ref(), model(i).ref()));
          }
        }
      }
      return;
    }
    for (auto& w : vocab_->warnings) plan_.warnings.push_back(std::move(w));
    remap_ = !vocab_->identity;
    plan_.vocabulary = {{"source", *source},
                        {"tokens", vocab_->size()},
                        {"appended", vocab_->appended},
                        {"remapped", remap_}};
    if (remap_) plan_.tokenizer_files = vocab_->files;
  }

  // The output tensor list (§1.6): pre tensors, layers slice by slice, post tensors.
  void list_and_plan_tensors() {
    std::vector<std::string> pre, post;
    std::set<std::string> listed;
    for (const std::string& n : model(template_).tensor_names()) {
      if (layer_index(n) >= 0) continue;
      (is_pre_tensor_name(n) ? pre : post).push_back(n);
      listed.insert(n);
    }
    // An untied output head in any model of the last slice is planned even when the
    // template ties it; models that tie it are read from their embeddings.
    for (const Source& s : slices_.back().sources) {
      for (const std::string& n : model(s.model).tensor_names()) {
        if (layer_index(n) < 0 && is_output_head_name(n) && listed.insert(n).second) {
          post.push_back(n);
        }
      }
    }
    for (const std::string& n : pre) plan_tensor(slices_.front(), n, -1, 0.0);
    for (const OutSlice& s : slices_) {
      const Source& ref = s.sources[s.reference];
      for (int k = 0; k < s.length; ++k) {
        // §1.3: t restarts in every slice; a one-layer slice uses t = 1.
        double t = s.length > 1 ? double(k) / double(s.length - 1) : 1.0;
        for (const std::string& n : layer_names(ref.model, ref.begin + k)) {
          plan_tensor(s, with_layer_index(n, s.out_begin + k), k, t, n);
        }
      }
    }
    for (const std::string& n : post) plan_tensor(slices_.back(), n, -1, 0.0);
  }

  struct Candidate {
    size_t source;  // index into slice.sources
    std::string input_name;
    TensorRef ref;
    std::string stored_name;
  };

  // `offset` is the layer within the slice (-1 for pre/post tensors); `ref_name` is the
  // reference source's tensor name for layer tensors.
  void plan_tensor(const OutSlice& slice, const std::string& out_name, int offset, double t,
                   const std::string& ref_name = "") {
    std::vector<Candidate> cands;
    for (size_t i = 0; i < slice.sources.size(); ++i) {
      const Source& src = slice.sources[i];
      std::string name = offset >= 0 ? with_layer_index(ref_name, src.begin + offset) : out_name;
      auto found = model(src.model).find(name);
      std::string stored = name;
      if (!found && is_output_head_name(name)) {
        if (auto tied = tied_embedding_name(model(src.model))) {
          found = model(src.model).find(*tied);
          stored = *tied;
        }
      }
      if (!found) {
        throw Error(ErrorKind::Input,
                    fmt::format("model '{}' has no tensor '{}' (needed for output tensor '{}')",
                                src.ref, name, out_name));
      }
      cands.push_back({i, name, *found, stored});
    }
    bool embedding = is_vocab_embedding_name(out_name);
    // Outside the layer stack, a matrix with vocab_size rows is a vocabulary matrix too
    // (inside it, a hidden size that happens to equal vocab_size must not count).
    for (const Candidate& c : cands) {
      const auto& cfg = model(slice.sources[c.source].model).config();
      const auto& shape = c.ref.info->shape;
      if (offset < 0 && shape.size() == 2 && cfg.is_object() && cfg.contains("vocab_size") &&
          cfg["vocab_size"].is_number_integer() && cfg["vocab_size"].get<int64_t>() == shape[0]) {
        embedding = true;
      }
    }
    if (embedding && remap_ && !cands.empty() && !cands[0].ref.info->shape.empty()) {
      plan_remapped_tensor(slice, out_name, t, cands);
      return;
    }
    std::vector<int64_t> shape = job_shape(slice, out_name, embedding, cands);
    const int64_t real_rows = embedding ? pad_rows(out_name, shape) : -1;

    PlannedTensor pt;
    for (const Candidate& c : cands)
      pt.inputs.push_back(input_ref(slice, c, real_rows));
    finish_tensor(slice, out_name, shape, embedding, t, cands, std::move(pt));
  }

  const std::vector<TokenSpec>& recipe_tokens() const {
    static const std::vector<TokenSpec> kNoTokens;
    return recipe_.tokenizer ? recipe_.tokenizer->tokens : kNoTokens;
  }

  // tokenizer.pad_to_multiple_of on an embedding matrix of job shape `shape`: rows up to
  // the next multiple, each the mean of the input's real rows (§4 step 4). Returns the
  // real row count when rows were added, else -1.
  int64_t pad_rows(const std::string& out_name, std::vector<int64_t>& shape) {
    if (shape.size() != 2 || !recipe_.tokenizer || !recipe_.tokenizer->pad_to_multiple_of) return -1;
    int64_t real_rows = -1;
    const int64_t m = *recipe_.tokenizer->pad_to_multiple_of;
    if (shape[0] % m != 0) {
      real_rows = shape[0];
      shape[0] = (shape[0] + m - 1) / m * m;
    }
    if (padded_rows_ == 0 || is_pre_tensor_name(out_name)) padded_rows_ = shape[0];
    return real_rows;
  }

  static InputRef input_ref(const OutSlice& slice, const Candidate& c, int64_t real_rows) {
    InputRef in;
    in.model = slice.sources[c.source].model;
    in.tensor = c.stored_name;
    in.stored_shape = c.ref.info->shape;
    in.dtype = c.ref.info->dtype;
    in.real_rows = real_rows;
    return in;
  }

  // An embedding whose rows follow the output vocabulary (METHODS.md §4 steps 3-5).
  void plan_remapped_tensor(const OutSlice& slice, const std::string& out_name, double t,
                            std::vector<Candidate>& cands) {
    const Candidate& ref = cands[0];
    std::vector<int64_t> shape = ref.ref.info->shape;
    shape[0] = vocab_->size();
    std::vector<size_t> inputs;
    int base = -1;
    for (const Candidate& c : cands) {
      const auto& s = c.ref.info->shape;
      const Source& src = slice.sources[c.source];
      if (s.size() != shape.size() || !std::equal(s.begin() + 1, s.end(), shape.begin() + 1))
        throw Error(ErrorKind::Input,
                    fmt::format("tensor '{}': model '{}' has shape {} but '{}' has {}; only the "
                                "vocabulary rows may differ",
                                out_name, src.ref, shape_str(s), slice.sources[ref.source].ref,
                                shape_str(ref.ref.info->shape)));
      if (static_cast<int>(c.source) == slice.base) base = static_cast<int>(inputs.size());
      inputs.push_back(src.model);
    }
    int64_t in_none = 0;
    std::shared_ptr<RowRemap> remap =
        plan_row_remap(*vocab_, inputs, base, models_, recipe_tokens(), recipe_, in_none);
    if (in_none > 0 && !warned_in_none_) {
      warned_in_none_ = true;
      plan_.warnings.push_back(fmt::format(
          "tokenizer: {} token(s) of the output vocabulary are in no model; their embedding "
          "rows are zeros (e.g. in '{}')",
          in_none, out_name));
    }
    for (size_t j = 0; j < cands.size(); ++j) {
      const Candidate& c = cands[j];
      remap->stored.push_back({inputs[j], c.stored_name});
      int64_t top = -1;
      for (int32_t r : remap->own[j]) top = std::max<int64_t>(top, r);
      for (const auto& f : remap->fallbacks)
        for (const auto& [k, r] : f.from)
          if (k == j) top = std::max(top, r);
      if (top >= c.ref.info->shape[0])
        throw Error(ErrorKind::Input,
                    fmt::format("tensor '{}' of model '{}' has {} rows, but row {} is needed "
                                "(by its tokenizer or tokenizer.tokens)",
                                c.stored_name, slice.sources[c.source].ref, c.ref.info->shape[0], top));
    }
    const int64_t real_rows = pad_rows(out_name, shape);
    // config.json's vocab_size becomes the output vocabulary's size, padded or not.
    if (padded_rows_ == 0 || is_pre_tensor_name(out_name)) padded_rows_ = shape[0];
    PlannedTensor pt;
    for (size_t j = 0; j < cands.size(); ++j) {
      const Candidate& c = cands[j];
      InputRef in = input_ref(slice, c, real_rows);
      in.remap = remap;
      in.remap_input = static_cast<int>(j);
      pt.inputs.push_back(std::move(in));
    }
    finish_tensor(slice, out_name, shape, true, t, cands, std::move(pt));
  }

  void finish_tensor(const OutSlice& slice, const std::string& out_name, const std::vector<int64_t>& shape,
                     bool embedding, double t, const std::vector<Candidate>& cands, PlannedTensor pt) {
    pt.method = slice.method;
    TensorJob& job = pt.job;
    job.name = out_name;
    job.shape = shape;
    job.seed = options_.seed;
    job.is_embedding = embedding;
    std::vector<InputParams> params;
    for (const Candidate& c : cands) {
      const Source& src = slice.sources[c.source];
      if (static_cast<int>(c.source) == slice.base)
        job.base = static_cast<int>(job.input_labels.size());
      job.input_labels.push_back(src.ref);
      params.push_back(
          {src.params, c.input_name, src.ref, src.line, static_cast<int>(c.source) == slice.base});
    }
    resolve_job_params(recipe_, *slice.method, slice.params, slice.method_line, params, t, job);

    // §8.1: out_dtype, else dtype, else the base's stored dtype, else the first model's.
    if (recipe_.dtype) pt.load_dtype = torch_dtype(*recipe_.dtype);
    if (recipe_.out_dtype) {
      pt.out_dtype = torch_dtype(*recipe_.out_dtype);
    } else if (recipe_.dtype) {
      pt.out_dtype = *pt.load_dtype;
    } else {
      pt.out_dtype = pt.inputs[job.base >= 0 ? job.base : 0].dtype;
    }
    try {
      slice.method->create(job);  // the method's own checks (input counts, k > 0, ...)
    } catch (const Error& e) {
      throw Error(e.kind(), recipe_.where(slice.method_line) + e.what());
    }
    plan_.tensors.push_back(std::move(pt));
  }

  static DType torch_dtype(const std::string& name) {
    auto d = parse_torch_dtype(name);
    if (!d) throw Error(ErrorKind::Internal, "dtype '" + name + "' passed the parser but not io/");
    return *d;
  }

  // §3 via reconcile_shapes(): the job's shape; drops inputs the rules leave out.
  std::vector<int64_t> job_shape(const OutSlice& slice, const std::string& name, bool embedding,
                                 std::vector<Candidate>& cands) {
    std::optional<int64_t> vocab_rows;  // rows fixed by tokenizer_source
    if (embedding && vocab_model_) {
      auto found = model(*vocab_model_).find(name);
      if (!found && is_output_head_name(name)) {
        if (auto tied = tied_embedding_name(model(*vocab_model_)))
          found = model(*vocab_model_).find(*tied);
      }
      if (found && found->info->shape.size() == 2) vocab_rows = found->info->shape[0];
    }
    std::vector<ShapeInput> inputs;
    int base = -1;
    for (const Candidate& c : cands) {
      if (static_cast<int>(c.source) == slice.base) base = static_cast<int>(inputs.size());
      inputs.push_back({&c.ref.info->shape, slice.sources[c.source].ref});
    }
    ShapeDecision d = reconcile_shapes(name, std::string(slice.method->name()), inputs, base,
                                       embedding, vocab_rows);
    if (!d.rectified.empty()) {
      plan_.warnings.push_back(d.rectified);
      if (embedding_rows_ == 0 || is_pre_tensor_name(name)) embedding_rows_ = d.shape[0];
    }
    std::vector<Candidate> kept;
    for (size_t i = 0; i < cands.size(); ++i) {
      if (d.keep[i]) {
        kept.push_back(std::move(cands[i]));
        continue;
      }
      auto& drop = dropped_[inputs[i].label];
      if (drop.first++ == 0) {
        drop.second = fmt::format("'{}' {} vs base {}", name, shape_str(*inputs[i].shape),
                                  shape_str(d.shape));
      }
    }
    cands = std::move(kept);
    return d.shape;
  }

  void finish_config() {
    OutputConfigInputs in;
    in.donor = model(plan_.config_donor).config();
    in.dtype = recipe_.out_dtype ? recipe_.out_dtype : recipe_.dtype;
    in.slices = recipe_.uses_slices();
    for (const OutSlice& s : slices_) {
      const Source& ref = s.sources[s.reference];
      in.layers.push_back({&model(ref.model).config(), ref.ref, ref.begin, s.length});
    }
    in.embedding_rows = embedding_rows_;
    in.padded_rows = padded_rows_;
    for (const PlannedTensor& t : plan_.tensors) in.head_written |= is_output_head_name(t.job.name);
    plan_.output_config = make_output_config(in, plan_.warnings);
  }

  void finish_warnings() {
    for (const auto& [ref, d] : dropped_) {
      plan_.warnings.push_back(fmt::format(
          "model '{}' left out of {} tensor(s) whose shape differs from the base's, e.g. {} "
          "(as mergekit does for task-arithmetic methods)",
          ref, d.first, d.second));
    }
    std::vector<const MergeMethod*> methods;
    for (const OutSlice& s : slices_)
      if (std::find(methods.begin(), methods.end(), s.method) == methods.end())
        methods.push_back(s.method);
    for (auto& w : unused_parameter_warnings(recipe_, methods)) plan_.warnings.push_back(w);
  }

  const Recipe& recipe_;
  ModelSet& models_;
  const PlanOptions& options_;
  MergePlan plan_;
  std::vector<OutSlice> slices_;
  std::optional<size_t> base_;
  size_t template_ = 0;
  std::optional<size_t> vocab_model_;
  std::optional<VocabularyPlan> vocab_;  // output vocabulary of tokenizer_source
  bool remap_ = false;                   // embeddings follow vocab_ row by row
  bool warned_in_none_ = false;
  int64_t embedding_rows_ = 0;
  int64_t padded_rows_ = 0;  // embedding rows after tokenizer.pad_to_multiple_of
  std::map<size_t, int> layer_count_;
  std::map<size_t, std::map<int, std::vector<std::string>>> layer_names_;
  std::map<std::string, std::pair<int, std::string>> dropped_;  // ref -> (count, example)
};

}  // namespace

size_t ModelSet::index_of(const std::string& ref) {
  for (size_t i = 0; i < refs_.size(); ++i)
    if (refs_[i] == ref) return i;
  std::unique_ptr<ModelDir> m = ModelDir::open(ref);
  // Two spellings of one directory are one model (it must not be averaged in twice).
  for (size_t i = 0; i < models_.size(); ++i)
    if (models_[i]->path() == m->path()) return i;
  models_.push_back(std::move(m));
  refs_.push_back(ref);
  return models_.size() - 1;
}

uint64_t MergePlan::input_bytes() const {
  uint64_t n = 0;
  for (const PlannedTensor& t : tensors)
    for (const InputRef& in : t.inputs) n += numel_of(t.job.shape) * dtype_size(in.dtype);
  return n;
}

uint64_t MergePlan::output_bytes() const {
  uint64_t n = 0;
  for (const PlannedTensor& t : tensors) n += numel_of(t.job.shape) * dtype_size(t.out_dtype);
  return n;
}

MergePlan make_plan(const Recipe& recipe, ModelSet& models, const PlanOptions& options) {
  return Planner(recipe, models, options).run();
}

}  // namespace amalgam
