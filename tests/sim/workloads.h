// The simulator's workloads: clients that issue operations through a Cluster and
// record what was acknowledged (EventualClient, RegisterClient), and the fault schedules
// that drive a run (eventual writes and reads under crashes, partitions and loss;
// CONSISTENT register operations with rounds cut short; membership churn; drifting
// replicas then anti-entropy runs). A test composes them with checkers.h. Every random
// choice comes from the cluster's rng(), so a seed replays a run.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "linearizability.h"
#include "sim_cluster.h"

namespace itsuka::core::sim {

using simcheck::Op;

// An acknowledged eventual write.
struct Ack {
  std::string key, value;
  int64_t at = 0;  // when the client saw the ack
  int w = 0;       // the W it was acknowledged with
};

// An answered eventual read.
struct EventualRead {
  std::string via, key;
  int r = 0;
  int64_t invoke = 0, at = 0;  // when it was started, when it was answered
  Object object;               // the merge of the replies
};

// Eventual (non-CONSISTENT) puts, deletes and reads; acknowledged writes (with their
// W), answered reads (with their R, start time and object) and every
// write a coordinator recorded (NodeOptions::record_writes) are kept for the checkers.
class EventualClient : public Watcher {
 public:
  explicit EventualClient(Cluster* c) : c_(c) { c->Watch(this); }

  // W = w, PW = pw; with `ctx`, the write supersedes what that context saw.
  void Put(const std::string& via, const std::string& key, const std::string& value,
           std::optional<VClock> ctx, int w, int pw = 0);
  void Del(const std::string& via, const std::string& key, int w);
  void Get(const std::string& via, const std::string& key, int r);

  const std::vector<Ack>& acked() const { return acked_; }
  const std::vector<EventualRead>& reads() const { return reads_; }
  const std::vector<WriteRecord>& writes() const { return writes_; }
  const std::map<std::string, VClock>& last_read_ctx() const { return last_read_ctx_; }
  int ok_puts() const { return ok_puts_; }
  int ok_deletes() const { return ok_deletes_; }

  void OnResult(const std::string& node, const ClientResult& r) override;
  void OnCrash(const std::string& node) override { pending_.erase(node); }
  void OnWrite(const WriteRecord& w) override { writes_.push_back(w); }

 private:
  struct Pending {
    enum { kPut, kDel, kGet } kind;
    std::string key, value;
    int n = 0;           // W or R
    int64_t invoke = 0;  // when it was started
  };
  void Submit(const std::string& via, Pending what, const WriteSpec& spec, int n, int pw);

  Cluster* c_;
  std::map<std::string, std::map<uint64_t, Pending>> pending_;  // node -> req -> op
  std::vector<Ack> acked_;
  std::vector<EventualRead> reads_;
  std::vector<WriteRecord> writes_;
  std::map<std::string, VClock> last_read_ctx_;
  int ok_puts_ = 0, ok_deletes_ = 0, failed_ = 0;
};

// CONSISTENT operations (core/paxos.h) on registers, recorded as a history for the
// linearizability checker. With `smart_clients`, half the operations go to a node as a
// ForwardConsistent from a client that treats it as the first reachable primary
// (rounds then start on different primaries at once).
class RegisterClient : public Watcher {
 public:
  RegisterClient(Cluster* c, bool smart_clients) : c_(c), smart_(smart_clients) { c->Watch(this); }

  // Starts `op` (its kind, key, value, token); it is updated as it completes.
  void Start(const std::string& via, Op op);
  // A read (value empty) or blind write.
  void ReadOrWrite(const std::string& via, const std::string& key, const std::string& value);

  const std::vector<Op>& history() const { return history_; }
  // The object each answered read returned, by history index.
  const std::map<size_t, Object>& read_objects() const { return read_objects_; }
  bool HasCasContext(const std::string& key) const { return cas_ctx_.count(key) > 0; }
  uint64_t CasToken(const std::string& key) const { return cas_ctx_.at(key).Get(kStrongActor); }

  void OnResult(const std::string& node, const ClientResult& r) override;
  void OnCrash(const std::string& node) override { pending_.erase(node); }  // outcome unknown

 private:
  Cluster* c_;
  const bool smart_;
  std::map<std::string, std::map<uint64_t, size_t>> pending_;  // node -> req -> history index
  std::vector<Op> history_;
  std::map<size_t, Object> read_objects_;
  std::map<std::string, VClock> cas_ctx_;  // key -> clock of its last CONSISTENT read
};

// ---- fault schedules ---------------------------------------------------------------------

// 150 steps of blind and context writes, deletes and reads through random nodes among
// crashes, restarts, partitions and message loss.
void EventualFaults(Cluster& c, EventualClient& client, const std::vector<std::string>& keys);
// Reads every key through every node (R=1, read repair) `rounds` times.
void ReadRepairAll(Cluster& c, EventualClient& client, const std::vector<std::string>& keys,
                   int rounds, int64_t ms_per_round);

// 80 steps of CONSISTENT reads, writes, NX writes, deletes and CAS (and, with
// `eventual`, eventual PW=2 writes) among crashes, partitions, loss, and rounds cut
// short by their coordinator's crash or isolation.
void RegisterFaults(Cluster& c, RegisterClient& reg, EventualClient* eventual,
                    const std::vector<std::string>& keys);

// Membership churn: a 3-node cluster forms, then 6 changes (joins knowing one seed, with
// partitions, crashes mid-transfer and decommissions during a join; decommissions, the
// leaving node maybe dying for good; restarts under message loss), each under a load of
// eventual writes of fresh keys (and, with `reg`, CONSISTENT operations of s0..s2).
struct ChurnOutcome {
  std::string failure;  // the cluster did not form or settle
  int changes = 0;
  std::set<std::string> left;  // decommissioned nodes
};
inline constexpr int kChurnRegisterKeys = 3;
ChurnOutcome MembershipChurn(Cluster& c, EventualClient& client, RegisterClient* reg);

// Blind W=1 writes and deletes of 60 keys (400 ops) among crashes (never of n0, the
// repair coordinator), isolations and loss, so replicas drift; then everything heals.
void DriftingReplicas(Cluster& c);
// One anti-entropy run of every partition by `coordinator` over a network that drops
// `drop` of the messages; returns its totals.
RepairTotals RepairEverything(Cluster& c, const std::string& coordinator, double drop);

}  // namespace itsuka::core::sim
