// The CUDA backend: the ops of backend/backend.h on one card, weights and activations in its memory. Built
// only with the CUDA toolkit (ONECARD_HAVE_CUDA); this header needs no CUDA headers.
#pragma once

#include <memory>

#include "backend/backend.h"
#include "base/result.h"

namespace onecard::cuda {

// The backend on card `device`; the error says why there is none (no driver, no such card).
Result<std::unique_ptr<backend::Backend>> make_backend(int device);

}  // namespace onecard::cuda
