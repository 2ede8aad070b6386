// Buffers that grow to the largest call and are then reused, so that the hot paths allocate nothing.
#pragma once

#include <cstddef>
#include <vector>

namespace onecard::cpu {

template <class T>
T* grow(std::vector<T>& v, size_t n) {
  if (v.size() < n) v.resize(n);
  return v.data();
}

}  // namespace onecard::cpu
