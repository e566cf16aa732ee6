// The ring: which nodes hold which keys.
//
// Design note (Dynamo §6.2 "strategy 3", as Riak does it): the key space is cut into Q
// equal, fixed partitions (Q chosen at cluster creation). Which partition a key belongs
// to is the ring's Placement, fixed by the data format (docs/DESIGN.md 4.1, 4.12):
// kHash (format 1): the partition its XXH3-64 hash falls in, hash * Q / 2^64;
// kSlots (format 2): its Redis Cluster hash slot (common/keyslot.h) picks it, each
// partition holding 16384 / Q consecutive slots (Q must divide 16384). Partitions are claimed by members with a pure
// function of the member list — rendezvous (highest-random-weight) hashing of
// (partition, member) — so every node that knows the same members computes the same
// ring, and a join or leave moves only the partitions the changed member wins or loses
// (about Q/M of them). The preference list of a partition is the owners of it and the
// following partitions, skipping nodes already chosen, until N distinct nodes.
//
// A Ring is an immutable value with a version; a new membership makes a new Ring.
// Pure and thread-compatible (safe to share between threads once built).
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "itsuka/status.h"

namespace itsuka::core {

// How keys are placed on partitions; the value is the data format that uses it.
enum class Placement : uint32_t { kHash = 1, kSlots = 2 };

// Whether a ring of `partitions` can use `placement` (kSlots: Q divides 16384).
Status CheckPlacement(uint32_t partitions, Placement placement);

class Ring {
 public:
  // REQUIRES: partitions >= 1. Members are deduplicated; an empty list makes a ring
  // that owns nothing.
  // kInvalidArgument if CheckPlacement refuses (partitions, placement).
  static Result<Ring> Create(uint32_t partitions, std::vector<std::string> members,
                             uint64_t version, Placement placement = Placement::kSlots);

  uint32_t partitions() const { return static_cast<uint32_t>(owners_.size()); }
  uint64_t version() const { return version_; }
  const std::vector<std::string>& members() const { return members_; }

  Placement placement() const { return placement_; }
  // The partition that owns a key hash: hash * Q / 2^64 (equal ranges of hash space).
  // The kHash placement; kept for tests and the hash-based Merkle leaves.
  uint32_t PartitionOf(uint64_t key_hash) const;
  // The partition that owns `key` under this ring's placement.
  uint32_t PartitionOfKey(std::string_view key) const;
  // kSlots: the partition holding a slot (< 16384), and the first slot of a partition
  // (it holds SlotsPerPartition() from there). REQUIRES: placement() == kSlots.
  uint32_t PartitionOfSlot(uint32_t slot) const;
  uint32_t SlotsPerPartition() const;
  const std::string& Owner(uint32_t partition) const { return members_[owners_[partition]]; }
  // Up to n distinct nodes: the owners of `partition` and the partitions after it.
  // Copied from the cache when CachePreferenceLists(n) was called for this n.
  std::vector<std::string> PreferenceList(uint32_t partition, size_t n) const;
  // Computes PreferenceList(p, n) of every partition once (a node asks for its
  // replica count n on every operation); rings of more than 16384 partitions are not
  // cached. Not thread-safe against readers: call it
  // before the ring is shared.
  void CachePreferenceLists(size_t n);
  // Number of partitions each member owns, in members() order.
  std::vector<uint32_t> OwnedCounts() const;
  // The members after PreferenceList(partition, n), in the same ring order: where a
  // sloppy quorum looks for substitutes of unreachable primaries.
  std::vector<std::string> Fallbacks(uint32_t partition, size_t n) const;

 private:
  Ring() = default;
  std::vector<std::string> members_;  // sorted, unique
  std::vector<uint32_t> owners_;      // partition -> index into members_
  uint64_t version_ = 0;
  Placement placement_ = Placement::kHash;
  size_t cached_n_ = 0;                           // 0: no cache
  std::vector<std::vector<std::string>> cached_;  // partition -> PreferenceList(p, cached_n_)
};

// The partition of `key` in a ring of `partitions` under `placement` (what
// Ring::PartitionOfKey answers; for code that holds Q but no ring, such as the store).
uint32_t PartitionOfKey(std::string_view key, uint32_t partitions, Placement placement);

// The claim weight of `member` for `partition` (exposed for tests).
uint64_t ClaimWeight(uint32_t partition, std::string_view member);

}  // namespace itsuka::core
