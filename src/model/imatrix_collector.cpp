#include "model/imatrix_collector.h"

#include <cmath>

namespace onecard::model {

void ImatrixCollector::observe(const ObservedInput& in) {
  if (!status_.ok()) return;
  auto it = sums_.find(in.weight);
  if (it == sums_.end()) {
    Sums s;
    s.n_per_row = in.cols;
    s.n_mat = in.n_mat;
    s.sum2.assign(static_cast<size_t>(in.cols * in.n_mat), 0.0);
    s.counts.assign(static_cast<size_t>(in.n_mat), 0);
    it = sums_.emplace(std::string(in.weight), std::move(s)).first;
  }
  Sums& s = it->second;
  if (s.n_per_row != in.cols || s.n_mat != in.n_mat) {
    status_ = make_error("tensor '{}' observed as {} x {} and as {} x {}", in.weight, s.n_per_row, s.n_mat,
                         in.cols, in.n_mat);
    return;
  }
  const bool stacked = in.n_mat > 1;
  const int per_row = stacked ? in.mats_per_row : 1;
  for (int64_t r = 0; r < in.rows; ++r) {
    const float* x = in.x + r * in.stride;
    for (int64_t c = 0; c < in.cols; ++c) {
      if (!std::isfinite(x[c])) {
        status_ = make_error("tensor '{}': input {} of row {} is {}", in.weight, c, r, x[c]);
        return;
      }
    }
    for (int j = 0; j < per_row; ++j) {
      const int64_t mat = stacked ? in.mats[r * per_row + j] : 0;
      if (mat < 0 || mat >= s.n_mat) {
        status_ = make_error("tensor '{}': row {} went to matrix {} of {}", in.weight, r, mat, s.n_mat);
        return;
      }
      double* sum2 = s.sum2.data() + mat * s.n_per_row;
      for (int64_t c = 0; c < in.cols; ++c) sum2[c] += static_cast<double>(x[c]) * x[c];
      ++s.counts[static_cast<size_t>(mat)];
    }
  }
}

Imatrix ImatrixCollector::result(std::vector<std::string> datasets, uint32_t chunk_count,
                                 uint32_t chunk_size) const {
  Imatrix m;
  m.datasets = std::move(datasets);
  m.chunk_count = chunk_count;
  m.chunk_size = chunk_size;
  for (const auto& [name, s] : sums_) {
    ImatrixEntry& e = m.entries.emplace_back();
    e.name = name;
    e.n_per_row = s.n_per_row;
    e.n_mat = s.n_mat;
    e.sum2.assign(s.sum2.begin(), s.sum2.end());
    e.counts.assign(s.counts.begin(), s.counts.end());
  }
  return m;
}

}  // namespace onecard::model
