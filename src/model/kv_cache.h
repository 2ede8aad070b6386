// The MLA KV cache: per layer, sequence and position only the normalised latent c (kv_lora values) followed
// by the rotated shared key k_pe (qk_rope values), in float32 or bfloat16. 576 values per token and layer on
// V3.
#pragma once

#include <cstdint>
#include <memory>
#include <string_view>
#include <vector>

#include "base/result.h"
#include "model/hparams.h"

namespace onecard::model {

enum class KvType { kF32, kBF16 };

// One token of a forward batch. Tokens of the same sequence must come in increasing positions, and every
// position below a token's must already be in the cache or earlier in the batch.
struct BatchToken {
  int32_t token = 0;
  int32_t pos = 0;
  int32_t seq = 0;
  bool logits = false;
};

std::string_view kv_type_name(KvType t);
Result<KvType> kv_type_from_name(std::string_view name);

class KvCache {
 public:
  KvCache(const HParams& hp, int n_seq, int n_ctx, KvType type);

  int n_seq() const { return n_seq_; }
  int n_ctx() const { return n_ctx_; }
  int width() const { return width_; }
  KvType type() const { return type_; }
  size_t bytes() const { return bytes_; }

  // Writes one token's row (width() values) at (layer, seq, pos).
  void store(int layer, int seq, int pos, const float* row);
  void store(int layer, int seq, int pos, const std::vector<float>& row) {
    store(layer, seq, pos, row.data());
  }
  // The rows of (layer, seq), positions 0.. consecutive, each width() values of the cache's type.
  const void* rows(int layer, int seq) const { return data_.get() + offset(layer, seq, 0); }

 private:
  size_t offset(int layer, int seq, int pos) const;

  int n_layer_, n_seq_, n_ctx_, width_;
  KvType type_;
  size_t elem_;
  size_t bytes_;
  std::unique_ptr<uint8_t[]> data_;
};

}  // namespace onecard::model
