#include "server/object_cache.h"

#include <algorithm>
#include <utility>

namespace itsuka::server {

ObjectCache::ObjectCache(size_t max_bytes) : max_bytes_(max_bytes) {
  map_.reserve(std::min<size_t>(max_bytes / 512, size_t{1} << 20));
}

const ObjectCache::Entry* ObjectCache::Find(std::string_view key) {
  auto it = map_.find(key);
  if (it == map_.end()) {
    ++misses_;
    return nullptr;
  }
  ++hits_;
  if (it->second != lru_.begin()) lru_.splice(lru_.begin(), lru_, it->second);
  return &*it->second;
}

void ObjectCache::Put(std::string_view key, core::Object obj, const IndexEntry& index) {
  if (max_bytes_ == 0) return;
  const size_t bytes = key.size() + core::ApproxBytes(obj) + kEntryOverhead;
  auto found = map_.find(key);
  if (bytes > max_bytes_ / 16) {
    if (found != map_.end()) EraseAt(found->second);
    return;
  }
  if (found != map_.end()) {
    Entry& e = *found->second;
    bytes_ = bytes_ - e.bytes + bytes;
    e.obj = std::move(obj);
    e.index = index;
    e.bytes = bytes;
    if (found->second != lru_.begin()) lru_.splice(lru_.begin(), lru_, found->second);
  } else {
    lru_.push_front(Entry{std::string(key), std::move(obj), index, bytes});
    map_.emplace(lru_.front().key, lru_.begin());
    bytes_ += bytes;
  }
  while (bytes_ > max_bytes_ && lru_.size() > 1) {
    EraseAt(std::prev(lru_.end()));
    ++evictions_;
  }
}

void ObjectCache::Erase(std::string_view key) {
  auto it = map_.find(key);
  if (it != map_.end()) EraseAt(it->second);
}

void ObjectCache::Clear() {
  map_.clear();
  lru_.clear();
  bytes_ = 0;
}

void ObjectCache::EraseAt(List::iterator it) {
  bytes_ -= it->bytes;
  map_.erase(std::string_view(it->key));
  lru_.erase(it);
}

}  // namespace itsuka::server
