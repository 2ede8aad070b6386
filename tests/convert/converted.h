// The golden Hugging Face checkpoints converted once per test process (each (checkpoint, type, layout) at
// most once), for the tests that read the GGUF.
#pragma once

#include <string>

#include "convert/convert.h"

namespace onecard::convert::test_support {

std::string hf_dir(const std::string& name);  // ../shared/golden/hf/NAME
// The GGUF of checkpoint `name` in `type` ("f32", "bf16", ...) and MLA layout; fails the test on error.
std::string converted(const std::string& name, const std::string& type, model::MlaLayout mla);

}  // namespace onecard::convert::test_support
