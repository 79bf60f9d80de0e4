// The report is well-formed (every tag closed in order, attributes quoted), escapes what
// it is given, and is self-contained: no script, stylesheet, image, font or link that a
// browser would fetch.
#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <regex>
#include <set>
#include <unistd.h>
#include <sstream>

#include "torch/report/html_report.h"
#include "torch/report/svg_chart.h"

namespace amalgam::report {
namespace {

// Returns "" when the markup's tags nest properly, else what went wrong.
std::string nesting_error(const std::string& html) {
  static const std::regex tag(R"(<(/?)([a-zA-Z][a-zA-Z0-9]*)((?:\s+[a-zA-Z][a-zA-Z0-9:-]*="[^"<>]*")*)\s*(/?)>)");
  std::vector<std::string> stack;
  size_t pos = 0;
  const std::set<std::string> void_tags = {"meta", "br", "hr"};
  while (true) {
    const size_t lt = html.find('<', pos);
    if (lt == std::string::npos) break;
    if (html.compare(lt, 9, "<!DOCTYPE") == 0) {
      pos = html.find('>', lt) + 1;
      continue;
    }
    std::smatch m;
    const std::string rest = html.substr(lt, std::min<size_t>(html.size() - lt, 2000));
    if (!std::regex_search(rest, m, tag, std::regex_constants::match_continuous))
      return "malformed tag at " + std::to_string(lt) + ": " + rest.substr(0, 40);
    const std::string name = m[2];
    if (m[1] == "/") {
      if (stack.empty() || stack.back() != name)
        return "unexpected </" + name + "> at " + std::to_string(lt);
      stack.pop_back();
    } else if (m[4] != "/" && !void_tags.count(name)) {
      stack.push_back(name);
    }
    pos = lt + m.length(0);
  }
  if (!stack.empty()) return "unclosed <" + stack.back() + ">";
  // Text between tags must not hold a raw '<' or an unescaped '&'.
  if (std::regex_search(html, std::regex(R"(&(?!(amp|lt|gt|quot|#39);))")))
    return "unescaped &";
  return "";
}

std::string sample_report() {
  HtmlReport page("Report <&> \"title\"");
  page.heading("Section & stuff");
  page.paragraph("a < b and c > d, 'quoted'");
  Table t{"caption", {"model", "score"}, {}, "note <small>"};
  t.rows.push_back({Cell{"expert-<x>"}, Cell{"0.90", 0.9, true}});
  t.rows.push_back({Cell{"base"}, Cell{"0.10", 0.1}});
  page.table(t);
  LineChart lc{"Held-in <norm>", "experts", "EM", {}, 1.0, "experts", 0.0, std::nullopt};
  lc.series.push_back({"linear", {2, 4, 8}, {0.9, 0.7, 0.5}});
  lc.series.push_back({"ties & co", {2, 4, 8}, {0.95, NAN, 0.6}});
  page.svg(line_chart_svg(lc));
  BarChart bc;
  bc.title = "bars";
  bc.series_names = {"a", "b"};
  bc.groups = {"reverse", "sort"};
  bc.values = {{0.5, 0.8}, {0.2, NAN}};
  page.svg(bar_chart_svg(bc));
  page.preformatted("amalgam merge r.yaml out  # <tag>");
  return page.html();
}

TEST(HtmlReport, WellFormed) {
  const std::string html = sample_report();
  EXPECT_EQ(nesting_error(html), "");
  EXPECT_EQ(html.rfind("<!DOCTYPE html>", 0), 0u);
  EXPECT_NE(html.find("<meta charset=\"utf-8\">"), std::string::npos);
  // The checker itself must catch broken markup.
  EXPECT_NE(nesting_error("<p><b>x</p></b>"), "");
  EXPECT_NE(nesting_error("<p>a & b</p>"), "");
  EXPECT_NE(nesting_error("<table><tr>"), "");
}

TEST(HtmlReport, EscapesText) {
  const std::string html = sample_report();
  EXPECT_EQ(html.find("expert-<x>"), std::string::npos);
  EXPECT_NE(html.find("expert-&lt;x&gt;"), std::string::npos);
  EXPECT_NE(html.find("Report &lt;&amp;&gt; &quot;title&quot;"), std::string::npos);
  EXPECT_EQ(html_escape("a<b>&'\""), "a&lt;b&gt;&amp;&#39;&quot;");
}

TEST(HtmlReport, SelfContained) {
  const std::string html = sample_report();
  for (const char* bad : {"<script", "<link", "<img", "<iframe", "src=", "href=", "url(",
                          "@import", "<object", "<embed"})
    EXPECT_EQ(html.find(bad), std::string::npos) << bad;
  // The only URL is the SVG namespace, which browsers never fetch.
  std::string rest = html;
  size_t n = 0;
  for (size_t p = rest.find("http"); p != std::string::npos; p = rest.find("http", p + 1)) {
    EXPECT_EQ(rest.compare(p, 26, "http://www.w3.org/2000/svg"), 0) << rest.substr(p, 40);
    ++n;
  }
  EXPECT_EQ(n, 2u);  // one per chart
}

TEST(HtmlReport, ChartsPlotTheData) {
  LineChart lc{"t", "x", "y", {}, std::nullopt, "", 0.0, 1.0};
  lc.width = 400;
  lc.height = 300;
  lc.series.push_back({"s", {0, 1}, {0, 1}});
  const std::string svg = line_chart_svg(lc);
  // Frame: left 60, right 150, top 36, bottom 48 -> (0,0) at (60,252), (1,1) at (250,36).
  EXPECT_NE(svg.find("points=\"60.00,252.00 250.00,36.00 \""), std::string::npos) << svg;
  EXPECT_EQ(nesting_error(svg), "");
  // NaN points are skipped, not drawn at a bogus position.
  LineChart gap = lc;
  gap.series[0].y = {NAN, 1};
  EXPECT_NE(line_chart_svg(gap).find("points=\"250.00,36.00 \""), std::string::npos);
}

TEST(HtmlReport, NiceTicks) {
  auto near = [](const std::vector<double>& a, const std::vector<double>& b) {
    if (a.size() != b.size()) return false;
    for (size_t i = 0; i < a.size(); ++i)
      if (std::fabs(a[i] - b[i]) > 1e-12) return false;
    return true;
  };
  EXPECT_TRUE(near(nice_ticks(0, 1, 5), {0, 0.2, 0.4, 0.6, 0.8, 1.0}));
  EXPECT_TRUE(near(nice_ticks(0, 10, 5), {0, 2, 4, 6, 8, 10}));
  EXPECT_TRUE(near(nice_ticks(0, 1.37, 5), {0, 0.5, 1.0, 1.5}));  // covers the top
  EXPECT_TRUE(near(nice_ticks(0.3, 0.9, 3), {0.2, 0.4, 0.6, 0.8, 1.0}));
}

TEST(HtmlReport, WritesFileAtomically) {
  const auto path = std::filesystem::temp_directory_path() /
                    ("report-" + std::to_string(::getpid())) / "sub" / "report.html";
  HtmlReport page("t");
  page.paragraph("hello");
  page.write(path.string());
  std::ifstream is(path);
  std::stringstream ss;
  ss << is.rdbuf();
  EXPECT_EQ(ss.str(), page.html());
  std::filesystem::remove_all(path.parent_path().parent_path());
}

}  // namespace
}  // namespace amalgam::report
