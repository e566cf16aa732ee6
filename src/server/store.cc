#include "server/store.h"

#include "core/ring.h"

#include <chrono>
#include <cstdlib>
#include <optional>

#include "common/hash.h"
#include "common/log.h"
#include <algorithm>

#include "common/log.h"
#include "core/keyspace.h"
#include "wire/object_codec.h"
#include "wire/paxos_codec.h"

namespace itsuka::server {
namespace {

// Meta column family layout of the anti-entropy index (big-endian numbers so that a
// prefix scan walks one partition's leaf in key order):
//   "ae/l" p:4 leaf:2 key -> digest:8 purge-candidate:1 died-at-ms:8
//   "ae/t" p:4 key        -> digest:8 died-at-ms:8   (purge candidates only: tombstones
//                                                     and expiring values, core::PurgeCandidate)
//   "ae/format"           -> "3 <partitions>" (format-1 placement) or "3 <partitions> slots"
//                            (format 2) once the index covers every key
constexpr std::string_view kLeafPrefix = "ae/l";
constexpr std::string_view kTombPrefix = "ae/t";
constexpr std::string_view kFormatKey = "ae/format";
// The suspect partitions, as decimal numbers separated by commas.
constexpr std::string_view kSuspectKey = "corrupt/suspect";

std::string EncodeSuspect(const std::set<uint32_t>& s) {
  std::string out;
  for (uint32_t p : s) out += (out.empty() ? "" : ",") + std::to_string(p);
  return out;
}

void PutBE(std::string* s, uint64_t v, int bytes) {
  for (int i = bytes - 1; i >= 0; --i) s->push_back(static_cast<char>(v >> (8 * i)));
}
uint64_t GetBE(std::string_view s, size_t at, int bytes) {
  uint64_t v = 0;
  for (int i = 0; i < bytes; ++i) v = (v << 8) | static_cast<unsigned char>(s[at + i]);
  return v;
}

std::string LeafPrefix(uint32_t p, uint32_t leaf) {
  std::string k(kLeafPrefix);
  PutBE(&k, p, 4);
  PutBE(&k, leaf, 2);
  return k;
}

std::string TombPrefix(uint32_t p) {
  std::string k(kTombPrefix);
  PutBE(&k, p, 4);
  return k;
}

using IndexValue = Store::IndexEntry;

IndexValue Describe(const core::Object& obj) {
  IndexValue v;
  v.digest = core::ObjectDigest(obj);
  v.tombstone_only = core::PurgeCandidate(obj, &v.newest_ms);
  v.has_value = core::HoldsValue(obj);
  return v;
}

std::string EncodeIndex(const IndexValue& v) {
  std::string s;
  PutBE(&s, v.digest, 8);
  s.push_back(v.tombstone_only ? 1 : 0);
  PutBE(&s, static_cast<uint64_t>(v.newest_ms), 8);
  return s;
}

bool DecodeIndex(std::string_view s, IndexValue* v) {
  if (s.size() != 17) return false;
  v->digest = GetBE(s, 0, 8);
  v->tombstone_only = s[8] != 0;
  v->newest_ms = static_cast<int64_t>(GetBE(s, 9, 8));
  v->has_value = v->digest != 0 && !v->tombstone_only;  // a candidate: Store resolves it
  return true;
}

// Adds the index entries of (key, new value) to the batch, given what the index held.
void IndexOps(WriteBatch* batch, uint32_t p, uint32_t leaf, std::string_view key,
              const IndexValue& old_v, const IndexValue& new_v) {
  std::string lk = LeafPrefix(p, leaf);
  lk.append(key);
  std::string tk = TombPrefix(p);
  tk.append(key);
  if (new_v.digest == 0) {
    batch->Delete(Column::kMeta, lk);
  } else {
    batch->Put(Column::kMeta, lk, EncodeIndex(new_v));
  }
  if (new_v.tombstone_only) {
    std::string tv;
    PutBE(&tv, new_v.digest, 8);
    PutBE(&tv, static_cast<uint64_t>(new_v.newest_ms), 8);
    batch->Put(Column::kMeta, tk, tv);
  } else if (old_v.tombstone_only) {
    batch->Delete(Column::kMeta, tk);
  }
}

int64_t SteadyMs() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

}  // namespace

Result<core::Object> Store::Read(std::string_view key) {
  if (!staged_.empty()) {
    auto it = staged_.find(std::string(key));
    if (it != staged_.end()) {
      for (const core::Sibling& s : it->second.siblings) bytes_read_ += s.value.size();
      return it->second;
    }
  }
  if (const ObjectCache::Entry* e = cache_.Find(key)) {
    for (const core::Sibling& s : e->obj.siblings) bytes_read_ += s.value.size();
    if (partitions_ != 0) {
      last_read_key_.assign(key);
      last_read_ = e->index;
      last_read_valid_ = true;
    }
    return e->obj;
  }
  std::string bytes;
  last_read_valid_ = false;
  Status st = engine_.Get(Column::kData, key, &bytes);
  bytes_read_ += bytes.size();
  if (st.IsNotFound()) {
    if (partitions_ != 0) {
      last_read_key_.assign(key);
      last_read_ = IndexValue();
      last_read_valid_ = true;
    }
    cache_.Put(key, core::Object(), IndexValue());
    return core::Object();
  }
  size_t dropped = 0;
  Result<core::Object> obj =
      st.ok() ? wire::DecodeStoredObject(bytes, &dropped) : Result<core::Object>(st);
  if (!obj.ok() && obj.status().code() == Status::Code::kCorruption) {
    // Treated as missing: deleted with the next commit (a repair or a replica's write
    // brings the key back), and its partition is suspect until repaired.
    OnCorruption(key, "object", obj.status());
    staged_.insert_or_assign(std::string(key), core::Object());
    return core::Object();
  }
  if (obj.ok() && dropped > 0) {
    // Stored before the decoders refused such values (a negative expiry, a clock counter
    // over 2^53): serve what is sound and rewrite the key with it, so the key stays
    // readable and replicable. The index entry to replace is the stored object's.
    ++salvaged_objects_;
    LOG_WARN << "stored object '" << key << "': dropped " << dropped
             << " sibling(s)/clock entries that fail the object checks; rewriting it";
    if (partitions_ != 0) {
      last_read_key_.assign(key);
      last_read_ = Describe(*wire::DecodeObjectLayout(bytes));
      last_read_valid_ = true;
    }
    Stage(key, *obj);
    return obj;
  }
  if (obj.ok()) {
    const IndexValue described = partitions_ != 0 ? Describe(*obj) : IndexValue();
    if (partitions_ != 0) {
      last_read_key_.assign(key);
      last_read_ = described;
      last_read_valid_ = true;
    }
    cache_.Put(key, *obj, described);
  }
  return obj;
}

uint32_t Store::PartitionOfKey(std::string_view key) const {
  return partitions_ == 0 ? 0 : core::PartitionOfKey(key, partitions_, placement_);
}

void Store::OnCorruption(std::string_view key, const char* what, const Status& st) {
  ++corruptions_;
  const uint32_t p = PartitionOfKey(key);
  last_corruption_ = std::string("partition ") + std::to_string(p) + ", " + what + ": " +
                     st.message();
  for (char& c : last_corruption_) {
    if (c == '\r' || c == '\n') c = ' ';  // an INFO field
  }
  LOG_ERROR << "storage corruption: the stored " << what << " of a key in partition " << p
            << " fails its check (" << st.message()
            << "); treating it as missing, the partition as not authoritative, and asking "
               "for a repair";
  if (partitions_ != 0 && suspect_.insert(p).second) suspect_dirty_ = true;
}

bool Store::Authoritative(std::string_view key) const {
  return suspect_.empty() || suspect_.count(PartitionOfKey(key)) == 0;
}

Status Store::MarkAllSuspect() {
  for (uint32_t p = 0; p < partitions_; ++p) suspect_.insert(p);
  WriteBatch b;
  b.Put(Column::kMeta, kSuspectKey, EncodeSuspect(suspect_));
  Status st = engine_.Write(b, /*sync=*/true);
  suspect_dirty_ = !st.ok();
  return st;
}

void Store::ClearSuspect(const std::set<uint32_t>& repaired) {
  for (uint32_t p : repaired) {
    if (suspect_.erase(p) > 0) suspect_dirty_ = true;
  }
}

void Store::Stage(std::string_view key, core::Object obj) {
  auto [it, inserted] = staged_.insert_or_assign(std::string(key), std::move(obj));
  if (inserted && last_read_valid_ && key == last_read_key_) staged_base_.emplace(it->first, last_read_);
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
  size_t dropped = 0;
  Result<core::AcceptorState> state =
      st.ok() ? wire::DecodeStoredAcceptorState(bytes, &dropped) : Result<core::AcceptorState>(st);
  if (!state.ok() && state.status().code() == Status::Code::kCorruption) {
    // The partition becomes suspect, so this acceptor votes no more on the key (a
    // forgotten promise must not be made again) until a repair covered it.
    OnCorruption(key, "Paxos state", state.status());
    return core::AcceptorState();
  }
  if (state.ok() && dropped > 0) {
    ++salvaged_objects_;
    LOG_WARN << "stored Paxos state of '" << key << "': dropped " << dropped
             << " sibling(s)/clock entries of its value that fail the object checks";
  }
  return state;
}

void Store::StagePaxos(std::string_view key, core::AcceptorState state) {
  staged_paxos_.insert_or_assign(std::string(key), std::move(state));
}

Result<core::LocalStore::PaxosScanBatch> Store::ScanPaxos(
    std::string_view start, std::string_view end, size_t max_keys, size_t max_examined,
    const std::function<bool(std::string_view)>& want) {
  auto in_range = [&](std::string_view key) { return key >= start && (end.empty() || key < end); };
  std::vector<std::string> staged;
  for (const auto& [key, state] : staged_paxos_) {
    if (in_range(key) && want(key)) staged.push_back(key);
  }
  std::sort(staged.begin(), staged.end());
  const std::string prefix = PaxosKey("");
  PaxosScanBatch b;
  std::unique_ptr<EngineIterator> it = engine_.NewIterator(Column::kMeta);
  it->Seek(PaxosKey(start));
  // The key of the iterator's entry, or nothing once it left the range.
  auto disk_key = [&]() -> std::optional<std::string_view> {
    if (!it->Valid()) return std::nullopt;
    std::string_view k = it->key();
    if (k.substr(0, prefix.size()) != prefix) return std::nullopt;
    k.remove_prefix(prefix.size());
    if (!in_range(k)) return std::nullopt;
    return k;
  };
  size_t si = 0, examined = 0;
  while (b.states.size() < max_keys && examined < max_examined) {
    const std::optional<std::string_view> dk = disk_key();
    if (!dk && si == staged.size()) break;
    if (dk && (si == staged.size() || *dk < staged[si])) {
      ++examined;
      const std::string key(*dk);
      if (want(key) && staged_paxos_.count(key) == 0) {
        size_t dropped = 0;
        Result<core::AcceptorState> st = wire::DecodeStoredAcceptorState(it->value(), &dropped);
        if (!st.ok()) return Status::Corruption("stored Paxos state of '" + key + "': " + st.status().message());
        b.states.emplace_back(key, std::move(st).value());
      }
      it->Next();
      continue;
    }
    if (dk && *dk == staged[si]) it->Next();  // the staged state wins
    b.states.emplace_back(staged[si], staged_paxos_.at(staged[si]));
    ++si;
  }
  if (!it->status().ok()) return it->status();
  const std::optional<std::string_view> dk = disk_key();
  if (dk && (si == staged.size() || *dk < staged[si])) {
    b.next = std::string(*dk);
  } else if (si < staged.size()) {
    b.next = staged[si];
  } else {
    b.done = true;
  }
  return b;
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
        size_t dropped = 0;
        Result<core::Object> obj = wire::DecodeStoredObject(it->value(), &dropped);
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

Status Store::PreviousIndexEntry(const std::string& key, uint32_t p, uint32_t leaf,
                                 IndexEntry* out) {
  std::string lk = LeafPrefix(p, leaf);
  lk.append(key);
  std::string old_bytes;
  *out = IndexValue();
  Status st = Status::Ok();
  if (auto base = staged_base_.find(key); base != staged_base_.end()) {
    *out = base->second;
  } else if (st = engine_.Get(Column::kMeta, lk, &old_bytes); st.ok()) {
    if (!DecodeIndex(old_bytes, out)) st = Status::Corruption("anti-entropy index entry");
    if (st.ok() && out->tombstone_only) out->has_value = CommittedHasValue(key, *out);
  } else if (st.IsNotFound()) {
    st = Status::Ok();
  }
  if (st.code() == Status::Code::kCorruption) {
    // The entry is overwritten by the commit; the partition is suspect (its tree may be
    // off until the next start rebuilds it) and a repair will compare it.
    OnCorruption(key, "anti-entropy index entry", st);
    *out = IndexValue();
    st = Status::Ok();
  }
  return st;
}

Status Store::Commit() {
  if (!HasStaged()) return Status::Ok();
  struct TreeUpdate {
    uint32_t partition;
    const std::string* key;
    uint64_t hash, old_digest, new_digest;
    int delta;  // the change of the partition's count of keys holding a value
  };
  std::vector<TreeUpdate> updates;
  std::vector<IndexValue> described;  // each staged object's index entry, in staged_ order
  described.reserve(staged_.size());
  WriteBatch batch;
  size_t deletes = 0;
  // Everything staged goes in one batch or not at all: on any failure the staged
  // objects, hints and Paxos state of this round are discarded together.
  auto fail = [&](Status st) {
    DropFromCache();
    staged_.clear();
    staged_base_.clear();
    staged_paxos_.clear();
    if (hints_) hints_->Committed(false);
    ++failed_commits_;
    return st;
  };
  for (const auto& [key, obj] : staged_) {
    if (obj.empty()) {
      batch.Delete(Column::kData, key);
      ++deletes;
    } else {
      batch.Put(Column::kData, key, wire::EncodeObject(obj));
    }
    if (partitions_ == 0) {
      described.push_back(IndexValue());
      continue;
    }
    const uint64_t h = Hash64(key);
    const uint32_t p = core::PartitionOfKey(key, partitions_, placement_);
    const uint32_t leaf = core::MerkleLeafOf(h, depth_);
    IndexValue old_v;
    if (Status st = PreviousIndexEntry(key, p, leaf, &old_v); !st.ok()) return fail(st);
    const IndexValue new_v = Describe(obj);
    described.push_back(new_v);
    IndexOps(&batch, p, leaf, key, old_v, new_v);
    updates.push_back(TreeUpdate{p, &key, h, old_v.digest, new_v.digest,
                                 int{new_v.has_value} - int{old_v.has_value}});
  }
  if (hints_) hints_->AppendStaged(&batch);
  // Promises and accepts go in the same atomic batch as the objects, before any reply.
  for (const auto& [key, st] : staged_paxos_) {
    batch.Put(Column::kMeta, PaxosKey(key), wire::EncodeAcceptorState(st));
  }
  if (suspect_dirty_) batch.Put(Column::kMeta, kSuspectKey, EncodeSuspect(suspect_));
  const size_t n = staged_.size() + staged_paxos_.size();
  staged_base_.clear();
  last_read_valid_ = false;  // the engine changes under it
  Status st = engine_.Write(batch, sync_);
  if (hints_) hints_->Committed(st.ok());
  if (st.ok()) {
    for (const TreeUpdate& u : updates) {
      if (!trees_[u.partition]) trees_[u.partition] = std::make_unique<core::MerkleTree>(depth_);
      trees_[u.partition]->Update(*u.key, u.hash, u.old_digest, u.new_digest);
      if (u.delta != 0 && u.partition < value_counts_.size()) {
        uint64_t& c = value_counts_[u.partition];
        if (u.delta > 0 || c > 0) {  // never below 0, whatever an old entry claimed
          c += static_cast<uint64_t>(static_cast<int64_t>(u.delta));
          value_keys_ += static_cast<uint64_t>(static_cast<int64_t>(u.delta));
        }
      }
    }
    size_t i = 0;
    for (auto& [key, obj] : staged_) cache_.Put(key, std::move(obj), described[i++]);
    ++commits_;
    committed_keys_ += n;
    purged_keys_ += deletes;
    suspect_dirty_ = false;
  } else {
    // Whatever the engine holds now for these keys, the next read takes it from there.
    DropFromCache();
    ++failed_commits_;
  }
  staged_.clear();
  staged_paxos_.clear();
  return st;
}

void Store::DropFromCache() {
  for (const auto& [key, obj] : staged_) cache_.Erase(key);
}

Status Store::EnableMerkle(uint32_t partitions, core::Placement placement) {
  if (Status ok = core::CheckPlacement(partitions, placement); !ok.ok()) return ok;
  placement_ = placement;
  cache_.Clear();  // its index entries were described without a ring (and indexing may drop keys)
  partitions_ = partitions;
  depth_ = core::MerkleDepthFor(partitions);
  trees_.clear();
  trees_.resize(partitions);
  std::string format;
  Status st = engine_.Get(Column::kMeta, kFormatKey, &format);
  // Format-2 (slot-placed) directories say so: an index built for the other placement
  // (never expected: a directory keeps its format) would be rebuilt, not trusted.
  std::string want = "3 " + std::to_string(partitions) +
                     (placement == core::Placement::kSlots ? " slots" : "");
  if (!st.ok() && !st.IsNotFound()) return st;
  if (st.IsNotFound() || format != want) {
    // No index yet (a data directory from before anti-entropy), or one for another
    // partition count: drop it and index every key once.
    st = RebuildIndex(want);
    if (!st.ok()) return st;
  }
  st = LoadTrees();
  if (!st.ok()) return st;
  return LoadSuspect();
}

Status Store::RebuildIndex(const std::string& format) {
  const int64_t t0 = SteadyMs();
  WriteBatch batch;
  {
    std::unique_ptr<EngineIterator> it = engine_.NewIterator(Column::kMeta);
    for (it->Seek("ae/"); it->Valid() && it->key().substr(0, 3) == "ae/"; it->Next()) {
      batch.Delete(Column::kMeta, it->key());
    }
    if (!it->status().ok()) return it->status();
  }
  std::unique_ptr<EngineIterator> it = engine_.NewIterator(Column::kData);
  for (it->Seek(""); it->Valid(); it->Next()) {
    // The layout as stored (a salvaged object is rewritten with its own index entry
    // on its first read, replacing this one).
    Result<core::Object> obj = wire::DecodeObjectLayout(it->value());
    if (!obj.ok()) {
      // As a read would: counted, dropped, and its partition suspect.
      OnCorruption(it->key(), "object", obj.status());
      batch.Delete(Column::kData, it->key());
      continue;
    }
    const uint64_t h = Hash64(it->key());
    IndexOps(&batch, core::PartitionOfKey(it->key(), partitions_, placement_),
             core::MerkleLeafOf(h, depth_), it->key(),
             IndexValue(), Describe(*obj));
    if (batch.size() >= 10000) {
      Status st = engine_.Write(batch, false);
      if (!st.ok()) return st;
      batch.Clear();
    }
  }
  if (!it->status().ok()) return it->status();
  batch.Put(Column::kMeta, kFormatKey, format);
  if (suspect_dirty_) batch.Put(Column::kMeta, kSuspectKey, EncodeSuspect(suspect_));
  Status st = engine_.Write(batch, true);
  if (!st.ok()) return st;
  suspect_dirty_ = false;
  index_build_ms_ = SteadyMs() - t0;
  return Status::Ok();
}

Status Store::LoadTrees() {
  const int64_t t0 = SteadyMs();
  value_counts_.assign(partitions_, 0);
  value_keys_ = 0;
  std::unique_ptr<EngineIterator> it = engine_.NewIterator(Column::kMeta);
  const size_t head = kLeafPrefix.size() + 6;
  for (it->Seek(kLeafPrefix); it->Valid() && it->key().substr(0, 4) == kLeafPrefix; it->Next()) {
    std::string_view k = it->key();
    IndexValue v;
    if (k.size() < head || !DecodeIndex(it->value(), &v)) {
      return Status::Corruption("anti-entropy index entry is malformed");
    }
    const uint32_t p = static_cast<uint32_t>(GetBE(k, 4, 4));
    if (p >= partitions_) return Status::Corruption("anti-entropy index names no such partition");
    std::string_view key = k.substr(head);
    if (!trees_[p]) trees_[p] = std::make_unique<core::MerkleTree>(depth_);
    trees_[p]->Update(key, Hash64(key), 0, v.digest);
    if (v.tombstone_only ? CommittedHasValue(key, v) : v.digest != 0) {
      ++value_counts_[p];
      ++value_keys_;
    }
  }
  if (!it->status().ok()) return it->status();
  rebuild_ms_ = SteadyMs() - t0;
  return Status::Ok();
}

Status Store::LoadSuspect() {
  std::string saved;
  Status st = engine_.Get(Column::kMeta, kSuspectKey, &saved);
  if (!st.ok() && !st.IsNotFound()) return st;
  bool all = false;
  for (size_t at = 0; st.ok() && at < saved.size();) {
    size_t end = saved.find(',', at);
    if (end == std::string::npos) end = saved.size();
    const uint64_t p = std::strtoull(saved.substr(at, end - at).c_str(), nullptr, 10);
    if (p >= partitions_) all = true;  // saved for another partition count
    else suspect_.insert(static_cast<uint32_t>(p));
    at = end + 1;
  }
  if (all) {
    for (uint32_t p = 0; p < partitions_; ++p) suspect_.insert(p);
    suspect_dirty_ = true;
  }
  return Status::Ok();
}

bool Store::CommittedHasValue(std::string_view key, const IndexEntry& v) {
  if (v.digest == 0) return false;
  if (!v.tombstone_only) return true;
  std::string bytes;
  if (!engine_.Get(Column::kData, key, &bytes).ok()) return false;
  Result<core::Object> obj = wire::DecodeObjectLayout(bytes);
  return obj.ok() && core::HoldsValue(*obj);
}

uint32_t Store::LeavesPerPartition() const {
  return partitions_ == 0 ? 0 : uint32_t{1} << (4 * depth_);
}

core::ScanReply Store::ScanLeaves(const core::ScanRequest& req, int64_t now_wall_ms) {
  core::ScanReply r;
  r.req_id = req.req_id;
  const uint32_t leaves = LeavesPerPartition();
  if (req.partition >= partitions_ || req.leaf_begin > req.leaf_end || req.leaf_end > leaves) {
    r.error = "SCAN of partition " + std::to_string(req.partition) + " leaves [" +
              std::to_string(req.leaf_begin) + ", " + std::to_string(req.leaf_end) +
              "): no such range here (" + std::to_string(partitions_) + " partitions of " +
              std::to_string(leaves) + " leaves)";
    return r;
  }
  const size_t max_keys = std::clamp<uint32_t>(req.max_keys, 1, core::kScanMaxKeys);
  const bool all = req.pattern.empty() || req.pattern == "*";
  std::string prefix(kLeafPrefix);  // the partition's leaves
  PutBE(&prefix, req.partition, 4);
  std::unique_ptr<EngineIterator> it = engine_.NewIterator(Column::kMeta);
  const size_t head = kLeafPrefix.size() + 6;
  size_t examined = 0;
  uint32_t cur_leaf = UINT32_MAX;
  r.next_leaf = req.leaf_end;
  for (it->Seek(LeafPrefix(req.partition, req.leaf_begin));
       it->Valid() && it->key().substr(0, prefix.size()) == prefix; it->Next()) {
    std::string_view k = it->key();
    if (k.size() < head) continue;
    const uint32_t leaf = static_cast<uint32_t>(GetBE(k, 8, 2));
    if (leaf >= req.leaf_end) break;
    if ((r.keys.size() >= max_keys || examined >= core::kScanMaxExamined) && leaf != cur_leaf) {
      r.next_leaf = leaf;  // a leaf boundary: every leaf below is complete
      break;
    }
    cur_leaf = leaf;
    ++examined;
    IndexValue v;
    if (!DecodeIndex(it->value(), &v)) continue;
    std::string_view key = k.substr(head);
    if (!all && !core::GlobMatch(req.pattern, key)) continue;
    bool live = v.digest != 0 && !v.tombstone_only;
    if (v.tombstone_only) {
      std::string bytes;
      Result<core::Object> obj = engine_.Get(Column::kData, key, &bytes).ok()
                                     ? wire::DecodeObjectLayout(bytes)
                                     : Result<core::Object>(Status::NotFound("absent"));
      live = obj.ok() && core::HoldsLiveValue(*obj, now_wall_ms);
    }
    if (!live) continue;
    r.keys.emplace_back(key);
    r.key_leaves.push_back(leaf);
  }
  if (!it->status().ok()) {
    r = core::ScanReply{};
    r.req_id = req.req_id;
    r.error = "SCAN: reading the index failed: " + it->status().message();
    return r;
  }
  r.ok = true;
  return r;
}

uint64_t Store::merkle_keys() const {
  uint64_t n = 0;
  for (const auto& t : trees_) n += t ? t->keys() : 0;
  return n;
}

const core::MerkleTree* Store::Tree(uint32_t partition) const {
  return partition < trees_.size() ? trees_[partition].get() : nullptr;
}

Result<std::vector<core::DigestEntry>> Store::ListLeaf(uint32_t partition, uint32_t leaf,
                                                       std::string_view after_key, size_t max,
                                                       bool* more) {
  *more = false;
  std::vector<core::DigestEntry> out;
  const std::string prefix = LeafPrefix(partition, leaf);
  std::string start = prefix;
  start.append(after_key);
  std::unique_ptr<EngineIterator> it = engine_.NewIterator(Column::kMeta);
  for (it->Seek(start); it->Valid() && it->key().substr(0, prefix.size()) == prefix; it->Next()) {
    std::string_view key = it->key().substr(prefix.size());
    if (!after_key.empty() && key == after_key) continue;
    if (out.size() >= max) {
      *more = true;
      break;
    }
    IndexValue v;
    if (!DecodeIndex(it->value(), &v)) return Status::Corruption("anti-entropy index entry is malformed");
    out.push_back(core::DigestEntry{std::string(key), v.digest});
  }
  if (!it->status().ok()) return it->status();
  return out;
}

Result<std::vector<core::MerkleSource::Tombstone>> Store::ListTombstones(
    uint32_t partition, std::string_view after_key, size_t max, bool* more) {
  *more = false;
  std::vector<Tombstone> out;
  const std::string prefix = TombPrefix(partition);
  std::string start = prefix;
  start.append(after_key);
  std::unique_ptr<EngineIterator> it = engine_.NewIterator(Column::kMeta);
  for (it->Seek(start); it->Valid() && it->key().substr(0, prefix.size()) == prefix; it->Next()) {
    if (!after_key.empty() && it->key().substr(prefix.size()) == after_key) continue;
    if (out.size() >= max) {
      *more = true;
      break;
    }
    std::string_view v = it->value();
    if (v.size() != 16) return Status::Corruption("anti-entropy tombstone entry is malformed");
    out.push_back(Tombstone{std::string(it->key().substr(prefix.size())), GetBE(v, 0, 8),
                            static_cast<int64_t>(GetBE(v, 8, 8))});
  }
  if (!it->status().ok()) return it->status();
  return out;
}

}  // namespace itsuka::server
