#include "plan/param_resolver.h"

#include <set>

#include "util/error.h"

namespace amalgam {
namespace {

struct Found {
  double value;
  int line;
};

// Like evaluate_setting(), also returning the line of the entry that produced the value.
std::optional<Found> evaluate_at(const ParamSetting& s, const std::string& tensor, double t) {
  auto v = evaluate_setting(s, tensor, t);
  if (!v) return std::nullopt;
  int line = s.line;
  if (s.value.empty()) {
    for (const auto& f : s.filters) {
      if (!f.filter || *f.filter == "*" || tensor.find(*f.filter) != std::string::npos) {
        line = f.line;
        break;
      }
    }
  }
  return Found{*v, line};
}

std::optional<Found> lookup(const ParamMap* map, const std::string& key, const std::string& tensor,
                            double t) {
  if (!map) return std::nullopt;
  for (const auto& [k, setting] : *map)
    if (k == key) return evaluate_at(setting, tensor, t);
  return std::nullopt;
}

void check_range(const Recipe& recipe, const MergeMethod& method, const ParamSpec& spec,
                 const Found& f, const std::string& tensor) {
  if (f.value >= spec.min && f.value <= spec.max) return;
  std::string range = spec.max >= 1e300 ? fmt::format("must be >= {:g}", spec.min)
                      : spec.min <= -1e300
                          ? fmt::format("must be <= {:g}", spec.max)
                          : fmt::format("must be in [{:g}, {:g}]", spec.min, spec.max);
  throw Error(ErrorKind::Recipe,
              fmt::format("{}parameter '{}' = {:g} is out of range ({}) for method {} (tensor {})",
                          recipe.where(f.line), spec.name, f.value, range, method.name(), tensor));
}

}  // namespace

void resolve_job_params(const Recipe& recipe, const MergeMethod& method,
                        const ParamMap* slice_params, int method_line,
                        const std::vector<InputParams>& inputs, double t, TensorJob& job) {
  const ParamMap* top = &recipe.parameters;
  job.model_params.assign(inputs.size(), {});
  job.params.clear();
  for (const ParamSpec& spec : method.params()) {
    if (spec.per_model) {
      for (size_t i = 0; i < inputs.size(); ++i) {
        const InputParams& in = inputs[i];
        // Per-model values are matched against the model's own tensor name (§1.5).
        std::optional<Found> f = lookup(in.entry, spec.name, in.tensor, t);
        if (!f) f = lookup(slice_params, spec.name, in.tensor, t);
        if (!f) f = lookup(top, spec.name, in.tensor, t);
        if (f) {
          check_range(recipe, method, spec, *f, in.tensor);
          job.model_params[i][spec.name] = f->value;
        } else if (spec.default_value) {
          job.model_params[i][spec.name] = *spec.default_value;
        } else if (spec.required && !in.base_exempt) {
          throw Error(
              ErrorKind::Recipe,
              fmt::format("{}model '{}' has no '{}' for method {} (tensor {}); set it "
                          "under the model's parameters or in the top-level parameters",
                          recipe.where(in.line), in.ref, spec.name, method.name(), in.tensor));
        }
      }
    } else {
      // Global values skip the source level and match the output tensor name.
      std::optional<Found> f = lookup(slice_params, spec.name, job.name, t);
      if (!f) f = lookup(top, spec.name, job.name, t);
      if (f) {
        check_range(recipe, method, spec, *f, job.name);
        job.params[spec.name] = f->value;
      } else if (spec.default_value) {
        job.params[spec.name] = *spec.default_value;
      } else if (spec.required) {
        throw Error(ErrorKind::Recipe,
                    fmt::format("{}method {} needs parameter '{}' and no value applies to tensor "
                                "{}",
                                recipe.where(method_line), method.name(), spec.name, job.name));
      }
    }
  }
}

std::vector<std::string> unused_parameter_warnings(const Recipe& recipe,
                                                   const std::vector<const MergeMethod*>& methods) {
  std::set<std::string> known, global_only;
  std::set<std::string> per_model;
  for (const MergeMethod* m : methods) {
    for (const ParamSpec& p : m->params()) {
      known.insert(p.name);
      (p.per_model ? per_model : global_only).insert(p.name);
    }
  }
  std::vector<std::string> out;
  std::set<std::string> reported;
  auto check = [&](const ParamMap& map, bool model_entry) {
    for (const auto& [name, setting] : map) {
      if (!known.count(name)) {
        if (reported.insert(name).second) {
          out.push_back(fmt::format("{}parameter '{}' is not used by merge method(s) {}; ignored",
                                    recipe.where(setting.line), name,
                                    fmt::join(
                                        [&] {
                                          std::vector<std::string> n;
                                          for (auto* m : methods) n.emplace_back(m->name());
                                          return n;
                                        }(),
                                        ", ")));
        }
      } else if (model_entry && !per_model.count(name)) {
        out.push_back(fmt::format(
            "{}parameter '{}' is a global parameter; under a model entry it is ignored (as in "
            "mergekit): move it to the slice or top-level parameters",
            recipe.where(setting.line), name));
      }
    }
  };
  check(recipe.parameters, false);
  for (const auto& m : recipe.models) check(m.parameters, true);
  for (const auto& s : recipe.slices) {
    check(s.parameters, false);
    for (const auto& src : s.sources) check(src.parameters, true);
  }
  return out;
}

}  // namespace amalgam
