// Hinted handoff: writes kept for a replica that could not be reached, and the pieces
// that bound and replay them.
//
// Design note (Dynamo §4.6 "hinted handoff"; Cassandra's hints and max_hint_window;
// Riak's fallback vnodes): when a primary replica of a key is unreachable, the write
// is stored on another node as a *hint* for that primary -- by a sloppy substitute
// (the first reachable node after the preference list), or, when every node is a
// primary and there is no substitute, by the coordinator beside its own copy, as
// Cassandra does. A hint is keyed by (target, key) and its value is the merge of every
// object stored for that pair, so a target's hints are bounded by its distinct keys,
// not by the writes it missed. Hints are bounded per target (keys and bytes); a full
// target refuses new hints (a substitute then acks with an error, so the coordinator
// does not count it). Once the failure detector says the target is up again, its
// hints are replayed as ordinary ReplicaWrites at a limited rate, a few at a time,
// and a hint is deleted only after the target acknowledged it durably and only if it
// did not change meanwhile. Hints older than a maximum age are dropped at replay:
// anti-entropy repair carries what they held (so the tombstone grace period must be
// longer than that age, or a dropped hint's tombstone could be purged before repair).
//
// Pure: no clocks, no I/O. HintStore implementations (RocksDB in the server, the same
// one over MemEngine in the simulator) stage their changes for the shell's group
// commit, like LocalStore. Thread-compatible.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/object.h"
#include "itsuka/status.h"

namespace itsuka::core {

struct HintLimits {
  uint64_t max_keys_per_target = 1000000;
  uint64_t max_bytes_per_target = 1ull << 30;
};

// What one target's hints occupy.
struct HintUsage {
  uint64_t keys = 0;
  uint64_t bytes = 0;
  friend bool operator==(const HintUsage&, const HintUsage&) = default;
};

struct Hint {
  std::string key;
  Object object;
  int64_t updated_ms = 0;  // wall clock (ms since the epoch) of the last write merged in
};

// Per-target accounting of hints against HintLimits.
class HintLedger {
 public:
  explicit HintLedger(HintLimits limits) : limits_(limits) {}

  // Whether replacing a hint of `old_bytes` (absent when !had) by one of `new_bytes`
  // keeps `target` within its limits. Shrinking or same-size changes always fit.
  bool Fits(const std::string& target, bool had, uint64_t old_bytes, uint64_t new_bytes) const;
  // Records the change of one (target, key) entry.
  void Apply(const std::string& target, bool had, uint64_t old_bytes, bool has, uint64_t new_bytes);
  void Clear() { usage_.clear(); }
  // Targets with at least one hint.
  const std::map<std::string, HintUsage>& usage() const { return usage_; }
  const HintLimits& limits() const { return limits_; }

 private:
  HintLimits limits_;
  std::map<std::string, HintUsage> usage_;
};

// Where a node keeps hints. Changes are staged and become durable with the shell's
// group commit, before anything of the same round is sent (as for LocalStore).
class HintStore {
 public:
  virtual ~HintStore() = default;
  // Merges `obj` into the hint for (target, key). kBusy when that would exceed the
  // target's limits (nothing is staged); an error if the stored hint cannot be read.
  virtual Status Add(const std::string& target, std::string_view key, const Object& obj) = 0;
  virtual Result<std::optional<Hint>> Get(const std::string& target, std::string_view key) = 0;
  virtual void Remove(const std::string& target, std::string_view key) = 0;
  // Up to `limit` of target's hints with key >= `start`, in key order.
  virtual Result<std::vector<Hint>> Scan(const std::string& target, std::string_view start,
                                         size_t limit) = 0;
  // Every target that has hints (staged changes included).
  virtual std::map<std::string, HintUsage> Usage() const = 0;
};

struct HandoffOptions {
  bool sloppy_quorum = true;                     // false: writes go to reachable primaries only
  int64_t max_hint_age_ms = 3 * 3600 * 1000;     // older hints are dropped at replay
  int64_t rate_keys_per_s = 2000;                // hints replayed per second, all targets
  size_t max_inflight_per_target = 64;           // replayed hints awaiting an ack, per target
};

struct HandoffStats {
  uint64_t written = 0;        // hints stored (new or merged), as substitute or coordinator
  uint64_t refused = 0;        // hints refused because the target's hints were full
  uint64_t replayed = 0;       // hints the target acknowledged and that were deleted
  uint64_t dropped = 0;        // hints older than max_hint_age_ms, deleted unsent
  uint64_t replay_failed = 0;  // replays the target refused or did not answer in time
  uint64_t replay_timeouts = 0;  // ... of which not answered in time
};

// A token bucket: `rate` tokens per second, holding at most one second's worth.
// Time comes in as an argument.
class RateLimiter {
 public:
  explicit RateLimiter(int64_t rate_per_s) : rate_(rate_per_s) {}
  // Grants up to `want` tokens now.
  size_t Take(int64_t now_ms, size_t want);
  // Gives back tokens taken but not used.
  void Refund(size_t n);

 private:
  int64_t rate_;
  double tokens_ = 0;
  int64_t last_ms_ = -1;
};

}  // namespace itsuka::core
