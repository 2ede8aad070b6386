// The activation observer of `onecard imatrix`: per weight tensor and per matrix of a stacked one, the sum
// over tokens of each input column's square and the number of tokens that reached it, as llama.cpp's imatrix
// tool accumulates them (so that quantize can weight each column by its mean squared activation).
#pragma once

#include <map>
#include <string>
#include <vector>

#include "base/result.h"
#include "model/activation_observer.h"
#include "model/imatrix_file.h"

namespace onecard::model {

class ImatrixCollector : public ActivationObserver {
 public:
  void observe(const ObservedInput& in) override;

  // The first problem seen (a non-finite activation, a tensor observed with two shapes), or ok.
  const Status& status() const { return status_; }
  // The sums so far, one entry per observed tensor in name order.
  Imatrix result(std::vector<std::string> datasets, uint32_t chunk_count, uint32_t chunk_size) const;

 private:
  struct Sums {
    int64_t n_per_row = 0, n_mat = 0;
    std::vector<double> sum2;  // double: a long calibration run adds millions of squares per column
    std::vector<int64_t> counts;
  };
  std::map<std::string, Sums, std::less<>> sums_;
  Status status_;
};

}  // namespace onecard::model
