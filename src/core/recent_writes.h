// The writes this node recently acknowledged to its own clients, per key: read-your-
// writes through one node (docs/DESIGN.md §4.5, "Read-your-writes through one node").
//
// Design note: with sloppy quorum a write's W acks may come from substitutes that keep
// it only as a hint, and a write forwarded by a node that is not a replica may be
// coordinated by a different primary than the client's next request (the first one
// died, the views changed). A later read, or the read before a DEL / NX / XX, then
// reaches a quorum that never saw the write. This node, which answered the client,
// knows the object the write produced (its own coordination, or the coordinator's
// ForwardResult): it keeps that object here for a short window and merges it into
// every later eventual operation on the key that it starts -- the read's answer, or
// the coordinator's copy before a write is applied (shipped in ForwardPut::seen when
// the write is forwarded). Merging an acknowledged, durable version is what hint
// replay or anti-entropy would do anyway; it only comes earlier.
//
//  - Only versions that are durable wherever they were acknowledged are recorded (OK
//    results). A local commit that fails drops what was recorded in its round
//    (DropRound): such a version may exist nowhere, and a dot that exists nowhere
//    must not enter another write's context (its actor would issue it again).
//  - Bounded: at most `max_keys` entries and `max_bytes` of objects; an object over
//    `max_entry_bytes` is not kept; entries older than `window_ms` are ignored and
//    swept. The window must stay well below the tombstone grace (a purged tombstone
//    must not meet an old version again); the shell caps it accordingly.
//  - Lost when the node restarts; not shared between nodes.
//
// No clocks (times come in as arguments), no I/O. Thread-compatible.
#pragma once

#include <cstddef>
#include <cstdint>
#include <list>
#include <string>
#include <unordered_map>

#include "core/object.h"

namespace itsuka::core {

struct RecentWritesOptions {
  size_t max_keys = 4096;
  size_t max_bytes = 16u << 20;
  size_t max_entry_bytes = 1u << 20;
  int64_t window_ms = 60000;  // 0: nothing is kept
};

struct RecentWritesStats {
  uint64_t recorded = 0;   // acknowledged writes recorded
  uint64_t merged = 0;     // operations that merged a recorded object in
  uint64_t evicted = 0;    // entries dropped for the key or byte bound
  uint64_t too_big = 0;    // writes not recorded: object over max_entry_bytes
  uint64_t dropped = 0;    // entries dropped because their round's commit failed
};

class RecentWrites {
 public:
  explicit RecentWrites(RecentWritesOptions options = {}) : options_(options) {}

  // Records that `obj`, the object an acknowledged write of `key` produced, was
  // answered at `now_ms` in commit round `round` (merged with what is kept already).
  void Record(const std::string& key, const Object& obj, int64_t now_ms, uint64_t round);
  // What is kept for `key` within the window (empty if nothing).
  Object Get(const std::string& key, int64_t now_ms) const;
  // Counts an operation that merged a non-empty Get into its result.
  void CountMerged() { ++stats_.merged; }
  // Forgets every entry recorded in `round` (its commit failed).
  void DropRound(uint64_t round);
  // Forgets entries older than the window.
  void Expire(int64_t now_ms);

  size_t size() const { return entries_.size(); }
  size_t bytes() const { return bytes_; }
  const RecentWritesStats& stats() const { return stats_; }
  const RecentWritesOptions& options() const { return options_; }

 private:
  struct Entry {
    Object object;
    size_t bytes = 0;
    int64_t at_ms = 0;
    uint64_t round = 0;
    std::list<std::string>::iterator order;  // position in order_
  };
  using EntryIt = std::unordered_map<std::string, Entry>::iterator;
  void Erase(EntryIt it);

  RecentWritesOptions options_;
  std::unordered_map<std::string, Entry> entries_;
  std::list<std::string> order_;  // keys, least recently recorded first
  size_t bytes_ = 0;
  RecentWritesStats stats_;
};

}  // namespace itsuka::core
