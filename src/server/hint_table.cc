#include "server/hint_table.h"

#include "wire/object_codec.h"

namespace itsuka::server {
namespace {

constexpr size_t kStampBytes = 8;

std::string EncodeValue(int64_t updated_ms, const core::Object& obj) {
  std::string v(kStampBytes, '\0');
  const uint64_t u = static_cast<uint64_t>(updated_ms);
  for (size_t i = 0; i < kStampBytes; ++i) v[i] = static_cast<char>(u >> (8 * (7 - i)));
  v += wire::EncodeObject(obj);
  return v;
}

Result<core::Hint> DecodeValue(std::string_view key, std::string_view v) {
  if (v.size() < kStampBytes) return Status::Corruption("hint value too short");
  uint64_t u = 0;
  for (size_t i = 0; i < kStampBytes; ++i) u = (u << 8) | static_cast<unsigned char>(v[i]);
  size_t dropped = 0;  // a hint stored before the checks: what is sound of it is handed off
  Result<core::Object> obj = wire::DecodeStoredObject(v.substr(kStampBytes), &dropped);
  if (!obj.ok()) return obj.status();
  return core::Hint{std::string(key), std::move(obj).value(), static_cast<int64_t>(u)};
}

// Splits a row into (target, user key); false if malformed.
bool DecodeRow(std::string_view row, std::string* target, std::string_view* key) {
  if (row.size() < 2) return false;
  const size_t len = (static_cast<unsigned char>(row[0]) << 8) | static_cast<unsigned char>(row[1]);
  if (row.size() < 2 + len) return false;
  target->assign(row.substr(2, len));
  *key = row.substr(2 + len);
  return true;
}

}  // namespace

std::string HintTable::EncodeKey(const std::string& target, std::string_view key) {
  std::string row;
  row.reserve(2 + target.size() + key.size());
  row.push_back(static_cast<char>((target.size() >> 8) & 0xff));
  row.push_back(static_cast<char>(target.size() & 0xff));
  row += target;
  row.append(key.data(), key.size());
  return row;
}

Status HintTable::Load() {
  ledger_.Clear();
  corrupt_ = 0;
  std::unique_ptr<EngineIterator> it = engine_.NewIterator(Column::kHints);
  for (it->Seek(""); it->Valid(); it->Next()) {
    std::string target;
    std::string_view key;
    if (!DecodeRow(it->key(), &target, &key) || it->value().size() < kStampBytes) {
      ++corrupt_;
      continue;
    }
    ledger_.Apply(target, false, 0, true, it->key().size() + it->value().size());
  }
  return it->status();
}

Result<std::optional<std::string>> HintTable::RawGet(const std::string& row) {
  if (auto s = staged_.find(row); s != staged_.end()) return s->second;
  std::string value;
  Status st = engine_.Get(Column::kHints, row, &value);
  if (st.IsNotFound()) return std::optional<std::string>();
  if (!st.ok()) return st;
  return std::optional<std::string>(std::move(value));
}

Status HintTable::Add(const std::string& target, std::string_view key, const core::Object& obj) {
  const std::string row = EncodeKey(target, key);
  Result<std::optional<std::string>> old = RawGet(row);
  if (!old.ok()) return old.status();
  core::Object merged = obj;
  if (old->has_value()) {
    Result<core::Hint> h = DecodeValue(key, **old);
    if (!h.ok()) return Status::Corruption("stored hint for " + target + ": " + h.status().message());
    if (core::Merge(h->object, obj) == h->object) return Status::Ok();  // nothing new
    merged = core::Merge(h->object, obj);
  }
  std::string value = EncodeValue(wall_ms_(), merged);
  const bool had = old->has_value();
  const uint64_t old_bytes = had ? row.size() + (*old)->size() : 0;
  const uint64_t new_bytes = row.size() + value.size();
  if (!ledger_.Fits(target, had, old_bytes, new_bytes)) {
    core::HintUsage u = ledger_.usage().count(target) ? ledger_.usage().at(target) : core::HintUsage{};
    return Status::Busy("hints for " + target + " are full (" + std::to_string(u.keys) + " keys, " +
                        std::to_string(u.bytes) + " bytes)");
  }
  ledger_.Apply(target, had, old_bytes, true, new_bytes);
  staged_[row] = std::move(value);
  return Status::Ok();
}

Result<std::optional<core::Hint>> HintTable::Get(const std::string& target, std::string_view key) {
  Result<std::optional<std::string>> raw = RawGet(EncodeKey(target, key));
  if (!raw.ok()) return raw.status();
  if (!raw->has_value()) return std::optional<core::Hint>();
  Result<core::Hint> h = DecodeValue(key, **raw);
  if (!h.ok()) return h.status();
  return std::optional<core::Hint>(std::move(h).value());
}

void HintTable::Remove(const std::string& target, std::string_view key) {
  const std::string row = EncodeKey(target, key);
  Result<std::optional<std::string>> old = RawGet(row);
  if (!old.ok() || !old->has_value()) return;
  ledger_.Apply(target, true, row.size() + (*old)->size(), false, 0);
  staged_[row] = std::nullopt;
}

Result<std::vector<core::Hint>> HintTable::Scan(const std::string& target, std::string_view start,
                                                size_t limit) {
  const std::string prefix = EncodeKey(target, "");
  const std::string from = EncodeKey(target, start);
  // Durable rows first, then the staged changes laid over them.
  std::map<std::string, std::string> rows;
  std::unique_ptr<EngineIterator> it = engine_.NewIterator(Column::kHints);
  for (it->Seek(from); it->Valid() && rows.size() < limit; it->Next()) {
    if (it->key().substr(0, prefix.size()) != prefix) break;
    rows.emplace(std::string(it->key()), std::string(it->value()));
  }
  if (!it->status().ok()) return it->status();
  for (auto s = staged_.lower_bound(from); s != staged_.end(); ++s) {
    if (s->first.compare(0, prefix.size(), prefix) != 0) break;
    if (s->second) {
      rows[s->first] = *s->second;
    } else {
      rows.erase(s->first);
    }
  }
  std::vector<core::Hint> out;
  for (const auto& [row, value] : rows) {
    if (out.size() == limit) break;
    std::string_view key = std::string_view(row).substr(prefix.size());
    Result<core::Hint> h = DecodeValue(key, value);
    if (!h.ok()) continue;  // counted by Load(); never replayed, never crashes the node
    out.push_back(std::move(h).value());
  }
  return out;
}

void HintTable::AppendStaged(WriteBatch* batch) const {
  for (const auto& [row, value] : staged_) {
    if (value) {
      batch->Put(Column::kHints, row, *value);
    } else {
      batch->Delete(Column::kHints, row);
    }
  }
}

void HintTable::Committed(bool ok) {
  if (ok) {
    staged_.clear();
    return;
  }
  DiscardStaged();
}

void HintTable::DiscardStaged() {
  staged_.clear();
  Status st = Load();
  (void)st;  // a failing engine shows in the next commit
}

}  // namespace itsuka::server
