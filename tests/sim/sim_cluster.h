// The simulator's one cluster harness: nodes over one virtual Network and a virtual
// clock, each with its SimStore. Every node is the production core::Node (core/node.h:
// NodeCore, Gossiper and RepairDriver with the glue the daemon runs -- view
// application, transfers allowed once every member knows the new ring, `synced`
// published once committed, the tick cadence), over gossip or over one static view of
// every node, with the hint table when hints are on. The harness does only what
// server::Node does around it: commit each node's store (and hints) before it releases
// the node's outbox, running up to 8 such rounds while the node has gated work left.
//
// Workloads drive it through the client calls (StartPut ... of the node's core, then
// Drain) and see results through Watchers; checkers read the durable stores and views.
// A crash loses what the node had staged but not committed and every request in flight
// (its watchers hear OnCrash); a restart keeps durable data, hints and the member view.
// Deterministic: every random choice comes from rng(), seeded by the test.
// Not thread-safe.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <random>
#include <set>
#include <string>
#include <vector>

#include "core/gossip.h"
#include "core/node.h"
#include "core/node_core.h"
#include "core/repair.h"
#include "server/hint_table.h"
#include "sim_network.h"
#include "sim_store.h"
#include "storage/mem_engine.h"

namespace itsuka::core::sim {

// The peer name of clients that talk to a node as peers do (ForwardConsistent): what a
// node sends to it is a client result.
inline constexpr const char* kClient = "client";

struct ClusterOptions {
  uint32_t partitions = 16;
  NodeOptions node;                // every node's core options
  bool request_ids_per_boot = false;  // each boot's core numbers its requests from (boot << 32)
  int64_t tick_ms = NodeConfig().core_tick_ms;  // the daemon's core tick (20 ms)
  int64_t start_ms = 0;            // the virtual clock at the start
  NetworkOptions network;
  // Sloppy quorum and hinted handoff: a HintTable over a MemEngine per node (the engine
  // survives crashes like the durable store).
  bool hints = false;
  HintLimits hint_limits{6, 1 << 20};
  HandoffOptions handoff;
  bool merkle = false;             // stores are MerkleSources (anti-entropy)
  RepairLimits repair_limits{3, 600, 65536};
  RepairOptions repair;           // every node's repair driver
  // Membership by gossip (views -> rings); otherwise one static ring of every node.
  bool gossip = false;
  int64_t gossip_ms = 100;
  // Test-only broken glue of core::Node, for the checkers' self-test
  // (NodeConfig::unsafe_synced_before_transfer).
  bool unsafe_synced_before_transfer = false;
};

// What a workload or checker hears of the cluster as it runs.
class Watcher {
 public:
  virtual ~Watcher() = default;
  virtual void OnResult(const std::string& /*node*/, const ClientResult& /*r*/) {}
  virtual void OnCrash(const std::string& /*node*/) {}
  virtual void OnWrite(const WriteRecord& /*w*/) {}
  virtual void OnSend(const std::string& /*from*/, const std::string& /*to*/,
                      const PeerMessage& /*msg*/) {}
};

class Cluster {
 public:
  // A cluster of nodes n0..n<static_nodes - 1> booted at once (none with gossip: they
  // are started with Start).
  Cluster(uint64_t seed, ClusterOptions options, int static_nodes = 0);
  ~Cluster();
  Cluster(const Cluster&) = delete;
  Cluster& operator=(const Cluster&) = delete;

  void Watch(Watcher* w) { watchers_.push_back(w); }

  // ---- nodes and faults ----
  // Gossip: starts a node with fresh data knowing `seeds` (or restarts one with its
  // data and persisted view, a new incarnation).
  void Start(const std::string& id, std::vector<std::string> seeds = {});
  void Crash(const std::string& id);
  void Restart(const std::string& id);
  // Cuts every link between `side` and the other nodes (empty: heals them).
  void Partition(const std::set<std::string>& side);
  // Heals every link and restarts every crashed node.
  void Heal();
  void set_drop(double p) { net_.set_drop(p); }
  // An operator's decommission of `target`, entered on node `via`.
  bool Decommission(const std::string& via, const std::string& target);
  // Starts an anti-entropy job on `id`.
  Status StartRepair(const std::string& id, RepairProgress progress);
  const RepairDriver& repair(const std::string& id) const;

  // ---- clients ----
  bool Up(const std::string& id) const;
  // The node clients talk to, and its replication core (for what checkers read).
  Node& node(const std::string& id);
  const NodeCore& core(const std::string& id) const;
  uint64_t NewRequest() { return next_client_req_++; }
  // Commits what `id` staged, then releases its outbox (sends, client results).
  void Drain(const std::string& id);

  // Runs the network and clocks for `ms` of virtual time.
  void Run(int64_t ms);

  // ---- what checkers read ----
  int64_t now() const { return now_; }
  std::mt19937_64& rng() { return rng_; }
  const std::string& trace() const { return trace_; }
  void Note(const std::string& s) { trace_ += s; }
  std::vector<std::string> ids() const;  // every node ever started, in name order
  const SimStore& store(const std::string& id) const { return *nodes_.at(id).store; }
  Object Durable(const std::string& id, const std::string& key) const;
  // The key's replicas by `via`'s ring.
  std::vector<std::string> Replicas(const std::string& via, const std::string& key) const;
  // Gossip: views, the live members (up and kUp), and whether the views agree.
  const View& ViewOf(const std::string& id) const;
  std::vector<std::string> LiveMembers() const;
  bool Settled() const;
  // Hints still stored on live nodes, and the handoff counters summed over the cores
  // that ran (a crash resets a core's counters, not these sums).
  uint64_t StoredHints() const;
  const HandoffStats& handoff_totals() const { return handoff_totals_; }

 private:
  struct SimNode {
    std::unique_ptr<SimStore> store;
    std::unique_ptr<storage::MemEngine> hint_engine;
    std::unique_ptr<server::HintTable> hints;
    std::unique_ptr<Node> node;
    std::vector<std::string> seeds;
    View persisted;  // what the shell keeps in the meta column family
    HandoffStats last_stats;  // of the running core, for handoff_totals_
    uint64_t debug_fp = 0;
    bool up = false;
  };

  SimNode& Create(const std::string& id);
  void Boot(const std::string& id);
  void Tick();
  void Deliver(const Message& m);
  void Send(const std::string& from, const std::string& to, PeerMessage msg);
  void DrainRound(const std::string& id, SimNode& n);
  void CommitHints(SimNode& n);
  void UpdateReachability();
  void BootNode(const std::string& id, SimNode& n);
  NodeOptions CoreOptions();
  void AttachHints(SimNode& n, NodeCore& core);
  MemberState NewIncarnation(const std::string& id, const SimNode& n) const;
  View StaticView() const;
  Outbox TakeOutbox(const std::string& id, SimNode& n);
  const View& ViewOfNode(const SimNode& n) const;
  void DebugRings(const std::string& id, SimNode& n, uint64_t fp);
  void DebugMessage(const char* what, const std::string& from, const std::string& to,
                    const PeerMessage& msg);

  const ClusterOptions options_;
  std::mt19937_64 rng_;
  Network net_;
  std::map<std::string, SimNode> nodes_;
  std::vector<std::string> static_ids_;
  std::vector<Watcher*> watchers_;
  HandoffStats handoff_totals_;
  int64_t now_ = 0;
  uint64_t next_client_req_ = 1;
  uint64_t boots_ = 0;
  std::string trace_;
  std::set<uint64_t> debug_rounds_;  // ITSUKA_SIM_DEBUG_KEY: the key's round ids
};

}  // namespace itsuka::core::sim
