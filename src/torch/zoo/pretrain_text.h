// Generic synthetic text for pretraining the zoo's base model: no task data, but the
// structure the tasks later build on. ZOO.md measured that experts only learn when the
// base saw copy structure: about 30% of the words repeat a recent span, plus capitalised
// words, numbers and a little punctuation. Plain C++: no torch.
#pragma once
#include <string>

#include "torch/zoo/rng.h"

namespace amalgam::zoo {

// Exactly `length` characters of text (bytes < 128), drawn from `rng`.
std::string pretrain_text(ZooRng& rng, size_t length);

}  // namespace amalgam::zoo
