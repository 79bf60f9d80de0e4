// Inline SVG charts for the HTML report: line charts (a metric against a swept quantity,
// one line per series, an optional dashed reference level) and grouped bar charts. The
// markup is self-contained (no fonts or scripts fetched), all text escaped.
#pragma once
#include <optional>
#include <string>
#include <vector>

namespace amalgam::report {

struct Series {
  std::string name;
  std::vector<double> x, y;  // same length; NaN y values are skipped
};

struct LineChart {
  std::string title, x_label, y_label;
  std::vector<Series> series;
  std::optional<double> reference_y;  // e.g. 1.0 = "as good as the experts"
  std::string reference_label;
  std::optional<double> y_min, y_max;  // default: from the data (and reference), 0-based
  int width = 620, height = 340;
};

struct BarChart {
  std::string title, y_label;
  std::vector<std::string> series_names;  // one colour each
  std::vector<std::string> groups;        // x categories
  std::vector<std::vector<double>> values;  // [group][series]
  std::optional<double> y_max;
  int width = 860, height = 340;
};

std::string line_chart_svg(const LineChart& chart);
std::string bar_chart_svg(const BarChart& chart);

// "Nice" tick values covering [lo, hi] (about `count` of them, steps of 1, 2 or 5 x 10^k).
std::vector<double> nice_ticks(double lo, double hi, int count = 5);

}  // namespace amalgam::report
