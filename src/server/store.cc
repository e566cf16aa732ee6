#include "server/store.h"

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

Status Store::Commit() {
  if (!HasStaged()) return Status::Ok();
  WriteBatch batch;
  for (const auto& [key, obj] : staged_) batch.Put(Column::kData, key, wire::EncodeObject(obj));
  if (hints_) hints_->AppendStaged(&batch);
  const size_t n = staged_.size();
  staged_.clear();
  Status st = engine_.Write(batch, sync_);
  if (hints_) hints_->Committed(st.ok());
  if (st.ok()) {
    ++commits_;
    committed_keys_ += n;
  } else {
    ++failed_commits_;
  }
  return st;
}

}  // namespace itsuka::server
