#include "core/transfer.h"

#include <algorithm>
#include <utility>
#include <vector>

#include "common/hash.h"
#include "core/gossip.h"

namespace itsuka::core {

namespace {
bool InList(const std::vector<std::string>& list, const std::string& node) {
  return std::find(list.begin(), list.end(), node) != list.end();
}
constexpr uint32_t kBatchKeys = 256;
// After an error reply (a store error, a ring the source does not have yet), the same
// batch is asked for again this much later.
constexpr int64_t kErrorRetryMs = 200;
constexpr size_t kBatchExamined = 20000;
// Bytes of values per batch (at least one object), well under the peer frame limit.
constexpr size_t kBatchBytes = 4 << 20;

size_t ValueBytes(const Object& obj) {
  size_t size = 0;
  for (const Sibling& s : obj.siblings) size += s.value.size();
  return size;
}

// Fills `reply` from the scanned objects and acceptor states, one key at a time (its
// object and its state together), up to `cut` (nothing: the scans' end) and the byte
// bound, and says where the next request resumes.
void AssembleBatch(std::vector<std::pair<std::string, Object>>& objects,
                   std::vector<std::pair<std::string, AcceptorState>>& paxos,
                   std::optional<std::string> cut, TransferBatch& reply) {
  size_t bytes = 0, i = 0, j = 0;
  while (i < objects.size() || j < paxos.size()) {
    const bool object_first =
        j == paxos.size() || (i < objects.size() && objects[i].first < paxos[j].first);
    const std::string key = object_first ? objects[i].first : paxos[j].first;
    if (cut && key >= *cut) break;
    const bool has_obj = i < objects.size() && objects[i].first == key;
    const bool has_state = j < paxos.size() && paxos[j].first == key;
    size_t size = key.size();
    if (has_obj) size += ValueBytes(objects[i].second);
    if (has_state) size += ValueBytes(paxos[j].second.value);
    if ((!reply.objects.empty() || !reply.paxos.empty()) && bytes + size > kBatchBytes) {
      cut = key;  // the rest comes with the next request
      break;
    }
    bytes += size;
    if (has_obj) reply.objects.push_back(std::move(objects[i++]));
    if (has_state) {
      AcceptorState& st = paxos[j++].second;
      reply.paxos.push_back(KeyPaxosState{key, std::move(st.promised), std::move(st.accepted),
                                          std::move(st.value)});
    }
  }
  reply.done = !cut.has_value();
  if (cut) reply.next = std::move(*cut);
}
}  // namespace

// ---- Planning ---------------------------------------------------------------------

void Transfers::Plan(uint64_t write_fingerprint) {
  if (write_fingerprint == plan_fingerprint_) return;
  // A new target ring: transfer what it gives this node. Transfers from an earlier plan
  // that are still useful are simply repeated (merging is idempotent).
  plan_fingerprint_ = write_fingerprint;
  Clear();
  plan_objects_ = plan_batches_ = plan_batches_failed_ = 0;
  const Ring& read = *ctx_.ring;
  const Ring& write = *ctx_.write_ring;
  const size_t n = static_cast<size_t>(ctx_.options.n);
  // Being listed in this node's read ring does not prove it holds a partition: its view
  // can be stale (a transition that dropped it from the partition may already have
  // completed elsewhere, after which writes stopped reaching it). What it holds is
  // what it transferred for the last ring it synced to; only a node that never synced (a
  // static ring, a restart) trusts its read ring. Partitions it gains beyond that are
  // transferred from the read ring's other replicas, which got every write meanwhile.
  if (!held_) {
    held_.emplace();
    for (uint32_t p = 0; p < read.partitions(); ++p) {
      if (InList(read.PreferenceList(p, n), ctx_.self)) held_->insert(p);
    }
  }
  plan_owned_.clear();
  for (auto& [source, parts] : TransferPlan(read, write, ctx_.self, n)) {
    sources_[source].partitions = std::move(parts);
  }
  const uint32_t q = std::min(read.partitions(), write.partitions());
  for (uint32_t p = 0; p < write.partitions(); ++p) {
    if (!InList(write.PreferenceList(p, n), ctx_.self)) continue;
    plan_owned_.insert(p);
    if (p >= q || held_->count(p) > 0) continue;
    for (const std::string& src : read.PreferenceList(p, n)) {
      if (src != ctx_.self) sources_[src].partitions.insert(p);
    }
  }
  if (sources_.empty()) MarkSynced();
}

void Transfers::Clear() {
  for (const auto& [source, s] : sources_) {
    if (s.req_id != 0) ctx_.requests.Close(s.req_id);
  }
  sources_.clear();
}

void Transfers::MarkSynced() {
  synced_ = plan_fingerprint_;
  held_ = plan_owned_;
  Clear();
}

size_t Transfers::pending() const {
  size_t n = 0;
  for (const auto& [src, s] : sources_) n += s.done ? 0 : s.partitions.size();
  return n;
}

std::vector<SourceTransferProgress> Transfers::Progress() const {
  std::vector<SourceTransferProgress> out;
  if (synced_ == plan_fingerprint_) return out;
  for (const auto& [source, s] : sources_) {
    out.push_back(SourceTransferProgress{source, std::vector<uint32_t>(s.partitions.begin(), s.partitions.end()),
                                   s.done, ctx_.IsReachable(source), s.keys, s.bytes, s.batches,
                                   s.started_ms, s.last_batch_ms});
  }
  return out;
}

// ---- Server side ------------------------------------------------------------------

void Transfers::HandleRequest(const std::string& from, const TransferRequest& m) {
  TransferBatch reply;
  reply.req_id = m.req_id;
  auto refuse = [&](std::string error) {
    reply.error = std::move(error);
    ctx_.out.sends.emplace_back(from, std::move(reply));
  };
  if (!ctx_.ring || m.ring_partitions != ctx_.ring->partitions()) {
    return refuse("ring has " + std::to_string(ctx_.ring ? ctx_.ring->partitions() : 0) +
                  " partitions, not " + std::to_string(m.ring_partitions));
  }
  std::set<uint32_t> wanted(m.partitions.begin(), m.partitions.end());
  const Ring& ring = *ctx_.ring;
  auto want = [&](std::string_view key) { return wanted.count(ring.PartitionOfKey(key)) > 0; };
  const size_t max_keys = std::min<uint32_t>(m.max_keys, kBatchKeys);
  Result<LocalStore::ScanBatch> batch =
      ctx_.store.Scan(m.start, max_keys, kBatchExamined, want);
  if (!batch.ok()) return refuse(batch.status().ToString());
  // The acceptor states of the range the data scan covered, [start, next): a key may
  // have one and no data object (an acceptor holds an accepted value only in its state
  // until a commit reaches it).
  Result<LocalStore::PaxosScanBatch> states = ctx_.store.ScanPaxos(
      m.start, batch->done ? std::string_view() : std::string_view(batch->next), max_keys,
      kBatchExamined, want);
  if (!states.ok()) return refuse(states.status().ToString());
  // Where this batch ends (nothing: it ends the scan). A shorter state scan cuts the
  // batch at its own stopping point, so the next request resumes both from one key.
  std::optional<std::string> cut;
  if (!batch->done) cut = batch->next;
  if (!states->done) cut = states->next;
  reply.ok = true;
  AssembleBatch(batch->objects, states->states, std::move(cut), reply);
  ctx_.out.sends.emplace_back(from, std::move(reply));
}

// ---- Client side ------------------------------------------------------------------

void Transfers::OnBatch(uint64_t req_id, const std::string& from, const TransferBatch& m,
                        int64_t now_ms) {
  auto it = sources_.find(from);
  if (it == sources_.end() || it->second.req_id != req_id || it->second.done) return;
  Source& s = it->second;
  ctx_.requests.Close(s.req_id);
  s.req_id = 0;
  if (!m.ok || !Merge(s, m)) {
    // Retried from the same cursor after the pacing interval (not the whole timeout:
    // the source answered, so it is reachable).
    ++plan_batches_failed_;
    s.next_ms = now_ms + std::max<int64_t>(ctx_.options.transfer_interval_ms, kErrorRetryMs);
    return;
  }
  ++plan_batches_;
  s.cursor = m.next;
  s.done = m.done;
  s.last_batch_ms = now_ms;
  s.next_ms = now_ms + ctx_.options.transfer_interval_ms;
  Tick(now_ms);
}

bool Transfers::Merge(Source& s, const TransferBatch& m) {
  const std::optional<Ring>& ring = ctx_.ring;
  uint64_t keys = 0, bytes = 0;
  for (const auto& [key, obj] : m.objects) {
    if (!ring || s.partitions.count(ring->PartitionOfKey(key)) == 0) continue;
    if (!ctx_.MergeLocally(key, obj).ok()) return false;
    ++transferred_objects_;
    ++plan_objects_;
    ++keys;
    bytes += key.size() + ValueBytes(obj);
  }
  // Counted once the objects are staged: a batch asked for again is not counted twice.
  s.keys += keys;
  s.bytes += bytes;
  ++s.batches;
  // Staged like the objects, so it is durable before the transfer is reported synced.
  for (const KeyPaxosState& st : m.paxos) {
    if (!ring || s.partitions.count(ring->PartitionOfKey(st.key)) == 0) continue;
    Result<AcceptorState> mine = ctx_.store.ReadPaxos(st.key);
    if (!mine.ok()) return false;
    if (AcceptorMerge(*mine, AcceptorState{st.promised, st.accepted, st.value})) {
      ctx_.store.StagePaxos(st.key, std::move(mine).value());
    }
    ++transferred_paxos_states_;
  }
  return true;
}

void Transfers::Tick(int64_t now_ms) {
  if (sources_.empty() || synced_ == plan_fingerprint_) return;
  for (auto& [source, s] : sources_) {
    if (!allowed_ || s.done || !ctx_.IsReachable(source)) continue;
    if (s.req_id != 0 && now_ms - s.sent_ms < ctx_.options.request_timeout_ms) continue;
    if (s.req_id == 0 && now_ms < s.next_ms) continue;
    if (s.req_id != 0) {
      ctx_.requests.Close(s.req_id);  // timed out: a late batch is dropped
      ++plan_batches_failed_;
    }
    s.req_id = ctx_.requests.Open(Room::kTransfer);
    s.sent_ms = now_ms;
    if (s.started_ms == 0) s.started_ms = now_ms;
    ctx_.out.sends.emplace_back(
        source, TransferRequest{s.req_id, ctx_.ring->partitions(),
                            std::vector<uint32_t>(s.partitions.begin(), s.partitions.end()),
                            s.cursor, kBatchKeys});
  }
  if (Complete()) MarkSynced();  // what a skipped source held is on the others
}

bool Transfers::Complete() const {
  size_t total = 0;
  return PartitionsDone(&total) == total;
}

TransferProgress Transfers::progress() const {
  TransferProgress p;
  if (sources_.empty() || synced_ == plan_fingerprint_) return p;
  p.partitions_done = PartitionsDone(&p.partitions_total);
  p.sources_total = sources_.size();
  for (const auto& [src, s] : sources_) p.sources_done += s.done ? 1 : 0;
  p.keys_copied = plan_objects_;
  p.batches = plan_batches_;
  p.batches_failed = plan_batches_failed_;
  return p;
}

size_t Transfers::PartitionsDone(size_t* total_partitions) const {
  // Done when transferred from all its read-ring replicas, or from all but one that is
  // unreachable: a write acknowledged by W >= 2 of them is on at least one of the others.
  std::map<uint32_t, std::pair<int, int>> per_partition;  // done, total
  std::set<uint32_t> missing_unreachable;
  for (const auto& [source, s] : sources_) {
    for (uint32_t p : s.partitions) {
      auto& [done, total] = per_partition[p];
      ++total;
      if (s.done) ++done;
      else if (!ctx_.IsReachable(source)) missing_unreachable.insert(p);
    }
  }
  size_t complete = 0;
  for (const auto& [p, counts] : per_partition) {
    const auto [done, total] = counts;
    if (done == total || (done >= std::max(1, total - 1) && missing_unreachable.count(p))) {
      ++complete;
    }
  }
  *total_partitions = per_partition.size();
  return complete;
}

}  // namespace itsuka::core
