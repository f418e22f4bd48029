import HummingbirdBcrypt
import NIOPosix

/// Passwords are kept as bcrypt hashes (hummingbird-auth's `Bcrypt`). Hashing and checking are slow on
/// purpose (cost 12: a fraction of a second), so they run on NIO's blocking thread pool, not on an
/// event loop or the cooperative pool.
public enum PasswordHashing {
    /// The cost of new hashes (2^cost rounds). Tests pass a lower one to stay quick; hashes carry
    /// their cost, so a check works with any.
    public static let defaultCost: UInt8 = 12

    /// The shortest password accepted for a console account.
    public static let minimumLength = 12

    public static func hash(_ password: String, cost: UInt8 = defaultCost) async throws -> String {
        try await NIOThreadPool.singleton.runIfActive { Bcrypt.hash(password, cost: cost) }
    }

    /// True when `password` matches `hash`. With no hash (unknown account, SSO-only account) it checks
    /// against a fixed hash anyway and answers false, so the time taken does not tell whether the
    /// account exists.
    public static func verify(_ password: String, hash: String?) async throws -> Bool {
        let target = hash ?? dummyHash
        let matches = try await NIOThreadPool.singleton.runIfActive { Bcrypt.verify(password, hash: target) }
        return hash != nil && matches
    }

    /// A bcrypt hash of a random string, made once per process at the default cost.
    private static let dummyHash = Bcrypt.hash(Secrets.token(), cost: defaultCost)
}
