// The on-disk data format of a node's data directory (docs/DESIGN.md 4.12).
//
// The meta column's "format" entry holds the format as a decimal number. Format 1: keys
// placed on partitions by XXH3-64 (every directory from before formats were versioned;
// one without the entry is format 1). Format 2: keys placed by their Redis Cluster hash
// slot, and the "elements" column family reserved for collection elements. A format
// this build does not know (newer, or not a number) is refused: opening it could
// misplace every key.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "core/ring.h"
#include "itsuka/status.h"

namespace itsuka::server {

inline constexpr std::string_view kDataFormatKey = "format";
inline constexpr uint32_t kNewestDataFormat = 2;

// The format a stored entry names (nullopt: no entry, format 1); kInvalidArgument with
// a message for the operator if it is malformed or newer than kNewestDataFormat.
Result<uint32_t> ParseDataFormat(const std::optional<std::string>& stored);
// REQUIRES: 1 <= format <= kNewestDataFormat.
core::Placement PlacementOfFormat(uint32_t format);
// "format 2 (Redis Cluster hash-slot placement)", for logs and refusals.
std::string DescribeDataFormat(uint32_t format);

}  // namespace itsuka::server
