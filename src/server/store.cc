#include "server/store.h"

#include "wire/object_codec.h"
#include "wire/paxos_codec.h"

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

namespace {
std::string PaxosKey(std::string_view key) { return "paxos/" + std::string(key); }
}  // namespace

Result<core::AcceptorState> Store::ReadPaxos(std::string_view key) {
  if (!staged_paxos_.empty()) {
    auto it = staged_paxos_.find(std::string(key));
    if (it != staged_paxos_.end()) return it->second;
  }
  std::string bytes;
  Status st = engine_.Get(Column::kMeta, PaxosKey(key), &bytes);
  if (st.IsNotFound()) return core::AcceptorState();
  if (!st.ok()) return st;
  return wire::DecodeAcceptorState(bytes);
}

void Store::StagePaxos(std::string_view key, core::AcceptorState state) {
  staged_paxos_.insert_or_assign(std::string(key), std::move(state));
}

Status Store::Commit() {
  if (!HasStaged()) return Status::Ok();
  WriteBatch batch;
  for (const auto& [key, obj] : staged_) batch.Put(Column::kData, key, wire::EncodeObject(obj));
  if (hints_) hints_->AppendStaged(&batch);
  // Promises and accepts go in the same atomic batch as the objects, before any reply.
  for (const auto& [key, st] : staged_paxos_) {
    batch.Put(Column::kMeta, PaxosKey(key), wire::EncodeAcceptorState(st));
  }
  const size_t n = staged_.size() + staged_paxos_.size();
  staged_.clear();
  staged_paxos_.clear();
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
