#include "core/keyspace.h"

#include <algorithm>
#include <cctype>
#include <charconv>

namespace itsuka::core {

uint64_t EncodeScanCursor(const ScanCursor& c) {
  return (static_cast<uint64_t>(c.partition) << 32) | c.leaf;
}

Result<ScanCursor> DecodeScanCursor(std::string_view text, uint32_t partitions, uint32_t leaves) {
  uint64_t v = 0;
  const char* end = text.data() + text.size();
  auto [ptr, ec] = std::from_chars(text.data(), end, v);
  if (text.empty() || ec != std::errc() || ptr != end) {
    return Status::InvalidArgument("ERR invalid cursor");
  }
  ScanCursor c{static_cast<uint32_t>(v >> 32), static_cast<uint32_t>(v & 0xffffffffu)};
  if (c.partition >= partitions || c.leaf >= leaves) {
    return Status::InvalidArgument("ERR invalid cursor");
  }
  return c;
}

std::optional<ScanCursor> NextPartition(uint32_t partition, uint32_t partitions) {
  if (partition + 1 >= partitions) return std::nullopt;
  return ScanCursor{partition + 1, 0};
}

namespace {

unsigned char Fold(unsigned char c, bool nocase) {
  return nocase ? static_cast<unsigned char>(std::tolower(c)) : c;
}

// Matches one key byte against the single-byte token at pattern[*p] (not '*'): '?', a
// class, an escape or a literal. Advances *p past the token.
bool MatchToken(std::string_view pat, size_t* p, unsigned char c, bool nocase) {
  size_t i = *p;
  const unsigned char fc = Fold(c, nocase);
  if (pat[i] == '?') {
    *p = i + 1;
    return true;
  }
  if (pat[i] == '[') {
    ++i;
    const bool negate = i < pat.size() && pat[i] == '^';
    if (negate) ++i;
    bool match = false;
    while (i < pat.size() && pat[i] != ']') {
      if (pat[i] == '\\' && i + 1 < pat.size()) {
        ++i;
        if (Fold(pat[i], nocase) == fc) match = true;
      } else if (i + 2 < pat.size() && pat[i + 1] == '-') {
        unsigned char lo = Fold(pat[i], nocase), hi = Fold(pat[i + 2], nocase);
        if (lo > hi) std::swap(lo, hi);
        if (fc >= lo && fc <= hi) match = true;
        i += 2;
      } else if (Fold(pat[i], nocase) == fc) {
        match = true;
      }
      ++i;
    }
    *p = i < pat.size() ? i + 1 : i;  // past the ']' (an unclosed class ends the pattern)
    return match != negate;
  }
  if (pat[i] == '\\' && i + 1 < pat.size()) ++i;
  *p = i + 1;
  return Fold(pat[i], nocase) == fc;
}

}  // namespace

bool GlobMatch(std::string_view pat, std::string_view key, bool nocase) {
  // Greedy with a return to the last star: every token but '*' matches exactly one
  // byte, so retrying from the last star with one more byte absorbed is complete, and
  // the work is at most pattern x key token steps.
  size_t p = 0, s = 0;
  size_t star = std::string_view::npos, star_s = 0;
  while (s < key.size()) {
    if (p < pat.size() && pat[p] == '*') {
      while (p < pat.size() && pat[p] == '*') ++p;
      star = p;
      star_s = s;
      continue;
    }
    size_t np = p;
    if (p < pat.size() && MatchToken(pat, &np, static_cast<unsigned char>(key[s]), nocase)) {
      p = np;
      ++s;
      continue;
    }
    if (star == std::string_view::npos) return false;
    p = star;
    s = ++star_s;
  }
  while (p < pat.size() && pat[p] == '*') ++p;
  return p == pat.size();
}

bool HoldsLiveValue(const Object& obj, int64_t now_ms) {
  return std::any_of(obj.siblings.begin(), obj.siblings.end(),
                     [&](const Sibling& s) { return s.IsLive(now_ms); });
}

bool HoldsValue(const Object& obj) {
  return std::any_of(obj.siblings.begin(), obj.siblings.end(),
                     [](const Sibling& s) { return !s.tombstone; });
}

std::vector<std::string> MergeScanReplies(const std::vector<ScanReply>& replies,
                                          uint32_t* next_leaf) {
  uint32_t upto = UINT32_MAX;
  for (const ScanReply& r : replies) upto = std::min(upto, r.next_leaf);
  std::vector<std::pair<uint32_t, std::string_view>> all;
  for (const ScanReply& r : replies) {
    for (size_t i = 0; i < r.keys.size() && i < r.key_leaves.size(); ++i) {
      if (r.key_leaves[i] < upto) all.emplace_back(r.key_leaves[i], r.keys[i]);
    }
  }
  std::sort(all.begin(), all.end());
  all.erase(std::unique(all.begin(), all.end()), all.end());
  std::vector<std::string> out;
  out.reserve(all.size());
  for (const auto& [leaf, key] : all) out.emplace_back(key);
  *next_leaf = replies.empty() ? 0 : upto;
  return out;
}

std::optional<uint64_t> SumPartitionCounts(
    const std::vector<std::vector<const std::vector<uint64_t>*>>& primaries_answered,
    uint32_t* missing) {
  uint64_t sum = 0;
  for (uint32_t p = 0; p < primaries_answered.size(); ++p) {
    bool any = false;
    uint64_t best = 0;
    for (const std::vector<uint64_t>* counts : primaries_answered[p]) {
      if (counts == nullptr || p >= counts->size()) continue;
      any = true;
      best = std::max(best, (*counts)[p]);
    }
    if (!any) {
      *missing = p;
      return std::nullopt;
    }
    sum += best;
  }
  return sum;
}

}  // namespace itsuka::core
