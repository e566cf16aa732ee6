// An itsuka node: the event loop, the client listener, the store and its group
// commit, timers and signals. Run() blocks until SIGTERM/SIGINT and a clean shutdown:
// stop accepting, answer what was received, commit, flush, close RocksDB.
#pragma once

#include <algorithm>
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
#include "core/node_core.h"
#include "core/repair.h"
#include "server/admin_host.h"
#include "server/client.h"
#include "server/gossip_membership.h"
#include "server/peers.h"
#include "server/commands.h"
#include "server/stats.h"
#include "server/store.h"
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
    return static_cast<size_t>(std::max(1, core_ ? core_->EffectiveN() : 1));
  }
  void OnClientClosed(uint64_t client_id) override;
  // Over server.max_memory_bytes: closes the clients holding the most partial input
  // (unauthenticated ones first, none under Client::kEvictFloorBytes) until under it.
  void EvictForMemory() override;
  size_t StartGet(uint64_t client_id, uint64_t tag, const std::string& key, int r,
                  int pr) override;
  size_t StartPut(uint64_t client_id, uint64_t tag, const std::string& key, core::WriteSpec spec,
                  int w, int pw) override;
  size_t StartConsistent(uint64_t client_id, uint64_t tag, const std::string& key, bool read,
                         core::WriteSpec spec) override;

  // AdminHost (the admin commands, server/admin_commands.cc)
  const core::View& MemberView() const override { return membership_->view(); }
  void Decommission(const std::string& id) override;
  const core::RepairDriver& Repair() const override { return *repair_; }
  RepairRunState RepairRun() const override {
    return {repair_state_, repair_resumed_, repair_runs_, repair_cumulative_};
  }
  Status StartRepair(core::RepairProgress job) override;
  Status StopRepair() override;

 private:
  explicit Node(const Config& config);
  Status Open();
  void OnAccept(std::unique_ptr<net::TcpConnection> conn);
  void AfterIo();
  bool HasRoundWork() const;
  void PollClients();
  void CloseLimitedClients(int64_t now);
  // With requirepass: at limits.max_unauth_clients (at most half of max_clients)
  // connections not authenticated, closes the oldest of them to make room.
  void CloseOldestUnauthenticated();
  void OnTick();
  void BeginShutdown(const char* why);
  // Commits staged writes, then releases what the core produced: peer messages and
  // client results. If the commit fails nothing is released and every client owed
  // something from this round is closed (its outcome is unknown).
  Status CommitAndRelease();
  std::string ClusterInfo() const;
  std::string HandoffInfo() const;
  // TLS: loads the certificates of tls.port and tls.peers (errors name the file).
  Status OpenTls();
  std::string TlsInfo() const;
  // Anti-entropy: answering locally the driver's requests to this node, persisting its
  // progress (meta "repair/progress") so a run resumes after a restart, and the
  // background schedule (repair.interval_s). Its commands: AdminHost, above.
  core::PeerMessage AnswerRepair(const core::PeerMessage& msg);
  void PumpRepair();
  void PersistRepair();
  void ScheduleRepair();
  // Corruption: starts a repair of the partitions not authoritative here once every
  // member is reachable (retried every few seconds while some stay suspect); a run
  // that started when a partition was already suspect and synced it clears the mark.
  void RepairSuspect();
  void NoteRepairStarted();
  // Clears the suspect mark of each partition the running job has synced (as each
  // finishes, not only at the end of the run).
  void ClearRepairedSuspects();
  // After the member view changed: persist it, rebuild the read and write rings,
  // connect to members learned by gossip, and publish this node's sync.
  void ApplyView();
  void OnGossipTimer();
  void OnPeerMessage(const std::string& from, const core::PeerMessage& msg);
  // Members only (core/peer_checks.h): the message's sender and values checked against
  // the view, the rings and the limits. False (counted, logged, answered) if refused.
  bool AdmitPeerMessage(const std::string& from, const core::PeerMessage& msg);
  // A frame from `from` that decoded to a message whose values the decoder refused
  // (wire::DecodePeerMessage kInvalidArgument): count it, answer a request with an
  // error, and fail the request a refused reply answers.
  void OnPeerRefused(const std::string& from, const wire::PeerRefusal& refusal,
                     const std::string& why);
  // Handles a refusal of `msg` from `from` for `why` (the decoder's or the checks').
  void Refuse(const std::string& from, const core::PeerMessage& msg, const std::string& why);
  // Logs at most one refusal warning a second; the others are counted in the next.
  void LogRefusal(const std::string& text);
  // Clock offsets: ok unless this node's clock is off by more than
  // cluster.max_clock_offset_ms from a majority of its reachable peers (then a
  // -CLOCKSKEW error naming the offset and the setting). *typical_ms: median offset.
  Status ClockCheck(int64_t* typical_ms = nullptr) const;

  Config config_;
  SystemClock clock_;
  net::Loop loop_;
  std::unique_ptr<Engine> engine_;
  std::unique_ptr<Store> store_;
  std::unique_ptr<HintTable> hints_;
  Stats stats_;
  std::unique_ptr<GossipMembership> membership_;
  std::set<std::string> peers_added_;  // members AddPeer was called for
  std::unique_ptr<core::NodeCore> core_;
  std::unique_ptr<PeerTransport> peers_;
  std::unique_ptr<CommandExecutor> executor_;
  // Core request id -> (client id, client tag) of the replicated requests in flight.
  std::unordered_map<uint64_t, std::pair<uint64_t, uint64_t>> requests_;
  uint64_t next_request_ = 1;
  net::Timer core_tick_;
  std::unique_ptr<net::TcpListener> listener_;
  std::shared_ptr<net::TlsContext> client_tls_;  // tls.port's, or null
  std::shared_ptr<net::TlsContext> peer_tls_;    // tls.peers', or null
  std::unique_ptr<net::TcpListener> tls_listener_;
  std::unordered_map<uint64_t, std::unique_ptr<Client>> clients_;
  std::vector<uint64_t> dirty_;
  std::unordered_set<uint64_t> watched_;  // clients polled after each round of I/O
  net::Timer kick_;                       // one more loop round when work is left
  uint64_t next_client_id_ = 1;
  uint64_t commands_at_last_tick_ = 0;
  net::Timer tick_;
  net::Timer gossip_tick_;
  std::vector<std::unique_ptr<net::SignalWatcher>> signals_;
  bool shutting_down_ = false;
  int64_t shutdown_deadline_ms_ = 0;
  int exit_code_ = 0;
  std::unique_ptr<core::RepairDriver> repair_;
  // Repair messages waiting for this round's commit: answers to peers' requests (they
  // may acknowledge merged objects) and the driver's requests.
  std::vector<std::pair<std::string, core::PeerMessage>> repair_out_;
  uint64_t repair_persisted_ = 0;
  bool repair_was_running_ = false;
  bool repair_resumed_ = false;
  std::string repair_state_ = "idle";
  int64_t repair_last_end_ms_ = 0;
  uint64_t repair_runs_ = 0;
  core::RepairTotals repair_cumulative_;
  // Members only / decoders (INFO cluster).
  uint64_t peer_messages_refused_ = 0;   // values the decoder or the limits refused
  uint64_t peer_senders_refused_ = 0;    // from a sender that may not send them
  uint64_t gossip_entries_refused_ = 0;  // member states no flow could have produced
  int64_t last_refusal_log_ms_ = -1000000;
  uint64_t refusals_unlogged_ = 0;
  std::set<uint32_t> repair_covers_suspect_;  // suspect partitions the running job may clear
  int64_t suspect_repair_next_ms_ = 0;
};

}  // namespace itsuka::server
