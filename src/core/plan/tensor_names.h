// Architecture-agnostic reading of tensor names (ARCHITECTURE.md idea 3): which layer a
// tensor belongs to and how to renumber it, which tensors come before the layer stack,
// and which are vocabulary embeddings / the output head (for rectification and tying).
// The planner uses these instead of a per-architecture table.
#pragma once
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "io/model_dir.h"

namespace amalgam {

// `name` with its layer index (see layer_index() in plan.h) replaced by `index`.
// Precondition: layer_index(name) >= 0.
std::string with_layer_index(const std::string& name, int index);

// Input-side tensors outside the layer stack (token / position embeddings): planned
// before the layers, from the first slice. Every other non-layer tensor is "post".
bool is_pre_tensor_name(const std::string& name);

// The output head (lm_head, GPT-NeoX's embed_out), which may be tied to the embeddings.
bool is_output_head_name(const std::string& name);

// Vocabulary-sized matrices by name: token embeddings and the output head.
bool is_vocab_embedding_name(const std::string& name);

// The tensor an untied output head is read from in a model that ties it (§1.6): that
// model's token embedding matrix. nullopt when the model has none.
std::optional<std::string> tied_embedding_name(const ModelDir& model);

// Number of layers found in the tensor names (largest index + 1; 0 if none).
int count_layers(const ModelDir& model);

}  // namespace amalgam
