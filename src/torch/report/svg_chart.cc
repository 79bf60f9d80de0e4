#include "torch/report/svg_chart.h"

#include <algorithm>
#include <cmath>

#include <fmt/format.h>

#include "torch/report/html_report.h"

namespace amalgam::report {
namespace {

const char* const kPalette[] = {"#3b6fb6", "#d1603d", "#3f9b5a", "#8a5bb8",
                                "#c9a227", "#2aa3b3", "#b8456f", "#6b6b6b"};
const char* colour(size_t i) { return kPalette[i % (sizeof kPalette / sizeof *kPalette)]; }

std::string num(double v) {
  std::string s = fmt::format("{:.2f}", v);
  return s;
}

std::string tick_label(double v) {
  if (std::fabs(v - std::round(v)) < 1e-9) return fmt::format("{}", static_cast<long long>(std::round(v)));
  std::string s = fmt::format("{:.3f}", v);
  while (!s.empty() && s.back() == '0') s.pop_back();
  return s;
}

struct Frame {
  double left = 60, right = 20, top = 36, bottom = 48;
  double w, h;
  double x0, x1, y0, y1;  // data ranges
  double px(double x) const { return left + (x1 == x0 ? 0.5 : (x - x0) / (x1 - x0)) * (w - left - right); }
  double py(double y) const { return top + (1 - (y1 == y0 ? 0.5 : (y - y0) / (y1 - y0))) * (h - top - bottom); }
};

std::string open_svg(int w, int h, const std::string& title) {
  return fmt::format(
             "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{0}\" height=\"{1}\" "
             "viewBox=\"0 0 {0} {1}\" font-family=\"sans-serif\" font-size=\"11\" role=\"img\">",
             w, h) +
         "<title>" + html_escape(title) + "</title>" +
         fmt::format("<rect width=\"{}\" height=\"{}\" fill=\"#ffffff\"/>", w, h) +
         fmt::format("<text x=\"{}\" y=\"20\" text-anchor=\"middle\" font-size=\"13\" "
                     "font-weight=\"bold\">{}</text>",
                     w / 2, html_escape(title));
}

// Axes, horizontal grid lines with y tick labels, axis labels.
std::string axes(const Frame& f, const std::vector<double>& yticks, const std::string& x_label,
                 const std::string& y_label) {
  std::string s;
  for (double t : yticks) {
    const double y = f.py(t);
    s += fmt::format("<line x1=\"{}\" y1=\"{}\" x2=\"{}\" y2=\"{}\" stroke=\"#e3e7ee\"/>",
                     num(f.left), num(y), num(f.w - f.right), num(y));
    s += fmt::format("<text x=\"{}\" y=\"{}\" text-anchor=\"end\">{}</text>", num(f.left - 6),
                     num(y + 4), tick_label(t));
  }
  s += fmt::format("<line x1=\"{0}\" y1=\"{1}\" x2=\"{0}\" y2=\"{2}\" stroke=\"#333\"/>",
                   num(f.left), num(f.top), num(f.h - f.bottom));
  s += fmt::format("<line x1=\"{0}\" y1=\"{1}\" x2=\"{2}\" y2=\"{1}\" stroke=\"#333\"/>",
                   num(f.left), num(f.h - f.bottom), num(f.w - f.right));
  if (!x_label.empty())
    s += fmt::format("<text x=\"{}\" y=\"{}\" text-anchor=\"middle\">{}</text>",
                     num((f.left + f.w - f.right) / 2), num(f.h - 8), html_escape(x_label));
  if (!y_label.empty())
    s += fmt::format("<text transform=\"translate(14,{}) rotate(-90)\" text-anchor=\"middle\">{}</text>",
                     num((f.top + f.h - f.bottom) / 2), html_escape(y_label));
  return s;
}

std::string legend(const std::vector<std::string>& names, double x, double y) {
  std::string s;
  for (size_t i = 0; i < names.size(); ++i) {
    const double yy = y + 15.0 * static_cast<double>(i);
    s += fmt::format("<rect x=\"{}\" y=\"{}\" width=\"10\" height=\"10\" fill=\"{}\"/>", num(x),
                     num(yy - 9), colour(i));
    s += fmt::format("<text x=\"{}\" y=\"{}\">{}</text>", num(x + 14), num(yy), html_escape(names[i]));
  }
  return s;
}

}  // namespace

std::vector<double> nice_ticks(double lo, double hi, int count) {
  if (!(hi > lo)) hi = lo + 1;
  const double raw = (hi - lo) / std::max(1, count);
  const double mag = std::pow(10.0, std::floor(std::log10(raw)));
  double step = mag;
  for (double m : {1.0, 2.0, 5.0, 10.0})
    if (raw <= m * mag * (1 + 1e-9)) { step = m * mag; break; }
  std::vector<double> ticks;
  // Integer multiples of the step (no accumulated rounding), the last one >= hi.
  const long long first = static_cast<long long>(std::floor(lo / step + 1e-9));
  const long long last = static_cast<long long>(std::ceil(hi / step - 1e-9));
  for (long long k = first; k <= last; ++k) ticks.push_back(static_cast<double>(k) * step);
  return ticks;
}

std::string line_chart_svg(const LineChart& c) {
  Frame f;
  f.w = c.width;
  f.h = c.height;
  f.right = 150;  // legend column
  double xmin = INFINITY, xmax = -INFINITY, ymax = 0, ymin = 0;
  for (const auto& s : c.series)
    for (size_t i = 0; i < s.x.size() && i < s.y.size(); ++i) {
      xmin = std::min(xmin, s.x[i]);
      xmax = std::max(xmax, s.x[i]);
      if (std::isfinite(s.y[i])) {
        ymax = std::max(ymax, s.y[i]);
        ymin = std::min(ymin, s.y[i]);
      }
    }
  if (!std::isfinite(xmin)) { xmin = 0; xmax = 1; }
  if (c.reference_y) ymax = std::max(ymax, *c.reference_y);
  f.x0 = xmin;
  f.x1 = xmax;
  const auto yt = nice_ticks(c.y_min.value_or(ymin), c.y_max.value_or(ymax > 0 ? ymax * 1.05 : 1));
  f.y0 = c.y_min.value_or(yt.front());
  f.y1 = c.y_max.value_or(yt.back());
  std::string s = open_svg(c.width, c.height, c.title);
  s += axes(f, yt, c.x_label, c.y_label);
  // x ticks at the distinct x values of the data (they are what was swept).
  std::vector<double> xs;
  for (const auto& se : c.series) xs.insert(xs.end(), se.x.begin(), se.x.end());
  std::sort(xs.begin(), xs.end());
  xs.erase(std::unique(xs.begin(), xs.end()), xs.end());
  for (double x : xs)
    s += fmt::format("<text x=\"{}\" y=\"{}\" text-anchor=\"middle\">{}</text>", num(f.px(x)),
                     num(f.h - f.bottom + 15), tick_label(x));
  if (c.reference_y) {
    const double y = f.py(*c.reference_y);
    s += fmt::format("<line x1=\"{}\" y1=\"{}\" x2=\"{}\" y2=\"{}\" stroke=\"#888\" "
                     "stroke-dasharray=\"5,4\"/>",
                     num(f.left), num(y), num(f.w - f.right), num(y));
    s += fmt::format("<text x=\"{}\" y=\"{}\" fill=\"#666\">{}</text>", num(f.left + 4), num(y - 4),
                     html_escape(c.reference_label));
  }
  std::vector<std::string> names;
  for (size_t k = 0; k < c.series.size(); ++k) {
    const auto& se = c.series[k];
    names.push_back(se.name);
    std::string pts;
    for (size_t i = 0; i < se.x.size() && i < se.y.size(); ++i) {
      if (!std::isfinite(se.y[i])) continue;
      pts += fmt::format("{},{} ", num(f.px(se.x[i])), num(f.py(se.y[i])));
      s += fmt::format("<circle cx=\"{}\" cy=\"{}\" r=\"3.5\" fill=\"{}\"/>", num(f.px(se.x[i])),
                       num(f.py(se.y[i])), colour(k));
    }
    s += fmt::format("<polyline points=\"{}\" fill=\"none\" stroke=\"{}\" stroke-width=\"2\"/>",
                     pts, colour(k));
  }
  s += legend(names, f.w - f.right + 12, f.top + 10);
  s += "</svg>";
  return s;
}

std::string bar_chart_svg(const BarChart& c) {
  Frame f;
  f.w = c.width;
  f.h = c.height;
  f.right = 150;
  double ymax = 0;
  for (const auto& g : c.values)
    for (double v : g)
      if (std::isfinite(v)) ymax = std::max(ymax, v);
  const auto yt = nice_ticks(0, c.y_max.value_or(ymax > 0 ? ymax : 1));
  f.x0 = 0;
  f.x1 = 1;
  f.y0 = 0;
  f.y1 = c.y_max.value_or(yt.back());
  std::string s = open_svg(c.width, c.height, c.title);
  s += axes(f, yt, "", c.y_label);
  const double plot_w = f.w - f.left - f.right;
  const double group_w = c.groups.empty() ? plot_w : plot_w / static_cast<double>(c.groups.size());
  const size_t ns = std::max<size_t>(1, c.series_names.size());
  const double bar_w = group_w * 0.8 / static_cast<double>(ns);
  for (size_t g = 0; g < c.groups.size(); ++g) {
    const double gx = f.left + group_w * static_cast<double>(g);
    for (size_t k = 0; g < c.values.size() && k < c.values[g].size(); ++k) {
      const double v = c.values[g][k];
      if (!std::isfinite(v)) continue;
      const double top = f.py(std::min(v, f.y1));
      s += fmt::format("<rect x=\"{}\" y=\"{}\" width=\"{}\" height=\"{}\" fill=\"{}\">"
                       "<title>{}: {}</title></rect>",
                       num(gx + group_w * 0.1 + bar_w * static_cast<double>(k)), num(top),
                       num(bar_w * 0.92), num(f.py(0) - top), colour(k),
                       html_escape(c.groups[g] + " / " + (k < c.series_names.size() ? c.series_names[k] : "")),
                       num(v));
    }
    s += fmt::format("<text x=\"{}\" y=\"{}\" text-anchor=\"middle\">{}</text>",
                     num(gx + group_w / 2), num(f.h - f.bottom + 15), html_escape(c.groups[g]));
  }
  s += legend(c.series_names, f.w - f.right + 12, f.top + 10);
  s += "</svg>";
  return s;
}

}  // namespace amalgam::report
