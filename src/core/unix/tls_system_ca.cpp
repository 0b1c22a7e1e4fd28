// The system's trusted CAs on POSIX systems: OpenSSL's default file and
// directory, which the distribution's OpenSSL points at its CA bundle (and
// SSL_CERT_FILE / SSL_CERT_DIR override).
#include "../tls_system_ca.hpp"

#include <openssl/ssl.h>

namespace sock {
namespace tls {

bool load_system_ca(SSL_CTX* ctx) { return SSL_CTX_set_default_verify_paths(ctx) == 1; }

}  // namespace tls
}  // namespace sock
