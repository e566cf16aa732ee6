// The admin commands of the command table (CommandExecutor, server/commands.h) that
// act on the cluster rather than on keys: ITSUKA.MEMBERS, ITSUKA.RING,
// ITSUKA.DECOMMISSION, ITSUKA.REPAIR and INFO's repair section. They parse, check and
// render here; the node state they read and the actions they take come through
// AdminHost (server/admin_host.h).
#include <algorithm>
#include <cctype>
#include <charconv>
#include <climits>
#include <set>

#include "server/commands.h"
#include "wire/resp.h"

namespace itsuka::server {
namespace {

namespace resp = wire::resp;

std::string Upper(std::string s) {
  for (char& c : s) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  return s;
}

std::string JoinIds(const std::vector<std::string>& ids) {
  std::string s;
  for (const std::string& x : ids) s += (s.empty() ? "" : ",") + x;
  return s;
}

// A flat array of alternating field names and values.
template <size_t N>
void AppendFields(const std::pair<const char*, std::string> (&fields)[N], std::string* out) {
  resp::AppendArrayHeader(out, N * 2);
  for (const auto& [k, v] : fields) {
    resp::AppendBulk(out, k);
    resp::AppendBulk(out, v);
  }
}

// "key:value\r\n" lines (ITSUKA.REPAIR STATUS, INFO repair).
class InfoLines {
 public:
  void Add(const std::string& k, const std::string& v) { text_ += k + ":" + v + "\r\n"; }
  std::string Take() { return std::move(text_); }

 private:
  std::string text_;
};

}  // namespace

void CommandExecutor::Members(Session&, std::vector<std::string>&, std::string* out) {
  if (admin_ == nullptr) return resp::AppendError(out, "ERR membership is not available");
  const core::View& view = admin_->MemberView();
  resp::AppendArrayHeader(out, view.size());
  for (const auto& [id, m] : view) {
    const bool self = id == config_.node_id;
    const std::pair<const char*, std::string> fields[] = {
        {"id", id},
        {"status", core::MemberStatusName(m.status)},
        // A member that left is out of the cluster whether or not its process still
        // answers: it is never listed as reachable.
        {"reachable", self ? "self"
                           : m.status == core::MemberStatus::kLeft ? "left"
                           : core_.IsReachable(id)                 ? "yes"
                                                                   : "no"},
        {"client_addr", m.client_addr},
        {"peer_addr", m.peer_addr},
        {"incarnation", std::to_string(m.incarnation)},
        {"version", std::to_string(m.version)},
        {"heartbeat", std::to_string(m.heartbeat)},
        {"synced", m.synced == core::WriteFingerprint(view) ? "yes" : "no"}};
    AppendFields(fields, out);
  }
}

void CommandExecutor::RingCmd(Session&, std::vector<std::string>&, std::string* out) {
  if (admin_ == nullptr) return resp::AppendError(out, "ERR membership is not available");
  const core::Ring& read = *core_.ring();
  const core::Ring& write = *core_.write_ring();
  const size_t n = static_cast<size_t>(config_.n);
  resp::AppendArrayHeader(out, 2);
  const std::pair<const char*, std::string> summary[] = {
      {"version", std::to_string(read.version())},
      {"partitions", std::to_string(read.partitions())},
      {"n", std::to_string(config_.n)},
      {"members", JoinIds(read.members())},
      {"target_members", JoinIds(write.members())},
      {"copying_here", std::to_string(core_.TransfersPending())},
      {"copied_objects", std::to_string(core_.transferred_objects())}};
  AppendFields(summary, out);
  resp::AppendArrayHeader(out, read.partitions());
  for (uint32_t p = 0; p < read.partitions(); ++p) {
    resp::AppendArrayHeader(out, 3);
    resp::AppendBulk(out, std::to_string(p));
    resp::AppendBulk(out, JoinIds(read.PreferenceList(p, n)));
    resp::AppendBulk(out, JoinIds(write.PreferenceList(p, n)));
  }
}

void CommandExecutor::Decommission(Session&, std::vector<std::string>& args, std::string* out) {
  if (admin_ == nullptr) return resp::AppendError(out, "ERR membership is not available");
  const std::string& id = args[1];
  const core::View& view = admin_->MemberView();
  auto it = view.find(id);
  if (it == view.end()) return resp::AppendError(out, "ERR unknown member '" + id + "'");
  if (it->second.status == core::MemberStatus::kLeaving ||
      it->second.status == core::MemberStatus::kLeft) {
    return resp::AppendError(out, std::string("ERR member '") + id + "' is already " +
                                      core::MemberStatusName(it->second.status));
  }
  // Removing it must leave at least one member holding data.
  size_t remaining = 0;
  for (const std::string& m : core::WriteMembers(view)) remaining += m != id;
  if (remaining == 0) return resp::AppendError(out, "ERR cannot decommission the last member");
  // A node gated after a restart (or left) refuses: its view may be stale.
  if (Status st = admin_->Decommission(id); !st.ok()) {
    return resp::AppendError(out, std::string(st.code() == Status::Code::kTryAgain ? "TRYAGAIN "
                                                                                  : "UNAVAILABLE ") +
                                      st.message());
  }
  resp::AppendSimple(out, "OK");
}

// ITSUKA.GATE: the membership gate's state; ITSUKA.GATE OPEN: the operator's override
// for a cluster restarted whole with members that will never return (DESIGN 4.3.1).
void CommandExecutor::Gate(Session&, std::vector<std::string>& args, std::string* out) {
  if (admin_ == nullptr) return resp::AppendError(out, "ERR membership is not available");
  if (args.size() == 1) return resp::AppendBulk(out, admin_->GateSummary());
  if (args.size() != 2 || Upper(args[1]) != "OPEN") {
    return resp::AppendError(out, "ERR syntax error: ITSUKA.GATE [OPEN]");
  }
  if (Status st = admin_->OpenGate(); !st.ok()) return resp::AppendError(out, "ERR " + st.message());
  resp::AppendSimple(out, "OK");
}

void CommandExecutor::Repair(Session&, std::vector<std::string>& args, std::string* out) {
  if (admin_ == nullptr) return resp::AppendError(out, "ERR anti-entropy is not available");
  const std::string sub = Upper(args[1]);
  if (sub == "STATUS" && args.size() == 2) return resp::AppendBulk(out, RepairStatus());
  if (sub == "STOP" && args.size() == 2) {
    Status st = admin_->StopRepair();
    if (!st.ok()) return resp::AppendError(out, "ERR storage: " + st.ToString());
    return resp::AppendSimple(out, "OK");
  }
  if (sub != "START") {
    return resp::AppendError(
        out, "ERR usage: ITSUKA.REPAIR START [PARTITION q] [NODE id] [DRYRUN] | STATUS | STOP");
  }
  RepairStart(args, out);
}

void CommandExecutor::RepairStart(std::vector<std::string>& args, std::string* out) {
  core::RepairProgress p;
  p.job.id = static_cast<uint64_t>(clock_.WallMs());
  const core::Ring& ring = *core_.ring();
  std::optional<uint32_t> only;
  for (size_t i = 2; i < args.size(); ++i) {
    const std::string opt = Upper(args[i]);
    if (opt == "DRYRUN") {
      p.job.dry_run = true;
    } else if (opt == "PARTITION" && i + 1 < args.size()) {
      const std::string& v = args[++i];
      uint64_t q = 0;
      auto [ptr, ec] = std::from_chars(v.data(), v.data() + v.size(), q);
      if (ec != std::errc() || ptr != v.data() + v.size() || q >= ring.partitions()) {
        return resp::AppendError(out, "ERR PARTITION must be a number from 0 to " +
                                          std::to_string(ring.partitions() - 1));
      }
      only = static_cast<uint32_t>(q);
    } else if (opt == "NODE" && i + 1 < args.size()) {
      p.job.node = args[++i];
      const auto& members = ring.members();
      if (std::find(members.begin(), members.end(), p.job.node) == members.end()) {
        return resp::AppendError(out, "ERR NODE '" + p.job.node.substr(0, 128) + "' is not a member");
      }
    } else {
      return resp::AppendError(out, "ERR syntax error at '" + args[i].substr(0, 128) + "'");
    }
  }
  if (only) {
    p.job.partitions.push_back(*only);
  } else {
    for (uint32_t q = 0; q < ring.partitions(); ++q) p.job.partitions.push_back(q);
  }
  const core::RepairDriver& driver = admin_->Repair();
  if (driver.running()) {
    return resp::AppendError(out, "BUSY a repair is running (job " +
                                      std::to_string(driver.progress().job.id) +
                                      "); ITSUKA.REPAIR STATUS or STOP");
  }
  const uint64_t id = p.job.id;
  Status st = admin_->StartRepair(std::move(p));
  if (!st.ok()) return resp::AppendError(out, "ERR " + st.message());
  resp::AppendSimple(out, "OK " + std::to_string(id));
}

std::string CommandExecutor::RepairStatus() const {
  const core::RepairDriver& driver = admin_->Repair();
  const RepairRunState run = admin_->RepairRun();
  const core::RepairProgress& p = driver.progress();
  const core::RepairTotals& t = p.totals;
  std::set<uint32_t> all(p.job.partitions.begin(), p.job.partitions.end());
  InfoLines s;
  s.Add("state", run.state);
  s.Add("job", std::to_string(p.job.id));
  s.Add("dry_run", p.job.dry_run ? "1" : "0");
  s.Add("node", p.job.node.empty() ? "*" : p.job.node);
  s.Add("resumed", run.resumed ? "1" : "0");
  s.Add("partitions_total", std::to_string(all.size()));
  s.Add("partitions_finished", std::to_string(p.finished.size()));
  s.Add("partitions_synced", std::to_string(t.partitions_done));
  s.Add("partitions_failed", std::to_string(t.partitions_failed));
  s.Add("partitions_skipped", std::to_string(t.partitions_skipped));
  s.Add("current_partition", driver.current() ? std::to_string(*driver.current()) : "-");
  s.Add("leaves_differing", std::to_string(t.leaves_differing));
  s.Add("keys_differing", std::to_string(t.keys_differing));
  s.Add("keys_moved", std::to_string(t.keys_moved));
  s.Add("bytes_moved", std::to_string(t.bytes_moved));
  s.Add("tombstones_purged", std::to_string(t.tombstones_purged));
  s.Add("elapsed_ms", std::to_string(driver.ElapsedMs(admin_->NowMs())));
  std::string failed;
  for (uint32_t q : p.failed) failed += (failed.empty() ? "" : ",") + std::to_string(q);
  s.Add("failed_partitions", failed.empty() ? "-" : failed);
  s.Add("last_error", driver.last_error().empty() ? "-" : driver.last_error());
  // Replicas left out because the failure detector suspected them, each with the
  // partitions synced without it: "node:p,p;node:p", or "-".
  std::string skipped;
  size_t partial = 0;
  std::set<uint32_t> partial_set;
  for (const auto& [node, parts] : p.skipped_replicas) {
    std::string list;
    for (uint32_t q : parts) list += (list.empty() ? "" : ",") + std::to_string(q);
    skipped += (skipped.empty() ? "" : ";") + node + ":" + list;
    partial_set.insert(parts.begin(), parts.end());
  }
  partial = partial_set.size();
  s.Add("replicas_skipped", std::to_string(p.skipped_replicas.size()));
  s.Add("partitions_partial", std::to_string(partial));
  s.Add("skipped_replicas", skipped.empty() ? "-" : skipped);
  return s.Take();
}

std::string CommandExecutor::RepairInfo() const {
  if (admin_ == nullptr) return "";
  const RepairRunState run = admin_->RepairRun();
  InfoLines s;
  s.Add("repair_state", run.state);
  s.Add("repair_runs_completed", std::to_string(run.runs_completed));
  s.Add("repair_keys_differing_total", std::to_string(run.cumulative.keys_differing));
  s.Add("repair_keys_moved_total", std::to_string(run.cumulative.keys_moved));
  s.Add("repair_bytes_moved_total", std::to_string(run.cumulative.bytes_moved));
  s.Add("repair_tombstones_purged_total", std::to_string(run.cumulative.tombstones_purged));
  s.Add("repair_partitions_failed_total", std::to_string(run.cumulative.partitions_failed));
  // The current (or last) job's progress, for dashboards (ITSUKA.REPAIR STATUS has more).
  const core::RepairProgress& job = admin_->Repair().progress();
  const std::set<uint32_t> job_partitions(job.job.partitions.begin(), job.job.partitions.end());
  s.Add("repair_job_partitions_total", std::to_string(job_partitions.size()));
  s.Add("repair_job_partitions_finished", std::to_string(job.finished.size()));
  // When partitions were last repaired by a run this node coordinated (since it started).
  const auto& last = admin_->Repair().last_repaired();
  const int64_t now = admin_->NowMs();
  s.Add("repair_partitions_repaired", std::to_string(last.size()));
  if (!last.empty()) {
    int64_t oldest = INT64_MAX, newest = 0;
    for (const auto& [q, at] : last) {
      oldest = std::min(oldest, at);
      newest = std::max(newest, at);
    }
    s.Add("repair_oldest_partition_age_s", std::to_string((now - oldest) / 1000));
    s.Add("repair_newest_partition_age_s", std::to_string((now - newest) / 1000));
  }
  s.Add("repair_interval_s", std::to_string(config_.repair_interval_s));
  s.Add("repair_tombstone_grace_s", std::to_string(config_.repair_tombstone_grace_s));
  s.Add("merkle_keys", std::to_string(store_.merkle_keys()));
  s.Add("merkle_depth", std::to_string(store_.MerkleDepth()));
  s.Add("merkle_rebuild_ms", std::to_string(store_.merkle_rebuild_ms()));
  s.Add("merkle_index_build_ms", std::to_string(store_.merkle_index_build_ms()));
  s.Add("keys_purged", std::to_string(store_.purged_keys()));
  return s.Take();
}

}  // namespace itsuka::server
