#include "server/data_format.h"

#include <charconv>

namespace itsuka::server {

Result<uint32_t> ParseDataFormat(const std::optional<std::string>& stored) {
  if (!stored) return uint32_t{1};
  uint32_t format = 0;
  const char* end = stored->data() + stored->size();
  auto [p, ec] = std::from_chars(stored->data(), end, format);
  if (ec != std::errc() || p != end || format == 0) {
    return Status::InvalidArgument("the recorded data format '" + stored->substr(0, 32) +
                                   "' is not a format number; refusing to open it");
  }
  if (format > kNewestDataFormat) {
    return Status::InvalidArgument(
        "data format " + std::to_string(format) + " is newer than this build knows (formats 1-" +
        std::to_string(kNewestDataFormat) + "); refusing to open it: run the itsukad build "
        "that wrote it, or a newer one");
  }
  return format;
}

core::Placement PlacementOfFormat(uint32_t format) {
  return format >= 2 ? core::Placement::kSlots : core::Placement::kHash;
}

std::string DescribeDataFormat(uint32_t format) {
  return "format " + std::to_string(format) +
         (PlacementOfFormat(format) == core::Placement::kSlots
              ? " (Redis Cluster hash-slot placement)"
              : " (XXH3-64 placement)");
}

}  // namespace itsuka::server
