#include "server/node.h"

#include "server/peer_auth.h"
#include "server/data_format.h"

#include <signal.h>
#include <sys/resource.h>

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <random>
#include <set>

#include "common/log.h"
#include "wire/resp.h"

namespace itsuka::server {
namespace {

// A new incarnation of this node's actor: its dots never repeat an earlier one's.
std::string NewActor(const std::string& node_id) {
  std::random_device rd;
  char inc[17];
  std::snprintf(inc, sizeof inc, "%08x%08x", rd(), rd());
  return node_id + "." + inc;
}

// Descriptors kept for everything but client connections: RocksDB's table files
// (storage/rocksdb_engine.cc opens at most 512) with its logs and WAL, the listeners,
// log file and outgoing peer connections (128), and the peer port's own bounds.
int64_t ReservedDescriptors(const Config& c) {
  return 512 + 128 + c.max_peer_connections + c.max_handshaking_peers + 16 /* metrics */;
}

// How many client connections the descriptor limit leaves room for, after raising the
// soft RLIMIT_NOFILE to the hard one. Clients past it would leave RocksDB unable to
// open a file: its write error then stays until a restart (every write -IOERR).
int64_t ClientDescriptorBudget(const Config& c) {
  rlimit lim{};
  if (getrlimit(RLIMIT_NOFILE, &lim) != 0) return c.max_clients;
  if (lim.rlim_cur < lim.rlim_max) {
    rlimit raised = lim;
    raised.rlim_cur = lim.rlim_max;
    if (setrlimit(RLIMIT_NOFILE, &raised) == 0) lim = raised;
  }
  if (lim.rlim_cur == RLIM_INFINITY) return c.max_clients;
  const int64_t budget = static_cast<int64_t>(lim.rlim_cur) - ReservedDescriptors(c);
  return std::max<int64_t>(16, budget);
}

}  // namespace

Node::Node(const Config& config)
    : config_(config),
      node_tick_(loop_, [this] { OnNodeTimer(); }),
      kick_(loop_, [] {}),
      tick_(loop_, [this] { OnTick(); }) {}

Node::~Node() {
  clients_.clear();
  metrics_http_.reset();
  listener_.reset();
  tls_listener_.reset();
  peers_.reset();
  signals_.clear();
}

Result<std::unique_ptr<Node>> Node::Create(const Config& config) {
  std::unique_ptr<Node> node(new Node(config));
  Status st = node->Open();
  if (!st.ok()) return st;
  return node;
}

Status Node::Open() {
  // Peer authentication material first: a node that cannot prove itself must not touch
  // its data directory.
  PeerIdentity identity;
  Status st = LoadPeerIdentity(&identity);
  if (!st.ok()) return st;
  client_fd_budget_ = ClientDescriptorBudget(config_);
  if (client_fd_budget_ < config_.max_clients) {
    LOG_WARN << "server.max_clients " << config_.max_clients << " does not fit the open-file "
             << "limit (RLIMIT_NOFILE less " << ReservedDescriptors(config_)
             << " kept for storage and peers): at most " << client_fd_budget_
             << " clients; raise `ulimit -n` (LimitNOFILE) for more";
  }
  storage::RocksOpenInfo open_info;
  st = OpenEngine(&open_info);
  if (!st.ok()) return st;
  std::string actor;
  st = CheckDataOwner(open_info.wal_corruption_tolerated, &actor);
  if (!st.ok()) return st;
  st = CheckDataFormat();
  if (!st.ok()) return st;
  st = CheckClusterId(identity);
  if (!st.ok()) return st;
  identity.instance_id = actor;
  identity.data_format = data_format_;
  if (identity.insecure) {
    LOG_WARN << "*** cluster.insecure_no_auth is set: peers are NOT authenticated. Anyone who "
                "can reach the peer port can read and write every key and change the "
                "membership. Use cluster.secret_file outside a trusted test network. ***";
  }
  st = OpenStore();
  if (!st.ok()) return st;
  st = OpenNode(actor);
  if (!st.ok()) return st;
  st = BuildRepairTrees(open_info);
  if (!st.ok()) return st;
  st = OpenTls();
  if (!st.ok()) return st;
  executor_->SetTlsInfo([this] { return TlsInfo(); });
  executor_->SetConfigSetter([this](const std::vector<std::pair<std::string, std::string>>& changes) {
    Config next = config_;  // all or none: checked together first
    for (const auto& [name, value] : changes) {
      Status st = SetLiveSetting(&next, name, value);
      if (!st.ok()) return st;
    }
    for (const auto& [name, value] : changes) {
      Status st = SetLiveSetting(&config_, name, value);
      if (!st.ok()) return st;
      LOG_INFO << "CONFIG SET " << name << " = " << value;
    }
    return Status::Ok();
  });
  executor_->SetClientDirectory(
      [this] {
        std::vector<ClientView> all;
        for (auto& [id, c] : clients_) {
          all.push_back({&c->session(), c->input_bytes(), c->accounted(), c->pending_replies()});
        }
        return all;
      },
      [this](uint64_t id) {
        auto it = clients_.find(id);
        if (it == clients_.end() || it->second->closing()) return false;
        it->second->CloseNow();  // the close completes on a later loop turn
        return true;
      });
  st = OpenPeers(std::move(identity));
  if (!st.ok()) return st;
  node_->Start();
  ApplyEffects();
  ResumeSavedRepair();
  return OpenListeners();
}

Status Node::LoadPeerIdentity(PeerIdentity* identity) {
  identity->insecure = config_.insecure_no_auth != 0;
  if (!config_.secret_file.empty()) {
    Result<ClusterSecret> secret = LoadSecretFile(config_.secret_file);
    if (!secret.ok()) return secret.status();
    identity->cluster_id = secret->cluster_id;
    identity->secrets = std::move(secret->secrets);
  } else if (!config_.cluster_id.empty()) {
    FromHex(config_.cluster_id, &identity->cluster_id);  // validated with the config
  }
  return Status::Ok();
}

Status Node::OpenEngine(storage::RocksOpenInfo* info) {
  std::error_code ec;
  std::filesystem::create_directories(config_.data_dir, ec);
  if (ec) {
    return Status::IOError("cannot create node.data_dir '" + config_.data_dir + "': " + ec.message());
  }
  storage::RocksOptions ro;
  ro.path = config_.data_dir;
  ro.block_cache_mb = static_cast<size_t>(config_.block_cache_mb);
  ro.write_buffer_mb = static_cast<size_t>(config_.write_buffer_mb);
  ro.allow_wal_corruption = config_.allow_wal_corruption != 0;
  ro.min_free_bytes = static_cast<uint64_t>(config_.min_free_mb) << 20;
  Result<std::unique_ptr<Engine>> engine = storage::OpenRocksEngine(ro, info);
  if (!engine.ok()) return engine.status();
  engine_ = std::move(engine).value();
  if (info->wal_corruption_tolerated) {
    LOG_ERROR << "STARTING WITH LOST WRITES: " << info->wal_error
              << ". storage.allow_wal_corruption is set, so the node replayed the log up to "
                 "the first bad record and dropped the rest. Every partition is held not "
                 "authoritative (no votes from this node) until a repair has covered it; "
                 "one starts when the other replicas are reachable.";
  }
  return Status::Ok();
}

Status Node::CheckDataOwner(bool wal_loss, std::string* actor) {
  // The data directory remembers whose it is: vector clocks name this node, so a data
  // directory must never be served under another identity.
  std::string owner;
  Status st = engine_->Get(Column::kMeta, "node_id", &owner);
  if (st.ok() && owner != config_.node_id) {
    return Status::InvalidArgument("node.data_dir '" + config_.data_dir + "' belongs to node '" +
                                   owner + "', but node.id is '" + config_.node_id + "'");
  }
  // The actor names this data directory's dots: the node id plus an incarnation chosen
  // when the directory was created. A node whose data was lost starts a new
  // incarnation, so it cannot reissue a dot that other replicas already hold (which
  // would make them drop its new writes as already seen).
  if (st.IsNotFound()) {
    *actor = NewActor(config_.node_id);
    WriteBatch b;
    b.Put(Column::kMeta, "node_id", config_.node_id);
    b.Put(Column::kMeta, "actor", *actor);
    // A new directory's format, with its identity (docs/DESIGN.md 4.12).
    b.Put(Column::kMeta, kDataFormatKey, std::to_string(config_.data_format));
    st = engine_->Write(b, /*sync=*/true);
  } else if (st.ok()) {
    st = engine_->Get(Column::kMeta, "actor", actor);
    if (st.ok() && wal_loss) {
      // Writes this node coordinated may be gone from its log, and with them the
      // highest dots it issued: a new incarnation never reissues one.
      *actor = NewActor(config_.node_id);
      WriteBatch b;
      b.Put(Column::kMeta, "actor", *actor);
      st = engine_->Write(b, /*sync=*/true);
      LOG_WARN << "new incarnation " << *actor << " after the write-ahead log loss";
    }
  }
  if (!st.ok()) return Status::IOError("reading node identity from node.data_dir: " + st.ToString());
  return Status::Ok();
}

Status Node::CheckDataFormat() {
  std::string stored;
  Status st = engine_->Get(Column::kMeta, kDataFormatKey, &stored);
  if (!st.ok() && !st.IsNotFound()) {
    return Status::IOError("reading the data format from node.data_dir: " + st.ToString());
  }
  Result<uint32_t> format = ParseDataFormat(st.IsNotFound() ? std::nullopt
                                                             : std::optional<std::string>(stored));
  if (!format.ok()) {
    return Status::InvalidArgument("node.data_dir '" + config_.data_dir + "': " +
                                   format.status().message());
  }
  data_format_ = *format;
  if (st.IsNotFound()) {
    // A directory from before formats were versioned: format 1, recorded so.
    WriteBatch b;
    b.Put(Column::kMeta, kDataFormatKey, "1");
    st = engine_->Write(b, /*sync=*/true);
    if (!st.ok()) return Status::IOError("recording the data format: " + st.ToString());
  }
  const core::Placement placement = PlacementOfFormat(data_format_);
  st = core::CheckPlacement(static_cast<uint32_t>(config_.partitions), placement);
  if (!st.ok()) return Status::InvalidArgument("node.data_dir '" + config_.data_dir + "': " + st.message());
  LOG_INFO << "data format " << data_format_ << " ("
           << (placement == core::Placement::kSlots ? "Redis Cluster hash-slot" : "XXH3-64")
           << " key placement)";
  if (data_format_ != static_cast<uint32_t>(config_.data_format)) {
    LOG_WARN << "node.data_dir '" << config_.data_dir << "' has data format " << data_format_
             << "; storage.data_format = " << config_.data_format
             << " applies to new data directories only";
  }
  return Status::Ok();
}

Status Node::CheckClusterId(const PeerIdentity& identity) {
  // ... and which cluster: the id made with the cluster's secret (or cluster.id).
  std::string stored;
  Status cs = engine_->Get(Column::kMeta, "cluster_id", &stored);
  if (!cs.ok() && !cs.IsNotFound()) {
    return Status::IOError("reading the cluster id from node.data_dir: " + cs.ToString());
  }
  const std::string source = !config_.secret_file.empty()
                                 ? "cluster.secret_file '" + config_.secret_file + "'"
                                 : std::string("cluster.id");
  if (cs.ok() && !identity.cluster_id.empty() && stored != identity.cluster_id) {
    return Status::InvalidArgument("node.data_dir '" + config_.data_dir + "' belongs to cluster " +
                                   ToHex(stored) + ", but this node is configured for cluster " +
                                   ToHex(identity.cluster_id) + " (" + source + ")");
  }
  if (cs.ok() && identity.cluster_id.empty()) {
    LOG_WARN << "node.data_dir '" << config_.data_dir << "' belongs to cluster " << ToHex(stored)
             << "; insecure mode without cluster.id does not check it";
  }
  if (cs.IsNotFound() && !identity.cluster_id.empty()) {
    WriteBatch b;
    b.Put(Column::kMeta, "cluster_id", identity.cluster_id);
    cs = engine_->Write(b, /*sync=*/true);
    if (!cs.ok()) return Status::IOError("recording the cluster id in node.data_dir: " + cs.ToString());
    LOG_INFO << "node.data_dir '" << config_.data_dir << "' now belongs to cluster "
             << ToHex(identity.cluster_id);
  }
  return Status::Ok();
}

Status Node::OpenStore() {
  store_ = std::make_unique<Store>(*engine_, config_.durability == "fsync",
                                   static_cast<size_t>(config_.object_cache_mb) << 20);
  stats_.start_wall_ms = clock_.WallMs();
  stats_.start_mono_ms = clock_.MonotonicMs();
  if (config_.unsafe_ack_before_quorum != 0) {
    LOG_WARN << "testing.unsafe_ack_before_quorum is set: writes are acknowledged before W "
                "replicas answered. This node is broken on purpose.";
  }
  core::HintLimits hint_limits;
  hint_limits.max_keys_per_target = static_cast<uint64_t>(config_.handoff_max_keys_per_target);
  hint_limits.max_bytes_per_target = static_cast<uint64_t>(config_.handoff_max_bytes_per_target);
  hints_ = std::make_unique<HintTable>(*engine_, hint_limits, [this] { return clock_.WallMs(); });
  Status st = hints_->Load();
  if (!st.ok()) return Status::IOError("reading hints from node.data_dir: " + st.ToString());
  if (hints_->corrupt() > 0) {
    LOG_WARN << hints_->corrupt() << " stored hint(s) do not decode; they are left alone";
  }
  store_->AttachHints(hints_.get());
  return Status::Ok();
}

core::NodeConfig Node::MakeNodeConfig(const std::string& actor) const {
  core::NodeConfig c;
  core::NodeOptions& options = c.core;
  options.n = static_cast<int>(config_.n);
  options.request_timeout_ms = config_.request_timeout_ms;
  options.limits.max_siblings = static_cast<size_t>(config_.max_siblings);
  options.limits.max_bytes = static_cast<size_t>(config_.max_object_bytes);
  options.actor = actor;
  options.transfer_interval_ms = config_.transfer_interval_ms;
  options.unsafe_ack_before_quorum = config_.unsafe_ack_before_quorum != 0;
  // Read-your-writes through this node (core/recent_writes.h): fixed bounds; an entry
  // stays at most a minute and well inside the tombstone grace, and is at most half an
  // object so that a ForwardPut carrying one stays inside the peer frame limit.
  options.recent_writes.window_ms =
      std::min<int64_t>(60000, config_.repair_tombstone_grace_s * 1000 / 4);
  options.recent_writes.max_entry_bytes =
      std::min<size_t>(1u << 20, static_cast<size_t>(config_.max_object_bytes) / 2);
  // A fresh range of request ids per start: replies to the previous life's requests
  // must not match this one's (NodeOptions::first_request_id).
  std::random_device rd;
  options.first_request_id = (uint64_t{rd()} << 24) | 1;
  c.repair.n = static_cast<int>(config_.n);
  c.repair.request_timeout_ms = config_.repair_request_timeout_ms;
  c.repair.keys_per_s = static_cast<double>(config_.repair_keys_per_s);
  c.repair.bytes_per_s = static_cast<double>(config_.repair_bytes_per_s);
  c.repair.tombstone_grace_ms = config_.repair_tombstone_grace_s * 1000;
  c.repair_min_grace_ms = config_.repair_tombstone_grace_s * 1000;
  c.partitions = static_cast<uint32_t>(config_.partitions);
  c.placement = PlacementOfFormat(data_format_);
  c.core_tick_ms = 20;
  c.gossip_interval_ms = config_.gossip_interval_ms;
  c.housekeeping_ms = 1000;
  c.repair_interval_ms = config_.repair_interval_s * 1000;
  c.start_ms = stats_.start_mono_ms;
  c.max_clock_offset_ms = config_.max_clock_offset_ms;
  c.seed = (static_cast<uint64_t>(rd()) << 32) ^ rd();
  c.from_saved_view = membership_ != nullptr && membership_->restored();
  return c;
}

Status Node::OpenNode(const std::string& actor) {
  Result<std::unique_ptr<GossipMembership>> membership = GossipMembership::Open(config_, *engine_);
  if (!membership.ok()) return membership.status();
  membership_ = std::move(membership).value();
  node_ = std::make_unique<core::Node>(membership_->TakeGossiper(), *store_, MakeNodeConfig(actor));
  core::HandoffOptions handoff;
  handoff.sloppy_quorum = config_.sloppy_quorum != 0;
  handoff.max_hint_age_ms = config_.handoff_max_hint_age_s * 1000;
  handoff.rate_keys_per_s = config_.handoff_rate_keys_per_s;
  handoff.max_inflight_per_target = static_cast<size_t>(config_.handoff_max_inflight_per_target);
  node_->core().SetHintStore(hints_.get(), handoff);
  executor_ = std::make_unique<CommandExecutor>(config_, *store_, stats_, clock_, node_->core());
  executor_->SetClusterInfo([this] { return ClusterInfo(); });
  executor_->SetHandoffInfo([this] { return HandoffInfo(); });
  executor_->SetAdminHost(this);
  return Status::Ok();
}

Status Node::BuildRepairTrees(const storage::RocksOpenInfo& info) {
  const int64_t t0 = clock_.MonotonicMs();
  Status st = store_->EnableMerkle(static_cast<uint32_t>(config_.partitions),
                                    PlacementOfFormat(data_format_));
  if (!st.ok()) return Status::IOError("building the anti-entropy trees: " + st.ToString());
  if (info.wal_corruption_tolerated) {
    store_->NoteWalCorruption(info.wal_error);
    st = store_->MarkAllSuspect();
    if (!st.ok()) return Status::IOError("saving the not-authoritative partitions: " + st.ToString());
  }
  if (!store_->suspect().empty()) {
    LOG_WARN << store_->suspect().size()
             << " partition(s) not authoritative here (lost data) until a repair covers them";
  }
  LOG_INFO << "anti-entropy trees: " << store_->merkle_keys() << " keys in "
           << clock_.MonotonicMs() - t0 << " ms (index built in "
           << store_->merkle_index_build_ms() << " ms, trees rebuilt in "
           << store_->merkle_rebuild_ms() << " ms)";
  return Status::Ok();
}

Status Node::OpenPeers(PeerIdentity identity) {
  peers_ = std::make_unique<PeerTransport>(
      loop_, config_, std::move(identity),
      [this](const std::string& from, const core::PeerMessage& msg) { OnPeerMessage(from, msg); },
      [this](const std::string& node, bool up) { node_->SetReachable(node, up); },
      [this](const std::string& why) {
        LOG_ERROR << "cannot serve: " << why;
        exit_code_ = 1;
        BeginShutdown("duplicate node id");
      });
  peers_->SetTls(peer_tls_);
  keyspace_ = std::make_unique<KeyspaceCoordinator>(
      config_.node_id, *store_, node_->core(), config_.request_timeout_ms,
      [this](const std::string& to, const core::PeerMessage& msg) {
        peers_->Send(to, msg);
        peers_->Flush();
      });
  peers_->SetWallClock([this] { return clock_.WallMs(); });
  executor_->SetTtlGuard([this] { return ClockCheck(); });
  peers_->SetRefusedHandler(
      [this](const std::string& from, const wire::PeerRefusal& refusal, const std::string& why) {
        OnPeerRefused(from, refusal, why);
      });
  if (!config_.seeds.empty()) {
    Status st = peers_->Start();
    if (!st.ok()) return st;
  }
  // Until the transport connects, peers are unreachable.
  for (const std::string& seed : config_.seeds) node_->SetReachable(ParseSeed(seed)->id, false);
  return Status::Ok();
}

void Node::ResumeSavedRepair() {
  // A run interrupted by a crash or restart resumes where it was (on the ring the
  // member view just gave).
  std::string saved;
  if (!engine_->Get(Column::kMeta, "repair/progress", &saved).ok()) return;
  Result<core::RepairProgress> p = core::DecodeRepairProgress(saved);
  if (!p.ok()) {
    LOG_WARN << "ignoring the saved repair progress: " << p.status().ToString();
    return;
  }
  node_->ResumeRepair(std::move(p).value(), loop_.NowMs());
  ApplyEffects();
}

Status Node::OpenListeners() {
  // server.port 0 with a TLS port serves TLS only (as redis's "port 0").
  if (config_.port != 0 || config_.tls_port == 0) {
    Result<std::unique_ptr<net::TcpListener>> listener = net::TcpListener::Listen(
        loop_, config_.bind, static_cast<int>(config_.port), 511,
        [this](std::unique_ptr<net::TcpConnection> conn) { OnAccept(std::move(conn)); });
    if (!listener.ok()) {
      return Status::IOError("server.bind/server.port: " + listener.status().message());
    }
    listener_ = std::move(listener).value();
  }
  if (client_tls_) {
    Result<std::unique_ptr<net::TcpListener>> listener = net::TcpListener::Listen(
        loop_, config_.bind, static_cast<int>(config_.tls_port), 511,
        [this](std::unique_ptr<net::TcpConnection> conn) { OnAccept(std::move(conn)); },
        client_tls_);
    if (!listener.ok()) return Status::IOError("tls.port: " + listener.status().message());
    tls_listener_ = std::move(listener).value();
  }
  if (config_.metrics_port != 0) {
    Result<std::unique_ptr<MetricsHttp>> m = MetricsHttp::Listen(
        loop_, config_.bind, static_cast<int>(config_.metrics_port), [this] { return Metrics(); });
    if (!m.ok()) return Status::IOError("metrics.port: " + m.status().message());
    metrics_http_ = std::move(m).value();
    LOG_INFO << "metrics: Prometheus text on http://" << config_.bind << ":"
             << metrics_http_->port() << "/metrics";
  }
  return Status::Ok();
}

std::string Node::Metrics() const {
  MetricsWriter w;
  w.Sample("itsuka_info", "gauge", "this node's identity (value 1)",
           LabelPair("node_id", config_.node_id) + "," +
               LabelPair("cluster_name", config_.cluster_name),
           "1");
  w.AddInfo(executor_->Info("everything"));
  for (const CommandLatency::Entry& e : latency_.All()) {
    w.Histogram("itsuka_command_duration_seconds",
                "client command latency from parse to reply sent, by command and mode",
                LabelPair("command", *e.command) + "," +
                    LabelPair("mode", CommandModeName(e.mode)),
                *e.histogram);
  }
  return w.Text();
}

void Node::LogStateChanges() {
  // Hint replay, per target: starts when a target holding hints is reachable, finishes
  // when it holds none (or becomes unreachable again, which stops the replay). Targets
  // holding hints are remembered while unreachable, so a replay done within one tick
  // is still logged.
  const core::NodeCore& core = node_->core();
  const core::HandoffStats& hs = core.handoff_stats();
  const std::map<std::string, core::HintUsage> usage = hints_->Usage();
  for (const auto& [target, u] : usage) {
    if (u.keys == 0) continue;
    ReplayLog& r = replay_log_[target];
    if (r.started) continue;
    r.pending = std::max<uint64_t>(r.pending, u.keys);
    if (!core.IsReachable(target)) continue;
    // r.pending, not u.keys: the replay may have begun before this tick saw the target
    // reachable, and the hints counted while it was down are the ones to report.
    r = {r.pending, hs.replayed, hs.replay_failed, true};
    LOG_INFO << "hint replay to " << target << " started: " << r.pending << " hints ("
             << u.bytes << " bytes) pending";
  }
  for (auto it = replay_log_.begin(); it != replay_log_.end();) {
    auto u = usage.find(it->first);
    const uint64_t left = u == usage.end() ? 0 : u->second.keys;
    const bool reachable = core.IsReachable(it->first);
    ReplayLog& r = it->second;
    if (left != 0 && (reachable || !r.started)) {
      ++it;
      continue;
    }
    if (!r.started) {
      LOG_INFO << "hint replay to " << it->first << " started: " << r.pending << " hints pending";
    }
    LOG_INFO << "hint replay to " << it->first << (left == 0 ? " finished" : " stopped (unreachable)")
             << ": " << r.pending - std::min(left, r.pending) << " of " << r.pending
             << " hints delivered, " << left << " left (node-wide since the start: "
             << hs.replayed - r.replayed << " replayed, " << hs.replay_failed - r.failed
             << " replay failures)";
    it = replay_log_.erase(it);
  }
  // Moves: partitions this node copies in from their old owners.
  const size_t moving = core.TransfersPending();
  if (moving > 0 && moves_logged_ == 0) {
    objects_at_move_start_ = core.transferred_objects();
    LOG_INFO << "move: copying " << moving << " partition(s) to this node started";
  } else if (moving == 0 && moves_logged_ > 0) {
    LOG_INFO << "move: copying partitions to this node finished: "
             << core.transferred_objects() - objects_at_move_start_ << " objects copied";
  }
  moves_logged_ = moving;
}

void Node::RecordLatency(const PendingReply& reply) {
  latency_.Record(reply.command, static_cast<CommandMode>(reply.mode),
                  MonotonicMicros() - reply.started_us);
}

// ---- core::Node's effects and time -------------------------------------------------

void Node::ApplyEffects(core::NodeOutbox& out) {
  for (const core::LogLine& line : out.logs) {
    switch (line.level) {
      case core::LogLine::Level::kInfo: LOG_INFO << line.text; break;
      case core::LogLine::Level::kWarn: LOG_WARN << line.text; break;
      case core::LogLine::Level::kError: LOG_ERROR << line.text; break;
    }
  }
  for (const core::PeerAddress& a : out.connect) {
    if (peers_->AddPeer(a.id, a.host, a.port) || peers_added_.insert(a.id).second) {
      if (!peers_->IsUp(a.id)) node_->SetReachable(a.id, false);
    }
  }
  if (out.view_changed) {
    Status st = membership_->Persist(node_->view());
    if (!st.ok()) LOG_ERROR << "persisting the member view: " << st.ToString();
  }
  if (out.repair_progress) {
    WriteBatch b;
    b.Put(Column::kMeta, "repair/progress", *out.repair_progress);
    Status st = engine_->Write(b, /*sync=*/false);
    if (!st.ok()) LOG_WARN << "saving repair progress: " << st.ToString();
  }
  for (auto& [to, msg] : out.direct) peers_->Send(to, msg);
  if (out.flush_direct) peers_->Flush();
  for (auto& [from, msg] : out.keyspace) {
    if (keyspace_) keyspace_->OnMessage(from, msg, loop_.NowMs(), clock_.WallMs());
  }
}

void Node::OnNodeTimer() {
  // Timers run before the loop reads its sockets. After a stall of this loop, replies
  // that came in time may still wait unread, and a tick now would time their requests
  // out (-TIMEOUT): the tick runs right after this iteration's poll instead (the
  // after-poll hook), and WantAfterPoll keeps that poll from blocking.
  node_tick_due_ = true;
  loop_.WantAfterPoll();
}

void Node::RunNodeTick() {
  node_tick_due_ = false;
  node_->Tick(loop_.NowMs(), clock_.WallMs());
  if (keyspace_) keyspace_->Tick(loop_.NowMs(), clock_.WallMs());
  ApplyEffects();
  const int64_t now = loop_.NowMs();
  node_tick_.Start(static_cast<uint64_t>(std::max<int64_t>(0, node_->NextWakeup() - now)), 0);
}

Status Node::OpenTls() {
  net::TlsContext::Options o;
  o.cert_file = config_.tls_cert_file;
  o.key_file = config_.tls_key_file;
  o.ca_cert_file = config_.tls_ca_cert_file;
  o.handshake_timeout_ms = static_cast<uint64_t>(config_.tls_handshake_timeout_ms);
  if (config_.tls_port != 0) {
    o.client_certs = config_.tls_auth_clients == "no"         ? net::TlsContext::ClientCerts::kNone
                     : config_.tls_auth_clients == "optional" ? net::TlsContext::ClientCerts::kOptional
                                                              : net::TlsContext::ClientCerts::kRequire;
    Result<std::shared_ptr<net::TlsContext>> tls = net::TlsContext::Create(o);
    if (!tls.ok()) return tls.status();
    client_tls_ = std::move(tls).value();
    LOG_INFO << "tls: client port " << config_.tls_port << ", certificate "
             << client_tls_->description() << ", client certificates "
             << config_.tls_auth_clients;
  }
  if (config_.tls_peers != 0) {
    // Peers always verify each other: the accepting side requires a certificate too.
    o.client_certs = net::TlsContext::ClientCerts::kRequire;
    Result<std::shared_ptr<net::TlsContext>> tls = net::TlsContext::Create(o);
    if (!tls.ok()) return tls.status();
    peer_tls_ = std::move(tls).value();
    LOG_INFO << "tls: peer connections use TLS, certificates verified against "
             << config_.tls_ca_cert_file;
  }
  return Status::Ok();
}

std::string Node::TlsInfo() const {
  std::string s;
  auto kv = [&](const std::string& k, const std::string& v) { s += k + ":" + v + "\r\n"; };
  kv("tls_port", std::to_string(tls_port()));
  kv("tls_auth_clients", client_tls_ ? config_.tls_auth_clients : "");
  kv("tls_peers", peer_tls_ ? "1" : "0");
  const net::TlsContext* any = client_tls_ ? client_tls_.get() : peer_tls_.get();
  kv("tls_certificate", any ? any->description() : "");
  for (const auto& [name, ctx] : {std::pair{"client", client_tls_.get()}, std::pair{"peer", peer_tls_.get()}}) {
    const net::TlsContext::Stats st = ctx ? ctx->stats() : net::TlsContext::Stats{};
    kv(std::string("tls_") + name + "_handshakes", std::to_string(st.handshakes));
    kv(std::string("tls_") + name + "_handshake_failures", std::to_string(st.handshake_failures));
    kv(std::string("tls_") + name + "_errors", std::to_string(st.errors));
  }
  return s;
}

int Node::Run() {
  loop_.SetAfterPollHook([this] {
    if (node_tick_due_) RunNodeTick();
  });
  loop_.SetAfterIoHook([this] { AfterIo(); });
  tick_.Start(1000, 1000);
  node_->StartTicks(loop_.NowMs());
  node_tick_.Start(static_cast<uint64_t>(node_->NextWakeup() - loop_.NowMs()), 0);
  signals_.push_back(std::make_unique<net::SignalWatcher>(loop_, SIGTERM, [this] {
    BeginShutdown("SIGTERM");
  }));
  signals_.push_back(std::make_unique<net::SignalWatcher>(loop_, SIGINT, [this] {
    BeginShutdown("SIGINT");
  }));
  // logrotate: move the file, then SIGHUP; the node continues in a new file.
  signals_.push_back(std::make_unique<net::SignalWatcher>(loop_, SIGHUP, [] {
    std::string error;
    if (ReopenLog(&error)) {
      LOG_INFO << "SIGHUP: log file reopened";
    } else {
      LOG_WARN << "SIGHUP: " << error << "; logging goes on to the old file";
    }
  }));
  ::signal(SIGPIPE, SIG_IGN);
  LOG_INFO << "itsuka node " << config_.node_id << " serving on " << config_.bind << ":"
           << port() << (tls_listener_ ? " and TLS port " + std::to_string(tls_port()) : "")
           << " (data " << config_.data_dir << ", durability " << config_.durability
           << ")";
  LogStateChanges();  // hints kept from before a restart are remembered from the start
  loop_.Run();
  // Anything staged by the last callbacks is committed before RocksDB closes.
  Status st = store_->Commit();
  if (!st.ok()) {
    LOG_ERROR << "final commit failed: " << st.ToString();
    exit_code_ = 1;
  }
  LOG_INFO << "node " << config_.node_id << " stopped";
  return exit_code_;
}

void Node::OnAccept(std::unique_ptr<net::TcpConnection> conn) {
  ++stats_.connections_received;
  if (shutting_down_) {
    conn->Close();
    return;
  }
  if (clients_.size() >= static_cast<size_t>(std::min(config_.max_clients, client_fd_budget_))) {
    ++stats_.rejected_connections;
    std::string err;
    wire::resp::AppendError(&err, "ERR max number of clients reached");
    conn->Write(err);
    conn->Close();  // the reply was handed to the kernel by Write's direct attempt
    return;
  }
  if (!config_.requirepass.empty()) CloseOldestUnauthenticated();
  uint64_t id = next_client_id_++;
  clients_.emplace(id, std::make_unique<Client>(*this, id, std::move(conn)));
  stats_.connected_clients = clients_.size();
}

void Node::OnClientClosed(uint64_t client_id) {
  clients_.erase(client_id);
  stats_.connected_clients = clients_.size();
  if (shutting_down_ && clients_.empty()) loop_.Stop();
}


size_t Node::StartGet(uint64_t client_id, uint64_t tag, const std::string& key, int r, int pr) {
  const uint64_t req = next_request_++;
  requests_.emplace(req, std::make_pair(client_id, tag));
  const uint64_t before = store_->bytes_read();
  node_->StartGet(req, key, r, pr, loop_.NowMs());
  return static_cast<size_t>(store_->bytes_read() - before);
}

size_t Node::StartPut(uint64_t client_id, uint64_t tag, const std::string& key,
                      core::WriteSpec spec, int w, int pw) {
  const uint64_t req = next_request_++;
  requests_.emplace(req, std::make_pair(client_id, tag));
  const uint64_t before = store_->bytes_read();
  node_->StartPut(req, key, std::move(spec), w, pw, loop_.NowMs());
  return static_cast<size_t>(store_->bytes_read() - before);
}

size_t Node::StartConsistent(uint64_t client_id, uint64_t tag, const std::string& key, bool read,
                             core::WriteSpec spec) {
  const uint64_t req = next_request_++;
  requests_.emplace(req, std::make_pair(client_id, tag));
  const uint64_t before = store_->bytes_read();
  node_->StartConsistent(req, key, read, std::move(spec), loop_.NowMs());
  return static_cast<size_t>(store_->bytes_read() - before);
}

void Node::StartKeyspace(uint64_t client_id, uint64_t tag, KeyspaceQuery q) {
  const uint64_t req = next_request_++;
  requests_.emplace(req, std::make_pair(client_id, tag));
  if (!keyspace_) {
    core::ClientResult r;
    r.client_req = req;
    r.status = Status::Unavailable("the keyspace coordinator is not running");
    keyspace_pending_.push_back(std::move(r));
    return;
  }
  keyspace_->Start(req, std::move(q), loop_.NowMs(), clock_.WallMs());
}

Status Node::CommitAndRelease() {
  // core::Node answers the repair driver's requests to this node (staging what they
  // merge) and hands over the round; what goes at once is handled before the commit.
  core::NodeOutbox out = node_->TakeOutbox(loop_.NowMs(), clock_.WallMs());
  ApplyEffects(out);
  // Keyspace results depend on nothing staged (kStands).
  if (keyspace_) {
    for (core::ClientResult& r : keyspace_->TakeResults()) out.results.push_back(std::move(r));
  }
  for (core::ClientResult& r : keyspace_pending_) out.results.push_back(std::move(r));
  keyspace_pending_.clear();
  Status st = store_->Commit();
  std::vector<uint64_t> dirty;
  dirty.swap(dirty_);
  if (st.ok()) {
    for (auto& [to, msg] : out.sends) peers_->Send(to, msg);
    peers_->Flush();
  }
  if (!st.ok()) {
    // Nothing staged in this round is durable and none of its peer messages left.
    // Results that depend on the round are answered with what that means (see
    // core::ClientResult::OnCommitFailure); writes staged this round still waiting
    // for acks are answered by the core (CommitFailed) with the same -IOERR.
    ++stats_.commit_failures;
    if (stats_.commit_failures == 1 || stats_.commit_failures % 1000 == 0) {
      LOG_ERROR << "commit failed: " << st.ToString() << " (" << stats_.commit_failures
                << " so far); writes of this round answered -IOERR (not applied)";
    }
  }
  // What a write staged in a round whose commit failed is told (README "Corruption and
  // I/O errors"): -IOERR, which like -UNAVAILABLE means not applied.
  const Status not_applied =
      st.ok() ? Status::Ok()
              : Status::IOError("local storage write failed (" + st.message() +
                                "): not applied, nothing was stored on this node or sent to "
                                "other replicas");
  if (!st.ok()) node_->CommitFailed(not_applied);
  for (core::ClientResult& r : out.results) {
    auto it = requests_.find(r.client_req);
    if (it == requests_.end()) continue;
    auto [client_id, tag] = it->second;
    requests_.erase(it);
    auto c = clients_.find(client_id);
    if (c == clients_.end()) continue;
    if (!st.ok()) {
      using F = core::ClientResult::OnCommitFailure;
      if (r.on_commit_failure == F::kNotApplied) {
        r.status = not_applied;
        r.object = core::Object();
      } else if (r.on_commit_failure == F::kUnknown) {
        r.status = Status::Timeout("local storage write failed (" + st.message() +
                                   "); other replicas may hold the proposal (outcome unknown)");
        r.object = core::Object();
      }
    }
    c->second->OnResult(tag, std::move(r));
  }
  dirty.insert(dirty.end(), dirty_.begin(), dirty_.end());  // marked by OnResult
  dirty_.clear();
  for (uint64_t id : dirty) {
    auto c = clients_.find(id);
    if (c != clients_.end()) c->second->Flush();
  }
  return st;
}

std::string Node::ClusterInfo() const {
  // cluster_enabled first: redis-py's RedisCluster reads it (1 only with hash slots).
  std::string s = std::string("cluster_enabled:") + (data_format_ >= 2 ? "1" : "0") + "\r\n";
  s += "data_format:" + std::to_string(data_format_) + "\r\n";
  s += "cluster_name:" + config_.cluster_name + "\r\n";
  const core::NodeCore& core = node_->core();
  s += "client_writes_coordinated:" + std::to_string(core.writes_coordinated()) + "\r\n";
  s += "client_writes_forwarded:" + std::to_string(core.writes_forwarded()) + "\r\n";
  s += "members:" + std::to_string(core.ring()->members().size()) + "\r\n";
  s += "n:" + std::to_string(config_.n) + "\r\n";
  s += "partitions:" + std::to_string(config_.partitions) + "\r\n";
  int i = 0;
  for (const std::string& peer : peers_->Describe()) {
    s += "peer" + std::to_string(i++) + ":" + peer + "\r\n";
  }
  const PeerStats& ps = peers_->stats();
  s += "peer_messages_sent:" + std::to_string(ps.messages_sent) + "\r\n";
  s += "peer_messages_received:" + std::to_string(ps.messages_received) + "\r\n";
  s += "peer_messages_dropped:" + std::to_string(ps.messages_dropped) + "\r\n";
  s += "peer_messages_oversized:" + std::to_string(ps.messages_oversized) + "\r\n";
  s += "peer_messages_unsupported:" + std::to_string(ps.messages_unsupported) + "\r\n";
  s += "peer_protocol:" + std::to_string(core::kMinPeerProtocolVersion) + "-" +
       std::to_string(config_.max_protocol_version != 0 ? config_.max_protocol_version
                                                        : core::kPeerProtocolVersion) + "\r\n";
  s += "peer_connections_refused:" + std::to_string(ps.connections_refused) + "\r\n";
  s += "peer_handshakes_timed_out:" + std::to_string(ps.handshakes_timed_out) + "\r\n";
  s += std::string("peer_auth:") +
       (peers_->insecure() ? "off" : !config_.secret_file.empty() ? "on" : "no_peer_port") + "\r\n";
  s += "cluster_id:" + ToHex(peers_->cluster_id()) + "\r\n";
  s += "peer_handshakes_refused:" + std::to_string(ps.handshakes_refused) + "\r\n";
  s += "peer_auth_failures:" + std::to_string(ps.auth_failures) + "\r\n";
  s += "peer_duplicate_nodes_refused:" + std::to_string(ps.duplicate_nodes_refused) + "\r\n";
  s += "peer_connections_handshaking:" + std::to_string(ps.handshaking) + "\r\n";
  s += "peer_connections_authenticated:" + std::to_string(ps.authenticated) + "\r\n";
  s += "peer_buffer_bytes:" + std::to_string(ps.buffer_bytes) + "\r\n";
  s += "peer_reads_paused:" + std::to_string(ps.reads_paused) + "\r\n";
  s += "peer_local_pauses:" + std::to_string(ps.local_pauses) + "\r\n";
  s += "peer_convictions_held:" + std::to_string(ps.convictions_held) + "\r\n";
  s += "peer_silent_reconnects:" + std::to_string(ps.silent_reconnects) + "\r\n";
  const core::NodeStats& ns = node_->stats();
  s += "peer_messages_refused:" + std::to_string(ns.peer_messages_refused) + "\r\n";
  s += "peer_senders_refused:" + std::to_string(ns.peer_senders_refused) + "\r\n";
  s += "peer_stale_ring_refused:" + std::to_string(ns.peer_stale_ring_refused) + "\r\n";
  s += "peer_left_sender_refused:" + std::to_string(ns.peer_left_sender_refused) + "\r\n";
  s += "ring_catchups:" + std::to_string(ns.ring_catchups) + "\r\n";
  s += "gossip_entries_refused:" + std::to_string(ns.gossip_entries_refused) + "\r\n";
  s += "membership_gate:" + node_->GateSummary() + "\r\n";
  s += "membership_gate_refused:" + std::to_string(ns.gate_refused) + "\r\n";
  s += "stored_objects_salvaged:" + std::to_string(store_->salvaged_objects()) + "\r\n";
  int64_t typical = 0;
  const bool skewed = !ClockCheck(&typical).ok();
  s += "max_clock_offset_ms:" + std::to_string(config_.max_clock_offset_ms) + "\r\n";
  s += "clock_offset_median_ms:" + std::to_string(typical) + "\r\n";
  s += "clock_offset_exceeded:" + std::string(skewed ? "1" : "0") + "\r\n";
  s += "requests_in_flight:" + std::to_string(core.inflight()) + "\r\n";
  const core::NodeCore::ConsistentStats& cs = core.consistent_stats();
  s += "consistent_rounds:" + std::to_string(cs.rounds) + "\r\n";
  s += "consistent_ok:" + std::to_string(cs.chosen) + "\r\n";
  s += "consistent_retries:" + std::to_string(cs.retries) + "\r\n";
  s += "consistent_unavailable:" + std::to_string(cs.unavailable) + "\r\n";
  s += "consistent_timeouts:" + std::to_string(cs.timeouts) + "\r\n";
  s += "consistent_forwarded:" + std::to_string(cs.forwarded) + "\r\n";
  s += "consistent_joint_rounds:" + std::to_string(cs.joint_rounds) + "\r\n";
  s += "consistent_refused_owners:" + std::to_string(cs.refused_owners) + "\r\n";
  s += "ring_version:" + std::to_string(core.ring()->version()) + "\r\n";
  s += "self_status:" + std::string(core::MemberStatusName(node_->self_state().status)) + "\r\n";
  i = 0;
  for (const auto& [id, m] : node_->view()) {
    s += "member" + std::to_string(i++) + ":id=" + id + ",status=" + core::MemberStatusName(m.status) +
         ",addr=" + m.client_addr + ",incarnation=" + std::to_string(m.incarnation) + "\r\n";
  }
  s += "partitions_copying_here:" + std::to_string(core.TransfersPending()) + "\r\n";
  s += "objects_copied_here:" + std::to_string(core.transferred_objects()) + "\r\n";
  const core::TransferProgress tp = core.transfer_progress();
  s += "move_partitions_total:" + std::to_string(tp.partitions_total) + "\r\n";
  s += "move_partitions_done:" + std::to_string(tp.partitions_done) + "\r\n";
  s += "move_sources_total:" + std::to_string(tp.sources_total) + "\r\n";
  s += "move_sources_done:" + std::to_string(tp.sources_done) + "\r\n";
  s += "move_keys_copied:" + std::to_string(tp.keys_copied) + "\r\n";
  s += "move_batches:" + std::to_string(tp.batches) + "\r\n";
  s += "move_batches_failed:" + std::to_string(tp.batches_failed) + "\r\n";
  return s;
}

std::string Node::HandoffInfo() const {
  const core::NodeCore& core = node_->core();
  const core::HandoffStats& hs = core.handoff_stats();
  const std::map<std::string, core::HintUsage> usage = hints_->Usage();
  uint64_t keys = 0, bytes = 0;
  for (const auto& [target, u] : usage) {
    keys += u.keys;
    bytes += u.bytes;
  }
  std::string s;
  auto kv = [&](const std::string& k, const std::string& v) { s += k + ":" + v + "\r\n"; };
  kv("sloppy_quorum", config_.sloppy_quorum ? "1" : "0");
  kv("hints_stored", std::to_string(keys));
  kv("hints_stored_bytes", std::to_string(bytes));
  kv("hints_targets", std::to_string(usage.size()));
  kv("hints_written", std::to_string(hs.written));
  kv("hints_refused", std::to_string(hs.refused));
  kv("hints_replayed", std::to_string(hs.replayed));
  kv("hints_dropped", std::to_string(hs.dropped));
  kv("hints_replay_failed", std::to_string(hs.replay_failed));
  kv("hints_replay_timeouts", std::to_string(hs.replay_timeouts));
  kv("hints_replaying", std::to_string(core.replays_in_flight()));
  kv("hints_corrupt", std::to_string(hints_->corrupt()));
  // Read-your-writes through this node: the writes it acknowledged lately, per key.
  const core::RecentWrites& rw = core.recent_writes();
  kv("ryw_keys", std::to_string(rw.size()));
  kv("ryw_bytes", std::to_string(rw.bytes()));
  kv("ryw_max_keys", std::to_string(rw.options().max_keys));
  kv("ryw_window_ms", std::to_string(rw.options().window_ms));
  kv("ryw_recorded", std::to_string(rw.stats().recorded));
  kv("ryw_merged", std::to_string(rw.stats().merged));
  kv("ryw_evicted", std::to_string(rw.stats().evicted));
  kv("ryw_too_big", std::to_string(rw.stats().too_big));
  kv("ryw_dropped", std::to_string(rw.stats().dropped));
  int i = 0;
  for (const auto& [target, u] : usage) {
    kv("target" + std::to_string(i++),
       "id=" + target + ",keys=" + std::to_string(u.keys) + ",bytes=" + std::to_string(u.bytes) +
           ",state=" + (core.IsReachable(target) ? "up" : "down"));
  }
  return s;
}

Status Node::ClockCheck(int64_t* typical_ms) const {
  return node_->ClockCheck(
      [this](const std::string& id, core::OffsetSample* s) { return peers_->ClockOffset(id, s); },
      typical_ms);
}

void Node::OnPeerRefused(const std::string& from, const wire::PeerRefusal& refusal,
                         const std::string& why) {
  node_->OnPeerRefused(from, refusal.decoded ? &refusal.message : nullptr, why, loop_.NowMs());
  ApplyEffects();
}

void Node::OnPeerMessage(const std::string& from, const core::PeerMessage& msg) {
  node_->OnPeerMessage(from, msg, loop_.NowMs(), clock_.WallMs());
  ApplyEffects();
}

Status Node::Decommission(const std::string& id) {
  if (Status serving = node_->Serving(); !serving.ok()) return serving;
  node_->Leave(id);
  ApplyEffects();
  LOG_INFO << "decommission of " << id << " requested by a client";
  return Status::Ok();
}

Status Node::OpenGate() {
  const std::string before = node_->GateSummary();
  if (!node_->OpenGate()) {
    return Status::InvalidArgument("the membership gate is not closed here (" + before + ")");
  }
  ApplyEffects();  // logs the core's warning
  return Status::Ok();
}

bool Node::HasRoundWork() const {
  return !dirty_.empty() || store_->HasStaged() || node_->HasOutput() ||
         !keyspace_pending_.empty() || (keyspace_ && keyspace_->HasResults());
}

void Node::PollClients() {
  if (watched_.empty()) return;
  std::vector<uint64_t> ids(watched_.begin(), watched_.end());
  watched_.clear();
  for (uint64_t id : ids) {
    auto c = clients_.find(id);
    if (c == clients_.end()) continue;
    c->second->Poll();
    if (c->second->WantsPoll()) watched_.insert(id);
  }
}

void Node::AfterIo() {
  EvictForMemory();
  PollClients();
  if (!HasRoundWork()) {
    node_->SaveRepairProgressIfChanged();
    ApplyEffects();
    return;
  }
  // Results answered from local storage come back within the round that started them,
  // and may let their clients start more: run a few rounds, then leave the rest for the
  // next loop iteration (a zero timer makes sure there is one) so others get served.
  for (int round = 0; round < 8 && HasRoundWork(); ++round) {
    if (!CommitAndRelease().ok()) return;
  }
  // (Watched clients need no kick: their sockets' write completions, or the 20 ms core
  // timer for a held AUTH reply, bring the next round.)
  if (HasRoundWork()) kick_.Start(0, 0);
}

void Node::OnTick() {
  stats_.instantaneous_ops_per_sec = stats_.commands_processed - commands_at_last_tick_;
  commands_at_last_tick_ = stats_.commands_processed;
  const int64_t now = loop_.NowMs();
  if (metrics_http_) metrics_http_->Tick(now);
  LogStateChanges();
  if (shutting_down_) {
    if (now >= shutdown_deadline_ms_) {
      LOG_WARN << "shutdown: closing " << clients_.size() << " client(s) still sending replies";
      std::vector<Client*> all;
      for (auto& [id, c] : clients_) all.push_back(c.get());
      for (Client* c : all) c->CloseNow();
    }
    return;
  }
  CloseLimitedClients(now);
  if (config_.idle_timeout_s > 0) {
    const int64_t limit_ms = config_.idle_timeout_s * 1000;
    for (auto& [id, c] : clients_) {
      if (now - c->session().last_active_mono_ms > limit_ms) {
        ++stats_.idle_disconnects;
        c->CloseNow();
      }
    }
  }
}

void Node::CloseOldestUnauthenticated() {
  const size_t bound = static_cast<size_t>(
      std::max<int64_t>(1, std::min(config_.max_unauth_clients, config_.max_clients / 2)));
  if (clients_.size() < bound) return;  // cannot be at the bound: skip the scan
  size_t unauth = 0;
  Client* oldest = nullptr;
  for (auto& [id, c] : clients_) {
    const Session& s = c->session();
    if (s.authenticated || s.close_after_reply || c->closing()) continue;
    ++unauth;
    if (oldest == nullptr || s.id < oldest->session().id) oldest = c.get();
  }
  if (unauth < bound || oldest == nullptr) return;
  ++stats_.unauth_evictions;
  LOG_INFO << "client " << oldest->session().peer << ": " << unauth
           << " connections not authenticated (limits.max_unauth_clients); closing the oldest";
  oldest->CloseNow();
}

void Node::EvictForMemory() {
  const int64_t ceiling = config_.max_memory_bytes;
  if (ceiling <= 0 || stats_.client_memory_bytes <= ceiling) return;
  std::vector<Client*> holders;
  for (auto& [id, c] : clients_) {
    if (!c->session().close_after_reply && !c->session().no_evict &&
        c->input_bytes() >= Client::kEvictFloorBytes) {
      holders.push_back(c.get());
    }
  }
  // Strangers first, then the largest partial input: the fewest closes that get the
  // node back under its ceiling.
  std::sort(holders.begin(), holders.end(), [](const Client* a, const Client* b) {
    if (a->session().authenticated != b->session().authenticated) return !a->session().authenticated;
    return a->input_bytes() > b->input_bytes();
  });
  for (Client* c : holders) {
    if (stats_.client_memory_bytes <= ceiling) break;
    c->EvictForMemory();
  }
}

void Node::CloseLimitedClients(int64_t now) {
  // Connections that have not authenticated get a short idle timeout, so strangers
  // cannot hold client slots (and the buffers they come with) indefinitely.
  if (config_.requirepass.empty() || config_.unauth_idle_timeout_s <= 0) return;
  const int64_t limit_ms = config_.unauth_idle_timeout_s * 1000;
  std::vector<Client*> expired;
  for (auto& [id, c] : clients_) {
    if (!c->session().authenticated && now - c->session().last_active_mono_ms > limit_ms) {
      expired.push_back(c.get());
    }
  }
  for (Client* c : expired) {
    ++stats_.unauth_idle_disconnects;
    LOG_INFO << "client " << c->session().peer << ": not authenticated and idle for "
             << config_.unauth_idle_timeout_s << " s; closing";
    c->CloseNow();
  }
}

void Node::BeginShutdown(const char* why) {
  if (shutting_down_) return;
  shutting_down_ = true;
  if (node_) node_->BeginShutdown();
  shutdown_deadline_ms_ = loop_.NowMs() + config_.shutdown_timeout_s * 1000;
  LOG_INFO << why << ": shutting down; " << clients_.size() << " client(s) connected";
  metrics_http_.reset();
  listener_.reset();
  tls_listener_.reset();
  signals_.clear();
  // Requests already received have been executed; their replies go out after the
  // commit in AfterIo, then each connection closes.
  for (auto& [id, c] : clients_) c->Drain();
  if (clients_.empty()) loop_.Stop();
}

// ---- Anti-entropy ------------------------------------------------------------------

Status Node::StopRepair() {
  node_->StopRepair();
  WriteBatch b;
  b.Delete(Column::kMeta, "repair/progress");
  return engine_->Write(b, false);
}

Status Node::StartRepair(core::RepairProgress job) {
  Status st = node_->StartRepair(std::move(job), loop_.NowMs());
  ApplyEffects();
  return st;
}

}  // namespace itsuka::server
