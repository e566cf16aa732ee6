// The RocksDB Engine: one database per node with column families "default" (data),
// "hints" and "meta". Open() creates what is missing. Closing (destruction) flushes
// nothing extra: the write-ahead log already holds every acknowledged write.
//
// Thread-safety: as RocksDB (safe from several threads), though nodes use it from one.
#pragma once

#include <memory>
#include <string>

#include "itsuka/engine.h"

namespace itsuka::storage {

struct RocksOptions {
  std::string path;
  size_t block_cache_mb = 64;
  size_t write_buffer_mb = 64;
};

// Opens (creating if needed) the database at options.path.
Result<std::unique_ptr<Engine>> OpenRocksEngine(const RocksOptions& options);

}  // namespace itsuka::storage
