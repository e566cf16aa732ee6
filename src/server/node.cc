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
      core_tick_(loop_, [this] { core_->Tick(loop_.NowMs()); }),
      tick_(loop_, [this] { OnTick(); }),
      gossip_tick_(loop_, [this] { OnGossipTimer(); }) {}

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
  options.transfer_interval_ms = config_.transfer_interval_ms;
  options.unsafe_ack_before_quorum = config_.unsafe_ack_before_quorum != 0;
  if (options.unsafe_ack_before_quorum) {
    LOG_WARN << "testing.unsafe_ack_before_quorum is set: writes are acknowledged before W "
                "replicas answered. This node is broken on purpose.";
  }
  core_ = std::make_unique<core::NodeCore>(config_.node_id, *store_, options);
  Result<std::unique_ptr<GossipMembership>> membership = GossipMembership::Open(config_, *engine_);
  if (!membership.ok()) return membership.status();
  membership_ = std::move(membership).value();
  executor_ = std::make_unique<CommandExecutor>(config_, *store_, stats_, clock_, *core_);
  executor_->SetClusterInfo([this] { return ClusterInfo(); });
  executor_->SetMembershipCommand(
      [this](std::vector<std::string>& args, std::string* out) { MembershipCommand(args, out); });
  peers_ = std::make_unique<PeerTransport>(
      loop_, config_,
      [this](const std::string& from, const core::PeerMessage& msg) { OnPeerMessage(from, msg); },
      [this](const std::string& node, bool up) { core_->SetReachable(node, up); });
  if (!config_.seeds.empty()) {
    st = peers_->Start();
    if (!st.ok()) return st;
  }
  // Until the transport connects, peers are unreachable.
  for (const std::string& seed : config_.seeds) core_->SetReachable(ParseSeed(seed)->id, false);
  ApplyView();

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
  s += "requests_in_flight:" + std::to_string(core_->inflight()) + "\r\n";
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
      if (!peers_->IsUp(id)) core_->SetReachable(id, false);
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

void Node::OnPeerMessage(const std::string& from, const core::PeerMessage& msg) {
  if (const auto* syn = std::get_if<core::GossipSyn>(&msg)) {
    membership_->Receive(syn->view);
    ApplyView();
    peers_->Send(from, core::GossipAck{membership_->view()});
    return;
  }
  if (const auto* ack = std::get_if<core::GossipAck>(&msg)) {
    membership_->Receive(ack->view);
    ApplyView();
    return;
  }
  core_->OnMessage(from, msg, loop_.NowMs());
}

void Node::MembershipCommand(std::vector<std::string>& args, std::string* out) {
  const std::string name = [&] {
    std::string n = args[0];
    for (char& c : n) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    return n;
  }();
  if (name == "itsuka.members") {
    if (args.size() != 1) return wire::resp::AppendError(out, "ERR wrong number of arguments for 'itsuka.members' command");
    const core::View& view = membership_->view();
    wire::resp::AppendArrayHeader(out, view.size());
    for (const auto& [id, m] : view) {
      const bool self = id == config_.node_id;
      const std::pair<const char*, std::string> fields[] = {
          {"id", id},
          {"status", core::MemberStatusName(m.status)},
          {"reachable", self ? "self" : (core_->IsReachable(id) ? "yes" : "no")},
          {"client_addr", m.client_addr},
          {"peer_addr", m.peer_addr},
          {"incarnation", std::to_string(m.incarnation)},
          {"version", std::to_string(m.version)},
          {"heartbeat", std::to_string(m.heartbeat)},
          {"synced", m.synced == core::WriteFingerprint(view) ? "yes" : "no"}};
      wire::resp::AppendArrayHeader(out, std::size(fields) * 2);
      for (const auto& [k, v] : fields) {
        wire::resp::AppendBulk(out, k);
        wire::resp::AppendBulk(out, v);
      }
    }
    return;
  }
  if (name == "itsuka.ring") {
    if (args.size() != 1) return wire::resp::AppendError(out, "ERR wrong number of arguments for 'itsuka.ring' command");
    const core::Ring& read = *core_->ring();
    const core::Ring& write = *core_->write_ring();
    auto join = [](const std::vector<std::string>& v) {
      std::string s;
      for (const std::string& x : v) s += (s.empty() ? "" : ",") + x;
      return s;
    };
    const size_t n = static_cast<size_t>(config_.n);
    wire::resp::AppendArrayHeader(out, 2);
    const std::pair<const char*, std::string> summary[] = {
        {"version", std::to_string(read.version())},
        {"partitions", std::to_string(read.partitions())},
        {"n", std::to_string(config_.n)},
        {"members", join(read.members())},
        {"target_members", join(write.members())},
        {"copying_here", std::to_string(core_->TransfersPending())},
        {"copied_objects", std::to_string(core_->transferred_objects())}};
    wire::resp::AppendArrayHeader(out, std::size(summary) * 2);
    for (const auto& [k, v] : summary) {
      wire::resp::AppendBulk(out, k);
      wire::resp::AppendBulk(out, v);
    }
    wire::resp::AppendArrayHeader(out, read.partitions());
    for (uint32_t p = 0; p < read.partitions(); ++p) {
      wire::resp::AppendArrayHeader(out, 3);
      wire::resp::AppendBulk(out, std::to_string(p));
      wire::resp::AppendBulk(out, join(read.PreferenceList(p, n)));
      wire::resp::AppendBulk(out, join(write.PreferenceList(p, n)));
    }
    return;
  }
  // itsuka.decommission <node>
  if (args.size() != 2) return wire::resp::AppendError(out, "ERR wrong number of arguments for 'itsuka.decommission' command");
  const core::View& view = membership_->view();
  auto it = view.find(args[1]);
  if (it == view.end()) return wire::resp::AppendError(out, "ERR unknown member '" + args[1] + "'");
  if (it->second.status == core::MemberStatus::kLeaving || it->second.status == core::MemberStatus::kLeft) {
    return wire::resp::AppendError(out, std::string("ERR member '") + args[1] + "' is already " +
                                            core::MemberStatusName(it->second.status));
  }
  // Removing it must leave at least one member holding data.
  size_t remaining = 0;
  for (const std::string& m : core::WriteMembers(view)) remaining += m != args[1];
  if (remaining == 0) return wire::resp::AppendError(out, "ERR cannot decommission the last member");
  membership_->Leave(args[1]);
  ApplyView();
  LOG_INFO << "decommission of " << args[1] << " requested by a client";
  wire::resp::AppendSimple(out, "OK");
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
