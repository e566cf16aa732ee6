// Causal versioning: dots and vector clocks, in the dotted-version-vector form.
//
// Design note (Preguiça, Baquero, Almeida et al., "Dotted Version Vectors: Logical
// Clocks for Optimistic Replication", 2010; "Scalable and Accurate Causality Tracking
// for Eventually Consistent Stores", 2014): each stored version is identified by a
// *dot* (server id, counter) issued by the replica that coordinated the write, and the
// object carries one vector clock that summarises every version it has seen. Because
// dots are issued by servers, not clients, one client writing through different
// coordinators produces no false siblings, and the clock grows with the number of
// servers, not clients.
//
// Pure value types; no I/O. Thread-compatible.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace itsuka::core {

// Bounds every clock in the system keeps. A counter counts the writes one actor (one
// node's data directory) coordinated for one key: at a million writes a second to a
// single key, reaching 2^53 takes 285 years, so a larger counter can only be forged,
// and refusing it keeps `counter + 1` far from overflowing (a wrapped counter of 0
// would make the stored object fail its own checks). 2^53 is also the largest integer
// a double (and so a JSON tool) holds exactly. Node ids are actor names (a node id of
// at most 64 bytes plus an incarnation suffix): never empty, at most 255 bytes.
inline constexpr uint64_t kMaxClockCounter = uint64_t{1} << 53;
inline constexpr size_t kMaxClockNodeBytes = 255;

// One write event: the `counter`-th write coordinated by server `node`.
struct Dot {
  std::string node;
  uint64_t counter = 0;

  friend bool operator==(const Dot&, const Dot&) = default;
  friend auto operator<=>(const Dot&, const Dot&) = default;
};

// A version vector: for each server, how many of its write events are known.
// Entries are kept sorted by node id, with no zero counters.
class VClock {
 public:
  using Entry = std::pair<std::string, uint64_t>;

  VClock() = default;
  // REQUIRES: entries sorted by node, unique, counters > 0 (see IsWellFormed).
  explicit VClock(std::vector<Entry> entries) : entries_(std::move(entries)) {}

  // Sorted, unique, non-empty node ids of at most kMaxClockNodeBytes, counters in
  // 1..kMaxClockCounter.
  static bool IsWellFormed(const std::vector<Entry>& entries);

  uint64_t Get(std::string_view node) const;
  // Raises node's entry to at least `counter`.
  void Raise(std::string_view node, uint64_t counter);
  // True if this clock has seen the event `dot`.
  bool Covers(const Dot& dot) const { return Get(dot.node) >= dot.counter; }
  // True if every event seen by `other` is seen by this clock (this >= other).
  bool Descends(const VClock& other) const;
  // Pointwise maximum.
  void Join(const VClock& other);

  bool empty() const { return entries_.empty(); }
  const std::vector<Entry>& entries() const { return entries_; }

  friend bool operator==(const VClock&, const VClock&) = default;

 private:
  std::vector<Entry> entries_;
};

// Human-readable form for logs and tests: "{a:3,b:1}".
std::string ToString(const VClock& clock);

}  // namespace itsuka::core
