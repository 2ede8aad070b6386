// The deepseek2 hyper-parameter keys of a GGUF, from a checkpoint's config.json: every key the model code
// reads (attention sizes in either MLA convention, routing and groups, scales, YaRN, MTP layers).
#pragma once

#include <string>

#include "convert/checkpoint.h"
#include "convert/mapping.h"
#include "gguf/writer.h"
#include "model/weight_scheme.h"

namespace onecard::convert {

// block_count and attention.head_count_kv as written: MTP layers count as blocks; the split convention has
// one KV head.
uint32_t file_block_count(const HfConfig& c, const MappingOptions& o);
uint32_t file_head_count_kv(const HfConfig& c, const MappingOptions& o);

void put_model_metadata(gguf::Writer& w, const HfConfig& c, const MappingOptions& o,
                        model::WeightScheme scheme, const std::string& name);

}  // namespace onecard::convert
