#include "server/node.h"

#include <signal.h>

#include <cstdio>
#include <filesystem>
#include <random>

#include "common/log.h"
#include "storage/rocksdb_engine.h"
#include "wire/resp.h"

namespace itsuka::server {

Node::Node(const Config& config)
    : config_(config),
      core_tick_(loop_, [this] {
        core_->Tick(loop_.NowMs());
        core_->ReplayHints(loop_.NowMs(), clock_.WallMs());
      }),
      tick_(loop_, [this] { OnTick(); }) {}

Node::~Node() {
  clients_.clear();
  listener_.reset();
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
  std::error_code ec;
  std::filesystem::create_directories(config_.data_dir, ec);
  if (ec) {
    return Status::IOError("cannot create node.data_dir '" + config_.data_dir + "': " + ec.message());
  }
  storage::RocksOptions ro;
  ro.path = config_.data_dir;
  ro.block_cache_mb = static_cast<size_t>(config_.block_cache_mb);
  ro.write_buffer_mb = static_cast<size_t>(config_.write_buffer_mb);
  Result<std::unique_ptr<Engine>> engine = storage::OpenRocksEngine(ro);
  if (!engine.ok()) return engine.status();
  engine_ = std::move(engine).value();

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
  }
  if (!st.ok()) return Status::IOError("reading node identity from node.data_dir: " + st.ToString());

  store_ = std::make_unique<Store>(*engine_, config_.durability == "fsync");
  stats_.start_wall_ms = clock_.WallMs();
  stats_.start_mono_ms = clock_.MonotonicMs();
  core::NodeOptions options;
  options.n = static_cast<int>(config_.n);
  options.request_timeout_ms = config_.request_timeout_ms;
  options.limits.max_siblings = static_cast<size_t>(config_.max_siblings);
  options.limits.max_bytes = static_cast<size_t>(config_.max_object_bytes);
  options.actor = actor;
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
  membership_ = std::make_unique<StaticMembership>(config_);
  Result<core::Ring> ring = core::Ring::Create(static_cast<uint32_t>(config_.partitions),
                                               membership_->Members(), membership_->version());
  if (!ring.ok()) return ring.status();
  core_->SetRing(std::move(ring).value());
  // Until the transport connects, peers are unreachable.
  for (const std::string& m : membership_->Members()) {
    if (m != config_.node_id) core_->SetReachable(m, false);
  }
  executor_ = std::make_unique<CommandExecutor>(config_, *store_, stats_, clock_, *core_);
  executor_->SetClusterInfo([this] { return ClusterInfo(); });
  executor_->SetHandoffInfo([this] { return HandoffInfo(); });
  peers_ = std::make_unique<PeerTransport>(
      loop_, config_,
      [this](const std::string& from, const core::PeerMessage& msg) {
        core_->OnMessage(from, msg, loop_.NowMs());
      },
      [this](const std::string& node, bool up) { core_->SetReachable(node, up); });
  if (!config_.seeds.empty()) {
    st = peers_->Start();
    if (!st.ok()) return st;
  }

  Result<std::unique_ptr<net::TcpListener>> listener = net::TcpListener::Listen(
      loop_, config_.bind, static_cast<int>(config_.port), 511,
      [this](std::unique_ptr<net::TcpConnection> conn) { OnAccept(std::move(conn)); });
  if (!listener.ok()) {
    return Status::IOError("server.bind/server.port: " + listener.status().message());
  }
  listener_ = std::move(listener).value();
  return Status::Ok();
}

int Node::Run() {
  loop_.SetAfterIoHook([this] { AfterIo(); });
  tick_.Start(1000, 1000);
  core_tick_.Start(20, 20);
  signals_.push_back(std::make_unique<net::SignalWatcher>(loop_, SIGTERM, [this] {
    BeginShutdown("SIGTERM");
  }));
  signals_.push_back(std::make_unique<net::SignalWatcher>(loop_, SIGINT, [this] {
    BeginShutdown("SIGINT");
  }));
  ::signal(SIGPIPE, SIG_IGN);
  LOG_INFO << "itsuka node " << config_.node_id << " serving on " << config_.bind << ":"
           << port() << " (data " << config_.data_dir << ", durability " << config_.durability
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
  uint64_t id = next_client_id_++;
  clients_.emplace(id, std::make_unique<Client>(*this, id, std::move(conn)));
  stats_.connected_clients = clients_.size();
}

void Node::OnClientClosed(uint64_t client_id) {
  clients_.erase(client_id);
  stats_.connected_clients = clients_.size();
  if (shutting_down_ && clients_.empty()) loop_.Stop();
}


void Node::StartGet(uint64_t client_id, uint64_t tag, const std::string& key, int r, int pr) {
  const uint64_t req = next_request_++;
  requests_.emplace(req, std::make_pair(client_id, tag));
  core_->StartGet(req, key, r, pr, loop_.NowMs());
}

void Node::StartPut(uint64_t client_id, uint64_t tag, const std::string& key,
                    core::WriteSpec spec, int w, int pw) {
  const uint64_t req = next_request_++;
  requests_.emplace(req, std::make_pair(client_id, tag));
  core_->StartPut(req, key, std::move(spec), w, pw, loop_.NowMs());
}

void Node::StartConsistent(uint64_t client_id, uint64_t tag, const std::string& key, bool read,
                           core::WriteSpec spec) {
  const uint64_t req = next_request_++;
  requests_.emplace(req, std::make_pair(client_id, tag));
  core_->StartConsistent(req, key, read, std::move(spec), loop_.NowMs());
}

Status Node::CommitAndRelease() {
  Status st = store_->Commit();
  core::Outbox out = core_->TakeOutbox();
  std::vector<uint64_t> dirty;
  dirty.swap(dirty_);
  if (st.ok()) {
    for (auto& [to, msg] : out.sends) peers_->Send(to, msg);
    peers_->Flush();
  }
  for (core::ClientResult& r : out.results) {
    auto it = requests_.find(r.client_req);
    if (it == requests_.end()) continue;
    auto [client_id, tag] = it->second;
    requests_.erase(it);
    auto c = clients_.find(client_id);
    if (c == clients_.end()) continue;
    if (st.ok()) {
      c->second->OnResult(tag, std::move(r));
    } else {
      dirty.push_back(client_id);
    }
  }
  if (!st.ok()) {
    // Nothing from this round may leave: replies to writes would acknowledge what was
    // not stored, and replies to reads may show it. Those clients see a closed
    // connection, i.e. an unknown outcome.
    ++stats_.commit_failures;
    LOG_ERROR << "commit failed: " << st.ToString() << "; closing the clients owed replies";
    for (uint64_t id : dirty) {
      auto c = clients_.find(id);
      if (c != clients_.end()) c->second->Abort();
    }
    return st;
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
  s += "requests_in_flight:" + std::to_string(core_->inflight()) + "\r\n";
  const core::NodeCore::ConsistentStats& cs = core_->consistent_stats();
  s += "consistent_rounds:" + std::to_string(cs.rounds) + "\r\n";
  s += "consistent_ok:" + std::to_string(cs.chosen) + "\r\n";
  s += "consistent_retries:" + std::to_string(cs.retries) + "\r\n";
  s += "consistent_unavailable:" + std::to_string(cs.unavailable) + "\r\n";
  s += "consistent_timeouts:" + std::to_string(cs.timeouts) + "\r\n";
  s += "consistent_forwarded:" + std::to_string(cs.forwarded) + "\r\n";
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

void Node::AfterIo() {
  if (dirty_.empty() && !store_->HasStaged() && !core_->HasOutput()) return;
  CommitAndRelease();
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

void Node::BeginShutdown(const char* why) {
  if (shutting_down_) return;
  shutting_down_ = true;
  shutdown_deadline_ms_ = loop_.NowMs() + config_.shutdown_timeout_s * 1000;
  LOG_INFO << why << ": shutting down; " << clients_.size() << " client(s) connected";
  listener_.reset();
  signals_.clear();
  // Requests already received have been executed; their replies go out after the
  // commit in AfterIo, then each connection closes.
  for (auto& [id, c] : clients_) c->Drain();
  if (clients_.empty()) loop_.Stop();
}

}  // namespace itsuka::server
