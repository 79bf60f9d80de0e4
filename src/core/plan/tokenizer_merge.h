// The output vocabulary of `tokenizer_source` / `tokenizer:` (METHODS.md §4): the
// stripped base tokenizer, a listed model's tokenizer, or the union of all models'
// tokenizers (new tokens appended in model order, then by old id, §8.8), plus the tokens
// of `tokenizer.tokens`; for every model, which of its rows holds each output token; and
// the rewritten tokenizer files (tokenizer.json, tokenizer_config.json or
// added_tokens.json) when the output vocabulary differs from the donor's files.
#pragma once
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

#include "plan/plan.h"
#include "plan/vocabulary.h"
#include "recipe/recipe.h"

namespace amalgam {

struct VocabularyPlan {
  std::vector<std::string> tokens;  // output id -> token ("" where no token has that id)
  std::unordered_map<std::string, int64_t> ids;
  int64_t size() const { return static_cast<int64_t>(tokens.size()); }
  // Per model (ModelSet index): output id -> the model's own id of that token, or -1
  // (the model lacks it, or its id is past the model's vocab_size).
  std::map<size_t, std::vector<int64_t>> rows_of;
  // Every model (original vocabulary, for `kind: model_token`, `token:`).
  std::map<size_t, Vocabulary> vocab_of;
  // True when every model holds every output token at the output id: embeddings need
  // no re-mapping.
  bool identity = true;
  int64_t appended = 0;                       // tokens added to the donor's tokenizer
  std::map<std::string, std::string> files;  // tokenizer files replacing the donor's
  std::vector<std::string> warnings;
};

// `source` is "base", "union" or a model reference; `base` the model whose tokenizer is
// the starting point (base_model, else the first model); `source_model` the ModelSet index
// of a model source; `models` every model of the merge in recipe order. nullopt when the
// starting tokenizer has no vocabulary file (the caller then falls back to rows as stored).
// Throws Error(Input) naming the file for a malformed tokenizer file.
std::optional<VocabularyPlan> plan_vocabulary(const std::string& source, size_t base,
                                              std::optional<size_t> source_model,
                                              const std::vector<size_t>& models, const ModelSet& set,
                                              const std::vector<TokenSpec>& tokens);

// The embedding rows of one job (METHODS.md §4 step 4) for inputs `inputs` (ModelSet
// indices, job order, `base` = the job's base input or -1).
std::shared_ptr<RowRemap> plan_row_remap(const VocabularyPlan& vocab, const std::vector<size_t>& inputs,
                                         int base, const ModelSet& set,
                                         const std::vector<TokenSpec>& tokens, const Recipe& recipe,
                                         int64_t& tokens_in_no_model);

}  // namespace amalgam
