// The storage engine interface: ordered key-value column families with atomic batches.
//
// Implementations: RocksDB (src/storage/rocksdb_engine.h) for nodes, and an in-memory
// engine (src/storage/mem_engine.h) for tests and the simulator. Engines are used
// from one thread at a time (the node's event loop) unless stated otherwise.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "itsuka/status.h"

namespace itsuka {

// Column families. kData holds versioned objects by user key; kHints holds writes
// kept for an unreachable replica; kMeta holds node identity and bookkeeping;
// kElements (data format 2, docs/DESIGN.md 4.12) will hold the elements of collection
// values (hash fields, set members, list cells, counter shards), one entry each. It is
// created empty now so that the data model needs no second format change.
enum class Column { kData = 0, kHints = 1, kMeta = 2, kElements = 3 };
inline constexpr int kNumColumns = 4;

// A set of puts and deletes applied atomically by Engine::Write.
class WriteBatch {
 public:
  struct Op {
    Column column;
    bool is_delete;
    std::string key;
    std::string value;
  };
  void Put(Column column, std::string_view key, std::string_view value) {
    ops_.push_back(Op{column, false, std::string(key), std::string(value)});
  }
  void Delete(Column column, std::string_view key) {
    ops_.push_back(Op{column, true, std::string(key), {}});
  }
  bool empty() const { return ops_.empty(); }
  size_t size() const { return ops_.size(); }
  void Clear() { ops_.clear(); }
  const std::vector<Op>& ops() const { return ops_; }

 private:
  std::vector<Op> ops_;
};

// Iterates one column in key order over a consistent snapshot.
class EngineIterator {
 public:
  virtual ~EngineIterator() = default;
  virtual void Seek(std::string_view key) = 0;
  virtual bool Valid() const = 0;
  virtual void Next() = 0;
  virtual std::string_view key() const = 0;
  virtual std::string_view value() const = 0;
  virtual Status status() const = 0;
};

struct EngineStats {
  uint64_t estimated_keys = 0;        // in kData
  uint64_t live_data_bytes = 0;       // estimate
  uint64_t writes = 0;                // Write() calls that succeeded
  uint64_t synced_writes = 0;         // of which fsynced
  // RocksDB's own figures, over every column family (0 where the engine has none).
  uint64_t memtable_bytes = 0;               // rocksdb.cur-size-all-mem-tables
  uint64_t block_cache_bytes = 0;            // rocksdb.block-cache-usage
  uint64_t pending_compaction_bytes = 0;     // rocksdb.estimate-pending-compaction-bytes
  uint64_t sst_files_bytes = 0;              // rocksdb.total-sst-files-size
  uint64_t delayed_write_rate = 0;           // rocksdb.actual-delayed-write-rate (0: no stall)
  uint64_t write_stopped = 0;                // rocksdb.is-write-stopped (1: writes stopped)
};

class Engine {
 public:
  virtual ~Engine() = default;

  // NotFound if absent.
  virtual Status Get(Column column, std::string_view key, std::string* value) = 0;
  // Applies the batch atomically. When it returns OK the batch survives a crash of
  // the process (and, with sync, of the machine).
  virtual Status Write(const WriteBatch& batch, bool sync) = 0;
  virtual std::unique_ptr<EngineIterator> NewIterator(Column column) = 0;
  virtual EngineStats Stats() = 0;
  // Writes a consistent copy of every column family, as of now, into directory `dir`
  // (which must not exist; its parent must). The RocksDB engine makes a checkpoint:
  // hard links to its SST files (on the same file system) and copies of the rest, the
  // live WAL included (tens of MiB with a full memtable), and may be called on another
  // thread while the engine is in use (RocksDB is thread-safe; server/ops_commands.cc).
  // InvalidArgument for engines that keep nothing on disk.
  virtual Status Checkpoint(const std::string& dir) {
    return Status::InvalidArgument("this storage engine cannot make a checkpoint");
  }
};

}  // namespace itsuka
