#include "server/store.h"

#include <algorithm>

#include "wire/object_codec.h"

namespace itsuka::server {

Result<core::Object> Store::Read(std::string_view key) {
  if (!staged_.empty()) {
    auto it = staged_.find(std::string(key));
    if (it != staged_.end()) return it->second;
  }
  std::string bytes;
  Status st = engine_.Get(Column::kData, key, &bytes);
  if (st.IsNotFound()) return core::Object();
  if (!st.ok()) return st;
  return wire::DecodeObject(bytes);
}

void Store::Stage(std::string_view key, core::Object obj) {
  staged_.insert_or_assign(std::string(key), std::move(obj));
}

Result<core::LocalStore::ScanBatch> Store::Scan(
    std::string_view start, size_t max_keys, size_t max_examined,
    const std::function<bool(std::string_view)>& want) {
  // Staged objects are newer than the column and may not be in it yet.
  std::vector<std::string> staged;
  for (const auto& [key, obj] : staged_) {
    if (key >= start && want(key)) staged.push_back(key);
  }
  std::sort(staged.begin(), staged.end());
  ScanBatch b;
  std::unique_ptr<EngineIterator> it = engine_.NewIterator(Column::kData);
  it->Seek(start);
  size_t si = 0, examined = 0;
  while (b.objects.size() < max_keys && examined < max_examined) {
    const bool have_disk = it->Valid();
    if (!have_disk && si == staged.size()) break;
    if (have_disk && (si == staged.size() || it->key() < staged[si])) {
      ++examined;
      const std::string_view key = it->key();
      if (want(key) && staged_.count(std::string(key)) == 0) {
        Result<core::Object> obj = wire::DecodeObject(it->value());
        if (!obj.ok()) return Status::Corruption("stored object '" + std::string(key) + "': " + obj.status().message());
        b.objects.emplace_back(std::string(key), std::move(obj).value());
      }
      it->Next();
      continue;
    }
    if (have_disk && it->key() == staged[si]) it->Next();  // the staged version wins
    b.objects.emplace_back(staged[si], staged_.at(staged[si]));
    ++si;
  }
  if (!it->status().ok()) return it->status();
  if (it->Valid() && (si == staged.size() || it->key() < staged[si])) {
    b.next = std::string(it->key());
  } else if (si < staged.size()) {
    b.next = staged[si];
  } else {
    b.done = true;
  }
  return b;
}

Status Store::Commit() {
  if (staged_.empty()) return Status::Ok();
  WriteBatch batch;
  for (const auto& [key, obj] : staged_) batch.Put(Column::kData, key, wire::EncodeObject(obj));
  const size_t n = staged_.size();
  staged_.clear();
  Status st = engine_.Write(batch, sync_);
  if (st.ok()) {
    ++commits_;
    committed_keys_ += n;
  } else {
    ++failed_commits_;
  }
  return st;
}

}  // namespace itsuka::server
