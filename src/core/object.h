// The versioned object stored under every key: concurrent versions (siblings), each
// with its dot, value or tombstone and expiry, plus the clock of everything seen.
//
// Design note (dotted version vector sets, Almeida et al. 2014): a write carries a
// causal *context* (the clock its writer read). It supersedes exactly the siblings
// whose dots the context covers and gets a fresh dot from its coordinator; siblings
// the context did not see stay, so concurrent writes are never lost. Two replicas'
// objects merge by keeping each sibling unless the other side has seen its dot and
// dropped it.
//
// Pure functions over values; time comes in as an argument. Thread-compatible.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/counter.h"
#include "core/version.h"
#include "itsuka/status.h"

namespace itsuka::core {

struct Sibling {
  Dot dot;
  bool tombstone = false;
  std::string value;          // empty for a tombstone
  int64_t expire_at_ms = 0;   // wall-clock ms since the epoch; 0 = never expires
  int64_t written_at_ms = 0;  // coordinator's wall clock at write time (informational)
  // A counter's state (core/counter.h): set on a version an increment wrote (`value` is
  // then its decimal total) and on a SET/DEL that superseded a counter version (the
  // reset that wipes what it saw). Empty on every plain string.
  std::optional<CounterState> counter;

  // True if this sibling holds a value that a reader at `now_ms` should see.
  bool IsLive(int64_t now_ms) const {
    return !tombstone && (expire_at_ms == 0 || expire_at_ms > now_ms);
  }
  friend bool operator==(const Sibling&, const Sibling&) = default;
};

struct Object {
  VClock clock;
  std::vector<Sibling> siblings;  // sorted by dot, unique dots, each covered by clock

  bool empty() const { return siblings.empty(); }
  friend bool operator==(const Object&, const Object&) = default;
};

struct ObjectLimits {
  size_t max_siblings = 64;
  size_t max_bytes = 32u << 20;
};

// The new version a write wants to add (its dot is assigned by ApplyWrite).
struct NewVersion {
  bool tombstone = false;
  std::string value;
  int64_t expire_at_ms = 0;
  int64_t written_at_ms = 0;
  friend bool operator==(const NewVersion&, const NewVersion&) = default;
};

// Coordinates a write at server `node`: drops the siblings of `current` covered by
// `context`, adds `version` with a fresh dot of `node`, and joins the clocks.
// Fails with kSiblings / kTooBig when the result would exceed `limits`, and with
// kInvalidArgument for a version no check would store (negative expiry or write time)
// or a dot past kMaxClockCounter.
// REQUIRES: `current` is this node's stored object for the key (so that node's clock
// entry is at least every dot it ever issued for the key).
// A version that supersedes counter versions carries a reset (core::ResetState).
// With `increment`, the version is a counter increment by *increment: its value and
// state come from core::BuildIncrement (and its errors from there), `version.value`
// and `version.expire_at_ms` are ignored.
Result<Object> ApplyWrite(const Object& current, const VClock& context, std::string_view node,
                          NewVersion version, const ObjectLimits& limits,
                          const int64_t* increment = nullptr);

// Merges two replicas' objects of the same key (commutative, associative, idempotent).
Object Merge(const Object& a, const Object& b);

// The siblings a reader at `now_ms` sees (no tombstones, nothing expired), in dot order.
std::vector<const Sibling*> LiveSiblings(const Object& obj, int64_t now_ms);

// Checks the invariants listed on Object (used when decoding untrusted bytes): a
// well-formed clock (VClock::IsWellFormed), siblings sorted by unique dots with
// counters >= 1 that the clock covers, tombstones without a value, expiry and
// write times >= 0, and counter states that pass their own checks.
bool IsWellFormed(const Object& obj);

// What can be saved of an object that fails IsWellFormed (one stored before the
// checks were this strict): the clock entries that pass VClock::IsWellFormed and the
// siblings that pass their checks; the rest is dropped and counted in `*dropped`
// (clock entries and siblings). The result is well formed. For an object that is
// already well formed it returns the object unchanged with *dropped == 0.
Object Salvage(const Object& raw, size_t* dropped);

// True if some sibling of `obj` carries a counter state.
bool HasCounter(const Object& obj);

// Approximate encoded size, for the object size cap.
size_t ApproxBytes(const Object& obj);

}  // namespace itsuka::core
