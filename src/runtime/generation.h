// What a generation is asked to do and how it ended, shared by the engine and its clients.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "sample/sampler.h"

namespace onecard::runtime {

struct GenerateOptions {
  int max_tokens = 256;  // < 0: until an end-of-generation token, a stop string or the end of the context
  sample::SamplingParams sampling;
  std::vector<std::string> stop;
  bool ignore_eos = false;
};

enum class FinishReason { kStop, kLength, kContextFull, kCancelled };
std::string_view finish_reason_name(FinishReason r);

}  // namespace onecard::runtime
