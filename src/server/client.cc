#include "server/client.h"

#include <algorithm>

#include "common/log.h"

namespace itsuka::server {

namespace {
constexpr int kIndexBits = 24;  // limits.max_args is at most 2^24
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

bool Client::OverOutputLimit() const {
  size_t held = out_.size() + conn_->queued_bytes();
  for (const PendingReply& r : replies_) held += r.data.size();
  return held > static_cast<size_t>(host_.config().max_output_buffer_bytes);
}

void Client::OnRead(std::string_view data) {
  host_.stats().net_input_bytes += data.size();
  session_.last_active_mono_ms = host_.NowMs();
  if (session_.close_after_reply) return;
  parser_.Feed(data);
  ProcessInput();
}

void Client::ProcessInput() {
  Stats& stats = host_.stats();
  while (replies_.size() < kMaxPendingReplies) {
    wire::RespParser::Outcome o = parser_.Next(&args_);
    if (o == wire::RespParser::Outcome::kNeedMore) break;
    replies_.emplace_back();
    if (o == wire::RespParser::Outcome::kError) {
      ++stats.protocol_errors;
      LOG_INFO << "client " << session_.peer << ": " << parser_.error() << "; closing";
      wire::resp::AppendError(&replies_.back().data, "ERR " + parser_.error());
      session_.close_after_reply = true;
      break;
    }
    const bool was_authenticated = session_.authenticated;
    host_.executor().Execute(session_, args_, replies_.back(), *this);
    if (session_.authenticated != was_authenticated) parser_.set_limits(Limits());
    if (replies_.back().data.size() > 4096 && OverOutputLimit()) {
      ++stats.output_buffer_disconnects;
      LOG_WARN << "client " << session_.peer << ": output buffer over "
               << host_.config().max_output_buffer_bytes << " bytes; closing";
      session_.close_after_reply = true;
      conn_->Close();
      return;
    }
    if (session_.close_after_reply) break;
  }
  if (!session_.close_after_reply &&
      parser_.buffered() > static_cast<size_t>(host_.config().max_query_buffer_bytes)) {
    ++stats.query_buffer_disconnects;
    LOG_WARN << "client " << session_.peer << ": query buffer over "
             << host_.config().max_query_buffer_bytes << " bytes; closing";
    replies_.emplace_back();
    wire::resp::AppendError(&replies_.back().data,
                            "ERR query buffer limit exceeded (limits.max_query_buffer_bytes)");
    session_.close_after_reply = true;
  }
  // Too many replies outstanding (or closing): stop reading until they are sent.
  paused_ = session_.close_after_reply || replies_.size() >= kMaxPendingReplies;
  if (paused_) conn_->PauseReading();
  host_.MarkDirty(session_.id);
}

uint64_t Client::Tag(const PendingReply& reply, size_t index) const {
  // Dispatch happens while `reply` is the newest one.
  const uint64_t seq = first_seq_ + replies_.size() - 1;
  return (seq << kIndexBits) | index;
}

void Client::Get(PendingReply& reply, size_t index, const std::string& key, int r, int pr) {
  host_.StartGet(session_.id, Tag(reply, index), key, r, pr);
}

void Client::Put(PendingReply& reply, size_t index, const std::string& key, core::WriteSpec spec,
                 int w, int pw) {
  host_.StartPut(session_.id, Tag(reply, index), key, std::move(spec), w, pw);
}

void Client::Consistent(PendingReply& reply, size_t index, const std::string& key, bool read,
                        core::WriteSpec spec) {
  host_.StartConsistent(session_.id, Tag(reply, index), key, read, std::move(spec));
}

void Client::OnResult(uint64_t tag, core::ClientResult result) {
  const uint64_t seq = tag >> kIndexBits;
  const size_t index = tag & ((uint64_t{1} << kIndexBits) - 1);
  if (seq < first_seq_ || seq - first_seq_ >= replies_.size()) return;
  PendingReply& r = replies_[seq - first_seq_];
  if (index >= r.results.size() || r.waiting == 0) return;
  r.results[index] = std::move(result);
  if (--r.waiting == 0) {
    r.render(r);
    if (!r.data.empty() && r.data[0] == '-') ++host_.stats().error_replies;
    r.results.clear();
    r.render = nullptr;
    // Replies rendered from replicated results count against the output limit too
    // (say, MGET of one large key repeated many times).
    if (r.data.size() > 4096 && OverOutputLimit()) {
      ++host_.stats().output_buffer_disconnects;
      LOG_WARN << "client " << session_.peer << ": output buffer over "
               << host_.config().max_output_buffer_bytes << " bytes; closing";
      Abort();
      return;
    }
  }
  host_.MarkDirty(session_.id);
}

void Client::MoveReadyReplies() {
  while (!replies_.empty() && replies_.front().ready()) {
    out_ += replies_.front().data;
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
  }
  if (OverOutputLimit()) {
    ++host_.stats().output_buffer_disconnects;
    LOG_WARN << "client " << session_.peer << ": output buffer over "
             << host_.config().max_output_buffer_bytes << " bytes; closing";
    conn_->Close();
    return;
  }
  if (session_.close_after_reply) {
    if (replies_.empty()) conn_->CloseAfterWrites();
    return;
  }
  if (paused_ && replies_.size() < kMaxPendingReplies / 2) {
    paused_ = false;
    conn_->ResumeReading();
    ProcessInput();  // commands already buffered run now
  }
}

void Client::Abort() {
  out_.clear();
  replies_.clear();
  session_.close_after_reply = true;
  conn_->Close();
}

void Client::Drain() {
  session_.close_after_reply = true;
  conn_->PauseReading();
  host_.MarkDirty(session_.id);
}

}  // namespace itsuka::server
