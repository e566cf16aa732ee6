#include "core/ring.h"

#include <algorithm>

#include "common/hash.h"
#include "common/keyslot.h"

namespace itsuka::core {

uint64_t ClaimWeight(uint32_t partition, std::string_view member) {
  return Hash64(member, 0x9E3779B97F4A7C15ull ^ partition);
}

Status CheckPlacement(uint32_t partitions, Placement placement) {
  if (partitions == 0 || partitions > (1u << 20)) {
    return Status::InvalidArgument("ring partitions must be in [1, 1048576]");
  }
  if (placement == Placement::kSlots && kClusterSlots % partitions != 0) {
    return Status::InvalidArgument(
        "cluster.partitions = " + std::to_string(partitions) +
        " does not divide the 16384 hash slots; hash-slot placement (data format 2) needs a "
        "power of two from 1 to 16384");
  }
  if (placement != Placement::kHash && placement != Placement::kSlots) {
    return Status::InvalidArgument("unknown key placement " +
                                   std::to_string(static_cast<uint32_t>(placement)));
  }
  return Status::Ok();
}

uint32_t PartitionOfKey(std::string_view key, uint32_t partitions, Placement placement) {
  if (placement == Placement::kSlots) return KeySlot(key) / (kClusterSlots / partitions);
  return static_cast<uint32_t>((static_cast<unsigned __int128>(Hash64(key)) * partitions) >> 64);
}

Result<Ring> Ring::Create(uint32_t partitions, std::vector<std::string> members,
                          uint64_t version, Placement placement) {
  Status ok = CheckPlacement(partitions, placement);
  if (!ok.ok()) return ok;
  std::sort(members.begin(), members.end());
  members.erase(std::unique(members.begin(), members.end()), members.end());
  Ring r;
  r.version_ = version;
  r.placement_ = placement;
  r.members_ = std::move(members);
  r.owners_.assign(partitions, 0);
  if (r.members_.empty()) return r;
  for (uint32_t p = 0; p < partitions; ++p) {
    uint32_t best = 0;
    uint64_t best_w = ClaimWeight(p, r.members_[0]);
    for (uint32_t m = 1; m < r.members_.size(); ++m) {
      uint64_t w = ClaimWeight(p, r.members_[m]);
      if (w > best_w) {
        best = m;
        best_w = w;
      }
    }
    r.owners_[p] = best;
  }
  return r;
}

uint32_t Ring::PartitionOf(uint64_t key_hash) const {
  return static_cast<uint32_t>((static_cast<unsigned __int128>(key_hash) * owners_.size()) >> 64);
}

uint32_t Ring::PartitionOfKey(std::string_view key) const {
  return core::PartitionOfKey(key, partitions(), placement_);
}

uint32_t Ring::SlotsPerPartition() const { return kClusterSlots / partitions(); }

uint32_t Ring::PartitionOfSlot(uint32_t slot) const { return slot / SlotsPerPartition(); }

void Ring::CachePreferenceLists(size_t n) {
  cached_n_ = 0;
  cached_.clear();
  // Bounded: a few MiB at most (the default ring has 256 partitions); a larger ring
  // computes its lists per operation as before.
  constexpr size_t kMaxCachedPartitions = 16384;
  if (n == 0 || owners_.size() > kMaxCachedPartitions) return;
  std::vector<std::vector<std::string>> lists;
  lists.reserve(owners_.size());
  for (uint32_t p = 0; p < partitions(); ++p) lists.push_back(PreferenceList(p, n));
  cached_ = std::move(lists);
  cached_n_ = n;
}

std::vector<std::string> Ring::PreferenceList(uint32_t partition, size_t n) const {
  if (n == cached_n_ && partition < cached_.size()) return cached_[partition];
  std::vector<std::string> out;
  if (members_.empty()) return out;
  n = std::min(n, members_.size());
  std::vector<bool> taken(members_.size(), false);
  const uint32_t q = partitions();
  for (uint32_t i = 0; i < q && out.size() < n; ++i) {
    uint32_t owner = owners_[(partition + i) % q];
    if (!taken[owner]) {
      taken[owner] = true;
      out.push_back(members_[owner]);
    }
  }
  // With fewer partitions than members some members own nothing; they follow in order.
  for (uint32_t m = 0; m < members_.size() && out.size() < n; ++m) {
    if (!taken[m]) out.push_back(members_[m]);
  }
  return out;
}

std::vector<uint32_t> Ring::OwnedCounts() const {
  std::vector<uint32_t> counts(members_.size(), 0);
  if (members_.empty()) return counts;
  for (uint32_t o : owners_) ++counts[o];
  return counts;
}

std::vector<std::string> Ring::Fallbacks(uint32_t partition, size_t n) const {
  std::vector<std::string> all = PreferenceList(partition, members_.size());
  if (n >= all.size()) return {};
  return std::vector<std::string>(all.begin() + static_cast<std::ptrdiff_t>(n), all.end());
}

}  // namespace itsuka::core
