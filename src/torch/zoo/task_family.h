// Synthetic task families of the zoo: each has an instruction, a random input and one
// checkable answer. Held-in families are what experts are trained on; held-out families
// (a held-in skill under a new wording or on new inputs, a composition of two) are never
// trained on and measure generalization, as in "What Matters for Model Merging at Scale?".
// Prompt format: "<instruction> <input>\n", answer followed by "\n" (greedy decoding stops
// at the newline). Plain C++: no torch.
#pragma once
#include <functional>
#include <string>
#include <vector>

#include "torch/zoo/rng.h"

namespace amalgam::zoo {

struct TaskItem {
  std::string input;   // the random part of the prompt
  std::string prompt;  // instruction + " " + input + "\n"
  std::string answer;  // without the trailing newline
};

struct TaskFamily {
  std::string name;         // "reverse", "add", "reverse_upper", ...
  bool held_in = true;
  std::string instruction;  // "Reverse:"
  std::string description;  // one line for reports
  // Small input spaces (1-digit addition has 100 items) cannot keep train and test
  // disjoint; for the others training never sees a dev/test prompt.
  bool disjoint_splits = true;
  std::function<std::string(ZooRng&)> make_input;
  std::function<std::string(const std::string&)> solve;

  TaskItem sample(ZooRng& rng) const;
  std::string prompt_for(const std::string& input) const { return instruction + " " + input + "\n"; }
};

// Every family, held-in first, in a fixed order.
const std::vector<TaskFamily>& all_task_families();
const TaskFamily& task_family(const std::string& name);  // throws Error(Usage) if unknown
std::vector<std::string> held_in_family_names();
std::vector<std::string> held_out_family_names();

}  // namespace amalgam::zoo
