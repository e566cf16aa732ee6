// Convergent counters (INCR and friends) riding on the versioned object.
//
// Design note (state-based PN-counter, Shapiro et al., "A comprehensive study of
// Convergent and Commutative Replicated Data Types", 2011, §3.1.3; the reset by
// subtracting what a reset observed follows the "causal counter with reset" idea):
// a counter sibling carries, beside its decimal value, a CounterState:
//  - shards: one per actor (the coordinating primary's actor id) that incremented the
//    key, (seq, value) with seq the dot counter of the actor's latest increment. Only
//    that actor writes its shard, always from its own stored copy (which holds every
//    dot it issued, DESIGN 5.1), so a higher seq is a later value: shards merge by the
//    larger seq.
//  - a base: what the last SET/DEL/INCR-on-a-missing-key made the value, ordered by
//    (epoch, explicit, id) where epoch is one more than the epoch of every base the
//    write observed (a Lamport number) and id is the dot of the write that made it.
//    A base causally after another always wins; of concurrent bases, the larger wins.
//  - the floor: the shards the base's writer observed. The value is
//    base + sum over actors of (shard - floor): increments the reset saw are wiped,
//    increments concurrent with it survive on top of it.
// The merge is the product of three join-semilattices (max base with its floor, per
// actor max-seq shard), hence commutative, associative and idempotent; siblings of one
// counter collapse into one value on read and on the next increment.
//
// Pure functions over values. Thread-compatible.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/version.h"
#include "itsuka/status.h"

namespace itsuka::core {

struct Object;
struct Sibling;

struct CounterShard {
  std::string actor;
  uint64_t seq = 0;   // dot counter of the actor's increment that wrote this value
  int64_t value = 0;  // the actor's net increments (may be negative)
  friend bool operator==(const CounterShard&, const CounterShard&) = default;
};

struct CounterState {
  enum class Base : uint8_t { kInt = 0, kDeleted = 1, kText = 2 };
  uint64_t epoch = 0;
  bool explicit_base = true;  // false: made by an INCR of a missing key
  Dot base_id;                // the dot of the write that made the base
  Base base_kind = Base::kInt;
  int64_t base = 0;                  // kInt: the value; otherwise 0
  std::vector<CounterShard> floor;   // sorted by actor, unique
  std::vector<CounterShard> shards;  // sorted by actor, unique
  friend bool operator==(const CounterState&, const CounterState&) = default;
};

// Largest number of shards (and floor entries) a state may hold: far above the number
// of actors that ever coordinate one key, so only a forged state reaches it.
inline constexpr size_t kMaxCounterShards = 4096;

// Sorted unique non-empty actors within kMaxClockNodeBytes, seqs in 1..kMaxClockCounter,
// a base id with a counter >= 1, base == 0 unless kInt, at most kMaxCounterShards.
bool IsWellFormed(const CounterState& c);

// The join of two states (commutative, associative, idempotent).
CounterState MergeCounters(const CounterState& a, const CounterState& b);

// base + sum(shard - floor), exactly (the sum of int64s fits in __int128).
__int128 CounterTotal(const CounterState& c);

// What a reader sees of a counter object.
struct CounterView {
  bool exists = false;
  int64_t value = 0;         // when exists
  int64_t expire_at_ms = 0;  // when exists: the live siblings' expiry (0: never)
};

// The counter view of `obj` at `now_ms`, or nullopt to read it as plain strings (no counter
// state, a live plain non-integer, a text base, a total past int64). A live plain integer is
// the base an increment would take (epoch 1); no live sibling reads as missing.
std::optional<CounterView> ReadCounter(const Object& obj, int64_t now_ms);

// The counter state a non-increment version written with `dot` over `current` with
// `context` must carry: nullopt when no covered sibling carries a counter state (plain
// strings stay plain); else a reset whose floor is every shard the writer saw.
std::optional<CounterState> ResetState(const Object& current, const VClock& context,
                                       const Dot& dot, bool tombstone, std::string_view value);

// The state and decimal value of an increment by `delta` written with `dot` over
// `current` with `context` at `now_ms`. kInvalidArgument with Redis's messages when the
// current value is not an integer or the result would overflow.
struct Increment {
  CounterState state;
  int64_t value = 0;
  int64_t expire_at_ms = 0;  // kept from a single live version, as Redis keeps a TTL
};
Result<Increment> BuildIncrement(const Object& current, const VClock& context, const Dot& dot,
                                 int64_t delta, int64_t now_ms);

// The decimal text of a delta carried in WriteSpec::version.value, and back.
bool ParseCounterDelta(std::string_view text, int64_t* delta);

}  // namespace itsuka::core
