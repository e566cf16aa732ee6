// The keyspace's pure parts (docs/DESIGN.md 4.17): the SCAN cursor, Redis's glob
// matching, and how a coordinator combines what several primaries of a partition
// answered for SCAN and DBSIZE. No I/O; the shell (server/keyspace.h) sends the
// ScanRequest/KeyCountRequest messages and calls these on the replies.
//
// The cursor names a position in the fixed layout every node shares: (partition, leaf of
// the partition's anti-entropy tree). Both are fixed when the cluster is created
// (cluster.partitions, core::MerkleDepthFor), so a cursor means the same on every node
// and across membership changes: a key is in the same (partition, leaf) wherever it is
// stored. Encoding: partition * 2^32 + leaf, as the unsigned decimal Redis clients
// expect; 0 is both the start (partition 0, leaf 0) and, returned, the end.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/messages.h"
#include "core/object.h"
#include "itsuka/status.h"

namespace itsuka::core {

// The most keys one ScanRequest is answered with (a larger max_keys is capped), and the
// most index entries it examines (live or not, matching or not) before it stops at
// the next leaf boundary. Whole leaves are never split, so a reply may exceed these by
// one leaf's entries (a leaf holds about keys / 2^20 entries).
inline constexpr uint32_t kScanMaxKeys = 4096;
inline constexpr uint32_t kScanMaxExamined = 16384;

struct ScanCursor {
  uint32_t partition = 0;
  uint32_t leaf = 0;
  friend bool operator==(const ScanCursor&, const ScanCursor&) = default;
};

uint64_t EncodeScanCursor(const ScanCursor& c);
// The cursor a client sent (decimal text), checked against the cluster's layout:
// kInvalidArgument "ERR invalid cursor" if not a number or naming no such position.
Result<ScanCursor> DecodeScanCursor(std::string_view text, uint32_t partitions, uint32_t leaves);
// The position after the last leaf of `partition`: the next partition's start, or
// nullopt past the last partition (the iteration is over: cursor 0).
std::optional<ScanCursor> NextPartition(uint32_t partition, uint32_t partitions);

// Redis's glob rules (stringmatchlen): * ? [abc] [^a-z] and \ escapes ("!" is no negation,
// as in Redis); a range may be given backwards ([z-a]); an unclosed [ is a class up to the end.
// `nocase` folds ASCII case. Iterative, with a bound on backtracking work, so a hostile
// pattern costs at most O(pattern x key) steps.
bool GlobMatch(std::string_view pattern, std::string_view key, bool nocase = false);

// Whether the object holds a value a reader at `now_ms` sees (not only tombstones,
// not expired).
bool HoldsLiveValue(const Object& obj, int64_t now_ms);
// Whether the object holds a value sibling at all (expired or not): what the exact key
// count counts (a value past its expiry counts until reclaimed).
bool HoldsValue(const Object& obj);

// SCAN's merge over the replies of a partition's primaries to one ScanRequest for
// [leaf_begin, leaf_end): every key of a leaf below the smallest next_leaf of the
// replies (each reply covers its leaves completely up to its next_leaf), the union of
// the replies without duplicates, in (leaf, key) order. *next_leaf: that smallest one.
// REQUIRES: at least one reply, each ok and with keys.size() == key_leaves.size().
std::vector<std::string> MergeScanReplies(const std::vector<ScanReply>& replies,
                                          uint32_t* next_leaf);

// DBSIZE's sum: for each partition, the largest count any of its answering primaries
// reported (`primaries_answered[p]`: the counts vectors of those primaries). A
// partition no primary answered for makes the result nullopt, *missing = that
// partition.
std::optional<uint64_t> SumPartitionCounts(
    const std::vector<std::vector<const std::vector<uint64_t>*>>& primaries_answered,
    uint32_t* missing);

}  // namespace itsuka::core
