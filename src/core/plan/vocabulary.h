// Whether two models share one identical tokenizer vocabulary, decided from their files
// (tokenizer.json's vocab + added tokens, else vocab.json/merges.txt, else
// tokenizer.model, else config vocab_size). The planner uses it to accept
// `tokenizer_source: union` when the union is trivially the base vocabulary.
#pragma once
#include "io/model_dir.h"

namespace amalgam {

bool same_vocabulary(const ModelDir& a, const ModelDir& b);

}  // namespace amalgam
