#include "server/node.h"

#include "server/peer_auth.h"

#include <signal.h>

#include <cstdio>
#include <filesystem>
#include <random>
#include <set>

#include "common/log.h"
#include "core/peer_checks.h"
#include "storage/rocksdb_engine.h"
#include "wire/resp.h"

namespace itsuka::server {

Node::Node(const Config& config)
    : config_(config),
      core_tick_(loop_, [this] {
        core_->Tick(loop_.NowMs());
        core_->ReplayHints(loop_.NowMs(), clock_.WallMs());
        repair_->Tick(loop_.NowMs());
      }),
      kick_(loop_, [] {}),
      tick_(loop_, [this] { OnTick(); }),
      gossip_tick_(loop_, [this] { OnGossipTimer(); }) {}

Node::~Node() {
  clients_.clear();
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
  identity.insecure = config_.insecure_no_auth != 0;
  if (!config_.secret_file.empty()) {
    Result<ClusterSecret> secret = LoadSecretFile(config_.secret_file);
    if (!secret.ok()) return secret.status();
    identity.cluster_id = secret->cluster_id;
    identity.secrets = std::move(secret->secrets);
  } else if (!config_.cluster_id.empty()) {
    FromHex(config_.cluster_id, &identity.cluster_id);  // validated with the config
  }
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
  storage::RocksOpenInfo open_info;
  Result<std::unique_ptr<Engine>> engine = storage::OpenRocksEngine(ro, &open_info);
  if (!engine.ok()) return engine.status();
  engine_ = std::move(engine).value();
  const bool wal_loss = open_info.wal_corruption_tolerated;
  if (wal_loss) {
    LOG_ERROR << "STARTING WITH LOST WRITES: " << open_info.wal_error
              << ". storage.allow_wal_corruption is set, so the node replayed the log up to "
                 "the first bad record and dropped the rest. Every partition is held not "
                 "authoritative (no votes from this node) until a repair has covered it; "
                 "one starts when the other replicas are reachable.";
  }

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
  std::string actor;
  if (st.IsNotFound()) {
    std::random_device rd;
    char inc[17];
    std::snprintf(inc, sizeof inc, "%08x%08x", rd(), rd());
    actor = config_.node_id + "." + inc;
    WriteBatch b;
    b.Put(Column::kMeta, "node_id", config_.node_id);
    b.Put(Column::kMeta, "actor", actor);
    st = engine_->Write(b, /*sync=*/true);
  } else if (st.ok()) {
    st = engine_->Get(Column::kMeta, "actor", &actor);
    if (st.ok() && wal_loss) {
      // Writes this node coordinated may be gone from its log, and with them the
      // highest dots it issued: a new incarnation never reissues one.
      std::random_device rd;
      char inc[17];
      std::snprintf(inc, sizeof inc, "%08x%08x", rd(), rd());
      actor = config_.node_id + "." + inc;
      WriteBatch b;
      b.Put(Column::kMeta, "actor", actor);
      st = engine_->Write(b, /*sync=*/true);
      LOG_WARN << "new incarnation " << actor << " after the write-ahead log loss";
    }
  }
  if (!st.ok()) return Status::IOError("reading node identity from node.data_dir: " + st.ToString());
  // ... and which cluster: the id made with the cluster's secret (or cluster.id).
  {
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
  }
  identity.instance_id = actor;
  if (identity.insecure) {
    LOG_WARN << "*** cluster.insecure_no_auth is set: peers are NOT authenticated. Anyone who "
                "can reach the peer port can read and write every key and change the "
                "membership. Use cluster.secret_file outside a trusted test network. ***";
  }

  store_ = std::make_unique<Store>(*engine_, config_.durability == "fsync");
  stats_.start_wall_ms = clock_.WallMs();
  stats_.start_mono_ms = clock_.MonotonicMs();
  core::NodeOptions options;
  options.n = static_cast<int>(config_.n);
  options.request_timeout_ms = config_.request_timeout_ms;
  options.limits.max_siblings = static_cast<size_t>(config_.max_siblings);
  options.limits.max_bytes = static_cast<size_t>(config_.max_object_bytes);
  options.actor = actor;
  options.transfer_interval_ms = config_.transfer_interval_ms;
  options.unsafe_ack_before_quorum = config_.unsafe_ack_before_quorum != 0;
  {
    // A fresh range of request ids per start: replies to the previous life's requests
    // must not match this one's (NodeOptions::first_request_id).
    std::random_device rd;
    options.first_request_id = (uint64_t{rd()} << 24) | 1;
  }
  if (options.unsafe_ack_before_quorum) {
    LOG_WARN << "testing.unsafe_ack_before_quorum is set: writes are acknowledged before W "
                "replicas answered. This node is broken on purpose.";
  }
  core_ = std::make_unique<core::NodeCore>(config_.node_id, *store_, options);
  core::HintLimits hint_limits;
  hint_limits.max_keys_per_target = static_cast<uint64_t>(config_.handoff_max_keys_per_target);
  hint_limits.max_bytes_per_target = static_cast<uint64_t>(config_.handoff_max_bytes_per_target);
  hints_ = std::make_unique<HintTable>(*engine_, hint_limits, [this] { return clock_.WallMs(); });
  st = hints_->Load();
  if (!st.ok()) return Status::IOError("reading hints from node.data_dir: " + st.ToString());
  if (hints_->corrupt() > 0) {
    LOG_WARN << hints_->corrupt() << " stored hint(s) do not decode; they are left alone";
  }
  store_->AttachHints(hints_.get());
  core::HandoffOptions handoff;
  handoff.sloppy_quorum = config_.sloppy_quorum != 0;
  handoff.max_hint_age_ms = config_.handoff_max_hint_age_s * 1000;
  handoff.rate_keys_per_s = config_.handoff_rate_keys_per_s;
  handoff.max_inflight_per_target = static_cast<size_t>(config_.handoff_max_inflight_per_target);
  core_->SetHintStore(hints_.get(), handoff);
  Result<std::unique_ptr<GossipMembership>> membership = GossipMembership::Open(config_, *engine_);
  if (!membership.ok()) return membership.status();
  membership_ = std::move(membership).value();
  executor_ = std::make_unique<CommandExecutor>(config_, *store_, stats_, clock_, *core_);
  executor_->SetClusterInfo([this] { return ClusterInfo(); });
  executor_->SetHandoffInfo([this] { return HandoffInfo(); });
  {
    const int64_t t0 = clock_.MonotonicMs();
    st = store_->EnableMerkle(static_cast<uint32_t>(config_.partitions));
    if (!st.ok()) return Status::IOError("building the anti-entropy trees: " + st.ToString());
    if (wal_loss) {
      store_->NoteWalCorruption(open_info.wal_error);
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
  }
  core::RepairOptions rep;
  rep.n = static_cast<int>(config_.n);
  rep.request_timeout_ms = config_.repair_request_timeout_ms;
  rep.keys_per_s = static_cast<double>(config_.repair_keys_per_s);
  rep.bytes_per_s = static_cast<double>(config_.repair_bytes_per_s);
  rep.tombstone_grace_ms = config_.repair_tombstone_grace_s * 1000;
  repair_ = std::make_unique<core::RepairDriver>(config_.node_id, rep);
  // Its ring and the peers' reachability are set by ApplyView, below.
  executor_->SetAdminHost(this);
  st = OpenTls();
  if (!st.ok()) return st;
  executor_->SetTlsInfo([this] { return TlsInfo(); });
  peers_ = std::make_unique<PeerTransport>(
      loop_, config_, std::move(identity),
      [this](const std::string& from, const core::PeerMessage& msg) { OnPeerMessage(from, msg); },
      [this](const std::string& node, bool up) {
        core_->SetReachable(node, up);
        repair_->SetReachable(node, up);
      },
      [this](const std::string& why) {
        LOG_ERROR << "cannot serve: " << why;
        exit_code_ = 1;
        BeginShutdown("duplicate node id");
      });
  peers_->SetTls(peer_tls_);
  peers_->SetWallClock([this] { return clock_.WallMs(); });
  executor_->SetTtlGuard([this] { return ClockCheck(); });
  peers_->SetRefusedHandler(
      [this](const std::string& from, const wire::PeerRefusal& refusal, const std::string& why) {
        OnPeerRefused(from, refusal, why);
      });
  if (!config_.seeds.empty()) {
    st = peers_->Start();
    if (!st.ok()) return st;
  }
  // Until the transport connects, peers are unreachable.
  for (const std::string& seed : config_.seeds) {
    core_->SetReachable(ParseSeed(seed)->id, false);
    repair_->SetReachable(ParseSeed(seed)->id, false);
  }
  ApplyView();
  {
    // A run interrupted by a crash or restart resumes where it was (on the ring the
    // member view just gave).
    std::string saved;
    if (engine_->Get(Column::kMeta, "repair/progress", &saved).ok()) {
      Result<core::RepairProgress> p = core::DecodeRepairProgress(saved);
      if (!p.ok()) {
        LOG_WARN << "ignoring the saved repair progress: " << p.status().ToString();
      } else {
        std::set<uint32_t> all(p->job.partitions.begin(), p->job.partitions.end());
        if (p->finished.size() < all.size()) {
          LOG_INFO << "resuming repair " << p->job.id << ": " << p->finished.size() << " of "
                   << all.size() << " partitions done";
          repair_resumed_ = true;
          Status rs = repair_->Start(std::move(p).value(), loop_.NowMs());
          if (!rs.ok()) LOG_WARN << "cannot resume the repair: " << rs.ToString();
        } else {
          repair_->Start(std::move(p).value(), loop_.NowMs());  // shows the last result
          repair_state_ = "done";
        }
      }
    }
  }

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
  return Status::Ok();
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
  loop_.SetAfterIoHook([this] { AfterIo(); });
  tick_.Start(1000, 1000);
  core_tick_.Start(20, 20);
  const auto gossip_ms = static_cast<uint64_t>(config_.gossip_interval_ms);
  gossip_tick_.Start(gossip_ms, gossip_ms);
  signals_.push_back(std::make_unique<net::SignalWatcher>(loop_, SIGTERM, [this] {
    BeginShutdown("SIGTERM");
  }));
  signals_.push_back(std::make_unique<net::SignalWatcher>(loop_, SIGINT, [this] {
    BeginShutdown("SIGINT");
  }));
  ::signal(SIGPIPE, SIG_IGN);
  LOG_INFO << "itsuka node " << config_.node_id << " serving on " << config_.bind << ":"
           << port() << (tls_listener_ ? " and TLS port " + std::to_string(tls_port()) : "")
           << " (data " << config_.data_dir << ", durability " << config_.durability
           << ")";
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
  if (clients_.size() >= static_cast<size_t>(config_.max_clients)) {
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
  core_->StartGet(req, key, r, pr, loop_.NowMs());
  return static_cast<size_t>(store_->bytes_read() - before);
}

size_t Node::StartPut(uint64_t client_id, uint64_t tag, const std::string& key,
                      core::WriteSpec spec, int w, int pw) {
  const uint64_t req = next_request_++;
  requests_.emplace(req, std::make_pair(client_id, tag));
  const uint64_t before = store_->bytes_read();
  core_->StartPut(req, key, std::move(spec), w, pw, loop_.NowMs());
  return static_cast<size_t>(store_->bytes_read() - before);
}

size_t Node::StartConsistent(uint64_t client_id, uint64_t tag, const std::string& key, bool read,
                             core::WriteSpec spec) {
  const uint64_t req = next_request_++;
  requests_.emplace(req, std::make_pair(client_id, tag));
  const uint64_t before = store_->bytes_read();
  core_->StartConsistent(req, key, read, std::move(spec), loop_.NowMs());
  return static_cast<size_t>(store_->bytes_read() - before);
}

Status Node::CommitAndRelease() {
  PumpRepair();
  Status st = store_->Commit();
  core::Outbox out = core_->TakeOutbox();
  std::vector<uint64_t> dirty;
  dirty.swap(dirty_);
  std::vector<std::pair<std::string, core::PeerMessage>> repair_out;
  repair_out.swap(repair_out_);
  if (st.ok()) {
    for (auto& [to, msg] : out.sends) peers_->Send(to, msg);
    for (auto& [to, msg] : repair_out) peers_->Send(to, msg);
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
  if (!st.ok()) core_->CommitFailed(not_applied);
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
  std::string s = "cluster_name:" + config_.cluster_name + "\r\n";
  s += "members:" + std::to_string(core_->ring()->members().size()) + "\r\n";
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
  s += "peer_messages_refused:" + std::to_string(peer_messages_refused_) + "\r\n";
  s += "peer_senders_refused:" + std::to_string(peer_senders_refused_) + "\r\n";
  s += "gossip_entries_refused:" + std::to_string(gossip_entries_refused_) + "\r\n";
  s += "stored_objects_salvaged:" + std::to_string(store_->salvaged_objects()) + "\r\n";
  int64_t typical = 0;
  const bool skewed = !ClockCheck(&typical).ok();
  s += "max_clock_offset_ms:" + std::to_string(config_.max_clock_offset_ms) + "\r\n";
  s += "clock_offset_median_ms:" + std::to_string(typical) + "\r\n";
  s += "clock_offset_exceeded:" + std::string(skewed ? "1" : "0") + "\r\n";
  s += "requests_in_flight:" + std::to_string(core_->inflight()) + "\r\n";
  const core::NodeCore::ConsistentStats& cs = core_->consistent_stats();
  s += "consistent_rounds:" + std::to_string(cs.rounds) + "\r\n";
  s += "consistent_ok:" + std::to_string(cs.chosen) + "\r\n";
  s += "consistent_retries:" + std::to_string(cs.retries) + "\r\n";
  s += "consistent_unavailable:" + std::to_string(cs.unavailable) + "\r\n";
  s += "consistent_timeouts:" + std::to_string(cs.timeouts) + "\r\n";
  s += "consistent_forwarded:" + std::to_string(cs.forwarded) + "\r\n";
  s += "ring_version:" + std::to_string(core_->ring()->version()) + "\r\n";
  s += "self_status:" + std::string(core::MemberStatusName(membership_->self().status)) + "\r\n";
  i = 0;
  for (const auto& [id, m] : membership_->view()) {
    s += "member" + std::to_string(i++) + ":id=" + id + ",status=" + core::MemberStatusName(m.status) +
         ",addr=" + m.client_addr + ",incarnation=" + std::to_string(m.incarnation) + "\r\n";
  }
  s += "partitions_copying_here:" + std::to_string(core_->TransfersPending()) + "\r\n";
  s += "objects_copied_here:" + std::to_string(core_->transferred_objects()) + "\r\n";
  return s;
}

std::string Node::HandoffInfo() const {
  const core::HandoffStats& hs = core_->handoff_stats();
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
  kv("hints_replaying", std::to_string(core_->replays_in_flight()));
  kv("hints_corrupt", std::to_string(hints_->corrupt()));
  int i = 0;
  for (const auto& [target, u] : usage) {
    kv("target" + std::to_string(i++),
       "id=" + target + ",keys=" + std::to_string(u.keys) + ",bytes=" + std::to_string(u.bytes) +
           ",state=" + (core_->IsReachable(target) ? "up" : "down"));
  }
  return s;
}

void Node::ApplyView() {
  const core::View& view = membership_->view();
  const auto q = static_cast<uint32_t>(config_.partitions);
  const uint64_t version = core::OwnershipVersion(view);
  const uint64_t fp = core::WriteFingerprint(view);
  const bool had_ring = core_->ring().has_value();
  const size_t before = had_ring ? core_->ring()->members().size() : 0;
  const uint64_t before_version = had_ring ? core_->ring()->version() : 0;
  core_->SetRings(core::Ring::Create(q, core::ReadMembers(view), version).value(),
                  core::Ring::Create(q, core::WriteMembers(view), version).value(), fp);
  // Anti-entropy compares the replicas that hold data now (the read ring), and purges no
  // tombstone of a partition that is moving.
  repair_->SetRing(*core_->ring());
  std::set<uint32_t> moving;
  for (uint32_t p = 0; p < q; ++p) {
    const size_t n = static_cast<size_t>(config_.n);
    if (core_->ring()->PreferenceList(p, n) != core_->write_ring()->PreferenceList(p, n)) moving.insert(p);
  }
  repair_->SetMoving(std::move(moving));
  core_->AllowTransfers(
      core::MoveVisible(view, [this](const std::string& m) { return core_->IsReachable(m); }));
  if (!had_ring || before_version != version || before != core_->ring()->members().size()) {
    LOG_INFO << "ring version " << version << ": " << core_->ring()->members().size()
             << " member(s) hold data, " << core_->write_ring()->members().size()
             << " will; copying " << core_->TransfersPending() << " partition(s) here";
  }
  for (const auto& [id, m] : view) {
    if (id == config_.node_id || m.status == core::MemberStatus::kLeft) continue;
    std::string host;
    int port = 0;
    // A member bound to a wildcard address did not say where it can be reached.
    if (!SplitHostPort(m.peer_addr, &host, &port) || host == "0.0.0.0" || host == "::") continue;
    if (peers_->AddPeer(id, host, port) || peers_added_.insert(id).second) {
      if (!peers_->IsUp(id)) {
        core_->SetReachable(id, false);
        repair_->SetReachable(id, false);
      }
    }
  }
  Status st = membership_->Persist();
  if (!st.ok()) LOG_ERROR << "persisting the member view: " << st.ToString();
}

void Node::OnGossipTimer() {
  if (shutting_down_) return;
  // Publish a finished copy only once what it merged is committed (nothing staged).
  const uint64_t fp = core::WriteFingerprint(membership_->view());
  if (!store_->HasStaged() && fp != 0 && core_->Synced() == fp && membership_->self().synced != fp) {
    LOG_INFO << "holds every partition of ring " << std::hex << fp << std::dec
             << " (" << core_->transferred_objects() << " object(s) copied so far)";
    membership_->SetSynced(fp);
  }
  const std::string to = membership_->Round();
  ApplyView();
  if (!to.empty()) {
    // A seed not heard from yet has no view entry: it was connected from cluster.seeds.
    peers_->Send(to, core::GossipSyn{membership_->view()});
    peers_->Flush();
  }
}

Status Node::ClockCheck(int64_t* typical_ms) const {
  std::vector<core::OffsetSample> offsets;
  for (const std::string& id : core_->ring()->members()) {
    core::OffsetSample s;
    if (id != config_.node_id && core_->IsReachable(id) && peers_->ClockOffset(id, &s)) {
      offsets.push_back(s);
    }
  }
  int64_t typical = 0;
  const bool over = config_.max_clock_offset_ms > 0 &&
                    core::OffsetExceeded(offsets, config_.max_clock_offset_ms, &typical);
  if (typical_ms != nullptr) *typical_ms = typical;
  if (!over) return Status::Ok();
  // Peers' clocks minus ours: a median of +3600000 means this node is an hour behind.
  return Status::InvalidArgument(
      "CLOCKSKEW this node's clock is " + std::to_string(-typical) +
      " ms off from a majority of its reachable peers (median peer offset " +
      std::to_string(typical) + " ms), past cluster.max_clock_offset_ms (" +
      std::to_string(config_.max_clock_offset_ms) +
      "); writes with an expiry are refused here until its clock is fixed");
}

void Node::LogRefusal(const std::string& text) {
  const int64_t now = loop_.NowMs();
  if (now - last_refusal_log_ms_ < 1000) {
    ++refusals_unlogged_;
    return;
  }
  last_refusal_log_ms_ = now;
  if (refusals_unlogged_ > 0) {
    LOG_WARN << text << " (and " << refusals_unlogged_ << " more refusals since the last warning)";
  } else {
    LOG_WARN << text;
  }
  refusals_unlogged_ = 0;
}

void Node::Refuse(const std::string& from, const core::PeerMessage& msg, const std::string& why) {
  if (std::optional<core::PeerMessage> reply = core::RefusalReply(msg, why)) {
    peers_->Send(from, *reply);
  } else if (std::optional<core::PeerMessage> failed = core::FailedReply(msg, why)) {
    // A reply this node cannot use: the request it answers fails now, not at its timeout.
    if (core::IsRepairReply(*failed)) {
      repair_->OnReply(from, *failed, loop_.NowMs());
    } else {
      core_->OnMessage(from, *failed, loop_.NowMs());
    }
  }
}

void Node::OnPeerRefused(const std::string& from, const wire::PeerRefusal& refusal,
                         const std::string& why) {
  ++peer_messages_refused_;
  LogRefusal("peer " + from + ": message refused: " + why);
  if (refusal.decoded) Refuse(from, refusal.message, why);
}

bool Node::AdmitPeerMessage(const std::string& from, const core::PeerMessage& msg) {
  core::SenderContext ctx;
  ctx.view = &membership_->view();
  ctx.read = core_->ring() ? &*core_->ring() : nullptr;
  ctx.write = core_->write_ring() ? &*core_->write_ring() : nullptr;
  ctx.n = static_cast<size_t>(config_.n);
  Status st = core::CheckSender(from, msg, ctx);
  if (!st.ok()) {
    ++peer_senders_refused_;
    LogRefusal("peer " + from + ": message type " + std::to_string(msg.index()) +
               " refused: " + st.message());
    Refuse(from, msg, st.message());
    return false;
  }
  core::ObjectLimits limits;
  limits.max_siblings = static_cast<size_t>(config_.max_siblings);
  st = core::CheckLimits(msg, limits, static_cast<size_t>(config_.n));
  if (!st.ok()) {
    ++peer_messages_refused_;
    LogRefusal("peer " + from + ": message type " + std::to_string(msg.index()) +
               " refused: " + st.message());
    Refuse(from, msg, st.message());
    return false;
  }
  return true;
}

void Node::OnPeerMessage(const std::string& from, const core::PeerMessage& msg) {
  if (!AdmitPeerMessage(from, msg)) return;
  const core::View* gossip = nullptr;
  if (const auto* syn = std::get_if<core::GossipSyn>(&msg)) gossip = &syn->view;
  if (const auto* ack = std::get_if<core::GossipAck>(&msg)) gossip = &ack->view;
  if (gossip != nullptr) {
    std::vector<std::string> why;
    const core::View accepted =
        core::FilterGossip(membership_->view(), *gossip, from, config_.node_id, &why);
    if (!why.empty()) {
      gossip_entries_refused_ += why.size();
      LogRefusal("gossip from " + from + ": refused " + std::to_string(why.size()) +
                 " member state(s), e.g. " + why[0]);
    }
    membership_->Receive(accepted);
    ApplyView();
    if (std::holds_alternative<core::GossipSyn>(msg)) {
      peers_->Send(from, core::GossipAck{membership_->view()});
    }
    return;
  }
  if (core::IsRepairRequest(msg)) {
    repair_out_.emplace_back(from, AnswerRepair(msg));
  } else if (core::IsRepairReply(msg)) {
    repair_->OnReply(from, msg, loop_.NowMs());
  } else {
    core_->OnMessage(from, msg, loop_.NowMs());
  }
}

void Node::Decommission(const std::string& id) {
  membership_->Leave(id);
  ApplyView();
  LOG_INFO << "decommission of " << id << " requested by a client";
}

bool Node::HasRoundWork() const {
  return !dirty_.empty() || store_->HasStaged() || core_->HasOutput() || repair_->HasSends() ||
         !repair_out_.empty();
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
    if (repair_->progress_version() != repair_persisted_) PersistRepair();
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
  if (shutting_down_) {
    if (now >= shutdown_deadline_ms_) {
      LOG_WARN << "shutdown: closing " << clients_.size() << " client(s) still sending replies";
      std::vector<Client*> all;
      for (auto& [id, c] : clients_) all.push_back(c.get());
      for (Client* c : all) c->CloseNow();
    }
    return;
  }
  ScheduleRepair();
  CloseLimitedClients(now);
  RepairSuspect();
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
    if (!c->session().close_after_reply && c->input_bytes() >= Client::kEvictFloorBytes) {
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
  shutdown_deadline_ms_ = loop_.NowMs() + config_.shutdown_timeout_s * 1000;
  LOG_INFO << why << ": shutting down; " << clients_.size() << " client(s) connected";
  listener_.reset();
  tls_listener_.reset();
  signals_.clear();
  // Requests already received have been executed; their replies go out after the
  // commit in AfterIo, then each connection closes.
  for (auto& [id, c] : clients_) c->Drain();
  if (clients_.empty()) loop_.Stop();
}

// ---- Anti-entropy ------------------------------------------------------------------

core::PeerMessage Node::AnswerRepair(const core::PeerMessage& msg) {
  return core::AnswerRepairRequest(msg, *store_, *store_, core::RepairLimits{}, clock_.WallMs(),
                                   config_.repair_tombstone_grace_s * 1000);
}

void Node::PumpRepair() {
  // Requests the driver addresses to this node are answered here at once; their
  // replies may make it ask more, so loop (bounded: every pair involves another node,
  // whose answer the driver must wait for).
  for (int round = 0; round < 64 && repair_->HasSends(); ++round) {
    for (auto& [to, msg] : repair_->TakeSends()) {
      if (to == config_.node_id) {
        repair_->OnReply(to, AnswerRepair(msg), loop_.NowMs());
      } else {
        repair_out_.emplace_back(to, std::move(msg));
      }
    }
  }
  ClearRepairedSuspects();
  if (repair_was_running_ && !repair_->running()) {
    repair_was_running_ = false;
    repair_covers_suspect_.clear();
    if (repair_state_ == "running") repair_state_ = "done";
    repair_last_end_ms_ = loop_.NowMs();
    ++repair_runs_;
    const core::RepairTotals& t = repair_->progress().totals;
    repair_cumulative_.partitions_done += t.partitions_done;
    repair_cumulative_.partitions_failed += t.partitions_failed;
    repair_cumulative_.keys_differing += t.keys_differing;
    repair_cumulative_.keys_moved += t.keys_moved;
    repair_cumulative_.bytes_moved += t.bytes_moved;
    repair_cumulative_.tombstones_purged += t.tombstones_purged;
    LOG_INFO << "repair " << repair_->progress().job.id << " finished: "
             << t.partitions_done << " partitions synced, " << t.partitions_failed << " failed, "
             << t.keys_differing << " keys differing, " << t.keys_moved << " keys moved, "
             << t.tombstones_purged << " tombstones purged";
  }
  if (repair_->running()) {
    repair_was_running_ = true;
    repair_state_ = "running";
  }
  if (repair_->progress_version() != repair_persisted_) PersistRepair();
}

void Node::PersistRepair() {
  repair_persisted_ = repair_->progress_version();
  if (repair_state_ == "stopped" || repair_state_ == "idle") return;
  WriteBatch b;
  b.Put(Column::kMeta, "repair/progress", core::EncodeRepairProgress(repair_->progress()));
  Status st = engine_->Write(b, /*sync=*/false);
  if (!st.ok()) LOG_WARN << "saving repair progress: " << st.ToString();
}

void Node::ScheduleRepair() {
  if (config_.repair_interval_s <= 0 || repair_->running()) return;
  const int64_t now = loop_.NowMs();
  if (repair_last_end_ms_ != 0 && now - repair_last_end_ms_ < config_.repair_interval_s * 1000) {
    return;
  }
  if (repair_last_end_ms_ == 0 && now - stats_.start_mono_ms < config_.repair_interval_s * 1000) {
    return;
  }
  core::RepairProgress p;
  p.job.id = static_cast<uint64_t>(clock_.WallMs());
  for (uint32_t q = 0; q < core_->ring()->partitions(); ++q) {
    if (core_->ring()->Owner(q) == config_.node_id) p.job.partitions.push_back(q);
  }
  if (p.job.partitions.empty()) {
    repair_last_end_ms_ = now;
    return;
  }
  repair_resumed_ = false;
  if (repair_->Start(std::move(p), now).ok()) {
    repair_state_ = "running";
    repair_was_running_ = true;
    NoteRepairStarted();
    LOG_INFO << "background repair of the partitions this node owns";
  }
}

void Node::ClearRepairedSuspects() {
  if (repair_covers_suspect_.empty()) return;
  const core::RepairProgress& p = repair_->progress();
  std::set<uint32_t> covered;
  for (uint32_t q : repair_covers_suspect_) {
    if (p.finished.count(q) && std::find(p.failed.begin(), p.failed.end(), q) == p.failed.end()) {
      covered.insert(q);
    }
  }
  if (covered.empty()) return;
  for (uint32_t q : covered) repair_covers_suspect_.erase(q);
  store_->ClearSuspect(covered);  // saved with this round's commit, after the merges
  LOG_INFO << "repair covered " << covered.size() << " partition(s) not authoritative here; "
           << store_->suspect().size() << " still are";
}

void Node::NoteRepairStarted() {
  repair_covers_suspect_.clear();
  const core::RepairJob& job = repair_->progress().job;
  if (job.dry_run || !(job.node.empty() || job.node == config_.node_id)) return;
  for (uint32_t q : job.partitions) {
    if (store_->suspect().count(q)) repair_covers_suspect_.insert(q);
  }
}

void Node::RepairSuspect() {
  const std::set<uint32_t>& suspect = store_->suspect();
  const int64_t now = loop_.NowMs();
  if (suspect.empty() || repair_->running() || now < suspect_repair_next_ms_) return;
  // The other replicas are what it is repaired from: wait until they are reachable.
  for (const std::string& m : core_->ring()->members()) {
    if (!core_->IsReachable(m)) return;
  }
  suspect_repair_next_ms_ = now + 5000;
  core::RepairProgress p;
  p.job.id = static_cast<uint64_t>(clock_.WallMs());
  p.job.partitions.assign(suspect.begin(), suspect.end());
  repair_resumed_ = false;
  Status st = repair_->Start(std::move(p), now);
  if (!st.ok()) {
    LOG_WARN << "cannot start the repair of the partitions not authoritative here: " << st.ToString();
    return;
  }
  repair_state_ = "running";
  repair_was_running_ = true;
  NoteRepairStarted();
  PersistRepair();
  LOG_WARN << "repairing " << suspect.size() << " partition(s) not authoritative here (lost data)";
}

Status Node::StopRepair() {
  repair_->Stop();
  repair_was_running_ = false;
  repair_state_ = "stopped";
  WriteBatch b;
  b.Delete(Column::kMeta, "repair/progress");
  return engine_->Write(b, false);
}

Status Node::StartRepair(core::RepairProgress job) {
  Status st = repair_->Start(std::move(job), loop_.NowMs());
  if (!st.ok()) return st;
  repair_state_ = "running";
  repair_was_running_ = true;
  repair_resumed_ = false;
  NoteRepairStarted();
  PersistRepair();
  return Status::Ok();
}

}  // namespace itsuka::server
