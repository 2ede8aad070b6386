#include "backend/backend.h"

namespace onecard::backend {

std::string_view attention_mode_name(AttentionMode m) {
  switch (m) {
    case AttentionMode::kAbsorbed:
      return "absorbed";
    case AttentionMode::kExpanded:
      return "expanded";
    case AttentionMode::kAuto:
      break;
  }
  return "auto";
}

}  // namespace onecard::backend
