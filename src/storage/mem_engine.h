// An in-memory Engine for unit tests and the simulator. Not durable; a "crash" in the
// simulator is modelled by keeping or discarding the engine object.
#pragma once

#include <array>
#include <map>

#include "itsuka/engine.h"

namespace itsuka::storage {

class MemEngine : public Engine {
 public:
  Status Get(Column column, std::string_view key, std::string* value) override;
  Status Write(const WriteBatch& batch, bool sync) override;
  std::unique_ptr<EngineIterator> NewIterator(Column column) override;
  EngineStats Stats() override;

 private:
  using Table = std::map<std::string, std::string, std::less<>>;
  std::array<Table, kNumColumns> tables_;
  uint64_t writes_ = 0;
  uint64_t synced_writes_ = 0;
};

}  // namespace itsuka::storage
