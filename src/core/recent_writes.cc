#include "core/recent_writes.h"

#include <utility>

namespace itsuka::core {

void RecentWrites::Record(const std::string& key, const Object& obj, int64_t now_ms,
                          uint64_t round) {
  if (options_.window_ms <= 0 || options_.max_keys == 0 || obj.empty()) return;
  Object kept = obj;
  auto it = entries_.find(key);
  if (it != entries_.end() && now_ms - it->second.at_ms > options_.window_ms) {
    // Outside the window (not swept yet): Get no longer returns it, so the write did not
    // build on it; merging it in would keep its versions past the window.
    Erase(it);
    it = entries_.end();
  }
  if (it != entries_.end()) {
    // Two writes of the key answered through this node (pipelined, through different
    // coordinators) may not have seen each other: keep both, unless that grows too big.
    Object both = Merge(it->second.object, obj);
    if (ApproxBytes(both) <= options_.max_entry_bytes) kept = std::move(both);
  }
  const size_t size = ApproxBytes(kept) + key.size();
  if (size > options_.max_entry_bytes) {
    ++stats_.too_big;
    return;  // an older entry stays: it is still true, only incomplete
  }
  if (it != entries_.end()) Erase(it);
  order_.push_back(key);
  entries_.emplace(key, Entry{std::move(kept), size, now_ms, round, std::prev(order_.end())});
  bytes_ += size;
  ++stats_.recorded;
  while (entries_.size() > options_.max_keys || bytes_ > options_.max_bytes) {
    Erase(entries_.find(order_.front()));
    ++stats_.evicted;
  }
}

Object RecentWrites::Get(const std::string& key, int64_t now_ms) const {
  auto it = entries_.find(key);
  if (it == entries_.end() || now_ms - it->second.at_ms > options_.window_ms) return Object();
  return it->second.object;
}

void RecentWrites::DropRound(uint64_t round) {
  for (auto it = entries_.begin(); it != entries_.end();) {
    auto next = std::next(it);
    if (it->second.round == round) {
      Erase(it);
      ++stats_.dropped;
    }
    it = next;
  }
}

void RecentWrites::Expire(int64_t now_ms) {
  // order_ is by recording, nearly by time (a write is stamped with its start): Get
  // checks the window itself, so the sweep may stop at the first entry inside it.
  while (!order_.empty()) {
    auto it = entries_.find(order_.front());
    if (now_ms - it->second.at_ms <= options_.window_ms) break;
    Erase(it);
  }
}

void RecentWrites::Erase(EntryIt it) {
  bytes_ -= it->second.bytes;
  order_.erase(it->second.order);
  entries_.erase(it);
}

}  // namespace itsuka::core
