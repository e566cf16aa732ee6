#include "checkers.h"

#include <algorithm>
#include <cstdio>
#include <cstdlib>

namespace itsuka::core::sim {
namespace {

std::string DotName(const Dot& d) { return d.node + ":" + std::to_string(d.counter); }

bool HasSibling(const Object& o, const Dot& dot) {
  return std::any_of(o.siblings.begin(), o.siblings.end(), [&](const Sibling& s) { return s.dot == dot; });
}

// Whether some write's context saw `dot` of `key`.
bool Superseded(const EventualClient& client, const std::string& key, const Dot& dot) {
  for (const WriteRecord& w : client.writes()) {
    if (w.key == key && w.context.Covers(dot)) return true;
  }
  return false;
}

// The last write a coordinator recorded for key=value (values are unique).
const WriteRecord* RecordOf(const EventualClient& client, const std::string& key,
                            const std::string& value) {
  const WriteRecord* rec = nullptr;
  for (const WriteRecord& w : client.writes()) {
    if (w.key == key && w.value == value) rec = &w;
  }
  return rec;
}

// Each replica's copy of `key`, for failure messages.
std::string DescribeReplicas(const Cluster& c, const std::string& via, const std::string& key) {
  std::string out;
  for (const std::string& id : c.Replicas(via, key)) {
    const auto& d = c.store(id).durable();
    auto it = d.find(key);
    out += id + ":";
    if (it == d.end()) {
      out += "absent ";
      continue;
    }
    out += ToString(it->second.clock) + "[";
    for (const Sibling& sb : it->second.siblings) {
      out += sb.dot.node + "." + std::to_string(sb.dot.counter) + (sb.tombstone ? "T" : "V") + "@" +
             std::to_string(sb.written_at_ms) + " ";
    }
    out += "] ";
  }
  return out;
}

}  // namespace

// ---- eventual writes -----------------------------------------------------------------------

Object MergeOfAll(const Cluster& c, const std::string& key) {
  Object all;
  for (const std::string& id : c.ids()) {
    const auto& d = c.store(id).durable();
    if (auto it = d.find(key); it != d.end()) all = Merge(all, it->second);
  }
  return all;
}

std::vector<std::string> Diverging(const Cluster& c, const std::string& via, const std::string& key,
                                   const Object& want) {
  std::vector<std::string> out;
  for (const std::string& id : c.Replicas(via, key)) {
    if (!(c.Durable(id, key) == want)) out.push_back(id);
  }
  return out;
}

int AckedOnEveryReplica(const Cluster& c, const EventualClient& client, const std::string& via) {
  int n = 0;
  for (const Ack& a : client.acked()) {
    for (const WriteRecord& w : client.writes()) {
      if (w.key != a.key || w.value != a.value) continue;
      bool everywhere = true;
      for (const std::string& id : c.Replicas(via, a.key)) {
        const auto& d = c.store(id).durable();
        auto it = d.find(a.key);
        everywhere = everywhere && it != d.end() && it->second.clock.Covers(w.dot);
      }
      n += everywhere ? 1 : 0;
      break;
    }
  }
  return n;
}

std::string Converged(const Cluster& c, const std::string& via, const std::vector<std::string>& keys) {
  for (const std::string& key : keys) {
    const std::vector<std::string> div = Diverging(c, via, key, MergeOfAll(c, key));
    if (!div.empty()) return "replicas of " + key + " did not converge (e.g. " + div[0] + ")";
  }
  return "";
}

std::string NoSiblingLost(const Cluster& c, const EventualClient& client,
                          const std::vector<std::string>& keys) {
  for (const std::string& key : keys) {
    const Object fin = MergeOfAll(c, key);
    for (const WriteRecord& w : client.writes()) {
      if (w.key != key || !fin.clock.Covers(w.dot)) continue;
      if (!HasSibling(fin, w.dot) && !Superseded(client, key, w.dot)) {
        return "sibling lost: " + key + " " + w.value + " at " + DotName(w.dot);
      }
    }
  }
  return "";
}

std::string NoAckedWriteLost(const Cluster& c, const EventualClient& client) {
  for (const Ack& a : client.acked()) {
    const WriteRecord* rec = RecordOf(client, a.key, a.value);
    if (rec == nullptr) return "acknowledged write " + a.key + "=" + a.value + " was never coordinated";
    const Object fin = MergeOfAll(c, a.key);
    const bool present = std::any_of(fin.siblings.begin(), fin.siblings.end(), [&](const Sibling& s) {
      return s.dot == rec->dot && s.value == a.value;
    });
    if (!present && !(fin.clock.Covers(rec->dot) && Superseded(client, a.key, rec->dot))) {
      return "acknowledged write lost: " + a.key + "=" + a.value;
    }
  }
  return "";
}

std::string QuorumReadsSeeAckedWrites(const EventualClient& client, int n, int* checked) {
  std::map<std::pair<std::string, std::string>, const WriteRecord*> records;  // the last one
  for (const WriteRecord& w : client.writes()) records[{w.key, w.value}] = &w;
  std::map<std::string, std::vector<const Ack*>> acks;  // by key, in ack order
  for (const Ack& a : client.acked()) acks[a.key].push_back(&a);
  for (const EventualRead& rd : client.reads()) {
    for (const Ack* ap : acks[rd.key]) {
      const Ack& a = *ap;
      if (a.at >= rd.invoke) break;
      if (a.w + rd.r <= n) continue;
      auto rit = records.find({a.key, a.value});
      if (rit == records.end()) return "acknowledged write " + a.key + "=" + a.value + " was never coordinated";
      const WriteRecord* rec = rit->second;
      ++*checked;
      if (!rd.object.clock.Covers(rec->dot)) {
        return "R+W>N: R=" + std::to_string(rd.r) + " read of " + rd.key + " through " + rd.via +
               " started at " + std::to_string(rd.invoke) + " missed " + a.value + " (" +
               DotName(rec->dot) + ") acknowledged with W=" + std::to_string(a.w) + " at " +
               std::to_string(a.at) + "; it read " + ToString(rd.object.clock);
      }
    }
  }
  return "";
}

std::string AckedWritesOnFinalReplicasMerge(const Cluster& c, const EventualClient& client,
                                            const std::string& via,
                                            const std::set<std::string>& gone) {
  for (const Ack& a : client.acked()) {
    const WriteRecord* rec = RecordOf(client, a.key, a.value);
    if (rec == nullptr) return "acknowledged write " + a.key + "=" + a.value + " was never coordinated";
    Object fin;
    for (const std::string& r : c.Replicas(via, a.key)) {
      if (gone.count(r)) return "departed node " + r + " is still a replica of " + a.key;
      fin = Merge(fin, c.Durable(r, a.key));
    }
    const bool present = HasSibling(fin, rec->dot);
    if (!present && !(fin.clock.Covers(rec->dot) && Superseded(client, a.key, rec->dot))) {
      std::string where;
      for (const std::string& id : c.ids()) {
        if (HasSibling(c.Durable(id, a.key), rec->dot)) where += " " + id;
      }
      return "acknowledged write lost: " + a.key + "=" + a.value + " (W=" + std::to_string(a.w) +
             ", held by" + (where.empty() ? " nobody" : where) + "; final replicas " +
             DescribeReplicas(c, via, a.key) + ")";
    }
  }
  return "";
}

// ---- membership ----------------------------------------------------------------------------

std::string MembershipConverged(const Cluster& c, const std::set<std::string>& left) {
  for (const std::string& id : c.LiveMembers()) {
    for (const auto& [mid, m] : c.ViewOf(id)) {
      const MemberStatus want = left.count(mid) ? MemberStatus::kLeft : MemberStatus::kUp;
      if (m.status != want) return id + " sees " + mid + " as " + MemberStatusName(m.status);
    }
  }
  return "";
}

std::string AckedWritesOnFinalReplicas(const Cluster& c, const EventualClient& client,
                                       const std::set<std::string>& left) {
  const std::string via = c.LiveMembers()[0];
  for (const Ack& a : client.acked()) {
    bool found = false;
    for (const std::string& r : c.Replicas(via, a.key)) {
      if (left.count(r)) return "left node " + r + " is still a replica of " + a.key;
      for (const Sibling& s : c.Durable(r, a.key).siblings) found = found || s.value == a.value;
    }
    if (found) continue;
    std::string where, reps;
    for (const std::string& id : c.ids()) {
      for (const Sibling& s : c.Durable(id, a.key).siblings) {
        if (s.value == a.value) where += " " + id;
      }
    }
    for (const std::string& r : c.Replicas(via, a.key)) reps += " " + r;
    if (std::getenv("ITSUKA_SIM_TRACE")) std::fprintf(stderr, "%s\n", c.trace().c_str());
    return "acknowledged write lost: " + a.key + " (on" + where + "; replicas" + reps + ")";
  }
  return "";
}

std::string FinalReplicasAgree(const Cluster& c, const EventualClient& client) {
  const std::string via = c.LiveMembers()[0];
  for (const Ack& a : client.acked()) {
    const std::vector<std::string> reps = c.Replicas(via, a.key);
    const std::vector<std::string> div = Diverging(c, via, a.key, c.Durable(reps[0], a.key));
    if (!div.empty()) {
      return "replicas of " + a.key + " did not converge (" + div[0] + " vs " + reps[0] + ")";
    }
  }
  return "";
}

// ---- CONSISTENT operations ----------------------------------------------------------------

RegisterCounts CountRegisterOps(const RegisterClient& reg) {
  RegisterCounts counts;
  for (const Op& op : reg.history()) {
    if (op.ok) {
      ++counts.ok;
      (op.kind == Op::kRead ? counts.ok_reads : counts.ok_writes)++;
    } else if (op.failed) {
      ++counts.unavailable;
    } else {
      ++counts.unknown;
    }
  }
  return counts;
}

std::string RegistersLinearizable(const RegisterClient& reg, const std::vector<std::string>& keys,
                                  int* checked_ok) {
  for (const std::string& key : keys) {
    std::vector<const Op*> ops;
    for (const Op& op : reg.history()) {
      if (op.key != key || op.failed) continue;
      if (op.kind == Op::kRead && !op.ok) continue;  // an unanswered read constrains nothing
      *checked_ok += op.ok ? 1 : 0;
      ops.push_back(&op);
    }
    std::string why;
    if (!simcheck::Linearizable(ops, &why)) {
      std::string failure = "key " + key + ": " + why + "; history:";
      for (const Op& op : reg.history()) {
        if (op.key == key) failure += "\n  " + simcheck::Describe(op) + (op.failed ? " UNAVAILABLE" : "");
      }
      return failure;
    }
  }
  return "";
}

std::string ConsistentReadsSeeEventualWrites(const RegisterClient& reg,
                                             const EventualClient& eventual, int* checked) {
  std::string violation;
  for (const auto& [index, obj] : reg.read_objects()) {
    const Op& op = reg.history()[index];
    for (const Ack& a : eventual.acked()) {
      if (a.key != op.key || a.at >= op.invoke) continue;
      const WriteRecord* rec = RecordOf(eventual, a.key, a.value);
      if (rec == nullptr || rec->dot.node == kStrongActor) continue;
      ++*checked;
      if (!obj.clock.Covers(rec->dot) && violation.empty()) {
        violation = "CONSISTENT read of " + op.key + " at " + std::to_string(op.invoke) +
                    " missed an eventual write acknowledged with PW=2 at " + std::to_string(a.at);
      }
    }
  }
  return violation;
}

void DotsNameOneValue::OnSend(const std::string&, const std::string&, const PeerMessage& msg) {
  if (const auto* w = std::get_if<ReplicaWrite>(&msg)) Note(w->key, w->object);
}

void DotsNameOneValue::Note(const std::string& key, const Object& obj) {
  for (const Sibling& s : obj.siblings) {
    auto [it, inserted] = dots_.emplace(std::make_pair(key, s.dot), s.value);
    if (!inserted && it->second != s.value && violation_.empty()) {
      violation_ = key + ": dot " + DotName(s.dot) + " names both '" + it->second + "' and '" +
                   s.value + "'";
    }
  }
}

std::string DotsNameOneValue::Check(const Cluster& c, const RegisterClient& reg) {
  for (const auto& [index, obj] : reg.read_objects()) Note(reg.history()[index].key, obj);
  for (const std::string& id : c.ids()) {
    for (const auto& [key, obj] : c.store(id).durable()) Note(key, obj);
  }
  return violation_;
}

std::string DotsNameOneValue::CheckWithAcceptors(const Cluster& c, const RegisterClient& reg) {
  std::map<std::string, std::pair<Ballot, Object>> highest;  // key -> highest accepted
  for (const std::string& id : c.ids()) {
    for (const auto& [key, st] : c.store(id).durable_paxos()) {
      if (st.accepted == Ballot()) continue;
      auto it = highest.find(key);
      if (it == highest.end() || it->second.first < st.accepted) highest[key] = {st.accepted, st.value};
    }
  }
  for (const auto& [key, acc] : highest) Note(key, acc.second);
  return Check(c, reg);
}

// ---- hinted handoff, repair -----------------------------------------------------------------

std::string HintsHandedOff(const Cluster& c) {
  if (c.StoredHints() == 0) return "";
  return std::to_string(c.StoredHints()) + " hints not handed off 5 s after the heal";
}

std::map<std::string, Object> MergeOfAllKeys(const Cluster& c) {
  std::map<std::string, Object> all;
  for (const std::string& id : c.ids()) {
    for (const auto& [k, o] : c.store(id).durable()) all[k] = Merge(all[k], o);
  }
  return all;
}

std::string RepairConverged(const Cluster& c, const std::map<std::string, Object>& expected,
                            size_t* purgeable) {
  const std::string via = c.ids()[0];
  std::string failure;
  for (const auto& [key, want] : expected) {
    // Tombstones every replica held are purged by this same run (grace 0).
    const bool purge = Purgeable(want, c.now(), 0);
    *purgeable += purge;
    const std::vector<std::string> wrong = Diverging(c, via, key, purge ? Object() : want);
    if (!wrong.empty() && failure.empty()) {
      failure = "key " + key + " differs on " + wrong.front() + " purgeable " +
                std::to_string(purge) + ": " + DescribeReplicas(c, via, key);
    }
  }
  return failure;
}

}  // namespace itsuka::core::sim
