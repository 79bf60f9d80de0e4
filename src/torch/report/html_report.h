// One self-contained HTML page for people: headings, paragraphs, tables (optionally
// shaded by value) and inline SVG plots, with its CSS inline and no script, font or
// image fetched from anywhere. `amalgam demo` writes one; optimize and study add their
// sections the same way. Plain C++ (no torch), escapes all text it is given.
#pragma once
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace amalgam::report {

struct Cell {
  Cell(std::string text_ = "", std::optional<double> shade_ = std::nullopt, bool bold_ = false)
      : text(std::move(text_)), shade(shade_), bold(bold_) {}
  std::string text;
  std::optional<double> shade;  // 0..1: background from white to the accent colour
  bool bold = false;
};

struct Table {
  std::string caption;
  std::vector<std::string> header;
  std::vector<std::vector<Cell>> rows;
  std::string note;  // small print under the table
};

class HtmlReport {
 public:
  explicit HtmlReport(std::string title);

  void heading(std::string_view text);     // a section (h2)
  void subheading(std::string_view text);  // h3
  void paragraph(std::string_view text);
  void preformatted(std::string_view text);  // commands, recipes
  void table(const Table& table);
  // An <svg> element from svg_chart.h (or any SVG built from escaped text).
  void svg(std::string_view svg_markup);

  std::string html() const;
  // Writes atomically (temporary file + rename). Throws Error(Io).
  void write(const std::string& path) const;

 private:
  std::string title_;
  std::string body_;
};

std::string html_escape(std::string_view text);

}  // namespace amalgam::report
