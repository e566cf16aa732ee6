// Redis Cluster hash slots: the slot a key belongs to, as every Redis Cluster client
// computes it (CRC16-XMODEM of the key, or of its hash tag, mod 16384).
//
// Hash tag: if the key holds a '{' and a later '}' with at least one byte between
// them, only the bytes between the first '{' and the first '}' after it are hashed,
// so "{user1000}.following" and "{user1000}.followers" share a slot. Otherwise (no
// '{', no '}' after it, or "{}") the whole key is hashed.
//
// Pure functions of their input: they decide where a key is stored in a format-2 data
// directory (docs/DESIGN.md 4.1), so they must never change.
#pragma once

#include <cstdint>
#include <string_view>

namespace itsuka {

inline constexpr uint32_t kClusterSlots = 16384;

// CRC16-XMODEM (polynomial 0x1021, initial value 0, no reflection, no final xor):
// Crc16("123456789") == 0x31C3.
uint16_t Crc16(std::string_view data);
// The part of `key` that is hashed: its hash tag if it has one, else the whole key.
std::string_view HashTagOf(std::string_view key);
// Crc16(HashTagOf(key)) % 16384.
uint32_t KeySlot(std::string_view key);

}  // namespace itsuka
