// A bounded cache of recently committed objects, so that a replica's merge of a write
// (read the key's object, merge, stage) needs no RocksDB point lookup for a hot key.
//
// Contract: the cache holds only what the store has committed (or read back from the
// engine, which holds only committed state); the Store fills it after a successful
// commit and drops the round's keys after a failed one, so a reader never sees through
// it a state that was not committed. An entry may be the key's absence (an empty
// object), which spares the lookup of a first write. Each entry also keeps the key's
// anti-entropy index entry (its digest and tombstone facts), which a commit needs as
// the key's previous entry.
//
// Bounded by bytes: each entry is charged its key, its object's approximate size
// (core::ApproxBytes) and a fixed overhead; past max_bytes the least recently used
// entries are evicted. An object over a sixteenth of max_bytes is not cached (it would
// evict too much). max_bytes 0 turns the cache off (every Find misses).
//
// Thread-compatible (the event loop's thread only).
#pragma once

#include <cstdint>
#include <list>
#include <string>
#include <string_view>
#include <unordered_map>

#include "core/object.h"

namespace itsuka::server {

// An anti-entropy index entry: the digest of a key's object and its tombstone facts.
struct IndexEntry {
  uint64_t digest = 0;
  bool tombstone_only = false;  // tombstones and expiring values only (core::PurgeCandidate)
  int64_t newest_ms = 0;
  // Whether the object holds a value sibling (core::HoldsValue): the exact key count's
  // fact. In memory only (the stored index entry has no such field; Store resolves it).
  bool has_value = false;
};

class ObjectCache {
 public:
  struct Entry {
    std::string key;
    core::Object obj;  // empty: the key is absent
    IndexEntry index;
    size_t bytes = 0;  // what the entry is charged
  };
  // Per-entry bookkeeping charged on top of key and object (list node, hash slot,
  // strings' headers): an estimate, so the bound tracks real memory for small objects.
  static constexpr size_t kEntryOverhead = 160;

  // Reserves hash buckets for the entries of small objects that fit (growing the table
  // entry by entry rehashed it over and over on a fresh node's write path).
  explicit ObjectCache(size_t max_bytes);
  ObjectCache(const ObjectCache&) = delete;
  ObjectCache& operator=(const ObjectCache&) = delete;

  // The key's entry, made the most recently used; nullptr if not cached. Counts a hit
  // or a miss.
  const Entry* Find(std::string_view key);
  // Caches (key, obj) in place of what was cached for it, then evicts down to the bound.
  // An object too large to cache only drops the key's old entry.
  void Put(std::string_view key, core::Object obj, const IndexEntry& index);
  void Erase(std::string_view key);
  void Clear();

  size_t max_bytes() const { return max_bytes_; }
  size_t bytes() const { return bytes_; }
  size_t entries() const { return map_.size(); }
  uint64_t hits() const { return hits_; }
  uint64_t misses() const { return misses_; }
  uint64_t evictions() const { return evictions_; }

 private:
  using List = std::list<Entry>;
  void EraseAt(List::iterator it);

  const size_t max_bytes_;
  List lru_;  // most recently used first
  // Keys view the entries' own key strings (list nodes never move).
  std::unordered_map<std::string_view, List::iterator> map_;
  size_t bytes_ = 0;
  uint64_t hits_ = 0;
  uint64_t misses_ = 0;
  uint64_t evictions_ = 0;
};

}  // namespace itsuka::server
