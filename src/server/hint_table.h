// Hints kept in an Engine's `hints` column family (core::HintStore for the shell and
// the simulator).
//
// Layout: key = 2-byte big-endian target length, target, user key (so one target's
// hints are one contiguous, key-ordered range); value = 8-byte big-endian wall-clock
// ms of the last merge, then the encoded object. Changes are staged and written by
// the Store's group commit in the same batch as the data they belong to, so a hint a
// substitute acknowledged is as durable as a replica's copy. Per-target usage (keys,
// bytes of key + value) is rebuilt by Load() at startup and kept up to date after.
//
// Thread-compatible: used from the event-loop thread only.
#pragma once

#include <functional>
#include <map>
#include <optional>
#include <string>

#include "core/hints.h"
#include "itsuka/engine.h"

namespace itsuka::server {

class HintTable : public core::HintStore {
 public:
  // `wall_ms` stamps hints (ms since the epoch).
  HintTable(Engine& engine, core::HintLimits limits, std::function<int64_t()> wall_ms)
      : engine_(engine), ledger_(limits), wall_ms_(std::move(wall_ms)) {}

  // Rebuilds the per-target usage from the engine; entries that do not decode are
  // counted in corrupt() and left alone.
  Status Load();

  // core::HintStore
  Status Add(const std::string& target, std::string_view key, const core::Object& obj) override;
  Result<std::optional<core::Hint>> Get(const std::string& target, std::string_view key) override;
  void Remove(const std::string& target, std::string_view key) override;
  Result<std::vector<core::Hint>> Scan(const std::string& target, std::string_view start,
                                       size_t limit) override;
  std::map<std::string, core::HintUsage> Usage() const override { return ledger_.usage(); }

  // Group commit: the staged changes, then whether the batch was written. On failure
  // the staged changes are discarded and the usage is reloaded.
  bool HasStaged() const { return !staged_.empty(); }
  void AppendStaged(WriteBatch* batch) const;
  void Committed(bool ok);
  // A crash (simulator): staged changes are lost.
  void DiscardStaged();

  uint64_t corrupt() const { return corrupt_; }

  // Exposed for tests.
  static std::string EncodeKey(const std::string& target, std::string_view key);

 private:
  // The raw stored value of an entry (staged first), or nullopt.
  Result<std::optional<std::string>> RawGet(const std::string& row);

  Engine& engine_;
  core::HintLedger ledger_;
  std::function<int64_t()> wall_ms_;
  std::map<std::string, std::optional<std::string>> staged_;  // row -> value (nullopt: delete)
  uint64_t corrupt_ = 0;
};

}  // namespace itsuka::server
