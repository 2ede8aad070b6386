// Unguessable identifiers such as OpenAI's "chatcmpl-..." and "call_...": a prefix and letters and digits
// from a generator seeded by the OS, one generator a thread so that request threads need no lock.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

namespace onecard {

std::string random_id(std::string_view prefix, size_t length = 24);

}  // namespace onecard
