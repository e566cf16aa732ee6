#include "core/merkle.h"

#include "common/hash.h"

namespace itsuka::core {

uint32_t MerkleDepthFor(uint32_t partitions) {
  uint32_t depth = kMerkleMaxDepth;
  while (depth > 1 && static_cast<uint64_t>(partitions) << (4 * depth) > (uint64_t{1} << 20)) {
    --depth;
  }
  return depth;
}

uint64_t ObjectDigest(const Object& obj) {
  if (obj.empty()) return 0;
  // Lengths before every variable-size piece, so that no two objects hash the same
  // sequence of bytes.
  Hasher h;
  h.Update(obj.clock.entries().size());
  for (const auto& [node, counter] : obj.clock.entries()) {
    h.Update(node.size());
    h.Update(node);
    h.Update(counter);
  }
  h.Update(obj.siblings.size());
  for (const Sibling& sib : obj.siblings) {
    h.Update(sib.dot.node.size());
    h.Update(sib.dot.node);
    h.Update(sib.dot.counter);
    h.Update(uint64_t{sib.tombstone ? 1u : 0u});
    h.Update(sib.value.size());
    h.Update(sib.value);
    h.Update(static_cast<uint64_t>(sib.expire_at_ms));
    h.Update(static_cast<uint64_t>(sib.written_at_ms));
  }
  const uint64_t d = h.Digest();
  return d == 0 ? 1 : d;  // 0 means "absent"
}

uint64_t MerkleEntryHash(std::string_view key, uint64_t digest) {
  return Hash64(key, digest ^ 0x9e3779b97f4a7c15ull);
}

MerkleTree::MerkleTree(uint32_t depth) : depth_(depth) {
  size_t width = 1;
  for (uint32_t level = 0; level <= depth; ++level) {
    levels_.emplace_back(width, 0);
    width *= kMerkleFanout;
  }
}

void MerkleTree::Toggle(uint32_t leaf, uint64_t h) {
  uint32_t index = leaf;
  for (uint32_t level = depth_ + 1; level-- > 0;) {
    levels_[level][index] ^= h;
    index /= kMerkleFanout;
  }
}

void MerkleTree::Update(std::string_view key, uint64_t key_hash, uint64_t old_digest,
                        uint64_t new_digest) {
  if (old_digest == new_digest) return;
  const uint32_t leaf = MerkleLeafOf(key_hash, depth_);
  if (old_digest != 0) {
    Toggle(leaf, MerkleEntryHash(key, old_digest));
    --keys_;
  }
  if (new_digest != 0) {
    Toggle(leaf, MerkleEntryHash(key, new_digest));
    ++keys_;
  }
}

std::vector<uint32_t> MerkleChildren(const std::vector<uint32_t>& parents) {
  std::vector<uint32_t> out;
  out.reserve(parents.size() * kMerkleFanout);
  for (uint32_t p : parents) {
    for (uint32_t c = 0; c < kMerkleFanout; ++c) out.push_back(p * kMerkleFanout + c);
  }
  return out;
}

std::vector<uint32_t> MerkleDiffering(const MerkleTree& local, uint32_t level,
                                      const std::vector<uint32_t>& indices,
                                      const std::vector<uint64_t>& remote_hashes) {
  std::vector<uint32_t> out;
  for (size_t i = 0; i < indices.size(); ++i) {
    if (local.Node(level, indices[i]) != remote_hashes[i]) out.push_back(indices[i]);
  }
  return out;
}

std::vector<uint32_t> MerkleDiffLeaves(const MerkleTree& a, const MerkleTree& b) {
  std::vector<uint32_t> differing;
  if (a.root() != b.root()) differing.push_back(0);
  for (uint32_t level = 1; level <= a.depth() && !differing.empty(); ++level) {
    std::vector<uint32_t> children = MerkleChildren(differing);
    std::vector<uint64_t> remote;
    remote.reserve(children.size());
    for (uint32_t c : children) remote.push_back(b.Node(level, c));
    differing = MerkleDiffering(a, level, children, remote);
  }
  return differing;
}

}  // namespace itsuka::core
