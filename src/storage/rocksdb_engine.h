// The RocksDB Engine: one database per node with column families "default" (data),
// "hints" and "meta". Open() creates what is missing. Closing (destruction) flushes
// nothing extra: the write-ahead log already holds every acknowledged write.
//
// Corruption is never passed over in silence:
//  - Recovery replays the write-ahead log with WALRecoveryMode::kTolerateCorruptedTailRecords:
//    an incomplete record at the end of a log (what a crash mid-write leaves) is dropped,
//    but a bad record anywhere else fails Open with kCorruption naming the log file(s).
//    Only with allow_wal_corruption does Open then retry with point-in-time recovery
//    (replay up to the first bad record, drop the rest) and report it in RocksOpenInfo;
//    the caller must treat such a database as having lost writes.
//  - Reads verify block checksums; a mismatch is returned as kCorruption (whose
//    message names the SST file when RocksDB knows it), never as "not found".
//  - A full disk: Write refuses while free space is under min_free_bytes (checked
//    with statvfs at most every 100 ms, or sooner after much was written; compactions
//    likewise wait for room for their output beyond it), and after
//    any failed write RocksDB refuses further ones until resumed: the next Write first
//    calls DB::Resume (at most once a second). Either way writes work again once
//    space returns.
//
// Thread-safety: as RocksDB (safe from several threads), though nodes use it from one.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "itsuka/engine.h"

namespace itsuka::storage {

struct RocksOptions {
  std::string path;
  size_t block_cache_mb = 64;
  size_t write_buffer_mb = 64;
  // Start even if the write-ahead log is corrupted before its tail, with what is
  // readable up to the first bad record (an operator's explicit choice).
  bool allow_wal_corruption = false;
  // Writes are refused (kIOError, nothing applied) while the file system holding the
  // database has less free space than this, so RocksDB itself never runs out: its
  // file writers do not recover from ENOSPC in the middle of a record or a flush (the
  // Debian build even asserts). 0: no check.
  uint64_t min_free_bytes = 0;
};

// What Open had to do to recover.
struct RocksOpenInfo {
  bool wal_corruption_tolerated = false;  // allow_wal_corruption was needed
  std::string wal_error;                  // the corruption the strict recovery reported
};

// Opens (creating if needed) the database at options.path. `info` (may be null)
// receives what recovery did.
Result<std::unique_ptr<Engine>> OpenRocksEngine(const RocksOptions& options,
                                                RocksOpenInfo* info = nullptr);
// The write-ahead log files (*.log) in a database directory, by name.
std::vector<std::string> ListWalFiles(const std::string& path);

}  // namespace itsuka::storage
