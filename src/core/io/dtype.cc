#include "io/dtype.h"

#include <array>

namespace amalgam {
namespace {

struct Info {
  DType type;
  std::string_view name;
  std::string_view torch_name;
  size_t size;
  bool is_float;
};

constexpr std::array<Info, 12> kInfo = {{
    {DType::F64, "F64", "float64", 8, true},
    {DType::F32, "F32", "float32", 4, true},
    {DType::F16, "F16", "float16", 2, true},
    {DType::BF16, "BF16", "bfloat16", 2, true},
    {DType::I64, "I64", "int64", 8, false},
    {DType::I32, "I32", "int32", 4, false},
    {DType::I16, "I16", "int16", 2, false},
    {DType::I8, "I8", "int8", 1, false},
    {DType::U8, "U8", "uint8", 1, false},
    {DType::BOOL, "BOOL", "bool", 1, false},
    {DType::F8_E4M3, "F8_E4M3", "float8_e4m3fn", 1, true},
    {DType::F8_E5M2, "F8_E5M2", "float8_e5m2", 1, true},
}};

const Info& info(DType t) { return kInfo[static_cast<size_t>(t)]; }

}  // namespace

size_t dtype_size(DType t) { return info(t).size; }
std::string_view dtype_name(DType t) { return info(t).name; }
std::string_view torch_dtype_name(DType t) { return info(t).torch_name; }
bool dtype_is_float(DType t) { return info(t).is_float; }

std::optional<DType> parse_dtype(std::string_view s) {
  for (const Info& i : kInfo)
    if (i.name == s) return i.type;
  return std::nullopt;
}

std::optional<DType> parse_torch_dtype(std::string_view s) {
  if (s.starts_with("torch.")) s.remove_prefix(6);
  for (const Info& i : kInfo)
    if (i.torch_name == s) return i.type;
  // Aliases torch and HF configs also accept.
  if (s == "float" ) return DType::F32;
  if (s == "double") return DType::F64;
  if (s == "half") return DType::F16;
  if (s == "long") return DType::I64;
  if (s == "int") return DType::I32;
  if (s == "short") return DType::I16;
  if (s == "float8_e4m3") return DType::F8_E4M3;
  // Safetensors spellings are accepted too so recipes may say "BF16".
  return parse_dtype(s);
}

}  // namespace amalgam
