#include "server/client.h"

#include <algorithm>

#include "common/log.h"
#include "server/metrics.h"

namespace itsuka::server {

namespace {
constexpr int kIndexBits = 24;  // limits.max_args is at most 2^24

uint64_t MakeTag(uint64_t seq, size_t index) { return (seq << kIndexBits) | index; }
}  // namespace

Client::Client(ClientHost& host, uint64_t id, std::unique_ptr<net::TcpConnection> conn)
    : host_(host), conn_(std::move(conn)) {
  session_.id = id;
  session_.peer = conn_->peer();
  session_.authenticated = host_.config().requirepass.empty();
  session_.created_mono_ms = session_.last_active_mono_ms = host_.NowMs();
  parser_.set_limits(Limits());
  conn_->Start([this](std::string_view data) { OnRead(data); },
               [this] { host_.OnClientClosed(session_.id); });
}

Client::~Client() { host_.stats().client_memory_bytes -= reported_; }

wire::RespLimits Client::Limits() const {
  const Config& c = host_.config();
  wire::RespLimits l;
  l.max_inline_bytes = static_cast<size_t>(c.max_inline_bytes);
  // Before AUTH the bounds are much stricter, so an unauthenticated peer cannot make
  // the server buffer much.
  l.max_bulk_bytes = static_cast<size_t>(
      session_.authenticated ? c.max_bulk_bytes : std::min(c.max_bulk_bytes, c.unauth_max_bulk_bytes));
  l.max_args = static_cast<size_t>(
      session_.authenticated ? c.max_args : std::min(c.max_args, c.unauth_max_args));
  return l;
}

int64_t Client::CurrentBytes() const {
  return static_cast<int64_t>(parser_.accounted() + args_.capacity() * sizeof(std::string) +
                              reply_bytes_ + queued_bytes_ + inflight_bytes_ + out_.size() +
                              conn_->queued_bytes() + session_.multi_bytes +
                              session_.watch_bytes);
}

void Client::Reaccount() {
  const int64_t now = CurrentBytes();
  Stats& s = host_.stats();
  s.client_memory_bytes += now - reported_;
  reported_ = now;
  s.client_memory_peak_bytes = std::max(s.client_memory_peak_bytes, s.client_memory_bytes);
}

void Client::OnRead(std::string_view data) {
  host_.stats().net_input_bytes += data.size();
  session_.last_active_mono_ms = host_.NowMs();
  if (session_.close_after_reply) return;
  parser_.Feed(data);
  ProcessInput();
  // Checked on every read that grows a partial command (not only once per loop round,
  // which may read thousands of sockets): the node stays near its ceiling.
  if (parser_.accounted() >= kEvictFloorBytes && NodeOverMemory()) host_.EvictForMemory();
}

bool Client::ExecuteParsed() {
  const bool was_authenticated = session_.authenticated;
  replies_.back().started_us = MonotonicMicros();
  host_.executor().Execute(session_, args_, replies_.back(), *this);
  if (args_.capacity() > 1024) std::vector<std::string>().swap(args_);
  reply_bytes_ += replies_.back().data.size();
  if (session_.authenticated != was_authenticated) parser_.set_limits(Limits());
  if (session_.reply_delay_ms > 0) {
    // A failed AUTH: its reply, and every command after it, wait (a timer-free hold:
    // the host polls this client each loop round).
    hold_until_ms_ = host_.NowMs() + session_.reply_delay_ms;
    replies_.back().not_before_ms = hold_until_ms_;
    session_.reply_delay_ms = 0;
  }
  if (OutputHeld() > HardLimit()) {
    ++host_.stats().output_buffer_disconnects;
    LOG_WARN << "client " << session_.peer << ": output buffer over "
             << host_.config().max_output_buffer_bytes << " bytes; closing";
    session_.close_after_reply = true;
    conn_->Close();
    return false;
  }
  return true;
}

void Client::CheckQueryBuffer() {
  const Config& config = host_.config();
  if (session_.close_after_reply ||
      parser_.accounted() <= static_cast<size_t>(config.max_query_buffer_bytes)) {
    return;
  }
  ++host_.stats().query_buffer_disconnects;
  LOG_WARN << "client " << session_.peer << ": query buffer over "
           << config.max_query_buffer_bytes << " bytes; closing";
  replies_.emplace_back();
  wire::resp::AppendError(&replies_.back().data,
                          "ERR query buffer limit exceeded (limits.max_query_buffer_bytes)");
  reply_bytes_ += replies_.back().data.size();
  session_.close_after_reply = true;
}

void Client::ProcessInput() {
  Stats& stats = host_.stats();
  bool busy = false;
  while (hold_until_ms_ == 0) {
    // Backpressure: no new command while this client's output is over the soft limit,
    // or too many of its replies or requests are outstanding.
    if (replies_.size() >= kMaxPendingReplies || queued_.size() >= kMaxPendingReplies ||
        OutputBusy()) {
      busy = true;
      break;
    }
    if (!held_) {
      wire::RespParser::Outcome o = parser_.Next(&args_);
      if (o == wire::RespParser::Outcome::kNeedMore) break;
      if (o == wire::RespParser::Outcome::kError) {
        replies_.emplace_back();
        ++stats.protocol_errors;
        LOG_INFO << "client " << session_.peer << ": " << parser_.error() << "; closing";
        wire::resp::AppendError(&replies_.back().data, "ERR " + parser_.error());
        reply_bytes_ += replies_.back().data.size();
        session_.close_after_reply = true;
        break;
      }
    }
    // EXEC runs after every earlier command of this connection has answered (its WATCH
    // reads included): until then the parsed command is held and nothing more is read.
    held_ = host_.executor().WaitsForEarlierReplies(session_, args_) && !AllRepliesReady();
    if (held_) break;
    replies_.emplace_back();
    replies_.back().seq = Seq();
    if (!ExecuteParsed()) return;
    if (session_.close_after_reply) break;
  }
  Pump();
  CheckQueryBuffer();
  Reaccount();
  // At the node's ceiling, Node::EvictForMemory closes the clients holding the most
  // partial input (unauthenticated ones first); nothing is decided here per client.
  if (busy && !deferred_ && parser_.buffered() > 0) ++stats.deferred_commands;
  deferred_ = busy;
  // Too many replies outstanding, output pending, a held reply, or closing: stop
  // reading until that is resolved.
  paused_ = session_.close_after_reply || busy || hold_until_ms_ != 0 || held_;
  if (paused_) {
    conn_->PauseReading();
    host_.WatchClient(session_.id);
  }
  host_.MarkDirty(session_.id);
}

void Client::Enqueue(Queued q) {
  q.bytes = WriteSpecBytes(q.key, q.spec) + sizeof(Queued);
  queued_bytes_ += q.bytes;
  queued_.push_back(std::move(q));
}

void Client::Get(PendingReply& reply, size_t index, const std::string& key, int r, int pr) {
  reply.mode = std::max(reply.mode, static_cast<uint8_t>(CommandMode::kEventual));
  Enqueue(Queued{Queued::Kind::kGet, reply.seq, index, key, r, pr, true, {}, 0});
}

void Client::Put(PendingReply& reply, size_t index, const std::string& key, core::WriteSpec spec,
                 int w, int pw) {
  reply.mode = std::max(reply.mode, static_cast<uint8_t>(CommandMode::kEventual));
  Enqueue(Queued{Queued::Kind::kPut, reply.seq, index, key, w, pw, false, std::move(spec), 0});
}

void Client::Consistent(PendingReply& reply, size_t index, const std::string& key, bool read,
                        core::WriteSpec spec) {
  reply.mode = static_cast<uint8_t>(CommandMode::kConsistent);
  Enqueue(Queued{Queued::Kind::kConsistent, reply.seq, index, key, 0, 0, read, std::move(spec), 0});
}

void Client::Keyspace(PendingReply& reply, size_t index, KeyspaceQuery q) {
  reply.mode = std::max(reply.mode, static_cast<uint8_t>(CommandMode::kEventual));
  Queued item{Queued::Kind::kKeyspace, reply.seq, index, {}, 0, 0, true, {}, 0};
  item.keyspace = std::make_shared<KeyspaceQuery>(std::move(q));
  Enqueue(std::move(item));
}

bool Client::AllRepliesReady() const {
  return std::all_of(replies_.begin(), replies_.end(),
                     [](const PendingReply& r) { return r.ready(); });
}

PendingReply* Client::ReplyFor(uint64_t seq) {
  if (seq < first_seq_ || seq - first_seq_ >= replies_.size()) return nullptr;
  return &replies_[seq - first_seq_];
}

void Client::Pump() {
  bool started = false;
  while (!queued_.empty()) {
    Queued& q = queued_.front();
    PendingReply* r = ReplyFor(q.seq);
    if (r != nullptr && !r->ready() && NodeOverMemory()) {
      // Over the node's ceiling no request starts, not even a command's first: the
      // whole reply becomes -OOM (its results so far are released).
      FailReplyOom(*r);
    } else if (r != nullptr && !r->ready()) {
      // Output other than this request's own reply (earlier replies, the socket's queue)
      // over the soft limit: wait for it to drain. The reply's own results are bounded
      // by the hard limit (FailReply), so one command always makes progress.
      const size_t held = OutputHeld();
      const size_t own = r->data.size() + r->result_bytes;
      const bool read = q.kind == Queued::Kind::kGet || (q.kind == Queued::Kind::kConsistent && q.read);
      const size_t expect = read ? estimate_.value() * host_.ReadFanout() : 0;
      if (held - std::min(held, own) > SoftLimit() ||
          !MayStart(inflight_, kMaxInflight, held + inflight_bytes_, expect, SoftLimit())) {
        // Waiting for output (not merely for the in-flight cap) is backpressure.
        const bool for_output = held - std::min(held, own) > SoftLimit() ||
                                held + inflight_bytes_ + expect > SoftLimit();
        if (for_output && !stalled_) ++host_.stats().deferred_commands;
        stalled_ = stalled_ || for_output;
        break;
      }
      stalled_ = false;
      const uint64_t tag = MakeTag(q.seq, q.index);
      size_t local = 0;
      switch (q.kind) {
        case Queued::Kind::kGet: local = host_.StartGet(session_.id, tag, q.key, q.a, q.b); break;
        case Queued::Kind::kPut:
          host_.StartPut(session_.id, tag, q.key, std::move(q.spec), q.a, q.b);
          break;
        case Queued::Kind::kConsistent:
          local = host_.StartConsistent(session_.id, tag, q.key, q.read, std::move(q.spec));
          break;
        case Queued::Kind::kKeyspace:
          host_.StartKeyspace(session_.id, tag, std::move(*q.keyspace));
          break;
      }
      // A read is charged what it just read locally (the value now sits in the result
      // waiting for this round's commit; the other replicas send copies of about that
      // size) or, with no local copy, the estimate; once per replica answering.
      const size_t charge = !read ? 0 : (local > 0 ? local : estimate_.value()) * host_.ReadFanout();
      ++inflight_;
      if (charge > 0) {
        inflight_bytes_ += charge;
        charged_[tag] = charge;
      }
      started = true;
      // The charge counts toward the node's figure at once, so the next start (this
      // client's or another's) sees it.
      Reaccount();
    }
    // A reply already failed (over the output limit) needs no more of its requests.
    queued_bytes_ -= q.bytes;
    queued_.pop_front();
  }
  if (started) host_.MarkDirty(session_.id);
}

void Client::ClearReply(PendingReply& r) {
  reply_bytes_ -= r.data.size() + r.result_bytes;
  r.results = {};
  r.result_bytes = 0;
  r.render = nullptr;
  r.waiting = 0;
  std::string().swap(r.data);
}

void Client::FailReplyOom(PendingReply& r) {
  ClearReply(r);
  wire::resp::AppendError(&r.data,
                          "OOM command not allowed when used memory > 'server.max_memory_bytes'.");
  reply_bytes_ += r.data.size();
  ++host_.stats().oom_refusals;
  ++host_.stats().error_replies;
}

int64_t Client::EvictForMemory() {
  const int64_t before = reported_;
  ++host_.stats().memory_evictions;
  LOG_WARN << "client " << session_.peer << ": " << parser_.accounted()
           << " bytes of partial input at server.max_memory_bytes; closing";
  parser_ = wire::RespParser();
  parser_.set_limits(Limits());
  std::vector<std::string>().swap(args_);
  replies_.emplace_back();
  wire::resp::AppendError(&replies_.back().data,
                          "OOM command not allowed when used memory > 'server.max_memory_bytes'.");
  reply_bytes_ += replies_.back().data.size();
  session_.close_after_reply = true;
  paused_ = true;
  conn_->PauseReading();
  Reaccount();
  host_.MarkDirty(session_.id);
  return before - reported_;
}

void Client::FailReply(PendingReply& r) {
  ClearReply(r);
  wire::resp::AppendError(&r.data, "ERR reply would exceed limits.max_output_buffer_bytes (" +
                                       std::to_string(HardLimit()) +
                                       " bytes); ask for fewer or smaller values");
  reply_bytes_ += r.data.size();
  ++host_.stats().reply_limit_refusals;
  ++host_.stats().error_replies;
  LOG_WARN << "client " << session_.peer << ": a reply would exceed "
           << HardLimit() << " bytes; answered with an error";
}

void Client::OnResult(uint64_t tag, core::ClientResult result) {
  if (inflight_ > 0) --inflight_;
  if (auto it = charged_.empty() ? charged_.end() : charged_.find(tag); it != charged_.end()) {
    inflight_bytes_ -= it->second;
    charged_.erase(it);
  }
  const uint64_t seq = tag >> kIndexBits;
  const size_t index = tag & ((uint64_t{1} << kIndexBits) - 1);
  PendingReply* rp = ReplyFor(seq);
  if (rp != nullptr && index < rp->results.size() && rp->waiting != 0) {
    PendingReply& r = *rp;
    const size_t bytes = ResultBytes(result);
    estimate_.Observe(bytes);
    r.results[index] = std::move(result);
    r.result_bytes += bytes;
    reply_bytes_ += bytes;
    if (OutputHeld() > HardLimit()) {
      // Checked before rendering: the values are charged as they arrive, so one command
      // naming a large key many times stops at the limit instead of building the reply.
      FailReply(r);
    } else if (--r.waiting == 0) {
      const size_t before = r.data.size() + r.result_bytes;
      // The render may start the command's next stage (new results to wait for and a
      // new render, PendingReply): the reply is done only when it did not.
      std::function<void(PendingReply&)> render = std::move(r.render);
      r.render = nullptr;
      render(r);
      if (r.waiting == 0) {
        if (!r.data.empty() && r.data[0] == '-') ++host_.stats().error_replies;
        r.results = {};
        r.render = nullptr;
      }
      r.result_bytes = 0;
      reply_bytes_ = reply_bytes_ - before + r.data.size();
    }
  }
  Pump();
  Reaccount();
  host_.MarkDirty(session_.id);
}

void Client::MoveReadyReplies() {
  const int64_t now = host_.NowMs();
  while (!replies_.empty() && replies_.front().ready() && replies_.front().not_before_ms <= now) {
    std::string& data = replies_.front().data;
    if (replies_.front().command != nullptr) host_.RecordLatency(replies_.front());
    reply_bytes_ -= data.size();
    if (out_.empty()) {
      out_.swap(data);
    } else {
      out_ += data;
    }
    replies_.pop_front();
    ++first_seq_;
  }
}

void Client::Flush() {
  MoveReadyReplies();
  if (!out_.empty()) {
    host_.stats().net_output_bytes += out_.size();
    conn_->Write(out_);
    out_.clear();
    if (out_.capacity() > (1u << 20)) std::string().swap(out_);
  }
  if (OutputHeld() > HardLimit()) {
    ++host_.stats().output_buffer_disconnects;
    LOG_WARN << "client " << session_.peer << ": output buffer over "
             << host_.config().max_output_buffer_bytes << " bytes; closing";
    conn_->Close();
    return;
  }
  if (session_.close_after_reply) {
    if (replies_.empty()) {
      conn_->CloseAfterWrites();
    } else if (hold_until_ms_ != 0) {
      host_.WatchClient(session_.id);  // a held reply is still to be sent
    }
    Reaccount();
    return;
  }
  MaybeResume();
  Reaccount();
  if (WantsPoll()) host_.WatchClient(session_.id);
}

void Client::MaybeResume() {
  if (hold_until_ms_ != 0 && hold_until_ms_ <= host_.NowMs()) hold_until_ms_ = 0;
  if (!paused_ || hold_until_ms_ != 0) return;
  if (replies_.size() >= kMaxPendingReplies / 2 || queued_.size() >= kMaxPendingReplies / 2) {
    return;
  }
  // Hysteresis: a paused client resumes once its output is down to half the soft limit.
  if (OutputHeld() + inflight_bytes_ > SoftLimit() / 2) return;
  paused_ = false;
  conn_->ResumeReading();
  ProcessInput();  // commands already buffered run now
}

bool Client::WantsPoll() const {
  return !conn_->closing() &&
         (paused_ || hold_until_ms_ != 0 || conn_->queued_bytes() > 0 ||
          CurrentBytes() != reported_ ||
          (!queued_.empty() && inflight_ == 0));
}

void Client::Poll() {
  Pump();
  Flush();
}

void Client::Drain() {
  session_.close_after_reply = true;
  conn_->PauseReading();
  host_.MarkDirty(session_.id);
}

}  // namespace itsuka::server
