// The demo's HTML page: what was trained, how each model scores per family, the merge
// table normalized as in "What Matters for Model Merging at Scale?", and plots of
// normalized held-in / held-out performance against the number of merged experts.
#include <algorithm>
#include <cmath>
#include <set>

#include <fmt/format.h>

#include "torch/report/html_report.h"
#include "torch/report/svg_chart.h"
#include "torch/zoo/demo.h"
#include "torch/zoo/task_family.h"

namespace amalgam::zoo {

void write_demo_report(const DemoResult& r, const std::string& path) {
  using report::Cell;
  report::HtmlReport page("amalgam demo: merging a self-trained model zoo");
  page.paragraph(fmt::format(
      "Preset '{}' (seed {}): Llama-architecture models of {} parameters with a 128-byte "
      "vocabulary, trained by amalgam itself. A base was pretrained on generic synthetic "
      "text, an instruction-tuned base on a mixture of the {} held-in task families, and "
      "one expert per family fine-tuned from the instruction-tuned base. Experts were "
      "merged through amalgam's merge engine and every model was scored by exact match "
      "(greedy decoding) on test items it never trained on.",
      r.preset, r.seed, r.parameters, r.held_in.size()));
  page.paragraph(fmt::format(
      "This run: {} models trained ({:.0f} s), {} loaded from the cache; {} merges "
      "({:.1f} s); scoring {:.0f} s; total {:.0f} s. Zoo: {}",
      r.models_trained, r.train_seconds, r.models_cached, r.merges.size(), r.merge_seconds,
      r.eval_seconds, r.total_seconds, r.zoo_root));

  // Family descriptions.
  report::Table fam{"Task families", {"family", "set", "instruction", "what"}, {}, ""};
  for (const auto* names : {&r.held_in, &r.held_out})
    for (const auto& f : *names) {
      const auto& tf = task_family(f);
      fam.rows.push_back({{f}, {tf.held_in ? "held-in" : "held-out"}, {tf.instruction},
                          {tf.description}});
    }
  page.heading("Tasks");
  page.table(fam);

  std::vector<std::string> families = r.held_in;
  families.insert(families.end(), r.held_out.begin(), r.held_out.end());
  auto score_table = [&](const std::string& caption, const std::vector<std::string>& rows,
                         const std::map<std::string, FamilyScores>& scores) {
    report::Table t{caption, {"model"}, {}, ""};
    for (const auto& f : families)
      t.header.push_back(f + (task_family(f).held_in ? "" : " (out)"));
    for (const auto& name : rows) {
      std::vector<Cell> row{{name}};
      const auto& s = scores.at(name);
      for (const auto& f : families) {
        const double v = s.count(f) ? s.at(f) : NAN;
        // An expert's own family in bold: the diagonal the merge has to preserve.
        const bool own = name == "expert-instruct-" + f;
        row.push_back({std::isfinite(v) ? fmt::format("{:.2f}", v) : "-", v, own});
      }
      t.rows.push_back(std::move(row));
    }
    return t;
  };
  page.heading("The zoo: exact match per family");
  std::vector<std::string> zoo_rows;
  for (const auto& [name, s] : r.model_scores) zoo_rows.push_back(name);
  std::sort(zoo_rows.begin(), zoo_rows.end(), [](const std::string& a, const std::string& b) {
    auto rank = [](const std::string& n) { return n == "base" ? 0 : n == "instruct" ? 1 : 2; };
    return std::make_pair(rank(a), a) < std::make_pair(rank(b), b);
  });
  auto zt = score_table("Exact match on test items (bold: an expert on its own family)", zoo_rows,
                        r.model_scores);
  page.table(zt);

  page.heading("Merges");
  report::Table mt{"Normalized as in \"What Matters for Model Merging at Scale?\"",
                   {"merge", "method", "experts", "held-in / expert", "held-out / base",
                    "held-in EM", "held-out EM", "recipe"},
                   {},
                   "held-in: mean over the merged experts' families of merged EM / that "
                   "expert's EM; held-out: mean over held-out families of merged EM / "
                   "instruction-tuned base EM (families where the base scores 0 are skipped). "
                   "1.0 = as good as the reference."};
  for (const auto& m : r.merges) {
    std::string ex;
    for (const auto& e : m.experts) ex += (ex.empty() ? "" : ", ") + e;
    mt.rows.push_back({{m.name},
                       {m.method},
                       {ex},
                       {fmt::format("{:.2f}", m.held_in_normalized), m.held_in_normalized},
                       {fmt::format("{:.2f}", m.held_out_normalized),
                        std::min(1.0, m.held_out_normalized / 2)},
                       {fmt::format("{:.2f}", m.held_in_raw)},
                       {fmt::format("{:.2f}", m.held_out_raw)},
                       {m.recipe_path}});
  }
  page.table(mt);

  std::vector<std::string> methods;
  for (const auto& m : r.merges)
    if (std::find(methods.begin(), methods.end(), m.method) == methods.end())
      methods.push_back(m.method);
  report::LineChart in_chart{"Held-in: merged / expert", "experts merged", "normalized EM", {},
                             1.0, "experts", 0.0, std::nullopt};
  report::LineChart out_chart{"Held-out: merged / instruct base", "experts merged",
                              "normalized EM", {}, 1.0, "instruct base", 0.0, std::nullopt};
  for (const auto& method : methods) {
    report::Series si{method, {}, {}}, so{method, {}, {}};
    for (const auto& m : r.merges)
      if (m.method == method) {
        si.x.push_back(static_cast<double>(m.experts.size()));
        si.y.push_back(m.held_in_normalized);
        so.x.push_back(static_cast<double>(m.experts.size()));
        so.y.push_back(m.held_out_normalized);
      }
    in_chart.series.push_back(si);
    out_chart.series.push_back(so);
  }
  page.svg(report::line_chart_svg(in_chart));
  page.svg(report::line_chart_svg(out_chart));

  // Per family, merging all experts: where each method lands between base and expert.
  if (!r.merges.empty()) {
    const size_t all = r.merges.back().experts.size();
    report::BarChart bars;
    bars.title = fmt::format("Exact match per family, {} experts merged", all);
    bars.y_label = "exact match";
    bars.y_max = 1.0;
    bars.series_names = {"instruct base", "own expert"};
    for (const auto& m : r.merges)
      if (m.experts.size() == all) bars.series_names.push_back(m.method);
    for (const auto& f : families) {
      bars.groups.push_back(f);
      std::vector<double> v{r.model_scores.at("instruct").at(f)};
      const auto e = r.model_scores.find("expert-instruct-" + f);
      v.push_back(e != r.model_scores.end() ? e->second.at(f) : NAN);
      for (const auto& m : r.merges)
        if (m.experts.size() == all) v.push_back(m.scores.at(f));
      bars.values.push_back(v);
    }
    page.svg(report::bar_chart_svg(bars));
    std::map<std::string, FamilyScores> merged;
    std::vector<std::string> rows;
    for (const auto& m : r.merges) {
      merged[m.name] = m.scores;
      rows.push_back(m.name);
    }
    page.table(score_table("Exact match of every merge per family", rows, merged));
  }

  page.heading("Reproduce");
  page.paragraph("Each merge is a plain mergekit-style recipe; amalgam merge reproduces it "
                 "exactly, and amalgam eval scores it on the zoo's task files.");
  if (!r.merges.empty())
    page.preformatted("amalgam merge " + r.merges.back().recipe_path + " OUT_DIR\n" +
                      "amalgam eval OUT_DIR --tasks " + r.zoo_root + "/tasks/" + r.held_in[0] +
                      "/task.json");
  page.write(path);
}

}  // namespace amalgam::zoo
