#include "storage/mem_engine.h"

namespace itsuka::storage {
namespace {

// Iterates over a copy taken at creation: a snapshot, as RocksDB iterators are.
class MemIterator : public EngineIterator {
 public:
  explicit MemIterator(std::map<std::string, std::string, std::less<>> snapshot)
      : table_(std::move(snapshot)), it_(table_.begin()) {}
  void Seek(std::string_view key) override { it_ = table_.lower_bound(key); }
  bool Valid() const override { return it_ != table_.end(); }
  void Next() override { ++it_; }
  std::string_view key() const override { return it_->first; }
  std::string_view value() const override { return it_->second; }
  Status status() const override { return Status::Ok(); }

 private:
  std::map<std::string, std::string, std::less<>> table_;
  std::map<std::string, std::string, std::less<>>::const_iterator it_;
};

}  // namespace

Status MemEngine::Get(Column column, std::string_view key, std::string* value) {
  const Table& t = tables_[static_cast<int>(column)];
  auto it = t.find(key);
  if (it == t.end()) return Status::NotFound("");
  *value = it->second;
  return Status::Ok();
}

Status MemEngine::Write(const WriteBatch& batch, bool sync) {
  for (const WriteBatch::Op& op : batch.ops()) {
    Table& t = tables_[static_cast<int>(op.column)];
    if (op.is_delete) {
      t.erase(op.key);
    } else {
      t.insert_or_assign(op.key, op.value);
    }
  }
  ++writes_;
  if (sync) ++synced_writes_;
  return Status::Ok();
}

std::unique_ptr<EngineIterator> MemEngine::NewIterator(Column column) {
  return std::make_unique<MemIterator>(tables_[static_cast<int>(column)]);
}

EngineStats MemEngine::Stats() {
  EngineStats s;
  s.estimated_keys = tables_[static_cast<int>(Column::kData)].size();
  for (const auto& [k, v] : tables_[static_cast<int>(Column::kData)]) {
    s.live_data_bytes += k.size() + v.size();
  }
  s.writes = writes_;
  s.synced_writes = synced_writes_;
  return s;
}

}  // namespace itsuka::storage
