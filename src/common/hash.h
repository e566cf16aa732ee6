// Hashing used by the ring and by anti-entropy: XXH3-64, stable across platforms and
// releases (it decides which partition owns a key, so it must never change).
#pragma once

#include <cstdint>
#include <string_view>

namespace itsuka {

uint64_t Hash64(std::string_view data);
uint64_t Hash64(std::string_view data, uint64_t seed);

// XXH3-64 over a sequence of pieces, without concatenating them (anti-entropy digests
// of objects whose values may be large). Equal piece sequences give equal digests.
class Hasher {
 public:
  Hasher();
  ~Hasher();
  Hasher(const Hasher&) = delete;
  Hasher& operator=(const Hasher&) = delete;
  void Update(std::string_view data);
  void Update(uint64_t v);  // little-endian, 8 bytes
  uint64_t Digest() const;

 private:
  void* state_;  // XXH3_state_t
};

}  // namespace itsuka
