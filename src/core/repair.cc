#include "core/repair.h"

#include <algorithm>
#include <sstream>

#include "common/hash.h"
#include "core/paxos.h"

namespace itsuka::core {

bool PurgeCandidate(const Object& obj, int64_t* at) {
  *at = 0;
  if (obj.empty()) return false;
  for (const Sibling& s : obj.siblings) {
    if (!s.tombstone && s.expire_at_ms == 0) return false;
    *at = std::max(*at, s.tombstone ? s.written_at_ms : s.expire_at_ms);
  }
  return true;
}

bool Purgeable(const Object& obj, int64_t now_wall_ms, int64_t grace_ms) {
  int64_t at = 0;
  return PurgeCandidate(obj, &at) && at <= now_wall_ms - grace_ms;
}

bool IsRepairRequest(const PeerMessage& msg) {
  return std::holds_alternative<TreeRequest>(msg) || std::holds_alternative<LeafRequest>(msg) ||
         std::holds_alternative<FetchRequest>(msg) || std::holds_alternative<PushRequest>(msg) ||
         std::holds_alternative<TombstoneRequest>(msg);
}

bool IsRepairReply(const PeerMessage& msg) {
  return std::holds_alternative<TreeReply>(msg) || std::holds_alternative<LeafReply>(msg) ||
         std::holds_alternative<FetchReply>(msg) || std::holds_alternative<PushReply>(msg) ||
         std::holds_alternative<TombstoneReply>(msg);
}

// ---- The replica side ---------------------------------------------------------------

namespace {

template <typename Reply>
Reply Error(uint64_t req_id, std::string why) {
  Reply r;
  r.req_id = req_id;
  r.ok = false;
  r.error = std::move(why);
  return r;
}

uint32_t WidthAt(uint32_t level) { return uint32_t{1} << (4 * level); }

PeerMessage AnswerTree(const TreeRequest& m, MerkleSource& source, const RepairLimits& limits) {
  const uint32_t depth = source.MerkleDepth();
  if (m.partition >= source.Partitions()) return Error<TreeReply>(m.req_id, "no such partition");
  if (m.level > depth) return Error<TreeReply>(m.req_id, "no such tree level");
  if (m.indices.size() > limits.max_request_items) return Error<TreeReply>(m.req_id, "too many nodes asked");
  TreeReply r;
  r.req_id = m.req_id;
  r.ok = true;
  r.depth = depth;
  const MerkleTree* tree = source.Tree(m.partition);
  for (uint32_t i : m.indices) {
    if (i >= WidthAt(m.level)) return Error<TreeReply>(m.req_id, "no such tree node");
    r.hashes.push_back(tree ? tree->Node(m.level, i) : 0);
  }
  return r;
}

PeerMessage AnswerLeaves(const LeafRequest& m, MerkleSource& source, const RepairLimits& limits) {
  const uint32_t depth = source.MerkleDepth();
  if (m.partition >= source.Partitions()) return Error<LeafReply>(m.req_id, "no such partition");
  if (m.leaves.size() > limits.max_request_items) return Error<LeafReply>(m.req_id, "too many leaves asked");
  LeafReply r;
  r.req_id = m.req_id;
  r.ok = true;
  for (size_t i = 0; i < m.leaves.size(); ++i) {
    if (m.leaves[i] >= WidthAt(depth)) return Error<LeafReply>(m.req_id, "no such leaf");
    const size_t room = limits.max_entries - r.entries.size();
    if (room == 0) {
      r.more = true;
      break;
    }
    bool more = false;
    Result<std::vector<DigestEntry>> got =
        source.ListLeaf(m.partition, m.leaves[i], i == 0 ? m.after_key : "", room, &more);
    if (!got.ok()) return Error<LeafReply>(m.req_id, got.status().ToString());
    for (DigestEntry& e : *got) r.entries.push_back(std::move(e));
    if (more) {
      r.more = true;
      break;
    }
  }
  return r;
}

PeerMessage AnswerFetch(const FetchRequest& m, LocalStore& store, const RepairLimits& limits) {
  if (m.keys.size() > limits.max_request_items) return Error<FetchReply>(m.req_id, "too many keys asked");
  FetchReply r;
  r.req_id = m.req_id;
  r.ok = true;
  size_t bytes = 0;
  for (const std::string& key : m.keys) {
    if (!r.objects.empty() && bytes >= limits.max_bytes) break;
    Result<Object> obj = store.Read(key);
    if (!obj.ok()) return Error<FetchReply>(m.req_id, obj.status().ToString());
    bytes += key.size() + ApproxBytes(*obj);
    r.objects.push_back(KeyObject{key, std::move(obj).value()});
  }
  return r;
}

PeerMessage AnswerPush(const PushRequest& m, LocalStore& store, const RepairLimits& limits) {
  if (m.objects.size() > limits.max_request_items) return Error<PushReply>(m.req_id, "too many objects");
  for (const KeyObject& ko : m.objects) {
    if (ko.object.empty()) continue;
    Result<Object> local = store.Read(ko.key);
    if (!local.ok()) return Error<PushReply>(m.req_id, local.status().ToString());
    Object merged = Merge(*local, ko.object);
    if (!(merged == *local)) store.Stage(ko.key, std::move(merged));
  }
  PushReply r;
  r.req_id = m.req_id;
  r.ok = true;
  return r;
}

PeerMessage AnswerTombstones(const TombstoneRequest& m, LocalStore& store, MerkleSource& source,
                             const RepairLimits& limits, int64_t now_wall_ms,
                             int64_t min_grace_ms) {
  if (m.partition >= source.Partitions()) return Error<TombstoneReply>(m.req_id, "no such partition");
  if (m.entries.size() > limits.max_request_items) return Error<TombstoneReply>(m.req_id, "too many entries");
  const int64_t grace = std::max(m.grace_ms, min_grace_ms);
  TombstoneReply r;
  r.req_id = m.req_id;
  r.ok = true;
  if (m.mode == TombstoneRequest::Mode::kList) {
    bool more = false;
    Result<std::vector<MerkleSource::Tombstone>> got =
        source.ListTombstones(m.partition, m.after_key, limits.max_entries, &more);
    if (!got.ok()) return Error<TombstoneReply>(m.req_id, got.status().ToString());
    for (const MerkleSource::Tombstone& t : *got) {
      if (t.written_at_ms <= now_wall_ms - grace) r.entries.push_back(DigestEntry{t.key, t.digest});
    }
    if (more && !got->empty()) {
      r.more = true;
      r.after_key = got->back().key;  // the last key looked at, kept or not
    }
    return r;
  }
  for (const DigestEntry& e : m.entries) {
    Result<Object> obj = store.Read(e.key);
    if (!obj.ok()) return Error<TombstoneReply>(m.req_id, obj.status().ToString());
    if (ObjectDigest(*obj) != e.digest || !Purgeable(*obj, now_wall_ms, grace)) continue;
    if (m.mode == TombstoneRequest::Mode::kPurge) {
      // The key's Paxos acceptor state keeps a copy of the last value agreed by
      // CONSISTENT operations. Once the tombstone that superseded it is gone, the next
      // round would adopt that copy and bring the key back: drop the value (keeping the
      // ballots) when the purged object covers it; keep the tombstone otherwise.
      Result<AcceptorState> paxos = store.ReadPaxos(e.key);
      if (!paxos.ok()) continue;  // cannot tell: not purged now
      if (!paxos->value.empty()) {
        const bool covered = std::all_of(
            paxos->value.siblings.begin(), paxos->value.siblings.end(),
            [&](const Sibling& s) { return obj->clock.Covers(s.dot); });
        if (!covered) continue;
        store.StagePaxos(e.key, AcceptorState{paxos->promised, paxos->accepted, Object()});
      }
      store.Stage(e.key, Object());  // empty: delete
    }
    r.entries.push_back(e);
  }
  return r;
}

}  // namespace

PeerMessage AnswerRepairRequest(const PeerMessage& msg, LocalStore& store, MerkleSource& source,
                                const RepairLimits& limits, int64_t now_wall_ms,
                                int64_t min_grace_ms) {
  if (const auto* m = std::get_if<TreeRequest>(&msg)) return AnswerTree(*m, source, limits);
  if (const auto* m = std::get_if<LeafRequest>(&msg)) return AnswerLeaves(*m, source, limits);
  if (const auto* m = std::get_if<FetchRequest>(&msg)) return AnswerFetch(*m, store, limits);
  if (const auto* m = std::get_if<PushRequest>(&msg)) return AnswerPush(*m, store, limits);
  const auto& m = std::get<TombstoneRequest>(msg);
  return AnswerTombstones(m, store, source, limits, now_wall_ms, min_grace_ms);
}

// ---- Progress -----------------------------------------------------------------------

namespace {

std::string Hex(std::string_view s) {
  static const char* d = "0123456789abcdef";
  std::string out;
  for (unsigned char c : s) {
    out.push_back(d[c >> 4]);
    out.push_back(d[c & 15]);
  }
  return out.empty() ? "-" : out;
}

bool Unhex(const std::string& h, std::string* out) {
  out->clear();
  if (h == "-") return true;
  if (h.size() % 2) return false;
  auto val = [](char c) -> std::optional<int> {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    return std::nullopt;  // not a lowercase hex digit
  };
  for (size_t i = 0; i < h.size(); i += 2) {
    const std::optional<int> a = val(h[i]), b = val(h[i + 1]);
    if (!a || !b) return false;
    out->push_back(static_cast<char>(*a * 16 + *b));
  }
  return true;
}

template <typename C>
std::string List(const C& c) {
  std::string s;
  for (uint32_t v : c) s += (s.empty() ? "" : ",") + std::to_string(v);
  return s.empty() ? "-" : s;
}

bool ParseList(const std::string& text, std::vector<uint32_t>* out) {
  out->clear();
  if (text == "-") return true;
  std::stringstream ss(text);
  std::string item;
  while (std::getline(ss, item, ',')) {
    if (item.empty() || item.size() > 10 || item.find_first_not_of("0123456789") != std::string::npos) return false;
    const uint64_t v = std::stoull(item);
    if (v > UINT32_MAX) return false;
    out->push_back(static_cast<uint32_t>(v));
  }
  return true;
}

bool ParseSkipped(const std::string& text, std::map<std::string, std::vector<uint32_t>>* out) {
  out->clear();
  if (text == "-") return true;
  std::stringstream ss(text);
  std::string item;
  while (std::getline(ss, item, ';')) {
    const size_t eq = item.find('=');
    std::string node;
    std::vector<uint32_t> parts;
    if (eq == std::string::npos || !Unhex(item.substr(0, eq), &node) || node.empty() ||
        !ParseList(item.substr(eq + 1), &parts)) {
      return false;
    }
    (*out)[node] = std::move(parts);
  }
  return true;
}

}  // namespace

std::string EncodeRepairProgress(const RepairProgress& p) {
  const RepairTotals& t = p.totals;
  std::ostringstream o;
  o << "itsuka-repair-2 " << p.job.id << ' ' << (p.job.dry_run ? 1 : 0) << ' ' << Hex(p.job.node)
    << ' ' << List(p.job.partitions) << ' ' << List(p.finished) << ' ' << List(p.failed) << ' '
    << t.partitions_done << ' ' << t.partitions_failed << ' ' << t.partitions_skipped << ' '
    << t.leaves_differing << ' ' << t.keys_differing << ' ' << t.keys_moved << ' '
    << t.bytes_moved << ' ' << t.tombstones_purged << ' ' << p.elapsed_ms;
  // Record version 2 adds the skipped replicas: "hex(node)=p,p;hex(node)=p" or "-".
  std::string skipped;
  for (const auto& [node, parts] : p.skipped_replicas) {
    skipped += (skipped.empty() ? "" : ";") + Hex(node) + "=" + List(parts);
  }
  o << ' ' << (skipped.empty() ? "-" : skipped);
  return o.str();
}

Result<RepairProgress> DecodeRepairProgress(std::string_view text) {
  std::istringstream in{std::string(text)};
  std::string magic, node, parts, finished, failed;
  int dry = 0;
  RepairProgress p;
  RepairTotals& t = p.totals;
  in >> magic >> p.job.id >> dry >> node >> parts >> finished >> failed >> t.partitions_done >>
      t.partitions_failed >> t.partitions_skipped >> t.leaves_differing >> t.keys_differing >>
      t.keys_moved >> t.bytes_moved >> t.tombstones_purged >> p.elapsed_ms;
  std::vector<uint32_t> fin;
  // Version 1 (before skipped replicas were recorded) reads as having none.
  std::string skipped = "-";
  if (magic == "itsuka-repair-2") in >> skipped;
  if (!in.fail() && !ParseSkipped(skipped, &p.skipped_replicas)) {
    return Status::Corruption("repair progress record: malformed skipped replicas");
  }
  if (in.fail() || (magic != "itsuka-repair-1" && magic != "itsuka-repair-2") || (dry != 0 && dry != 1) || !Unhex(node, &p.job.node) ||
      !ParseList(parts, &p.job.partitions) || !ParseList(finished, &fin) ||
      !ParseList(failed, &p.failed)) {
    return Status::Corruption("repair progress record is malformed");
  }
  p.job.dry_run = dry == 1;
  p.finished.insert(fin.begin(), fin.end());
  return p;
}

// ---- The coordinator ----------------------------------------------------------------

RepairDriver::RepairDriver(std::string self, RepairOptions options)
    : self_(std::move(self)), options_(options) {}

void RepairDriver::SetReachable(const std::string& node, bool up) {
  if (up) {
    unreachable_.erase(node);
  } else if (node != self_) {
    unreachable_.insert(node);
  }
}

Status RepairDriver::Start(RepairProgress progress, int64_t now_ms) {
  if (running_) return Status::Busy("a repair is running");
  if (!ring_) return Status::Unavailable("no ring yet");
  if (progress.job.partitions.empty()) return Status::InvalidArgument("no partition to repair");
  for (uint32_t p : progress.job.partitions) {
    if (p >= ring_->partitions()) return Status::InvalidArgument("no such partition: " + std::to_string(p));
  }
  progress_ = std::move(progress);
  running_ = true;
  started_ms_ = now_ms;
  next_index_ = 0;
  last_error_.clear();
  key_tokens_ = std::max(options_.keys_per_s, static_cast<double>(options_.keys_per_fetch));
  byte_tokens_ = std::max(options_.bytes_per_s, 1.0);
  refilled_ms_ = now_ms;
  ++progress_version_;
  StartNextPartition(now_ms);
  return Status::Ok();
}

void RepairDriver::Stop() {
  if (!running_) return;
  running_ = false;
  partition_.reset();
  waiting_.clear();
  ++progress_version_;
}

int64_t RepairDriver::ElapsedMs(int64_t now_ms) const {
  return progress_.elapsed_ms + (running_ ? now_ms - started_ms_ : 0);
}

std::optional<uint32_t> RepairDriver::current() const { return partition_; }

std::vector<std::pair<std::string, PeerMessage>> RepairDriver::TakeSends() {
  std::vector<std::pair<std::string, PeerMessage>> out;
  out.swap(sends_);
  return out;
}

uint64_t RepairDriver::Send(const std::string& to, PeerMessage msg, int64_t now_ms) {
  deadline_ms_ = now_ms + options_.request_timeout_ms;
  sends_.emplace_back(to, std::move(msg));
  return 0;
}

void RepairDriver::StartNextPartition(int64_t now_ms) {
  const std::vector<uint32_t>& parts = progress_.job.partitions;
  while (next_index_ < parts.size()) {
    const uint32_t p = parts[next_index_++];
    if (progress_.finished.count(p)) continue;
    std::vector<std::string> replicas = ring_->PreferenceList(p, static_cast<size_t>(options_.n));
    if (!progress_.job.node.empty()) {
      auto it = std::find(replicas.begin(), replicas.end(), progress_.job.node);
      if (it == replicas.end()) {
        progress_.finished.insert(p);
        ++progress_.totals.partitions_skipped;
        continue;
      }
      std::rotate(replicas.begin(), it, it + 1);  // the named node first
    }
    partition_ = p;
    partial_ = false;
    // Suspected replicas are left out (recorded), not waited for. With the named node
    // away, every pair would involve it: the partition is skipped.
    std::vector<std::string> kept;
    for (const std::string& r : replicas) {
      if (Away(r)) NoteSkipped(r);
      else kept.push_back(r);
    }
    if (!progress_.job.node.empty() && Away(progress_.job.node)) kept.clear();
    if (kept.size() < 2) {
      partition_.reset();
      progress_.finished.insert(p);
      ++progress_.totals.partitions_skipped;
      ++progress_version_;
      continue;
    }
    replicas_ = std::move(kept);
    pairs_.clear();
    for (size_t i = 1; i < replicas_.size(); ++i) pairs_.emplace_back(0, static_cast<int>(i));
    // After the first pass replica 0 holds the merge of all; the second pass brings it
    // to the replicas synced before the last one.
    for (size_t i = 1; i + 1 < replicas_.size(); ++i) pairs_.emplace_back(0, static_cast<int>(i));
    counted_keys_.clear();
    counted_leaves_.clear();
    pair_ = 0;
    attempts_ = 0;
    StartPair(now_ms);
    return;
  }
  running_ = false;
  partition_.reset();
  progress_.elapsed_ms += now_ms - started_ms_;
  ++progress_version_;
}

void RepairDriver::NoteSkipped(const std::string& node) {
  partial_ = true;
  std::vector<uint32_t>& parts = progress_.skipped_replicas[node];
  if (parts.empty() || parts.back() != *partition_) parts.push_back(*partition_);
}

void RepairDriver::StartPair(int64_t now_ms) {
  // Pairs with a replica the detector suspects are skipped (recorded), not waited for.
  while (pair_ < pairs_.size() && (Away(replicas_[pairs_[pair_].first]) ||
                                   Away(replicas_[pairs_[pair_].second]))) {
    for (int i : {pairs_[pair_].first, pairs_[pair_].second}) {
      if (Away(replicas_[i])) NoteSkipped(replicas_[i]);
    }
    ++pair_;
    attempts_ = 0;
  }
  if (pair_ >= pairs_.size()) return AllPairsDone(now_ms);
  waiting_.clear();
  diff_.clear();
  diff_next_ = 0;
  batch_.clear();
  sides_[0] = Side();
  sides_[0].node = replicas_[pairs_[pair_].first];
  sides_[1] = Side();
  sides_[1].node = replicas_[pairs_[pair_].second];
  phase_ = Phase::kWait;
  deadline_ms_ = now_ms + options_.request_timeout_ms;
  if (unreachable_.count(sides_[0].node) == 0 && unreachable_.count(sides_[1].node) == 0) {
    BeginTree(now_ms);
  }
}

void RepairDriver::BeginTree(int64_t now_ms) {
  level_ = 0;
  indices_ = {0};
  SendTree(now_ms);
}

void RepairDriver::SendTree(int64_t now_ms) {
  phase_ = Phase::kTree;
  for (int s = 0; s < 2; ++s) {
    sides_[s].hashes.reset();
    const uint64_t req = next_req_++;
    waiting_[req] = {s, sides_[s].node};
    Send(sides_[s].node, TreeRequest{req, *partition_, level_, indices_}, now_ms);
  }
}

void RepairDriver::NextLeafChunk(int64_t now_ms) {
  if (leaf_next_ >= leaves_.size()) return PairDone(now_ms);
  const size_t end = std::min(leaves_.size(), leaf_next_ + options_.leaves_per_request);
  chunk_.assign(leaves_.begin() + static_cast<std::ptrdiff_t>(leaf_next_),
                leaves_.begin() + static_cast<std::ptrdiff_t>(end));
  leaf_next_ = end;
  phase_ = Phase::kLeaves;
  for (int s = 0; s < 2; ++s) {
    sides_[s].entries.clear();
    sides_[s].leaves_done = false;
    sides_[s].after_key.clear();
    sides_[s].leaf_cursor = 0;
    SendLeaves(s, now_ms);
  }
}

void RepairDriver::SendLeaves(int s, int64_t now_ms) {
  Side& side = sides_[s];
  const uint64_t req = next_req_++;
  waiting_[req] = {s, side.node};
  std::vector<uint32_t> leaves(chunk_.begin() + static_cast<std::ptrdiff_t>(side.leaf_cursor), chunk_.end());
  Send(side.node, LeafRequest{req, *partition_, std::move(leaves), side.after_key}, now_ms);
}

void RepairDriver::CompareLeaves(int64_t now_ms) {
  std::map<std::string, std::pair<uint64_t, uint64_t>> digests;
  for (const DigestEntry& e : sides_[0].entries) digests[e.key].first = e.digest;
  for (const DigestEntry& e : sides_[1].entries) digests[e.key].second = e.digest;
  diff_.clear();
  diff_next_ = 0;
  for (const auto& [key, d] : digests) {
    if (d.first == d.second) continue;
    if (counted_keys_.insert(key).second) ++progress_.totals.keys_differing;
    DiffKey k;
    k.key = key;
    k.digest[0] = d.first;
    k.digest[1] = d.second;
    diff_.push_back(std::move(k));
  }
  sides_[0].entries.clear();
  sides_[1].entries.clear();
  if (progress_.job.dry_run) {
    diff_.clear();
    return NextLeafChunk(now_ms);
  }
  PumpTransfer(now_ms);
}

void RepairDriver::Refill(int64_t now_ms) {
  const double dt = static_cast<double>(std::max<int64_t>(0, now_ms - refilled_ms_)) / 1000.0;
  refilled_ms_ = now_ms;
  if (options_.keys_per_s > 0) {
    key_tokens_ = std::min(key_tokens_ + dt * options_.keys_per_s,
                           std::max(options_.keys_per_s, 1.0));
  }
  if (options_.bytes_per_s > 0) {
    byte_tokens_ = std::min(byte_tokens_ + dt * options_.bytes_per_s, options_.bytes_per_s);
  }
}

void RepairDriver::PumpTransfer(int64_t now_ms) {
  // Each batch of differing keys is fetched from every side that holds something, merged
  // here, and the merge is pushed only to the sides whose copy differs from it, so a key
  // one replica merely missed moves once.
  phase_ = Phase::kFetch;
  if (diff_next_ >= diff_.size()) return NextLeafChunk(now_ms);
  Refill(now_ms);
  size_t n = std::min(options_.keys_per_fetch, diff_.size() - diff_next_);
  if (options_.keys_per_s > 0) {
    if (key_tokens_ < 1) return;  // Tick comes back
    n = std::min(n, static_cast<size_t>(key_tokens_));
    key_tokens_ -= static_cast<double>(n);
  }
  if (options_.bytes_per_s > 0 && byte_tokens_ <= 0) return;
  batch_.assign(diff_.begin() + static_cast<std::ptrdiff_t>(diff_next_),
                diff_.begin() + static_cast<std::ptrdiff_t>(diff_next_ + n));
  diff_next_ += n;
  for (int s = 0; s < 2; ++s) {
    asked_[s].clear();
    fetched_[s].clear();
    for (const DiffKey& k : batch_) {
      if (k.digest[s] != 0) asked_[s].push_back(k.key);
    }
    if (asked_[s].empty()) continue;
    const uint64_t req = next_req_++;
    waiting_[req] = {s, sides_[s].node};
    Send(sides_[s].node, FetchRequest{req, asked_[s]}, now_ms);
  }
}

void RepairDriver::OnFetched(int64_t now_ms) {
  // Keys a size-bounded reply did not cover go back into the queue.
  std::vector<KeyObject> push[2];
  size_t bytes = 0;
  std::vector<DiffKey> again;
  for (DiffKey& k : batch_) {
    bool complete = true;
    for (int s = 0; s < 2; ++s) {
      if (k.digest[s] != 0 && fetched_[s].count(k.key) == 0) complete = false;
    }
    if (!complete) {
      again.push_back(std::move(k));
      continue;
    }
    auto obj = [&](int s) {
      auto it = fetched_[s].find(k.key);
      return it == fetched_[s].end() ? Object() : it->second;
    };
    const Object a = obj(0), b = obj(1);
    const Object merged = Merge(a, b);
    if (merged.empty()) continue;  // purged from under us: nothing to move
    const size_t size = k.key.size() + ApproxBytes(merged);
    if (!(a == merged)) {
      push[0].push_back(KeyObject{k.key, merged});
      bytes += size;
    }
    if (!(b == merged)) {
      push[1].push_back(KeyObject{k.key, merged});
      bytes += size;
    }
  }
  batch_.clear();
  diff_.insert(diff_.begin() + static_cast<std::ptrdiff_t>(diff_next_),
               std::make_move_iterator(again.begin()), std::make_move_iterator(again.end()));
  byte_tokens_ -= static_cast<double>(bytes);
  progress_.totals.keys_moved += push[0].size() + push[1].size();
  progress_.totals.bytes_moved += bytes;
  phase_ = Phase::kPush;
  for (int s = 0; s < 2; ++s) {
    if (push[s].empty()) continue;
    const uint64_t id = next_req_++;
    waiting_[id] = {s, sides_[s].node};
    Send(sides_[s].node, PushRequest{id, std::move(push[s])}, now_ms);
  }
  if (waiting_.empty()) PumpTransfer(now_ms);
}

void RepairDriver::PairDone(int64_t now_ms) {
  ++pair_;
  attempts_ = 0;
  StartPair(now_ms);
}

void RepairDriver::AllPairsDone(int64_t now_ms) {
  if (progress_.job.dry_run) return FinishPartition(true, now_ms);
  // A skipped replica may hold a value a tombstone here superseded: no purge.
  if (partial_) return FinishPartition(true, now_ms);
  // A partition moving to new owners has replicas this run did not sync (the new ones):
  // one of them may still hold a value a tombstone here superseded. Purge after the move.
  if (moving_.count(*partition_)) return FinishPartition(true, now_ms);
  tomb_after_.clear();
  BeginTombstones(now_ms);
}

void RepairDriver::BeginTombstones(int64_t now_ms) {
  // Every pair of the partition's primaries was synced in this run; only now may a
  // tombstone they all hold be forgotten.
  phase_ = Phase::kTombList;
  tomb_candidates_.clear();
  tomb_replica_ = 0;
  tomb_more_ = false;
  AskTombstones(replicas_[0], TombstoneRequest::Mode::kList, now_ms);
}

void RepairDriver::AskTombstones(const std::string& node, TombstoneRequest::Mode mode,
                                 int64_t now_ms) {
  const uint64_t id = next_req_++;
  waiting_[id] = {std::nullopt, node};
  const bool list = mode == TombstoneRequest::Mode::kList;
  Send(node,
       TombstoneRequest{id, *partition_, mode, options_.tombstone_grace_ms,
                        list ? std::vector<DigestEntry>{} : tomb_candidates_,
                        list ? tomb_after_ : std::string()},
       now_ms);
}

void RepairDriver::TombstonesDone(int64_t now_ms) {
  if (!tomb_more_) return FinishPartition(true, now_ms);
  attempts_ = 0;
  // Only now: a batch that failed half way is listed again from where it started.
  tomb_after_ = tomb_next_after_;
  BeginTombstones(now_ms);  // the next batch, after tomb_after_
}

void RepairDriver::FinishPartition(bool ok, int64_t now_ms) {
  const uint32_t p = *partition_;
  progress_.finished.insert(p);
  if (ok) {
    ++progress_.totals.partitions_done;
    if (!partial_) last_repaired_[p] = now_ms;  // not with a replica left out
  } else {
    ++progress_.totals.partitions_failed;
    progress_.failed.push_back(p);
  }
  ++progress_version_;
  partition_.reset();
  waiting_.clear();
  counted_keys_.clear();
  counted_leaves_.clear();
  StartNextPartition(now_ms);
}

void RepairDriver::Fail(const std::string& why, int64_t now_ms) {
  last_error_ = "partition " + std::to_string(*partition_) + ": " + why;
  if (phase_ == Phase::kTombPurge) {
    // Some replicas purged already: ask the others again (a purge is idempotent), so
    // that a lost message does not leave the tombstone on some replicas only.
    std::vector<std::string> pending;
    for (const auto& [id, w] : waiting_) pending.push_back(w.node);
    waiting_.clear();
    if (++attempts_ >= options_.max_attempts) return FinishPartition(true, now_ms);
    for (const std::string& node : pending) {
      AskTombstones(node, TombstoneRequest::Mode::kPurge, now_ms);
    }
    return;
  }
  waiting_.clear();
  if (phase_ == Phase::kTombList || phase_ == Phase::kTombCheck) {
    // Nothing was purged yet; the pairs are synced either way.
    if (++attempts_ < options_.max_attempts) return BeginTombstones(now_ms);
    return FinishPartition(true, now_ms);
  }
  if (++attempts_ < options_.max_attempts) return StartPair(now_ms);
  FinishPartition(false, now_ms);
}

void RepairDriver::Tick(int64_t now_ms) {
  if (!running_ || !partition_) return;
  if (phase_ == Phase::kWait) {
    if (unreachable_.count(sides_[0].node) == 0 && unreachable_.count(sides_[1].node) == 0) {
      BeginTree(now_ms);
    } else if (now_ms >= deadline_ms_) {
      Fail("replica unreachable", now_ms);
    }
    return;
  }
  if (!waiting_.empty()) {
    const bool pair_phase = phase_ == Phase::kTree || phase_ == Phase::kLeaves ||
                            phase_ == Phase::kFetch || phase_ == Phase::kPush;
    if (pair_phase && (Away(sides_[0].node) || Away(sides_[1].node))) {
      // Suspected while a request was out: skip it now rather than at the timeout
      // (StartPair leaves the pair out).
      attempts_ = 0;
      return Fail("replica " + (Away(sides_[0].node) ? sides_[0].node : sides_[1].node) +
                      " is suspected by the failure detector; skipped",
                  now_ms);
    }
    if (now_ms >= deadline_ms_) Fail("no answer within the request timeout", now_ms);
    return;
  }
  if (phase_ == Phase::kFetch) PumpTransfer(now_ms);  // waiting for the throttle
}

void RepairDriver::OnReply(const std::string& from, const PeerMessage& msg, int64_t now_ms) {
  if (!running_ || !partition_) return;
  const uint64_t req = std::visit(
      [](const auto& m) -> uint64_t {
        if constexpr (requires { m.req_id; }) {
          return m.req_id;
        } else {
          return 0;
        }
      },
      msg);
  auto w = waiting_.find(req);
  if (w == waiting_.end() || w->second.node != from) return;  // stale or misdirected
  const std::optional<int> side = w->second.side;
  waiting_.erase(w);

  if (const auto* r = std::get_if<TreeReply>(&msg); r && phase_ == Phase::kTree && side) {
    return OnTreeReply(from, *r, *side, now_ms);
  }
  if (const auto* r = std::get_if<LeafReply>(&msg); r && phase_ == Phase::kLeaves && side) {
    return OnLeafReply(from, *r, *side, now_ms);
  }
  if (const auto* r = std::get_if<FetchReply>(&msg); r && phase_ == Phase::kFetch && side) {
    return OnFetchReply(from, *r, *side, now_ms);
  }
  if (const auto* r = std::get_if<PushReply>(&msg); r && phase_ == Phase::kPush && side) {
    return OnPushReply(from, *r, now_ms);
  }
  if (const auto* r = std::get_if<TombstoneReply>(&msg); r && !side) {
    if (!r->ok) return Fail(from + ": " + r->error, now_ms);
    if (phase_ == Phase::kTombList || phase_ == Phase::kTombCheck) {
      return OnTombstonesListed(*r, now_ms);
    }
    if (phase_ == Phase::kTombPurge) return OnTombstonesPurged(now_ms);
  }
  Fail(from + ": unexpected reply", now_ms);
}

void RepairDriver::OnTreeReply(const std::string& from, const TreeReply& r, int s,
                               int64_t now_ms) {
  if (!r.ok) return Fail(from + ": " + r.error, now_ms);
  if (r.hashes.size() != indices_.size()) return Fail(from + ": bad tree reply", now_ms);
  sides_[s].hashes = r.hashes;
  sides_[s].depth = r.depth;
  if (!sides_[0].hashes || !sides_[1].hashes) return;
  if (sides_[0].depth != sides_[1].depth || sides_[0].depth == 0 ||
      sides_[0].depth > kMerkleMaxDepth) {
    return Fail("replicas' trees differ in shape (cluster.partitions differs?)", now_ms);
  }
  std::vector<uint32_t> diff;
  for (size_t i = 0; i < indices_.size(); ++i) {
    if ((*sides_[0].hashes)[i] != (*sides_[1].hashes)[i]) diff.push_back(indices_[i]);
  }
  if (diff.empty()) return PairDone(now_ms);
  if (level_ == sides_[0].depth) {
    leaves_ = std::move(diff);
    leaf_next_ = 0;
    for (uint32_t leaf : leaves_) {
      if (counted_leaves_.insert(leaf).second) ++progress_.totals.leaves_differing;
    }
    return NextLeafChunk(now_ms);
  }
  ++level_;
  indices_ = MerkleChildren(diff);
  SendTree(now_ms);
}

void RepairDriver::OnLeafReply(const std::string& from, const LeafReply& r, int s,
                               int64_t now_ms) {
  if (!r.ok) return Fail(from + ": " + r.error, now_ms);
  Side& side = sides_[s];
  for (const DigestEntry& e : r.entries) side.entries.push_back(e);
  if (r.more) {
    if (r.entries.empty()) return Fail(from + ": empty truncated leaf reply", now_ms);
    const std::string& last = r.entries.back().key;
    const uint32_t leaf = MerkleLeafOf(Hash64(last), side.depth);
    auto it = std::find(chunk_.begin() + static_cast<std::ptrdiff_t>(side.leaf_cursor), chunk_.end(), leaf);
    if (it == chunk_.end()) return Fail(from + ": leaf reply out of range", now_ms);
    side.leaf_cursor = static_cast<size_t>(it - chunk_.begin());
    side.after_key = last;
    return SendLeaves(s, now_ms);
  }
  side.leaves_done = true;
  if (sides_[0].leaves_done && sides_[1].leaves_done) CompareLeaves(now_ms);
}

void RepairDriver::OnFetchReply(const std::string& from, const FetchReply& r, int s,
                                int64_t now_ms) {
  if (!r.ok) return Fail(from + ": " + r.error, now_ms);
  // A reply covers a prefix of what was asked, at least one key.
  if (r.objects.empty() || r.objects.size() > asked_[s].size()) {
    return Fail(from + ": bad fetch reply", now_ms);
  }
  for (size_t i = 0; i < r.objects.size(); ++i) {
    if (r.objects[i].key != asked_[s][i]) return Fail(from + ": bad fetch reply", now_ms);
    fetched_[s][r.objects[i].key] = r.objects[i].object;
  }
  if (waiting_.empty()) OnFetched(now_ms);
}

void RepairDriver::OnPushReply(const std::string& from, const PushReply& r, int64_t now_ms) {
  if (!r.ok) return Fail(from + ": " + r.error, now_ms);
  if (waiting_.empty()) PumpTransfer(now_ms);
}

void RepairDriver::OnTombstonesListed(const TombstoneReply& r, int64_t now_ms) {
  if (phase_ == Phase::kTombList) {
    tomb_candidates_ = r.entries;
    tomb_more_ = r.more;
    if (r.more) tomb_next_after_ = r.after_key;
  } else {
    // Keep the candidates this replica confirmed.
    std::set<std::pair<std::string, uint64_t>> held;
    for (const DigestEntry& e : r.entries) held.emplace(e.key, e.digest);
    std::vector<DigestEntry> kept;
    for (DigestEntry& e : tomb_candidates_) {
      if (held.count({e.key, e.digest})) kept.push_back(std::move(e));
    }
    tomb_candidates_ = std::move(kept);
  }
  ++tomb_replica_;
  if (tomb_candidates_.empty()) return TombstonesDone(now_ms);
  if (tomb_replica_ < replicas_.size()) {
    phase_ = Phase::kTombCheck;
    return AskTombstones(replicas_[tomb_replica_], TombstoneRequest::Mode::kCheck, now_ms);
  }
  // Every primary holds every candidate: purge them everywhere.
  phase_ = Phase::kTombPurge;
  for (const std::string& node : replicas_) {
    AskTombstones(node, TombstoneRequest::Mode::kPurge, now_ms);
  }
}

void RepairDriver::OnTombstonesPurged(int64_t now_ms) {
  if (!waiting_.empty()) return;
  progress_.totals.tombstones_purged += tomb_candidates_.size();
  TombstonesDone(now_ms);
}

}  // namespace itsuka::core
