// The node's local store of versioned objects, with group commit.
//
// Writes are staged in memory and made durable together by Commit(), which the node
// calls once per event-loop iteration before it sends any reply. So every reply that
// acknowledges a write leaves the node only after the write is in RocksDB's log (and,
// in fsync durability, on disk), and N concurrent writes cost one log write.
// Reads see staged writes, so a pipelined GET after SET reads its own write.
//
// Anti-entropy (EnableMerkle): every commit also keeps, in the same atomic batch, an index
// in the meta column family -- (partition, leaf, key) -> digest, and the keys holding
// only tombstones -- and, once the batch is durable, updates the in-memory Merkle tree
// of the key's partition (core/merkle.h). The trees are not persisted: startup rebuilds
// them with one scan of the index (digests only, no object decoding). A staged empty
// object deletes the key (a purged tombstone).
//
// Corruption (README "Corruption and I/O errors"): a read whose checksum fails, or
// whose bytes do not decode, is logged (key's partition, RocksDB's message, which
// names the file), counted, and answered as if the key were absent; the broken copy
// is deleted with the next commit (and its anti-entropy digest with it, so repair
// sees the key as missing here and brings it back) and the key's partition becomes
// *suspect*: Authoritative() is false for its keys, so the core gives no votes from
// this copy, until ClearSuspect after a repair covered it. A write-ahead log
// recovered with loss makes every partition suspect (MarkAllSuspect). The suspect set
// is kept in the meta column ("corrupt/suspect") and reloaded by EnableMerkle.
//
// Object cache (server/object_cache.h): Read serves a key's committed object from a
// bounded in-memory cache when it holds it, so a replica's read-before-write usually
// needs no RocksDB lookup. Commit fills the cache with what it wrote once the batch is
// durable and drops the round's keys if the write failed; it never holds staged state.
// A cached key's stored bytes are not re-read (and so not re-checked) while it stays
// cached: the copy served is the one committed.
//
// Exact key counts (docs/DESIGN.md 4.17): with the Merkle trees on, the store keeps, per
// partition, the number of keys whose committed object holds a value sibling
// (core::HoldsValue; a value past its expiry counts until it is reclaimed). Commit
// moves the counts after the batch is durable; EnableMerkle rebuilds them from the
// index (reading the objects of the purge candidates only, the entries that do not say
// by themselves whether a value is held). INFO db0:keys and the DBSIZE peer answers
// (KeyCountReply) read them; ScanLeaves answers SCAN's ScanRequest from the index.
//
// Thread-compatible: used from the event-loop thread only.
#pragma once

#include <cstdint>
#include <set>
#include <string>
#include <string_view>
#include <memory>
#include <unordered_map>
#include <vector>

#include "core/merkle.h"
#include "core/node.h"
#include "core/node_core.h"
#include "core/repair.h"
#include "core/object.h"
#include "itsuka/engine.h"
#include "itsuka/status.h"
#include "server/hint_table.h"
#include "server/object_cache.h"

namespace itsuka::server {

class Store : public core::NodeStore {
 public:
  using IndexEntry = server::IndexEntry;
  static constexpr size_t kDefaultObjectCacheBytes = 32u << 20;
  // `object_cache_bytes` bounds the cache of committed objects (0: none).
  Store(Engine& engine, bool sync, size_t object_cache_bytes = kDefaultObjectCacheBytes)
      : engine_(engine), sync_(sync), cache_(object_cache_bytes) {}

  // The key's object (empty if absent): the staged one, else the cached committed one,
  // else the engine's. kCorruption if the stored bytes do not decode.
  Result<core::Object> Read(std::string_view key) override;
  // Replaces the key's object at the next Commit.
  void Stage(std::string_view key, core::Object obj) override;
  // Scans the data column merged with what is staged (partition transfer).
  Result<ScanBatch> Scan(std::string_view start, size_t max_keys, size_t max_examined,
                         const std::function<bool(std::string_view)>& want) override;
  bool HasStaged() const override {
    return !staged_.empty() || !staged_paxos_.empty() || (hints_ && hints_->HasStaged()) ||
           suspect_dirty_;
  }
  // Hints whose staged changes commit in the same batch as the data (not owned).
  void AttachHints(HintTable* hints) { hints_ = hints; }
  // Paxos acceptor state (meta column, "paxos/" + key), committed with the objects.
  Result<core::AcceptorState> ReadPaxos(std::string_view key) override;
  void StagePaxos(std::string_view key, core::AcceptorState state) override;
  // Scans the "paxos/" range of the meta column merged with what is staged (partition
  // transfer).
  Result<PaxosScanBatch> ScanPaxos(std::string_view start, std::string_view end, size_t max_keys,
                                   size_t max_examined,
                                   const std::function<bool(std::string_view)>& want) override;
  // Writes everything staged in one atomic batch. On failure nothing staged was
  // applied and the staged writes are discarded.
  Status Commit();

  Engine& engine() { return engine_; }
  bool sync() const { return sync_; }
  uint64_t commits() const { return commits_; }
  // Value bytes Read has returned so far (client memory accounting: the node charges a
  // client for what its request just read).
  uint64_t bytes_read() const { return bytes_read_; }
  uint64_t committed_keys() const { return committed_keys_; }
  uint64_t failed_commits() const { return failed_commits_; }
  const ObjectCache& object_cache() const { return cache_; }

  // Turns on the Merkle trees for a ring of `partitions`: builds the index if this
  // data directory has none yet (one scan of the data), then rebuilds the trees from it.
  // REQUIRES: nothing staged.
  // `placement` says which partition a key is in (the data format's, core/ring.h).
  Status EnableMerkle(uint32_t partitions, core::Placement placement = core::Placement::kSlots);
  bool merkle_enabled() const { return partitions_ != 0; }
  int64_t merkle_index_build_ms() const { return index_build_ms_; }
  int64_t merkle_rebuild_ms() const { return rebuild_ms_; }
  uint64_t merkle_keys() const;
  uint64_t purged_keys() const { return purged_keys_; }
  // Stored objects read back with siblings or clock entries that fail the object
  // checks (stored before the decoders refused them); each was salvaged and rewritten.
  uint64_t salvaged_objects() const { return salvaged_objects_; }

  // ---- Corruption ----
  // False for keys of suspect partitions (see the top of this file).
  bool Authoritative(std::string_view key) const override;
  // After a write-ahead log was recovered with loss: every partition is suspect, saved
  // at once. REQUIRES: merkle_enabled(), nothing staged.
  Status MarkAllSuspect();
  // A repair run covered these partitions: they are no longer suspect (saved with the
  // next commit).
  void ClearSuspect(const std::set<uint32_t>& repaired) override;
  const std::set<uint32_t>& suspect() const override { return suspect_; }
  uint64_t corruptions() const { return corruptions_; }
  // The engine replayed a corrupted write-ahead log up to the bad record (`what`).
  void NoteWalCorruption(std::string what) {
    ++wal_corruptions_;
    for (char& c : what) c = (c == '\r' || c == '\n') ? ' ' : c;  // an INFO field
    last_corruption_ = std::move(what);
  }
  uint64_t wal_corruptions() const { return wal_corruptions_; }
  const std::string& last_corruption() const { return last_corruption_; }
  uint32_t PartitionOfKey(std::string_view key) const;

  // ---- Keyspace (see the top of this file) ----
  // Keys holding a value, per partition (empty without Merkle trees), and their sum.
  const std::vector<uint64_t>& value_counts() const { return value_counts_; }
  uint64_t value_keys() const { return value_keys_; }
  // Leaves per partition of the anti-entropy trees (0 without them).
  uint32_t LeavesPerPartition() const;
  // Answers a ScanRequest from the committed index: the keys of `partition`'s leaves
  // [leaf_begin, leaf_end) whose object holds a value live at `now_wall_ms` and that
  // match `pattern` (empty: all), whole leaves only, stopping at a leaf boundary once
  // max_keys keys (capped at core::kScanMaxKeys) or core::kScanMaxExamined entries
  // were taken. A bad range is answered with ok = false.
  core::ScanReply ScanLeaves(const core::ScanRequest& req, int64_t now_wall_ms);

  // core::MerkleSource
  uint32_t MerkleDepth() const override { return depth_; }
  uint32_t Partitions() const override { return partitions_; }
  const core::MerkleTree* Tree(uint32_t partition) const override;
  Result<std::vector<core::DigestEntry>> ListLeaf(uint32_t partition, uint32_t leaf,
                                                  std::string_view after_key, size_t max,
                                                  bool* more) override;
  Result<std::vector<Tombstone>> ListTombstones(uint32_t partition, std::string_view after_key,
                                                size_t max, bool* more) override;

 private:
  Engine& engine_;
  const bool sync_;
  std::unordered_map<std::string, core::Object> staged_;
  HintTable* hints_ = nullptr;
  std::unordered_map<std::string, core::AcceptorState> staged_paxos_;
  uint64_t commits_ = 0;
  uint64_t bytes_read_ = 0;
  uint64_t committed_keys_ = 0;
  uint64_t failed_commits_ = 0;
  uint32_t partitions_ = 0;  // 0: no Merkle trees
  core::Placement placement_ = core::Placement::kSlots;
  uint32_t depth_ = 0;
  std::vector<std::unique_ptr<core::MerkleTree>> trees_;
  // What the index holds for the key this store last read from the engine. NodeCore
  // reads a key just before it stages it, so Stage can usually take the key's previous
  // index entry from here instead of Commit reading it back (a RocksDB lookup per write).
  std::string last_read_key_;
  IndexEntry last_read_;
  bool last_read_valid_ = false;
  std::unordered_map<std::string, IndexEntry> staged_base_;  // key -> entry before this round
  ObjectCache cache_;  // committed objects (see object_cache.h)
  int64_t index_build_ms_ = 0;
  int64_t rebuild_ms_ = 0;
  uint64_t purged_keys_ = 0;
  uint64_t salvaged_objects_ = 0;

  // Counts and logs a corrupted stored entry of `key` (`what` says which) and makes its
  // partition suspect.
  void OnCorruption(std::string_view key, const char* what, const Status& st);
  // Commit's lookup of the index entry `key` had before this round (staged_base_, else
  // the engine; a corrupted entry counts as none and makes the partition suspect).
  Status PreviousIndexEntry(const std::string& key, uint32_t p, uint32_t leaf,
                            IndexEntry* out);
  // EnableMerkle's steps: drop the anti-entropy index and index every key again (then
  // record `format`); build the trees from the index; load the suspect partitions.
  Status RebuildIndex(const std::string& format);
  // Drops the staged keys from the object cache (after a failed commit).
  void DropFromCache();
  Status LoadTrees();
  Status LoadSuspect();
  std::set<uint32_t> suspect_;
  bool suspect_dirty_ = false;  // suspect_ changed since it was last saved
  uint64_t corruptions_ = 0;
  uint64_t wal_corruptions_ = 0;
  std::string last_corruption_;
  std::vector<uint64_t> value_counts_;  // per partition (see the top of this file)
  uint64_t value_keys_ = 0;
  // Whether the committed object behind index entry `v` of `key` holds a value: the
  // entry says so unless it is a purge candidate, whose object is read.
  bool CommittedHasValue(std::string_view key, const IndexEntry& v);
};

}  // namespace itsuka::server
