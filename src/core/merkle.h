// Merkle trees for anti-entropy: one fixed-shape hash tree per ring partition over the
// (key, version digest) pairs a replica holds, kept current on every write.
//
// Design note (Dynamo §4.7; Riak's hashtrees; Cassandra's Merkle repair, minus its
// per-repair rebuild): every replica of a partition builds the same shape -- fan-out 16
// and a depth fixed by the partition count -- so two replicas' trees line up node for
// node. A key falls in the leaf picked by the low bits of its XXH3 hash (the high bits
// pick its partition). A leaf is the XOR of its entries' hashes and an inner node the
// XOR of its children, so the combination does not depend on insertion order and a
// write changes one path in O(depth): XOR the old entry out, the new one in. Replicas
// with equal (key, digest) sets have equal trees; a difference shows as a differing
// root, and a top-down descent finds the differing leaves while fetching only the
// children of nodes that differ. A false match needs a 64-bit XOR collision.
//
// Pure, no I/O; thread-compatible.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "core/object.h"

namespace itsuka::core {

inline constexpr uint32_t kMerkleFanout = 16;
inline constexpr uint32_t kMerkleMaxDepth = 3;  // 4096 leaves

// The depth every replica uses for a ring of `partitions`: the deepest (at most 3) that
// keeps partitions * leaves near 2^20, so the trees of all partitions fit in ~10 MiB.
uint32_t MerkleDepthFor(uint32_t partitions);

// A stable digest of everything a replica stores for a key (clock and siblings); 0 for
// an empty (absent) object. Equal objects have equal digests on every platform.
uint64_t ObjectDigest(const Object& obj);

// The leaf of a key with hash `key_hash` (Hash64(key)) in a tree of `depth`.
inline uint32_t MerkleLeafOf(uint64_t key_hash, uint32_t depth) {
  return static_cast<uint32_t>(key_hash & ((uint64_t{1} << (4 * depth)) - 1));
}

// The hash one (key, digest) pair contributes to its leaf.
uint64_t MerkleEntryHash(std::string_view key, uint64_t digest);

class MerkleTree {
 public:
  // REQUIRES: 1 <= depth <= kMerkleMaxDepth.
  explicit MerkleTree(uint32_t depth);

  uint32_t depth() const { return depth_; }
  uint32_t leaves() const { return static_cast<uint32_t>(levels_.back().size()); }
  // Nodes at `level` (0 = the root, depth = the leaves).
  uint32_t Width(uint32_t level) const { return static_cast<uint32_t>(levels_[level].size()); }
  // REQUIRES: level <= depth, index < Width(level).
  uint64_t Node(uint32_t level, uint32_t index) const { return levels_[level][index]; }
  uint64_t root() const { return levels_[0][0]; }
  // Keys currently in the tree (entries with a nonzero digest).
  uint64_t keys() const { return keys_; }

  // Replaces the key's entry: `old_digest` is what the tree held for it (0: absent),
  // `new_digest` what it holds now (0: removed).
  void Update(std::string_view key, uint64_t key_hash, uint64_t old_digest, uint64_t new_digest);

 private:
  void Toggle(uint32_t leaf, uint64_t h);

  uint32_t depth_;
  std::vector<std::vector<uint64_t>> levels_;
  uint64_t keys_ = 0;
};

// One step of the top-down descent: `parents` are the differing nodes at `level`; returns
// the indices of their children (at level + 1) to compare next.
std::vector<uint32_t> MerkleChildren(const std::vector<uint32_t>& parents);

// The indices i (into `indices`, nodes of `level`) where `local` and `remote_hashes[i]` differ.
// REQUIRES: remote_hashes.size() == indices.size().
std::vector<uint32_t> MerkleDiffering(const MerkleTree& local, uint32_t level,
                                      const std::vector<uint32_t>& indices,
                                      const std::vector<uint64_t>& remote_hashes);

// The leaves where two local trees of the same depth differ, by top-down descent.
std::vector<uint32_t> MerkleDiffLeaves(const MerkleTree& a, const MerkleTree& b);

}  // namespace itsuka::core
