// The simulator's one virtual network: messages between named nodes wait in a queue
// ordered by delivery time (ties by send order), each delayed at random, some by a long
// extra delay (reordering), some dropped, none delivered across a cut link. Every fault
// knob is a field of NetworkOptions; the test's seeded generator draws every random
// choice, so a seed replays a run exactly. Not thread-safe.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <queue>
#include <random>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "core/messages.h"

namespace itsuka::core::sim {

struct NetworkOptions {
  int64_t max_delay_ms = 40;  // each message waits 1..max_delay_ms
  int long_delay_one_in = 0;  // 1 in this many waits long_delay_ms more (0: none)
  int64_t long_delay_ms = 150;
  double drop = 0;            // probability that a message is lost
  // No duplication: no existing workload duplicates messages (the peer links are TCP).
};

struct Message {
  int64_t at = 0;
  uint64_t seq = 0;
  std::string from, to;
  PeerMessage msg;
  bool operator>(const Message& o) const { return std::tie(at, seq) > std::tie(o.at, o.seq); }
};

class Network {
 public:
  Network(NetworkOptions options, std::mt19937_64* rng) : options_(options), rng_(rng) {}

  NetworkOptions& options() { return options_; }
  void set_drop(double p) { options_.drop = p; }

  // Queues `msg` unless the link is cut or the dice drop it.
  void Send(const std::string& from, const std::string& to, PeerMessage msg, int64_t now) {
    const uint64_t seq = next_seq_++;
    if (!Linked(from, to)) return;
    std::mt19937_64& rng = *rng_;
    if (std::uniform_real_distribution<double>(0, 1)(rng) < options_.drop) return;
    int64_t delay = 1 + static_cast<int64_t>(rng() % static_cast<uint64_t>(options_.max_delay_ms));
    if (options_.long_delay_one_in > 0 && rng() % static_cast<uint64_t>(options_.long_delay_one_in) == 0) {
      delay += options_.long_delay_ms;
    }
    queue_.push(Message{now + delay, seq, from, to, std::move(msg)});
  }

  // When the next message is due (INT64_MAX: none queued).
  int64_t NextAt() const { return queue_.empty() ? INT64_MAX : queue_.top().at; }
  Message Pop() {
    Message m = queue_.top();
    queue_.pop();
    return m;
  }

  bool Linked(const std::string& a, const std::string& b) const { return blocked_.count({a, b}) == 0; }
  // Cuts every link between `side` and the rest of `all` (an empty side heals).
  void Partition(const std::vector<std::string>& all, const std::set<std::string>& side) {
    blocked_.clear();
    for (const std::string& a : all) {
      for (const std::string& b : all) {
        if (side.count(a) != side.count(b)) blocked_.insert({a, b});
      }
    }
  }
  void Heal() { blocked_.clear(); }

 private:
  NetworkOptions options_;
  std::mt19937_64* rng_;
  std::priority_queue<Message, std::vector<Message>, std::greater<Message>> queue_;
  std::set<std::pair<std::string, std::string>> blocked_;
  uint64_t next_seq_ = 1;
};

}  // namespace itsuka::core::sim
