// Element types of safetensors files and their properties.
// The names are the safetensors spellings (F32, BF16, ...); torch spellings are mapped
// by parse_torch_dtype() for recipes and config.json.
#pragma once
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace amalgam {

enum class DType : uint8_t { F64, F32, F16, BF16, I64, I32, I16, I8, U8, BOOL, F8_E4M3, F8_E5M2 };

size_t dtype_size(DType t);
std::string_view dtype_name(DType t);                 // "BF16"
std::optional<DType> parse_dtype(std::string_view s);  // safetensors name, exact
// "bfloat16", "torch.float16", "float32", "int64", ... (recipes, config.json torch_dtype)
std::optional<DType> parse_torch_dtype(std::string_view s);
std::string_view torch_dtype_name(DType t);  // "bfloat16"
bool dtype_is_float(DType t);

}  // namespace amalgam
