import CLibPQ

/// Keeps OpenSSL from freeing its global state in an `atexit` handler, which races with threads still
/// running when the process exits.
///
/// libpq uses OpenSSL (libcrypto) for TLS and for SCRAM's hashes and nonces, so every session thread
/// holds OpenSSL thread-local state (its random generators among them), which the thread's destructor
/// frees when it ends. By default OpenSSL also registers `OPENSSL_cleanup` with `atexit`. A command
/// that closes its session and returns at once (`flexcharge-outbox migrate`) can exit while the
/// session's thread is still ending: `OPENSSL_cleanup` on the exiting thread and the thread's
/// destructor then free the same memory, and glibc aborts the process with
/// `malloc_consolidate(): unaligned fastbin chunk detected` (seen once in CI, after the migrations
/// had applied). A worker stopping on SIGTERM closes many sessions the same way.
///
/// `OPENSSL_INIT_NO_ATEXIT` must be in OpenSSL's first initialisation (later calls cannot undo the
/// handler), so every connection asks for this before libpq touches OpenSSL. The memory is the
/// kernel's to reclaim at exit, as OpenSSL's maintainers advise for multi-threaded programs.
enum OpenSSLExitHandler {
    /// True when OpenSSL accepted the option (it fails only when out of memory).
    static let disabled: Bool = OPENSSL_init_crypto(UInt64(OPENSSL_INIT_NO_ATEXIT), nil) == 1
}
