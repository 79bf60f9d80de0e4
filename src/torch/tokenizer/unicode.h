// Unicode helpers for the tokenizers: UTF-8 decoding with WHATWG-style replacement of
// invalid sequences (what JavaScript's TextDecoder and Rust's from_utf8_lossy do), and
// the \p{L}, \p{N} and White_Space properties that the pre-tokenizer regexes need.
// The property tables are generated (unicode_tables.cc) from node's Unicode data.
#pragma once
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace amalgam {

namespace unicode_detail {
struct CodePointRange {
  uint32_t first, last;
};
extern const CodePointRange kLetterRanges[];
extern const size_t kLetterRangesCount;
extern const CodePointRange kNumberRanges[];
extern const size_t kNumberRangesCount;
extern const CodePointRange kWhiteSpaceRanges[];
extern const size_t kWhiteSpaceRangesCount;
}  // namespace unicode_detail

constexpr uint32_t kReplacementChar = 0xFFFD;

bool is_letter(uint32_t cp);      // \p{L}
bool is_number(uint32_t cp);      // \p{N}
bool is_whitespace(uint32_t cp);  // \s as Oniguruma (and Rust's char::is_whitespace) define it

// Decodes one code point at s[pos]; returns its length in bytes (>= 1). An invalid or
// truncated sequence yields U+FFFD and the length of its maximal subpart, as the
// WHATWG/Unicode "substitution of maximal subparts" practice says.
size_t decode_utf8(std::string_view s, size_t pos, uint32_t* cp);
void append_utf8(std::string& out, uint32_t cp);
// s with every invalid sequence replaced by U+FFFD (s itself when it is valid UTF-8).
std::string sanitize_utf8(std::string_view s);
bool is_valid_utf8(std::string_view s);

}  // namespace amalgam
