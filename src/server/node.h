// An itsuka node: the event loop, the client listener, the store and its group
// commit, timers and signals. Run() blocks until SIGTERM/SIGINT and a clean shutdown:
// stop accepting, answer what was received, commit, flush, close RocksDB.
#pragma once

#include <algorithm>
#include <map>
#include <memory>
#include <set>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "itsuka/clock.h"
#include "itsuka/config.h"
#include "itsuka/engine.h"
#include "net/loop.h"
#include "net/tcp.h"
#include "core/node.h"
#include "server/admin_host.h"
#include "server/client.h"
#include "server/gossip_membership.h"
#include "server/metrics.h"
#include "server/metrics_http.h"
#include "server/peers.h"
#include "server/commands.h"
#include "server/stats.h"
#include "server/store.h"
#include "storage/rocksdb_engine.h"
#include "wire/peer_codec.h"

namespace itsuka::server {

class Node : public ClientHost, public AdminHost {
 public:
  // Opens storage and binds the listener; errors name what failed.
  static Result<std::unique_ptr<Node>> Create(const Config& config);
  ~Node() override;

  // Serves until shutdown. Returns the process exit code.
  int Run();
  int port() const { return listener_ ? listener_->port() : 0; }
  int tls_port() const { return tls_listener_ ? tls_listener_->port() : 0; }

  // ClientHost
  const Config& config() const override { return config_; }
  Stats& stats() override { return stats_; }
  CommandExecutor& executor() override { return *executor_; }
  int64_t NowMs() const override { return loop_.NowMs(); }  // ClientHost and AdminHost
  void MarkDirty(uint64_t client_id) override { dirty_.push_back(client_id); }
  void WatchClient(uint64_t client_id) override { watched_.insert(client_id); }
  size_t ReadFanout() const override {
    return static_cast<size_t>(std::max(1, node_ ? node_->core().EffectiveN() : 1));
  }
  void OnClientClosed(uint64_t client_id) override;
  // Over server.max_memory_bytes: closes the clients holding the most partial input
  // (unauthenticated ones first, none under Client::kEvictFloorBytes, none with CLIENT
  // NO-EVICT on) until under it.
  void EvictForMemory() override;
  size_t StartGet(uint64_t client_id, uint64_t tag, const std::string& key, int r,
                  int pr) override;
  size_t StartPut(uint64_t client_id, uint64_t tag, const std::string& key, core::WriteSpec spec,
                  int w, int pw) override;
  size_t StartConsistent(uint64_t client_id, uint64_t tag, const std::string& key, bool read,
                         core::WriteSpec spec) override;
  void StartKeyspace(uint64_t client_id, uint64_t tag, KeyspaceQuery q) override;
  void RecordLatency(const PendingReply& reply) override;

  // AdminHost (the admin commands, server/admin_commands.cc)
  const core::View& MemberView() const override { return node_->view(); }
  Status Decommission(const std::string& id) override;
  std::string GateSummary() const override { return node_->GateSummary(); }
  Status OpenGate() override;
  const core::RepairDriver& Repair() const override { return node_->repair(); }
  RepairRunState RepairRun() const override {
    const core::RepairRuns& r = node_->repair_runs();
    return {r.state, r.resumed, r.completed, r.cumulative};
  }
  Status StartRepair(core::RepairProgress job) override;
  Status StopRepair() override;

 private:
  explicit Node(const Config& config);
  // Open, in steps: the peer identity (before the data directory is touched), the
  // storage engine, the data directory's owner and cluster, the store and hints, the
  // core::Node and the command executor, the anti-entropy trees, TLS, the peer
  // transport, the initial view, a saved repair run, the client listeners.
  Status Open();
  Status LoadPeerIdentity(PeerIdentity* identity);
  Status OpenEngine(storage::RocksOpenInfo* info);
  // The node id the data directory belongs to, and its actor (*actor; a new
  // incarnation for a new directory or after a write-ahead log loss).
  Status CheckDataOwner(bool wal_loss, std::string* actor);
  // Reads (or, for a new directory, has CheckDataOwner record) the data format; refuses
  // one this build does not know. Sets data_format_.
  Status CheckDataFormat();
  Status CheckClusterId(const PeerIdentity& identity);
  Status OpenStore();
  core::NodeConfig MakeNodeConfig(const std::string& actor) const;
  Status OpenNode(const std::string& actor);
  Status BuildRepairTrees(const storage::RocksOpenInfo& info);
  Status OpenPeers(PeerIdentity identity);
  void ResumeSavedRepair();
  Status OpenListeners();
  // Handles the effects of core::Node that go at once (core/node.h).
  void ApplyEffects(core::NodeOutbox& out);
  void ApplyEffects() {
    core::NodeOutbox out = node_->TakeEffects();
    ApplyEffects(out);
  }
  // node_tick_ fired: the tick is due (node_tick_due_).
  void OnNodeTimer();
  // Ticks the core::Node and sets the timer for its next wakeup.
  void RunNodeTick();
  void OnAccept(std::unique_ptr<net::TcpConnection> conn);
  void AfterIo();
  bool HasRoundWork() const;
  void PollClients();
  void CloseLimitedClients(int64_t now);
  // With requirepass: at limits.max_unauth_clients (at most half of max_clients)
  // connections not authenticated, closes the oldest of them to make room.
  void CloseOldestUnauthenticated();
  // Once a second: operations/s, shutdown deadline, client timeouts.
  void OnTick();
  void BeginShutdown(const char* why);
  // Commits staged writes, then releases what the core produced: peer messages and
  // client results. If the commit fails no peer message of the round leaves, and each
  // client result is answered as its core::ClientResult::OnCommitFailure says (-IOERR:
  // not applied, or -TIMEOUT: outcome unknown).
  Status CommitAndRelease();
  std::string ClusterInfo() const;
  std::string HandoffInfo() const;
  // TLS: loads the certificates of tls.port and tls.peers (errors name the file).
  Status OpenTls();
  std::string TlsInfo() const;
  // The metrics.port page (server/metrics.h): INFO's figures and the latency histograms.
  std::string Metrics() const;
  // Once a second: logs at INFO each hint replay's start and finish per target, and the
  // start and finish of partition copies to this node (each transition once).
  void LogStateChanges();
  // Peer messages go to core::Node (admission, routing, gossip); a frame whose values
  // the decoder refused (wire::DecodePeerMessage kInvalidArgument) too, as refused.
  void OnPeerMessage(const std::string& from, const core::PeerMessage& msg);
  void OnPeerRefused(const std::string& from, const wire::PeerRefusal& refusal,
                     const std::string& why);
  // Clock offsets (core::Node::ClockCheck over the transport's estimates).
  Status ClockCheck(int64_t* typical_ms = nullptr) const;

  Config config_;
  SystemClock clock_;
  net::Loop loop_;
  std::unique_ptr<Engine> engine_;
  std::unique_ptr<Store> store_;
  std::unique_ptr<HintTable> hints_;
  Stats stats_;
  std::unique_ptr<GossipMembership> membership_;  // the persisted member view
  std::set<std::string> peers_added_;  // members AddPeer was called for
  std::unique_ptr<core::Node> node_;
  std::unique_ptr<PeerTransport> peers_;
  std::unique_ptr<KeyspaceCoordinator> keyspace_;  // SCAN, KEYS, DBSIZE (server/keyspace.h)
  std::vector<core::ClientResult> keyspace_pending_;  // refusals before it runs
  std::unique_ptr<CommandExecutor> executor_;
  // Core request id -> (client id, client tag) of the replicated requests in flight.
  std::unordered_map<uint64_t, std::pair<uint64_t, uint64_t>> requests_;
  uint64_t next_request_ = 1;
  net::Timer node_tick_;
  // The core tick is due: node_tick_ fired and the after-poll hook runs the tick once
  // this loop iteration's I/O is read (so a reply that arrived is handled before its deadline is
  // judged, even after a stall of this node's loop).
  bool node_tick_due_ = false;
  std::unique_ptr<net::TcpListener> listener_;
  std::shared_ptr<net::TlsContext> client_tls_;  // tls.port's, or null
  std::shared_ptr<net::TlsContext> peer_tls_;    // tls.peers', or null
  std::unique_ptr<net::TcpListener> tls_listener_;
  CommandLatency latency_;
  std::unique_ptr<MetricsHttp> metrics_http_;  // metrics.port, or null
  // LogStateChanges' memory: replays logged as started (target -> hints pending then
  // and the node-wide replayed/failed counters then), partition copies last seen.
  struct ReplayLog {
    uint64_t pending = 0, replayed = 0, failed = 0;
    bool started = false;  // logged as started (the counters are as of then)
  };
  std::map<std::string, ReplayLog> replay_log_;
  size_t moves_logged_ = 0;
  uint64_t objects_at_move_start_ = 0;
  std::unordered_map<uint64_t, std::unique_ptr<Client>> clients_;
  std::vector<uint64_t> dirty_;
  std::unordered_set<uint64_t> watched_;  // clients polled after each round of I/O
  net::Timer kick_;                       // one more loop round when work is left
  uint64_t next_client_id_ = 1;
  // Client connections the open-file limit leaves room for (node.cc); the effective
  // bound is the smaller of this and server.max_clients.
  int64_t client_fd_budget_ = 1 << 30;
  uint64_t commands_at_last_tick_ = 0;
  net::Timer tick_;
  std::vector<std::unique_ptr<net::SignalWatcher>> signals_;
  bool shutting_down_ = false;
  int64_t shutdown_deadline_ms_ = 0;
  int exit_code_ = 0;
  uint32_t data_format_ = 0;  // the data directory's (CheckDataFormat)
};

}  // namespace itsuka::server
