// Strict JSON parsing for files amalgam reads (safetensors headers, index files,
// config.json): nlohmann silently keeps the last of duplicate object keys, which would
// hide a tensor listed twice, so this parser reports the first duplicate key instead.
#pragma once
#include <optional>
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

namespace amalgam {

struct StrictJson {
  nlohmann::json value;           // discarded() when the text is not valid JSON
  std::string duplicate_key;      // first key seen twice in one object, if any
  bool ok() const { return !value.is_discarded() && duplicate_key.empty(); }
};

StrictJson parse_json_strict(std::string_view text);
// Same, keeping object keys in document order (for index files whose order matters).
struct StrictOrderedJson {
  nlohmann::ordered_json value;
  std::string duplicate_key;
  bool ok() const { return !value.is_discarded() && duplicate_key.empty(); }
};
StrictOrderedJson parse_ordered_json_strict(std::string_view text);

}  // namespace amalgam
