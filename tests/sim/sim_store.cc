#include "sim_store.h"

#include "common/hash.h"
#include "core/ring.h"

namespace itsuka::core::sim {
namespace {

// Up to `max` entries of `sorted` after `after` (from the start if empty).
template <typename Map, typename Out, typename Fn>
std::vector<Out> ListAfter(const Map& sorted, std::string_view after, size_t max, bool* more,
                           Fn make) {
  *more = false;
  std::vector<Out> out;
  auto it = after.empty() ? sorted.begin() : sorted.upper_bound(std::string(after));
  for (; it != sorted.end(); ++it) {
    if (out.size() >= max) {
      *more = true;
      break;
    }
    out.push_back(make(*it));
  }
  return out;
}

// The staged entries of `staged` over the durable ones: what a reader sees.
template <typename T>
std::map<std::string, T> Overlay(const std::map<std::string, T>& durable,
                                 const std::map<std::string, T>& staged) {
  std::map<std::string, T> all = durable;
  for (const auto& [k, v] : staged) all[k] = v;
  return all;
}

}  // namespace

Result<Object> SimStore::Read(std::string_view key) {
  auto s = staged_.find(std::string(key));
  if (s != staged_.end()) return s->second;
  return Durable(std::string(key));
}

void SimStore::Stage(std::string_view key, Object obj) { staged_[std::string(key)] = std::move(obj); }

Result<AcceptorState> SimStore::ReadPaxos(std::string_view key) {
  auto s = staged_paxos_.find(std::string(key));
  if (s != staged_paxos_.end()) return s->second;
  auto d = durable_paxos_.find(std::string(key));
  return d == durable_paxos_.end() ? AcceptorState() : d->second;
}

void SimStore::StagePaxos(std::string_view key, AcceptorState st) {
  staged_paxos_[std::string(key)] = std::move(st);
}

Result<LocalStore::ScanBatch> SimStore::Scan(std::string_view start, size_t max_keys,
                                             size_t max_examined,
                                             const std::function<bool(std::string_view)>& want) {
  const std::map<std::string, Object> all = Overlay(durable_, staged_);
  ScanBatch b;
  size_t examined = 0;
  auto it = all.lower_bound(std::string(start));
  for (; it != all.end(); ++it) {
    if (b.objects.size() >= max_keys || examined >= max_examined) break;
    ++examined;
    if (want(it->first)) b.objects.emplace_back(it->first, it->second);
  }
  b.done = it == all.end();
  if (!b.done) b.next = it->first;
  return b;
}

Result<LocalStore::PaxosScanBatch> SimStore::ScanPaxos(
    std::string_view start, std::string_view end, size_t max_keys, size_t max_examined,
    const std::function<bool(std::string_view)>& want) {
  const std::map<std::string, AcceptorState> all = Overlay(durable_paxos_, staged_paxos_);
  PaxosScanBatch b;
  size_t examined = 0;
  auto it = all.lower_bound(std::string(start));
  for (; it != all.end() && (end.empty() || it->first < end); ++it) {
    if (b.states.size() >= max_keys || examined >= max_examined) break;
    ++examined;
    if (want(it->first)) b.states.emplace_back(it->first, it->second);
  }
  b.done = it == all.end() || (!end.empty() && it->first >= end);
  if (!b.done) b.next = it->first;
  return b;
}

void SimStore::Commit() {
  for (auto& [k, v] : staged_) {
    if (merkle_) {
      CommitIndexed(k, std::move(v));
    } else {
      durable_[k] = std::move(v);
    }
  }
  for (auto& [k, v] : staged_paxos_) durable_paxos_[k] = std::move(v);
  staged_.clear();
  staged_paxos_.clear();
}

void SimStore::CommitIndexed(const std::string& key, Object obj) {
  const uint64_t h = Hash64(key);
  // The placement of the nodes' rings (NodeConfig's default: hash slots, format 2).
  const uint32_t p = PartitionOfKey(key, partitions_, Placement::kSlots);
  const uint32_t leaf = MerkleLeafOf(h, depth_);
  auto old = durable_.find(key);
  const uint64_t old_d = old == durable_.end() ? 0 : ObjectDigest(old->second);
  const uint64_t new_d = ObjectDigest(obj);
  auto [t, inserted] = trees_.try_emplace(p, depth_);
  t->second.Update(key, h, old_d, new_d);
  if (obj.empty()) {
    durable_.erase(key);
    index_[p][leaf].erase(key);
  } else {
    index_[p][leaf][key] = new_d;
    durable_[key] = std::move(obj);
  }
}

void SimStore::Crash() {
  staged_.clear();
  staged_paxos_.clear();
}

Object SimStore::Durable(const std::string& key) const {
  auto d = durable_.find(key);
  return d == durable_.end() ? Object() : d->second;
}

const MerkleTree* SimStore::Tree(uint32_t p) const {
  auto it = trees_.find(p);
  return it == trees_.end() ? nullptr : &it->second;
}

Result<std::vector<DigestEntry>> SimStore::ListLeaf(uint32_t p, uint32_t leaf,
                                                    std::string_view after, size_t max,
                                                    bool* more) {
  return ListAfter<std::map<std::string, uint64_t>, DigestEntry>(
      index_[p][leaf], after, max, more,
      [](const auto& e) { return DigestEntry{e.first, e.second}; });
}

Result<std::vector<MerkleSource::Tombstone>> SimStore::ListTombstones(uint32_t p, std::string_view after,
                                                        size_t max, bool* more) {
  std::map<std::string, Tombstone> all;  // in key order, as the real store lists them
  for (const auto& [leaf, keys] : index_[p]) {
    for (const auto& [k, d] : keys) {
      int64_t at = 0;
      if (PurgeCandidate(durable_.at(k), &at)) all[k] = Tombstone{k, d, at};
    }
  }
  return ListAfter<std::map<std::string, Tombstone>, Tombstone>(
      all, after, max, more, [](const auto& e) { return e.second; });
}

}  // namespace itsuka::core::sim
