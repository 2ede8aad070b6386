// The events of one HTTP request's sequences (its n choices), handed from the engine's thread, which must
// never wait, to the HTTP thread that answers the client.
#pragma once

#include <chrono>
#include <condition_variable>
#include <memory>
#include <mutex>
#include <utility>
#include <vector>

#include "runtime/engine.h"

namespace onecard::serve {

class EventChannel {
 public:
  struct Item {
    int choice = 0;
    runtime::GenerationEvent event;
    std::chrono::steady_clock::time_point at;
  };

  void push(int choice, const runtime::GenerationEvent& event) {
    {
      std::lock_guard lock(mu_);
      items_.push_back({choice, event, std::chrono::steady_clock::now()});
    }
    cv_.notify_one();
  }

  // What arrived, waiting up to `timeout` for something.
  std::vector<Item> take(std::chrono::milliseconds timeout) {
    std::unique_lock lock(mu_);
    cv_.wait_for(lock, timeout, [this] { return !items_.empty(); });
    std::vector<Item> out;
    out.swap(items_);
    return out;
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  std::vector<Item> items_;
};

}  // namespace onecard::serve
