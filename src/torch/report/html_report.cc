#include "torch/report/html_report.h"

#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <fstream>

#include <fmt/format.h>

#include "util/error.h"

namespace amalgam::report {
namespace {

constexpr const char* kStyle = R"(
body{font-family:system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;margin:2em auto;
max-width:1000px;padding:0 1em;color:#1d2330;line-height:1.45}
h1{font-size:1.6em;border-bottom:2px solid #3b6fb6;padding-bottom:.2em}
h2{font-size:1.25em;margin-top:1.8em;color:#24477a}
h3{font-size:1.05em}
table{border-collapse:collapse;margin:.6em 0 1.2em;font-size:.88em}
caption{text-align:left;font-weight:600;padding:.3em 0}
th,td{border:1px solid #c9d2e0;padding:.25em .55em;text-align:left}
td.n{text-align:right}
th{background:#eef2f8}
pre{background:#f4f6f9;border:1px solid #dde3ec;padding:.6em;overflow-x:auto;font-size:.85em}
.note{font-size:.8em;color:#556}
figure{margin:1em 0}
.wide{overflow-x:auto}
)";

}  // namespace

std::string html_escape(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  for (char c : text) {
    switch (c) {
      case '&': out += "&amp;"; break;
      case '<': out += "&lt;"; break;
      case '>': out += "&gt;"; break;
      case '"': out += "&quot;"; break;
      case '\'': out += "&#39;"; break;
      default: out.push_back(c);
    }
  }
  return out;
}

HtmlReport::HtmlReport(std::string title) : title_(std::move(title)) {}

void HtmlReport::heading(std::string_view text) { body_ += "<h2>" + html_escape(text) + "</h2>\n"; }
void HtmlReport::subheading(std::string_view text) {
  body_ += "<h3>" + html_escape(text) + "</h3>\n";
}
void HtmlReport::paragraph(std::string_view text) { body_ += "<p>" + html_escape(text) + "</p>\n"; }
void HtmlReport::preformatted(std::string_view text) {
  body_ += "<pre>" + html_escape(text) + "</pre>\n";
}

void HtmlReport::table(const Table& t) {
  // Wide tables (a column per task family) scroll instead of spilling past the page.
  body_ += "<div class=\"wide\"><table>\n";
  if (!t.caption.empty()) body_ += "<caption>" + html_escape(t.caption) + "</caption>\n";
  if (!t.header.empty()) {
    body_ += "<thead><tr>";
    for (const auto& h : t.header) body_ += "<th>" + html_escape(h) + "</th>";
    body_ += "</tr></thead>\n";
  }
  body_ += "<tbody>\n";
  for (const auto& row : t.rows) {
    body_ += "<tr>";
    for (const auto& c : row) {
      std::string style;
      if (c.shade) {
        // White to #3b6fb6-ish; text stays dark enough to read up to full shade.
        const double s = std::min(1.0, std::max(0.0, *c.shade));
        const int r = static_cast<int>(255 - s * (255 - 120));
        const int g = static_cast<int>(255 - s * (255 - 160));
        const int b = static_cast<int>(255 - s * (255 - 220));
        style = fmt::format(" style=\"background:#{:02x}{:02x}{:02x}\"", r, g, b);
      }
      const std::string text = html_escape(c.text);
      // Numbers right-aligned so digits line up; words left.
      const bool numeric = !c.text.empty() && c.text.find_first_not_of("0123456789.-+eE%") == std::string::npos;
      body_ += std::string("<td") + (numeric ? " class=\"n\"" : "") + style + ">" + (c.bold ? "<b>" + text + "</b>" : text) + "</td>";
    }
    body_ += "</tr>\n";
  }
  body_ += "</tbody></table></div>\n";
  if (!t.note.empty()) body_ += "<p class=\"note\">" + html_escape(t.note) + "</p>\n";
}

void HtmlReport::svg(std::string_view svg_markup) {
  body_ += "<figure>";
  body_ += svg_markup;
  body_ += "</figure>\n";
}

std::string HtmlReport::html() const {
  return "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n<title>" +
         html_escape(title_) + "</title>\n<style>" + kStyle + "</style>\n</head>\n<body>\n<h1>" +
         html_escape(title_) + "</h1>\n" + body_ + "</body>\n</html>\n";
}

void HtmlReport::write(const std::string& path) const {
  namespace fs = std::filesystem;
  const fs::path target(path);
  if (target.has_parent_path()) {
    std::error_code ec;
    fs::create_directories(target.parent_path(), ec);
    if (ec) fail(ErrorKind::Io, "{}: cannot create directory: {}", path, ec.message());
  }
  const std::string tmp = path + ".tmp" + std::to_string(::getpid());
  {
    std::ofstream os(tmp, std::ios::binary | std::ios::trunc);
    os << html();
    os.close();
    if (!os) fail(ErrorKind::Io, "{}: write failed", tmp);
  }
  std::error_code ec;
  fs::rename(tmp, target, ec);
  if (ec) fail(ErrorKind::Io, "{}: cannot rename into place: {}", path, ec.message());
}

}  // namespace amalgam::report
