// The simulator's checkers: each states one invariant over what a Cluster holds at the
// end of a run and what its clients recorded, and returns an empty string when it
// holds, otherwise what broke (the first violation found). Tests compose them after
// workloads.h. Linearizability itself is in linearizability.h.
#pragma once

#include <cstdint>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "core/repair.h"
#include "linearizability.h"
#include "sim_cluster.h"
#include "workloads.h"

namespace itsuka::core::sim {

// ---- eventual writes -----------------------------------------------------------------------

// The merge of every node's durable copy of `key`.
Object MergeOfAll(const Cluster& c, const std::string& key);
// Replicas of `key` (by `via`'s ring) whose durable object is not `want`.
std::vector<std::string> Diverging(const Cluster& c, const std::string& via, const std::string& key,
                                   const Object& want);
// How many acknowledged writes already reached every replica (a figure, not an invariant).
int AckedOnEveryReplica(const Cluster& c, const EventualClient& client, const std::string& via);

// Convergence: the replicas of every key hold the merge of all copies.
std::string Converged(const Cluster& c, const std::string& via, const std::vector<std::string>& keys);
// No sibling lost: a write the final object's clock covers but that is not in it was
// seen by another write's context.
std::string NoSiblingLost(const Cluster& c, const EventualClient& client,
                          const std::vector<std::string>& keys);
// No lost update: every acknowledged write is in the merge of all copies, or causally
// superseded by a write whose context saw it.
std::string NoAckedWriteLost(const Cluster& c, const EventualClient& client);

// R+W>N: an eventual read with R = r started after a write of its key was acknowledged
// with W = w, r + w > n, sees that write or a successor (its clock covers the write's
// dot; needs NodeOptions::record_writes). `checked` counts the observations.
std::string QuorumReadsSeeAckedWrites(const EventualClient& client, int n, int* checked);
// No acknowledged write lost: each is in the merge of its key's final replicas (by
// `via`'s ring, none of them in `gone`), or causally superseded by a write whose context
// saw it. For after a heal and a repair.
std::string AckedWritesOnFinalReplicasMerge(const Cluster& c, const EventualClient& client,
                                            const std::string& via,
                                            const std::set<std::string>& gone);

// ---- membership ----------------------------------------------------------------------------

// Every live node sees the departed as left and everybody else as up.
std::string MembershipConverged(const Cluster& c, const std::set<std::string>& left);
// No acknowledged write lost across moves: each is held by one of its key's final
// replicas (none of them departed), before any repair. Keys are written once.
std::string AckedWritesOnFinalReplicas(const Cluster& c, const EventualClient& client,
                                       const std::set<std::string>& left);
// The final replicas of every acknowledged key hold identical objects.
std::string FinalReplicasAgree(const Cluster& c, const EventualClient& client);

// ---- CONSISTENT operations ----------------------------------------------------------------

struct RegisterCounts {
  int ok = 0, ok_reads = 0, ok_writes = 0, unknown = 0, unavailable = 0;
};
RegisterCounts CountRegisterOps(const RegisterClient& reg);
// Every key's CONSISTENT history is linearizable (UNAVAILABLE ops left out as not taken
// effect, unanswered reads as constraining nothing). `checked_ok` counts the ops taken
// in that answered OK.
std::string RegistersLinearizable(const RegisterClient& reg, const std::vector<std::string>& keys,
                                  int* checked_ok);
// A CONSISTENT read started after an eventual write was acknowledged with PW=2 (N=3)
// sees it (its clock covers the write's dot). `checked` counts the observations.
std::string ConsistentReadsSeeEventualWrites(const RegisterClient& reg,
                                             const EventualClient& eventual, int* checked);

// No dot ever names two values, in anything a replica was sent, a reader got, or a
// replica holds (the dotted-version-vector rule, strong writes' dots from one actor).
class DotsNameOneValue : public Watcher {
 public:
  explicit DotsNameOneValue(Cluster* c) { c->Watch(this); }
  void OnSend(const std::string& from, const std::string& to, const PeerMessage& msg) override;
  // Adds what the reads returned and what the stores hold; the first violation.
  std::string Check(const Cluster& c, const RegisterClient& reg);
  // Check, and also the Paxos state every round would carry forward: per key, the value
  // accepted under the highest accepted ballot on any node, against every dot seen.
  // (Lower accepted ballots may hold a proposal that was never chosen, and a later
  // round may legitimately reuse its dot for another value.)
  std::string CheckWithAcceptors(const Cluster& c, const RegisterClient& reg);

 private:
  void Note(const std::string& key, const Object& obj);
  std::map<std::pair<std::string, Dot>, std::string> dots_;
  std::string violation_;
};

// ---- hinted handoff, repair -----------------------------------------------------------------

// Every hint was handed off.
std::string HintsHandedOff(const Cluster& c);

// Repair: every replica of every key holds `expected` (what all replicas held before it
// merged), or nothing if that was tombstones purgeable at `now` with grace 0.
// `purgeable` counts those keys.
std::string RepairConverged(const Cluster& c, const std::map<std::string, Object>& expected,
                            size_t* purgeable);
// The merge of every node's durable copies, by key.
std::map<std::string, Object> MergeOfAllKeys(const Cluster& c);

}  // namespace itsuka::core::sim
