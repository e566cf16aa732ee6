#include "storage/rocksdb_engine.h"

#include <rocksdb/cache.h>
#include <rocksdb/utilities/checkpoint.h>
#include <rocksdb/db.h>
#include <rocksdb/filter_policy.h>
#include <rocksdb/perf_level.h>
#include <rocksdb/sst_file_manager.h>
#include <rocksdb/table.h>
#include <rocksdb/write_batch.h>

#include <algorithm>
#include <sys/statvfs.h>

#include <array>
#include <chrono>
#include <filesystem>

namespace itsuka::storage {
namespace {

// Indexed by Column; "default" is RocksDB's own name for the first column family.
const char* const kColumnNames[kNumColumns] = {"default", "hints", "meta", "elements"};

Status FromRocks(const rocksdb::Status& s) {
  if (s.ok()) return Status::Ok();
  if (s.IsNotFound()) return Status::NotFound("");
  if (s.IsCorruption()) return Status::Corruption("rocksdb: " + s.ToString());
  return Status::IOError("rocksdb: " + s.ToString());
}

rocksdb::Slice ToSlice(std::string_view s) { return rocksdb::Slice(s.data(), s.size()); }

class RocksIterator : public EngineIterator {
 public:
  explicit RocksIterator(std::unique_ptr<rocksdb::Iterator> it) : it_(std::move(it)) {
    it_->SeekToFirst();
  }
  void Seek(std::string_view key) override { it_->Seek(ToSlice(key)); }
  bool Valid() const override { return it_->Valid(); }
  void Next() override { it_->Next(); }
  std::string_view key() const override { return it_->key().ToStringView(); }
  std::string_view value() const override { return it_->value().ToStringView(); }
  Status status() const override { return FromRocks(it_->status()); }

 private:
  std::unique_ptr<rocksdb::Iterator> it_;
};

class RocksEngine : public Engine {
 public:
  RocksEngine(std::unique_ptr<rocksdb::DB> db, std::vector<rocksdb::ColumnFamilyHandle*> cfs,
              std::string path, uint64_t min_free_bytes)
      : db_(std::move(db)), path_(std::move(path)), min_free_bytes_(min_free_bytes),
        cfs_(std::move(cfs)) {}

  ~RocksEngine() override {
    for (rocksdb::ColumnFamilyHandle* cf : cfs_) db_->DestroyColumnFamilyHandle(cf);
    rocksdb::Status s = db_->Close();
    (void)s;  // the WAL holds every acknowledged write whatever Close reports
  }

  Status Get(Column column, std::string_view key, std::string* value) override {
    return FromRocks(db_->Get(rocksdb::ReadOptions(), cf(column), ToSlice(key), value));
  }

  Status Write(const WriteBatch& batch, bool sync) override {
    Status room = CheckFreeSpace(batch);
    if (!room.ok()) return room;
    if (failed_) {
      // RocksDB stopped taking writes after an I/O error (say, a full disk): try to
      // resume, at most once a second, so writes come back once space does.
      const int64_t now = NowMs();
      if (now - last_resume_ms_ < 1000) return FromRocks(last_error_);
      last_resume_ms_ = now;
      rocksdb::Status r = db_->Resume();
      if (!r.ok()) {
        last_error_ = r;
        return FromRocks(r);
      }
      failed_ = false;
    }
    rocksdb::WriteBatch wb;
    for (const WriteBatch::Op& op : batch.ops()) {
      rocksdb::Status s = op.is_delete ? wb.Delete(cf(op.column), ToSlice(op.key))
                                       : wb.Put(cf(op.column), ToSlice(op.key), ToSlice(op.value));
      if (!s.ok()) return FromRocks(s);
    }
    rocksdb::WriteOptions wo;
    wo.sync = sync;
    rocksdb::Status rs = db_->Write(wo, &wb);
    if (rs.ok()) {
      ++writes_;
      if (sync) ++synced_writes_;
    } else if (!rs.IsCorruption() && !rs.IsInvalidArgument()) {
      failed_ = true;
      last_error_ = rs;
      last_resume_ms_ = NowMs();
    }
    return FromRocks(rs);
  }

  std::unique_ptr<EngineIterator> NewIterator(Column column) override {
    return std::make_unique<RocksIterator>(
        std::unique_ptr<rocksdb::Iterator>(db_->NewIterator(rocksdb::ReadOptions(), cf(column))));
  }

  EngineStats Stats() override {
    EngineStats s;
    db_->GetIntProperty(cf(Column::kData), "rocksdb.estimate-num-keys", &s.estimated_keys);
    db_->GetIntProperty(cf(Column::kData), "rocksdb.estimate-live-data-size", &s.live_data_bytes);
    s.writes = writes_;
    s.synced_writes = synced_writes_;
    db_->GetAggregatedIntProperty("rocksdb.cur-size-all-mem-tables", &s.memtable_bytes);
    // One block cache is shared by every column family: read it once.
    db_->GetIntProperty(cf(Column::kData), "rocksdb.block-cache-usage", &s.block_cache_bytes);
    db_->GetAggregatedIntProperty("rocksdb.estimate-pending-compaction-bytes",
                                  &s.pending_compaction_bytes);
    db_->GetAggregatedIntProperty("rocksdb.total-sst-files-size", &s.sst_files_bytes);
    db_->GetIntProperty("rocksdb.actual-delayed-write-rate", &s.delayed_write_rate);
    db_->GetIntProperty("rocksdb.is-write-stopped", &s.write_stopped);
    return s;
  }

  Status Checkpoint(const std::string& dir) override {
    rocksdb::Checkpoint* raw = nullptr;
    rocksdb::Status s = rocksdb::Checkpoint::Create(db_.get(), &raw);
    if (!s.ok()) return FromRocks(s);
    std::unique_ptr<rocksdb::Checkpoint> checkpoint(raw);
    // No memtable flush (log_size_for_flush = max): the live WAL is copied instead, so
    // the call does not wait for a flush; opening the copy replays it.
    return FromRocks(checkpoint->CreateCheckpoint(dir, UINT64_MAX));
  }

 private:
  rocksdb::ColumnFamilyHandle* cf(Column c) const { return cfs_[static_cast<int>(c)]; }
  Status CheckFreeSpace(const WriteBatch& batch) {
    if (min_free_bytes_ == 0) return Status::Ok();
    uint64_t bytes = 0;
    for (const WriteBatch::Op& op : batch.ops()) bytes += op.key.size() + op.value.size() + 16;
    written_since_check_ += bytes;
    const int64_t now = NowMs();
    if (now - free_checked_ms_ >= 100 || written_since_check_ >= min_free_bytes_ / 8 ||
        free_bytes_ < min_free_bytes_) {
      struct statvfs vfs;
      if (::statvfs(path_.c_str(), &vfs) == 0) {
        free_bytes_ = static_cast<uint64_t>(vfs.f_bavail) * vfs.f_frsize;
      }
      free_checked_ms_ = now;
      written_since_check_ = bytes;
    }
    if (free_bytes_ >= min_free_bytes_ + bytes) return Status::Ok();
    return Status::IOError("no space left on device: " + std::to_string(free_bytes_ >> 20) +
                           " MiB free for '" + path_ + "', storage.min_free_mb is " +
                           std::to_string(min_free_bytes_ >> 20));
  }
  static int64_t NowMs() {
    return std::chrono::duration_cast<std::chrono::milliseconds>(
               std::chrono::steady_clock::now().time_since_epoch())
        .count();
  }

  std::unique_ptr<rocksdb::DB> db_;
  std::string path_;
  uint64_t min_free_bytes_ = 0;
  uint64_t free_bytes_ = UINT64_MAX;  // as of free_checked_ms_
  int64_t free_checked_ms_ = INT64_MIN / 2;
  uint64_t written_since_check_ = 0;
  bool failed_ = false;  // the last write failed with an I/O error
  rocksdb::Status last_error_;
  int64_t last_resume_ms_ = 0;
  std::vector<rocksdb::ColumnFamilyHandle*> cfs_;
  uint64_t writes_ = 0;
  uint64_t synced_writes_ = 0;
};

}  // namespace

std::vector<std::string> ListWalFiles(const std::string& path) {
  std::vector<std::string> out;
  std::error_code ec;
  for (const auto& e : std::filesystem::directory_iterator(path, ec)) {
    if (e.path().extension() == ".log") out.push_back(e.path().string());
  }
  std::sort(out.begin(), out.end());
  return out;
}

Result<std::unique_ptr<Engine>> OpenRocksEngine(const RocksOptions& options,
                                                RocksOpenInfo* info) {
  rocksdb::Options db_options;
  // Crash leftovers (an incomplete last record) are dropped; a bad record before the
  // tail is corruption, which fails Open instead of silently dropping every write
  // after it (RocksDB's default, kPointInTimeRecovery).
  db_options.wal_recovery_mode = rocksdb::WALRecoveryMode::kTolerateCorruptedTailRecords;
  db_options.paranoid_checks = true;
  if (options.min_free_bytes > 0) {
    // Compactions are not started without room for their output plus the reserve
    // (their file writers, too, would meet ENOSPC mid-file).
    std::shared_ptr<rocksdb::SstFileManager> sfm(rocksdb::NewSstFileManager(rocksdb::Env::Default()));
    sfm->SetCompactionBufferSize(options.min_free_bytes);
    db_options.sst_file_manager = std::move(sfm);
  }
  db_options.create_if_missing = true;
  db_options.create_missing_column_families = true;
  db_options.IncreaseParallelism(2);
  db_options.max_open_files = 512;
  // The per-operation perf counters (thread-local, ~5% of a node's CPU under SET through
  // __tls_get_addr) are read by nothing here. The level is per thread: the thread that
  // opens the engine is the one that uses it (the event loop's).
  rocksdb::SetPerfLevel(rocksdb::PerfLevel::kDisable);

  rocksdb::BlockBasedTableOptions table;
  table.block_cache = rocksdb::NewLRUCache(options.block_cache_mb << 20);
  table.filter_policy.reset(rocksdb::NewBloomFilterPolicy(10));
  rocksdb::ColumnFamilyOptions cf_options;
  cf_options.write_buffer_size = options.write_buffer_mb << 20;
  // A bloom filter over the memtable's whole keys: a point lookup of a key the memtable
  // does not hold (a first write, a key flushed to an SST) skips the skip-list search,
  // which was the largest item of a replica's read-before-write.
  cf_options.memtable_whole_key_filtering = true;
  cf_options.memtable_prefix_bloom_size_ratio = 0.05;
  cf_options.table_factory.reset(rocksdb::NewBlockBasedTableFactory(table));

  std::vector<rocksdb::ColumnFamilyDescriptor> descriptors;
  for (const char* name : kColumnNames) descriptors.emplace_back(name, cf_options);
  std::vector<rocksdb::ColumnFamilyHandle*> handles;
  rocksdb::DB* raw = nullptr;
  rocksdb::Status s = rocksdb::DB::Open(rocksdb::DBOptions(db_options), options.path, descriptors,
                                        &handles, &raw);
  if (s.IsCorruption()) {
    std::string files;
    for (const std::string& f : ListWalFiles(options.path)) files += (files.empty() ? "" : ", ") + f;
    const std::string what = "corrupted data in '" + options.path + "' (write-ahead log " +
                             (files.empty() ? std::string("files: none found") : files) +
                             "): " + s.ToString();
    if (!options.allow_wal_corruption) {
      return Status::Corruption(
          what + ". Refusing to start: starting would silently drop every write after the bad "
                 "record. To start with what is readable, set storage.allow_wal_corruption = 1 "
                 "(for one start: --set storage.allow_wal_corruption=1); the node then counts "
                 "itself not authoritative until a repair has run.");
    }
    if (info) {
      info->wal_corruption_tolerated = true;
      info->wal_error = what;
    }
    db_options.wal_recovery_mode = rocksdb::WALRecoveryMode::kPointInTimeRecovery;
    handles.clear();
    s = rocksdb::DB::Open(rocksdb::DBOptions(db_options), options.path, descriptors, &handles,
                          &raw);
  }
  if (!s.ok()) {
    return Status::IOError("cannot open RocksDB at '" + options.path + "': " + s.ToString());
  }
  return std::unique_ptr<Engine>(
      std::make_unique<RocksEngine>(std::unique_ptr<rocksdb::DB>(raw), std::move(handles),
                                    options.path, options.min_free_bytes));
}

}  // namespace itsuka::storage
