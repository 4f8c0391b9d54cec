/* SHA-256, for the group socket name (containerd's sha256 of address, namespace and key). Written
 * here rather than linking libcrypto, whose initialisation and pages would cost the shim more
 * than the hash it computes once per `start`. */
#pragma once
#include <stddef.h>
#include <stdint.h>

void sha256(const void *data, size_t len, uint8_t out[32]);
/* Lower-case hex of sha256(data): 64 characters and a NUL. */
void sha256_hex(const void *data, size_t len, char out[65]);
