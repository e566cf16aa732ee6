// The node's local store of versioned objects, with group commit.
//
// Writes are staged in memory and made durable together by Commit(), which the node
// calls once per event-loop iteration before it sends any reply. So every reply that
// acknowledges a write leaves the node only after the write is in RocksDB's log (and,
// in fsync durability, on disk), and N concurrent writes cost one log write.
// Reads see staged writes, so a pipelined GET after SET reads its own write.
//
// Thread-compatible: used from the event-loop thread only.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <unordered_map>

#include "core/node_core.h"
#include "core/object.h"
#include "itsuka/engine.h"
#include "itsuka/status.h"

namespace itsuka::server {

class Store : public core::LocalStore {
 public:
  Store(Engine& engine, bool sync) : engine_(engine), sync_(sync) {}

  // The key's object (empty if absent). kCorruption if the stored bytes do not decode.
  Result<core::Object> Read(std::string_view key) override;
  // Replaces the key's object at the next Commit.
  void Stage(std::string_view key, core::Object obj) override;
  // Scans the data column merged with what is staged (partition transfer).
  Result<ScanBatch> Scan(std::string_view start, size_t max_keys, size_t max_examined,
                         const std::function<bool(std::string_view)>& want) override;
  bool HasStaged() const { return !staged_.empty(); }
  // Writes everything staged in one atomic batch. On failure nothing staged was
  // applied and the staged writes are discarded.
  Status Commit();

  Engine& engine() { return engine_; }
  bool sync() const { return sync_; }
  uint64_t commits() const { return commits_; }
  uint64_t committed_keys() const { return committed_keys_; }
  uint64_t failed_commits() const { return failed_commits_; }

 private:
  Engine& engine_;
  const bool sync_;
  std::unordered_map<std::string, core::Object> staged_;
  uint64_t commits_ = 0;
  uint64_t committed_keys_ = 0;
  uint64_t failed_commits_ = 0;
};

}  // namespace itsuka::server
