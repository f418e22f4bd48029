// The C API of libpq, as Debian's libpq-dev installs it.
#include <libpq-fe.h>
// OpenSSL's initialisation, for OPENSSL_INIT_NO_ATEXIT (libpq links libcrypto; libpq-dev depends on
// libssl-dev, so the header is there wherever libpq's is). See OpenSSLExitHandler.swift.
#include <openssl/crypto.h>
