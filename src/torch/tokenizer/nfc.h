// Unicode Normalization Form C, for the NFC normalizer of tokenizer.json (Qwen2):
// canonical decomposition, canonical ordering, then canonical composition (UAX #15),
// with Hangul done algorithmically. Tables are generated into nfc_tables.cc.
#pragma once
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace amalgam {

namespace nfc_detail {
struct CombiningClassRange {
  uint32_t first, last, ccc;
};
struct Decomposition {
  uint32_t cp, first, second;  // second == 0: a singleton decomposition
};
struct Composition {
  uint32_t first, second, composite;  // sorted by (first, second)
};
extern const CombiningClassRange kCombiningClasses[];
extern const size_t kCombiningClassesCount;
extern const Decomposition kDecompositions[];
extern const size_t kDecompositionsCount;
extern const Composition kCompositions[];
extern const size_t kCompositionsCount;
}  // namespace nfc_detail

// `text` (valid UTF-8) in NFC.
std::string to_nfc(std::string_view text);

}  // namespace amalgam
