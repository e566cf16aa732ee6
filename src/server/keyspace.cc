#include "server/keyspace.h"

#include <algorithm>
#include <random>

namespace itsuka::server {

KeyspaceCoordinator::KeyspaceCoordinator(std::string self, Store& store, const core::NodeCore& core,
                                         int64_t timeout_ms, SendFn send)
    : self_(std::move(self)),
      store_(store),
      core_(core),
      timeout_ms_(timeout_ms),
      send_(std::move(send)),
      // Random start: a late reply to a previous incarnation's request answers nothing.
      next_req_(std::random_device{}() | (uint64_t{std::random_device{}()} << 32)) {}

void KeyspaceCoordinator::Start(uint64_t client_req, KeyspaceQuery q, int64_t now_ms,
                                int64_t wall_ms) {
  const uint64_t id = next_job_++;
  Job& job = jobs_[id];
  job.client_req = client_req;
  job.q = std::move(q);
  job.counting = job.q.kind != KeyspaceQuery::Kind::kScan;
  if (job.q.kind == KeyspaceQuery::Kind::kKeys) job.q.cursor = core::ScanCursor{};
  StartStep(id, job, now_ms, wall_ms);
  if (jobs_.count(id) != 0) FinishStep(id, now_ms, wall_ms);
}

std::vector<core::ClientResult> KeyspaceCoordinator::TakeResults() {
  std::vector<core::ClientResult> out;
  out.swap(results_);
  return out;
}

uint64_t KeyspaceCoordinator::NewRequest(uint64_t job, const std::string& node) {
  const uint64_t req = next_req_++;
  outstanding_[req] = Outstanding{job, node};
  return req;
}

void KeyspaceCoordinator::Drop(uint64_t job) {
  for (auto it = outstanding_.begin(); it != outstanding_.end();) {
    it = it->second.job == job ? outstanding_.erase(it) : std::next(it);
  }
}

void KeyspaceCoordinator::StartStep(uint64_t id, Job& job, int64_t now_ms, int64_t wall_ms) {
  Drop(id);  // answers to an earlier step that timed out count no more
  job.asked.clear();
  job.answered = 0;
  job.replies.clear();
  job.counts.clear();
  job.deadline_ms = now_ms + timeout_ms_;
  ++job.steps;
  if (!core_.ring()) return Fail(id, Status::Unavailable("no ring yet"));
  if (job.counting) return StartCountStep(id, job, now_ms);
  StartScanStep(id, job, now_ms, wall_ms);
}

void KeyspaceCoordinator::StartScanStep(uint64_t id, Job& job, int64_t, int64_t wall_ms) {
  const core::Ring& ring = *core_.ring();
  const uint32_t p = job.q.cursor.partition;
  const std::vector<std::string> prefs = ring.PreferenceList(p, static_cast<size_t>(core_.EffectiveN()));
  job.need = prefs.size() / 2 + 1;
  std::vector<std::string> targets;
  for (const std::string& n : prefs) {
    if (n == self_ || core_.IsReachable(n)) targets.push_back(n);
  }
  if (targets.size() < job.need) {
    return Fail(id, Status::Unavailable(
                        "SCAN needs " + std::to_string(job.need) + " of partition " +
                        std::to_string(p) + "'s " + std::to_string(prefs.size()) +
                        " primaries, " + std::to_string(targets.size()) + " reachable"));
  }
  // Leaves to ask for: about COUNT keys' worth at this node's density of the partition
  // (the whole rest if it holds none here); the answers stop at kScanMaxKeys anyway.
  const uint32_t leaves = store_.LeavesPerPartition();
  const core::MerkleTree* tree = store_.Tree(p);
  const uint64_t here = tree != nullptr ? tree->keys() : 0;
  const uint64_t want = std::clamp<uint64_t>(job.q.count, 1, core::kScanMaxKeys);
  uint64_t span = here == 0 ? leaves : (want * leaves + here - 1) / here;
  span = std::clamp<uint64_t>(span, 1, leaves);
  job.leaf_end = static_cast<uint32_t>(std::min<uint64_t>(leaves, job.q.cursor.leaf + span));
  core::ScanRequest req{0, p, job.q.cursor.leaf, job.leaf_end, static_cast<uint32_t>(want),
                        job.q.pattern};
  job.asked = targets;
  for (const std::string& n : targets) {
    if (n == self_) {
      core::ScanReply r = store_.ScanLeaves(req, wall_ms);
      ++job.answered;
      if (r.ok) job.replies.push_back(std::move(r));
      continue;
    }
    req.req_id = NewRequest(id, n);
    send_(n, req);
  }
}

void KeyspaceCoordinator::StartCountStep(uint64_t id, Job& job, int64_t) {
  job.need = 0;
  for (const std::string& n : core_.ring()->members()) {
    if (n == self_) {
      job.asked.push_back(n);
      ++job.answered;
      job.counts[n] = store_.value_counts();
    } else if (core_.IsReachable(n)) {
      job.asked.push_back(n);
      send_(n, core::KeyCountRequest{NewRequest(id, n)});
    }
  }
}

void KeyspaceCoordinator::FinishStep(uint64_t id, int64_t now_ms, int64_t wall_ms) {
  // Steps answered entirely here finish at once: a loop, not a recursion (KEYS walks
  // every partition).
  for (;;) {
    auto it = jobs_.find(id);
    if (it == jobs_.end()) return;
    Job& job = it->second;
    if (job.answered < job.asked.size() && now_ms < job.deadline_ms) return;  // waiting
    const int steps = job.steps;
    if (job.counting) {
      FinishCountStep(id, job, now_ms, wall_ms);
    } else {
      FinishScanStep(id, job, now_ms, wall_ms);
    }
    it = jobs_.find(id);
    if (it == jobs_.end() || it->second.steps == steps) return;  // done, or no new step
  }
}

void KeyspaceCoordinator::FinishScanStep(uint64_t id, Job& job, int64_t now_ms, int64_t wall_ms) {
  const uint32_t p = job.q.cursor.partition;
  if (job.replies.size() < job.need) {
    return Fail(id, Status::Unavailable("SCAN needs " + std::to_string(job.need) +
                                        " of partition " + std::to_string(p) +
                                        "'s primaries, " + std::to_string(job.replies.size()) +
                                        " answered"));
  }
  uint32_t next_leaf = 0;
  std::vector<std::string> keys = core::MergeScanReplies(job.replies, &next_leaf);
  next_leaf = std::min(next_leaf, job.leaf_end);
  job.keys.insert(job.keys.end(), std::make_move_iterator(keys.begin()),
                  std::make_move_iterator(keys.end()));
  std::optional<core::ScanCursor> next;
  if (next_leaf < store_.LeavesPerPartition()) {
    next = core::ScanCursor{p, next_leaf};
  } else {
    next = core::NextPartition(p, store_.Partitions());
  }
  if (job.q.kind == KeyspaceQuery::Kind::kKeys && job.keys.size() > job.q.keys_max) {
    return Fail(id, Status::InvalidArgument(
                        "KEYS matched more than cluster.keys_max (" +
                        std::to_string(job.q.keys_max) + ") keys; use SCAN"));
  }
  const bool more = job.q.kind == KeyspaceQuery::Kind::kKeys
                        ? next.has_value()
                        : next.has_value() && job.keys.size() < job.q.count &&
                              job.steps < kMaxStepsPerScan;
  if (more) {
    job.q.cursor = *next;
    return StartStep(id, job, now_ms, wall_ms);
  }
  core::ClientResult r;
  r.client_req = job.client_req;
  r.keys = std::move(job.keys);
  r.cursor = next ? core::EncodeScanCursor(*next) : 0;
  Complete(id, std::move(r));
}

void KeyspaceCoordinator::FinishCountStep(uint64_t id, Job& job, int64_t now_ms, int64_t wall_ms) {
  const core::Ring& ring = *core_.ring();
  const size_t n = static_cast<size_t>(core_.EffectiveN());
  std::vector<std::vector<const std::vector<uint64_t>*>> per(ring.partitions());
  for (uint32_t p = 0; p < ring.partitions(); ++p) {
    for (const std::string& node : ring.PreferenceList(p, n)) {
      auto c = job.counts.find(node);
      if (c != job.counts.end() && c->second.size() == ring.partitions()) per[p].push_back(&c->second);
    }
  }
  uint32_t missing = 0;
  std::optional<uint64_t> total = core::SumPartitionCounts(per, &missing);
  if (!total) {
    return Fail(id, Status::Unavailable("DBSIZE: no primary of partition " +
                                        std::to_string(missing) + " answered"));
  }
  if (job.q.kind == KeyspaceQuery::Kind::kKeys) {
    if (*total > job.q.keys_max) {
      return Fail(id, Status::InvalidArgument(
                          "KEYS would scan " + std::to_string(*total) +
                          " keys, more than cluster.keys_max (" +
                          std::to_string(job.q.keys_max) + "); use SCAN"));
    }
    job.counting = false;
    job.q.count = core::kScanMaxKeys;
    return StartStep(id, job, now_ms, wall_ms);
  }
  core::ClientResult r;
  r.client_req = job.client_req;
  r.count = *total;
  Complete(id, std::move(r));
}

void KeyspaceCoordinator::Complete(uint64_t id, core::ClientResult r) {
  Drop(id);
  jobs_.erase(id);
  results_.push_back(std::move(r));
}

void KeyspaceCoordinator::Fail(uint64_t id, Status st) {
  auto it = jobs_.find(id);
  if (it == jobs_.end()) return;
  core::ClientResult r;
  r.client_req = it->second.client_req;
  r.status = std::move(st);
  Complete(id, std::move(r));
}

void KeyspaceCoordinator::Answer(const std::string& from, const core::PeerMessage& msg,
                                 int64_t wall_ms) {
  if (const auto* m = std::get_if<core::ScanRequest>(&msg)) {
    send_(from, store_.ScanLeaves(*m, wall_ms));
  } else if (const auto* m = std::get_if<core::KeyCountRequest>(&msg)) {
    core::KeyCountReply r;
    r.req_id = m->req_id;
    r.ok = true;
    r.counts = store_.value_counts();
    send_(from, r);
  }
}

void KeyspaceCoordinator::OnMessage(const std::string& from, const core::PeerMessage& msg,
                                    int64_t now_ms, int64_t wall_ms) {
  if (std::holds_alternative<core::ScanRequest>(msg) ||
      std::holds_alternative<core::KeyCountRequest>(msg)) {
    return Answer(from, msg, wall_ms);
  }
  const uint64_t req = std::visit(
      [](const auto& m) -> uint64_t {
        if constexpr (requires { m.req_id; }) return m.req_id;
        return 0;
      },
      msg);
  auto o = outstanding_.find(req);
  if (o == outstanding_.end() || o->second.node != from) return;  // late or not ours
  const uint64_t id = o->second.job;
  outstanding_.erase(o);
  auto it = jobs_.find(id);
  if (it == jobs_.end()) return;
  Job& job = it->second;
  ++job.answered;
  if (const auto* r = std::get_if<core::ScanReply>(&msg)) {
    // A reply must cover at least one leaf, or the cursor would not move.
    if (r->ok && r->next_leaf > job.q.cursor.leaf) job.replies.push_back(*r);
  } else if (const auto* r = std::get_if<core::KeyCountReply>(&msg)) {
    if (r->ok) job.counts[from] = r->counts;
  }
  FinishStep(id, now_ms, wall_ms);
}

void KeyspaceCoordinator::Tick(int64_t now_ms, int64_t wall_ms) {
  std::vector<uint64_t> due;
  for (const auto& [id, job] : jobs_) {
    if (now_ms >= job.deadline_ms) due.push_back(id);
  }
  for (uint64_t id : due) FinishStep(id, now_ms, wall_ms);
}

}  // namespace itsuka::server
