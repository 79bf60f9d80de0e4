#include "io/json_strict.h"

#include <set>
#include <vector>

namespace amalgam {
namespace {

template <typename Json, typename Result>
Result parse_impl(std::string_view text) {
  Result out;
  // One key set per open object; arrays open no scope because they hold no keys.
  std::vector<std::set<std::string>> scopes;
  auto cb = [&](int /*depth*/, typename Json::parse_event_t ev, Json& parsed) {
    using E = typename Json::parse_event_t;
    if (ev == E::object_start) {
      scopes.emplace_back();
    } else if (ev == E::object_end) {
      if (!scopes.empty()) scopes.pop_back();
    } else if (ev == E::key && !scopes.empty() && out.duplicate_key.empty()) {
      const std::string& k = parsed.template get_ref<const std::string&>();
      if (!scopes.back().insert(k).second) out.duplicate_key = k;
    }
    return true;
  };
  out.value = Json::parse(text.begin(), text.end(), cb, /*allow_exceptions=*/false);
  return out;
}

}  // namespace

StrictJson parse_json_strict(std::string_view text) {
  return parse_impl<nlohmann::json, StrictJson>(text);
}

StrictOrderedJson parse_ordered_json_strict(std::string_view text) {
  return parse_impl<nlohmann::ordered_json, StrictOrderedJson>(text);
}

}  // namespace amalgam
