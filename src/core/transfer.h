// The transfer room of a node: transfer planning, and the client and server sides of
// the partition transfers a move needs (core/gossip.h has the move protocol).
//
//  - Planning (SetRings): when the write ring changes, this node plans to transfer the
//    partitions it gains in the write ring from their read-ring replicas (TransferPlan).
//    What it holds is what it transferred for the last ring it synced to; only a node
//    that never synced (a static ring, a restart) trusts its read ring.
//  - Client side (Tick, OnBatch): one TransferRequest in flight per source, paced by
//    NodeOptions::transfer_interval_ms, retried after request_timeout_ms (this room's
//    timeout rule). Each batch's objects are merged and its Paxos acceptor states folded
//    in (AcceptorMerge), staged, so they are durable before the plan is reported synced.
//    A plan is complete once every partition was transferred from all its read-ring
//    replicas, or all but one unreachable one; Synced() then reports its fingerprint.
//  - Server side (HandleRequest): answers a TransferRequest with a TransferBatch of the wanted
//    partitions' objects and acceptor states, one key's object and state together,
//    bounded in keys, keys examined and bytes.
//  - Progress (progress(), INFO "move_*", itsuka-admin members): the plan's partitions
//    and how many are done (transferred from enough of their sources, the rule of
//    Complete), its sources and how many are done, the keys copied for it, and the
//    batches that failed or timed out. A source's cursor survives every retry, a timeout,
//    an error reply, the source or this node being unreachable for a while: a transfer
//    resumes at the first key it has not merged, it is never restarted from the start
//    of its partitions unless the plan itself changes (a new write ring) or this node
//    restarts.
//  - Transfers start only while Allow(true) (every member knows the write ring).
//  - CONSISTENT across moves: a transfer carries each key's acceptor state with its data,
//    which is what keeps CONSISTENT reads linearizable across a move; see
//    docs/DESIGN.md, §5.6 "CONSISTENT across moves".
//
// No clocks, no I/O. Thread-compatible.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "core/replica_context.h"

namespace itsuka::core {

// What a move's transfers to this node have done so far (all zero when nothing moves
// here).
struct TransferProgress {
  size_t partitions_total = 0;
  size_t partitions_done = 0;
  size_t sources_total = 0;
  size_t sources_done = 0;
  uint64_t keys_copied = 0;       // objects merged for this plan
  uint64_t batches = 0;           // batches merged for this plan
  uint64_t batches_failed = 0;    // error replies and timeouts (each retried from its cursor)
};

// One source's transfer of the current plan, as the operator sees it (ITSUKA.TRANSFERS):
// the partitions wanted from it, what has been merged so far, and when.
struct SourceTransferProgress {
  std::string source;
  std::vector<uint32_t> partitions;
  bool done = false;
  bool reachable = true;
  uint64_t keys = 0;      // objects merged from this source for the current plan
  uint64_t bytes = 0;     // their key and value bytes
  uint64_t batches = 0;   // batches merged
  int64_t started_ms = 0;     // loop time of the first request (0: none sent yet)
  int64_t last_batch_ms = 0;  // loop time of the last merged batch (0: none yet)
};

class Transfers {
 public:
  explicit Transfers(ReplicaContext& ctx) : ctx_(ctx) {}

  // The rings changed (ctx.ring and ctx.write_ring hold them already): plans the
  // transfers a new write ring needs. A write ring already planned for is kept as is.
  void Plan(uint64_t write_fingerprint);
  void Allow(bool allowed) { allowed_ = allowed; }
  // The server side: answers a TransferRequest.
  void HandleRequest(const std::string& from, const TransferRequest& m);
  // A source's TransferBatch to the request `req_id` (owned by this room).
  void OnBatch(uint64_t req_id, const std::string& from, const TransferBatch& m, int64_t now_ms);
  // Sends the next TransferRequest of each unfinished transfer that has none in flight (or
  // whose last one timed out), and records completion.
  void Tick(int64_t now_ms);

  uint64_t synced() const { return synced_; }
  // Partitions still to be transferred.
  size_t pending() const;
  TransferProgress progress() const;
  uint64_t transferred_objects() const { return transferred_objects_; }
  uint64_t transferred_paxos_states() const { return transferred_paxos_states_; }
  // The current plan's sources and their progress (empty once the plan is synced).
  std::vector<SourceTransferProgress> Progress() const;
  // The write-ring fingerprint of the current plan (0: none yet).
  uint64_t plan_fingerprint() const { return plan_fingerprint_; }

 private:
  // What this node transfers from one source.
  struct Source {
    std::set<uint32_t> partitions;
    std::string cursor;
    bool done = false;
    uint64_t req_id = 0;  // the request in flight (0: none)
    int64_t sent_ms = 0;
    int64_t next_ms = 0;  // no request before this (pacing)
    uint64_t keys = 0, bytes = 0, batches = 0;  // merged so far (SourceTransferProgress)
    int64_t started_ms = 0, last_batch_ms = 0;
  };
  // Whether every partition was transferred from enough of its sources.
  bool Complete() const;
  // Partitions of the plan transferred from enough of their sources (Complete's rule),
  // and how many partitions the plan has.
  size_t PartitionsDone(size_t* total) const;
  // The plan is complete: report its ring synced and hold its partitions.
  void MarkSynced();
  // Forgets every source (closing their requests in flight).
  void Clear();
  // Merges a batch's objects and acceptor states; false if the store failed (the batch
  // is then asked for again from the same cursor).
  bool Merge(Source& s, const TransferBatch& m);

  ReplicaContext& ctx_;
  uint64_t plan_fingerprint_ = 0;
  uint64_t synced_ = 0;
  // Partitions this node holds every write of: those of the write ring it last synced
  // to (unset until the first ring, which is trusted). plan_owned_: the planned ring's.
  std::optional<std::set<uint32_t>> held_;
  std::set<uint32_t> plan_owned_;
  std::map<std::string, Source> sources_;  // source -> what this node transfers from it
  uint64_t transferred_objects_ = 0;
  uint64_t transferred_paxos_states_ = 0;
  uint64_t plan_objects_ = 0;
  uint64_t plan_batches_ = 0;
  uint64_t plan_batches_failed_ = 0;
  bool allowed_ = true;
};

}  // namespace itsuka::core
