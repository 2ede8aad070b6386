// The metadata of a synthetic deepseek2 file: the keys, value types and order that real files (and the golden
// tiny files) use, for both MLA conventions, with and without q_lora, groups and YaRN.
#pragma once

#include <string>
#include <utility>
#include <vector>

#include "gguf/writer.h"
#include "synth/spec.h"
#include "synth/vocab.h"

namespace onecard::synth {

std::vector<std::pair<std::string, gguf::MetaValue>> build_metadata(const ModelSpec& spec,
                                                                    const Vocab& vocab);

}  // namespace onecard::synth
