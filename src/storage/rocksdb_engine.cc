#include "storage/rocksdb_engine.h"

#include <rocksdb/cache.h>
#include <rocksdb/db.h>
#include <rocksdb/filter_policy.h>
#include <rocksdb/table.h>
#include <rocksdb/write_batch.h>

#include <array>

namespace itsuka::storage {
namespace {

// Indexed by Column; "default" is RocksDB's own name for the first column family.
const char* const kColumnNames[kNumColumns] = {"default", "hints", "meta"};

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
  RocksEngine(std::unique_ptr<rocksdb::DB> db, std::vector<rocksdb::ColumnFamilyHandle*> cfs)
      : db_(std::move(db)), cfs_(std::move(cfs)) {}

  ~RocksEngine() override {
    for (rocksdb::ColumnFamilyHandle* cf : cfs_) db_->DestroyColumnFamilyHandle(cf);
    rocksdb::Status s = db_->Close();
    (void)s;  // the WAL holds every acknowledged write whatever Close reports
  }

  Status Get(Column column, std::string_view key, std::string* value) override {
    return FromRocks(db_->Get(rocksdb::ReadOptions(), cf(column), ToSlice(key), value));
  }

  Status Write(const WriteBatch& batch, bool sync) override {
    rocksdb::WriteBatch wb;
    for (const WriteBatch::Op& op : batch.ops()) {
      rocksdb::Status s = op.is_delete ? wb.Delete(cf(op.column), ToSlice(op.key))
                                       : wb.Put(cf(op.column), ToSlice(op.key), ToSlice(op.value));
      if (!s.ok()) return FromRocks(s);
    }
    rocksdb::WriteOptions wo;
    wo.sync = sync;
    Status st = FromRocks(db_->Write(wo, &wb));
    if (st.ok()) {
      ++writes_;
      if (sync) ++synced_writes_;
    }
    return st;
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
    return s;
  }

 private:
  rocksdb::ColumnFamilyHandle* cf(Column c) const { return cfs_[static_cast<int>(c)]; }

  std::unique_ptr<rocksdb::DB> db_;
  std::vector<rocksdb::ColumnFamilyHandle*> cfs_;
  uint64_t writes_ = 0;
  uint64_t synced_writes_ = 0;
};

}  // namespace

Result<std::unique_ptr<Engine>> OpenRocksEngine(const RocksOptions& options) {
  rocksdb::Options db_options;
  db_options.create_if_missing = true;
  db_options.create_missing_column_families = true;
  db_options.IncreaseParallelism(2);
  db_options.max_open_files = 512;

  rocksdb::BlockBasedTableOptions table;
  table.block_cache = rocksdb::NewLRUCache(options.block_cache_mb << 20);
  table.filter_policy.reset(rocksdb::NewBloomFilterPolicy(10));
  rocksdb::ColumnFamilyOptions cf_options;
  cf_options.write_buffer_size = options.write_buffer_mb << 20;
  cf_options.table_factory.reset(rocksdb::NewBlockBasedTableFactory(table));

  std::vector<rocksdb::ColumnFamilyDescriptor> descriptors;
  for (const char* name : kColumnNames) descriptors.emplace_back(name, cf_options);
  std::vector<rocksdb::ColumnFamilyHandle*> handles;
  rocksdb::DB* raw = nullptr;
  rocksdb::Status s = rocksdb::DB::Open(rocksdb::DBOptions(db_options), options.path, descriptors,
                                        &handles, &raw);
  if (!s.ok()) {
    return Status::IOError("cannot open RocksDB at '" + options.path + "': " + s.ToString());
  }
  return std::unique_ptr<Engine>(
      std::make_unique<RocksEngine>(std::unique_ptr<rocksdb::DB>(raw), std::move(handles)));
}

}  // namespace itsuka::storage
