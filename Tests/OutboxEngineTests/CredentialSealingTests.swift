import FlexChargeAPI
import FlexChargeSandbox
import Foundation
import LibPQ
import Logging
@testable import OutboxEngine
import ServiceLifecycle
import Testing
import TestSupport

/// Sealed credentials: bound to merchant, environment and field; key ring; legacy v1; rotation.
@Suite struct CredentialSealingTests {
    static let keyA = WorkerHarness.keyBytes
    static let keyB: [UInt8] = Array(repeating: 42, count: 32)
    static let keyC: [UInt8] = Array(repeating: 99, count: 32)
    static let secret = "app-SECRET-do-not-leak-0042"

    static func binding(_ merchant: String = "m1", _ environment: String = "sandbox", _ field: CredentialField = .appSecret) -> CredentialBinding {
        CredentialBinding(merchantID: merchant, environment: environment, field: field)
    }

    static func secretValue(_ bytes: [UInt8], at binding: CredentialBinding, keyID: String?) -> SealedSecret {
        SealedSecret(binding: binding, content: .sealed(bytes), recordedKeyID: keyID)
    }

    /// The error `body` throws, or nil.
    static func failure(_ body: () throws(CredentialError) -> String) -> CredentialError? {
        do {
            _ = try body()
            return nil
        } catch {
            return error
        }
    }

    // MARK: - Binding and keys

    @Test func aValueOpensOnlyForTheMerchantEnvironmentAndFieldItWasSealedFor() throws {
        let ring = try CredentialSealer(keyBytes: Self.keyA)
        let sealed = try ring.seal(Self.secret, for: Self.binding())
        #expect(sealed.starts(with: CredentialSealer.magic))
        #expect(try ring.open(Self.secretValue(sealed, at: Self.binding(), keyID: ring.keyID)) == Self.secret)
        let elsewhere: [(CredentialBinding, String)] = [
            (Self.binding("m2"), "merchant m2, sandbox app_secret"),
            (Self.binding("m1", "production"), "merchant m1, production app_secret"),
            (Self.binding("m1", "sandbox", .appKey), "merchant m1, sandbox app_key"),
            (Self.binding("m1", "sandbox", .webhookKey), "merchant m1, sandbox webhook_key"),
        ]
        for (binding, name) in elsewhere {
            let error = try #require(Self.failure { () throws(CredentialError) in
                try ring.open(Self.secretValue(sealed, at: binding, keyID: ring.keyID))
            }, "\(name) opened a value sealed for m1 sandbox app_secret")
            #expect(error.description.hasPrefix(name), "\(error)")
            #expect(error.description.contains("another merchant, environment or field"), "\(error)")
            #expect(!error.description.contains(Self.secret))
        }
        // One flipped bit of the ciphertext: refused too.
        var altered = sealed
        altered[altered.count - 20] ^= 1
        #expect(Self.failure { () throws(CredentialError) in try ring.open(Self.secretValue(altered, at: Self.binding(), keyID: ring.keyID)) } != nil)
    }

    @Test func aValueNamesItsKeyAndAWrongOrMissingKeyIsAClearError() throws {
        let ringA = try CredentialSealer(keyBytes: Self.keyA)
        let ringB = try CredentialSealer(keyBytes: Self.keyB)
        let sealed = try ringA.seal(Self.secret, for: Self.binding())
        let missing = try #require(Self.failure { () throws(CredentialError) in
            try ringB.open(Self.secretValue(sealed, at: Self.binding(), keyID: ringA.keyID))
        })
        #expect(missing.description == "merchant m1, sandbox app_secret: sealed with key \(ringA.keyID), which is not loaded (loaded: \(ringB.keyID))")
        // The row's key_id must agree with the value's own.
        let disagreeing = try #require(Self.failure { () throws(CredentialError) in
            try ringA.open(Self.secretValue(sealed, at: Self.binding(), keyID: ringB.keyID))
        })
        #expect(disagreeing.description.contains("sealed with key \(ringA.keyID) but the row records key \(ringB.keyID)"), "\(disagreeing)")
        // A ring of both opens it, and seals with its primary.
        let ringBA = try CredentialSealer(keys: [Self.keyB, Self.keyA])
        #expect(ringBA.keyID == ringB.keyID && ringBA.keyIDs == [ringB.keyID, ringA.keyID])
        #expect(try ringBA.open(Self.secretValue(sealed, at: Self.binding(), keyID: ringA.keyID)) == Self.secret)
        let resealed = try ringBA.seal(Self.secret, for: Self.binding())
        #expect(try ringB.open(Self.secretValue(resealed, at: Self.binding(), keyID: ringB.keyID)) == Self.secret)
        #expect(ringBA.isCurrent(Self.secretValue(resealed, at: Self.binding(), keyID: nil)))
        #expect(!ringBA.isCurrent(Self.secretValue(sealed, at: Self.binding(), keyID: nil)))
        #expect(CredentialSealer.id(of: Self.keyA) == ringA.keyID && ringA.keyID.count == 8)
    }

    @Test func legacyV1ValuesOpenLoggedOnceUntilRefused() throws {
        let logs = LogRecorder()
        let ringA = try CredentialSealer(keyBytes: Self.keyA, logger: logs.logger)
        let legacy = CredentialSealer.sealLegacyV1(Self.secret, keyBytes: Self.keyA)
        let value = Self.secretValue(legacy, at: Self.binding(), keyID: ringA.keyID)
        #expect(try ringA.open(value) == Self.secret)
        #expect(try ringA.open(value) == Self.secret)
        #expect(logs.all.filter { $0.contains("legacy v1") }.count == 1, "\(logs.all)")
        #expect(!logs.all.contains { $0.contains(Self.secret) })
        #expect(!ringA.isCurrent(value))

        let refusing = try CredentialSealer(keyBytes: Self.keyA, allowsLegacy: false)
        let refused = try #require(Self.failure { () throws(CredentialError) in try refusing.open(value) })
        #expect(refused.description.hasPrefix("merchant m1, sandbox app_secret: sealed in the legacy v1 format, refused"), "\(refused)")
        let ringB = try CredentialSealer(keyBytes: Self.keyB)
        let wrong = try #require(Self.failure { () throws(CredentialError) in try ringB.open(value) })
        #expect(wrong.description.contains("sealed with key \(ringA.keyID), which is not loaded"), "\(wrong)")
    }

    @Test func theKeyRingIsReadFromTheEnvironmentAFileOrADirectory() throws {
        let a = Data(Self.keyA).base64EncodedString(), b = Data(Self.keyB).base64EncodedString(), c = Data(Self.keyC).base64EncodedString()
        let idA = CredentialSealer.id(of: Self.keyA), idB = CredentialSealer.id(of: Self.keyB), idC = CredentialSealer.id(of: Self.keyC)
        // The single key, as before: a ring of one.
        #expect(try CredentialSealer.fromEnvironment(["FLEXCHARGE_CREDENTIALS_KEY": a]).keyIDs == [idA])
        // A list: the first is the primary; the single key joins it.
        let listed = try CredentialSealer.fromEnvironment(["FLEXCHARGE_CREDENTIALS_KEYS": "\(b), \(c)", "FLEXCHARGE_CREDENTIALS_KEY": a])
        #expect(listed.keyIDs == [idB, idC, idA])
        #expect(try CredentialSealer.fromEnvironment(["FLEXCHARGE_CREDENTIALS_KEYS": "\(b),\(a)",
                                                      "FLEXCHARGE_CREDENTIALS_PRIMARY_KEY_ID": idA]).keyID == idA)
        // A file (Kubernetes Secret entry, systemd LoadCredential): one key a line, comments.
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("keys-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: folder) }
        let file = folder.appendingPathComponent("ring").path
        try "# new key first\n\(c)\n\n# the old one, until rotated\n\(a)\n".write(toFile: file, atomically: true, encoding: .utf8)
        #expect(try CredentialSealer.fromEnvironment(["FLEXCHARGE_CREDENTIALS_KEYS_FILE": file]).keyIDs == [idC, idA])
        // A directory (a Secret mounted whole): every file but dot-files; several keys need the primary named.
        let mount = folder.appendingPathComponent("mount")
        try FileManager.default.createDirectory(at: mount.appendingPathComponent("..2026_12_01"), withIntermediateDirectories: true)
        try "\(a)\n".write(to: mount.appendingPathComponent("old"), atomically: true, encoding: .utf8)
        try "\(b)\n".write(to: mount.appendingPathComponent("new"), atomically: true, encoding: .utf8)
        try "not a key".write(to: mount.appendingPathComponent(".hidden"), atomically: true, encoding: .utf8)
        let directory = ["FLEXCHARGE_CREDENTIALS_KEYS_FILE": mount.path]
        let unnamed = try #require(Self.failure { () throws(CredentialError) in _ = try CredentialSealer.fromEnvironment(directory); return "" })
        #expect(unnamed.description.contains("FLEXCHARGE_CREDENTIALS_PRIMARY_KEY_ID"))
        let mounted = try CredentialSealer.fromEnvironment(directory.merging(["FLEXCHARGE_CREDENTIALS_PRIMARY_KEY_ID": idB]) { $1 })
        #expect(mounted.keyID == idB && Set(mounted.keyIDs) == [idA, idB])

        // Bad configurations: one line naming the problem, never a key.
        let short = Data(Array(repeating: UInt8(1), count: 16)).base64EncodedString()
        let bad: [([String: String], String)] = [
            ([:], "set FLEXCHARGE_CREDENTIALS_KEY"),
            (["FLEXCHARGE_CREDENTIALS_KEYS": "\(a),\(short)"], "entry 2 of FLEXCHARGE_CREDENTIALS_KEYS is not base64 of 32 bytes"),
            (["FLEXCHARGE_CREDENTIALS_KEY": "not base64!"], "entry 1 of FLEXCHARGE_CREDENTIALS_KEY is not base64 of 32 bytes"),
            (["FLEXCHARGE_CREDENTIALS_KEYS": a, "FLEXCHARGE_CREDENTIALS_PRIMARY_KEY_ID": idB], "the primary credentials key \(idB) is not among"),
            (["FLEXCHARGE_CREDENTIALS_KEYS": a, "FLEXCHARGE_CREDENTIALS_KEYS_FILE": file], "not both"),
            (["FLEXCHARGE_CREDENTIALS_KEY": a, "FLEXCHARGE_CREDENTIALS_LEGACY": "maybe"], "must be allow or refuse"),
            (["FLEXCHARGE_CREDENTIALS_KEYS_FILE": folder.appendingPathComponent("absent").path], "cannot read FLEXCHARGE_CREDENTIALS_KEYS_FILE"),
        ]
        for (environment, expected) in bad {
            let error = try #require(Self.failure { () throws(CredentialError) in _ = try CredentialSealer.fromEnvironment(environment); return "" },
                                     "\(expected)")
            #expect(error.description.contains(expected), "\(error)")
            #expect(![a, b, short].contains { error.description.contains($0) })
        }
        #expect(try !CredentialSealer.fromEnvironment(["FLEXCHARGE_CREDENTIALS_KEY": a, "FLEXCHARGE_CREDENTIALS_LEGACY": "refuse"]).allowsLegacy)
    }

    // MARK: - Stored rows

    /// `store` seals with `sealer`; one merchant per id, both environments, every field.
    static func enrol(_ merchants: [String], session: PGSession, sealer: CredentialSealer) async throws {
        let store = MerchantStore(session: session, actor: "test")
        for merchant in merchants {
            try await store.add(merchant, name: nil, switches: [.citWebsite: .sandbox, .mit: .sandbox])
            for environment in ["sandbox", "production"] {
                try await store.setCredentials(
                    merchant, environment: environment, mid: WorkerHarness.sandboxMerchant.mid,
                    secrets: MerchantSecrets(appKey: "\(merchant)-\(environment)-app-key", appSecret: "\(merchant)-\(environment)-\(Self.secret)",
                                             tokenizationKey: "\(merchant)-\(environment)-tok", webhookKey: "\(merchant)-\(environment)-hook"),
                    sealer: sealer)
            }
        }
    }

    /// Opens every stored row for every purpose with `sealer`; returns the errors.
    static func openEverything(_ session: PGSession, _ sealer: CredentialSealer, cache: CredentialCache? = nil) async throws -> [String] {
        var errors: [String] = []
        let merchants = try await session.query("SELECT DISTINCT merchant_id FROM flexcharge.merchant_credentials").rows
        for row in merchants {
            let merchant: String = try row.decode("merchant_id")
            for sealed in try await SealedCredentials.load(.api, merchantID: merchant, on: session) {
                do {
                    let opened = try cache?.credentials(for: sealed) ?? sealer.apiCredentials(sealed)
                    if opened.appSecret != "\(merchant)-\(sealed.environment)-\(Self.secret)" { errors.append("\(merchant) wrong secret") }
                } catch { errors.append("\(error)") }
            }
            for sealed in try await SealedCredentials.load(.tokenization, merchantID: merchant, on: session) {
                do { _ = try sealer.tokenizationCredentials(sealed) } catch { errors.append("\(error)") }
            }
            for sealed in try await SealedCredentials.load(.webhook, merchantID: merchant, on: session) {
                do { _ = try sealer.webhookKey(sealed) } catch { errors.append("\(error)") }
            }
        }
        return errors
    }

    @Test func aValueMovedToAnotherRowOrColumnDoesNotOpenAndTheErrorNamesWhere() async throws {
        try await TestDatabase.with { db in
            let session = db.session()
            defer { Task { await session.close() } }
            let ring = try CredentialSealer(keyBytes: Self.keyA)
            try await Self.enrol(["m1", "m2"], session: session, sealer: ring)
            #expect(try await Self.openEverything(session, ring).isEmpty)
            let moves: [(String, String)] = [
                // another merchant's app secret
                ("UPDATE flexcharge.merchant_credentials t SET app_secret_sealed = s.app_secret_sealed FROM flexcharge.merchant_credentials s WHERE t.merchant_id = 'm2' AND t.environment = 'sandbox' AND s.merchant_id = 'm1' AND s.environment = 'sandbox'",
                 "merchant m2, sandbox app_secret:"),
                // the other environment's
                ("UPDATE flexcharge.merchant_credentials t SET app_secret_sealed = s.app_secret_sealed FROM flexcharge.merchant_credentials s WHERE t.merchant_id = 'm1' AND t.environment = 'production' AND s.merchant_id = 'm1' AND s.environment = 'sandbox'",
                 "merchant m1, production app_secret:"),
                // another field of the same row
                ("UPDATE flexcharge.merchant_credentials SET webhook_key_sealed = app_secret_sealed WHERE merchant_id = 'm1' AND environment = 'sandbox'",
                 "merchant m1, sandbox webhook_key:"),
            ]
            for (sql, expected) in moves {
                try await session.execute("BEGIN")
                try await session.execute(sql)
                let errors = try await Self.openEverything(session, ring)
                try await session.execute("ROLLBACK")
                #expect(errors.count == 1, "\(errors)")
                #expect(errors.first?.hasPrefix(expected) == true, "\(errors)")
                #expect(errors.first?.contains("another merchant, environment or field") == true, "\(errors)")
                #expect(!errors.joined().contains(Self.secret))
            }
        }
    }

    @Test func rotationReSealsEveryRowUnderTheNewKeyWhileAReaderWithBothKeysKeepsOpening() async throws {
        try await TestDatabase.with { db in
            let session = db.session()
            let reader = db.session("reader")
            defer { Task { await session.close(); await reader.close() } }
            let ringA = try CredentialSealer(keyBytes: Self.keyA)
            let ringB = try CredentialSealer(keyBytes: Self.keyB)
            let ringAB = try CredentialSealer(keys: [Self.keyA, Self.keyB])  // a worker started before the switch
            let ringBA = try CredentialSealer(keys: [Self.keyB, Self.keyA])  // after: B seals
            let merchants = (1...12).map { "r\($0)" }
            try await Self.enrol(merchants, session: session, sealer: ringA)
            // One row still in the legacy v1 format (sealed before migration 0011, no associated data).
            let legacy = ["app_key": "r1-sandbox-app-key", "app_secret": "r1-sandbox-\(Self.secret)", "tokenization_key": "r1-sandbox-tok",
                          "webhook_key": "r1-sandbox-hook"].mapValues { PGBytes(CredentialSealer.sealLegacyV1($0, keyBytes: Self.keyA)) }
            try await session.execute(
                """
                UPDATE flexcharge.merchant_credentials SET app_key_sealed = $1, app_secret_sealed = $2, tokenization_key_sealed = $3,
                       webhook_key_sealed = $4 WHERE merchant_id = 'r1' AND environment = 'sandbox'
                """, [legacy["app_key"], legacy["app_secret"], legacy["tokenization_key"], legacy["webhook_key"]])
            #expect(try await Self.openEverything(session, ringB).count == 12 * 2 * 3)  // nothing opens with B alone yet

            // A reader (the worker's cache) with both keys opens every row, again and again, during the rotation.
            let cache = CredentialCache(sealer: ringAB)
            #expect(try await Self.openEverything(reader, ringAB, cache: cache).isEmpty)
            let reading = Task { () throws -> (passes: Int, errors: [String]) in
                var passes = 0
                var errors: [String] = []
                while !Task.isCancelled || passes < 2 {
                    errors += try await Self.openEverything(reader, ringAB, cache: cache)
                    passes += 1
                }
                return (passes, errors)
            }
            let rotations = try await MerchantStore(session: session, actor: "ops").rotateCredentials(sealer: ringBA)
            reading.cancel()
            let read = try await reading.value
            #expect(read.passes >= 2)
            #expect(read.errors.isEmpty, "\(read.errors.prefix(3))")
            #expect(rotations.count == 24)
            #expect(rotations.allSatisfy { $0.result == "resealed" && $0.fromKeyID == ringA.keyID }, "\(rotations)")

            // Now B alone opens everything, and A alone nothing (the v1 row included: it is v2 now).
            #expect(try await Self.openEverything(session, ringB).isEmpty)
            let withA = try await Self.openEverything(session, ringA)
            #expect(withA.count == 12 * 2 * 3)
            #expect(withA.allSatisfy { $0.contains("sealed with key \(ringB.keyID), which is not loaded") }, "\(withA.prefix(2))")
            let keyIDs = try await session.query("SELECT DISTINCT key_id FROM flexcharge.merchant_credentials").rows.map { try $0.decode(0, as: String.self) }
            #expect(keyIDs == [ringB.keyID])
            #expect(try await Self.openEverything(reader, ringAB, cache: cache).isEmpty)  // new versions, opened again
            let legacyLeft = try await session.query(
                "SELECT count(*) FROM flexcharge.merchant_credentials WHERE substring(app_secret_sealed FROM 1 FOR 4) <> '\\x46434f02'::bytea")
            #expect(try legacyLeft.first?.decode(0, as: Int64.self) == 0)

            // Audited per row, key ids only; a second run has nothing to do.
            let audit = try await session.query(
                "SELECT merchant_id, actor, old_value, new_value FROM flexcharge.merchant_audit WHERE field = 'sealing key'").rows
            #expect(audit.count == 24)
            #expect(try audit.allSatisfy {
                try $0.decode("actor", as: String.self) == "ops" && $0.decode("old_value", as: String.self) == ringA.keyID
                    && $0.decode("new_value", as: String.self) == "\(ringB.keyID) (v2)"
            })
            let again = try await MerchantStore(session: session, actor: "ops").rotateCredentials(sealer: ringB)
            #expect(again.count == 24 && again.allSatisfy { $0.result == "current" })
        }
    }

    @Test func rotatingWithTheSameKeyUpgradesLegacyRowsSoLegacyCanBeRefused() async throws {
        try await TestDatabase.with { db in
            let session = db.session()
            defer { Task { await session.close() } }
            let ringA = try CredentialSealer(keyBytes: Self.keyA)
            try await Self.enrol(["v1"], session: session, sealer: ringA)
            // Both rows as v1 wrote them (no associated data, no header).
            for environment in ["sandbox", "production"] {
                let values = ["v1-\(environment)-app-key", "v1-\(environment)-\(Self.secret)", "v1-\(environment)-tok", "v1-\(environment)-hook"]
                    .map { PGBytes(CredentialSealer.sealLegacyV1($0, keyBytes: Self.keyA)) }
                try await session.execute(
                    """
                    UPDATE flexcharge.merchant_credentials SET app_key_sealed = $2, app_secret_sealed = $3, tokenization_key_sealed = $4,
                           webhook_key_sealed = $5 WHERE merchant_id = 'v1' AND environment = $1
                    """, [environment, values[0], values[1], values[2], values[3]])
            }
            let refusing = try CredentialSealer(keyBytes: Self.keyA, allowsLegacy: false)
            let before = try await Self.openEverything(session, refusing)
            #expect(before.count == 6 && before.allSatisfy { $0.contains("legacy v1 format, refused") }, "\(before)")
            #expect(try await Self.openEverything(session, ringA).isEmpty)
            let rotated = try await MerchantStore(session: session, actor: "ops").rotateCredentials(sealer: ringA)
            #expect(rotated.map(\.result) == ["resealed", "resealed"])
            #expect(try await Self.openEverything(session, refusing).isEmpty)
        }
    }

    @Test func aWorkerHoldingBothKeysDeliversBeforeDuringAndAfterTheRotation() async throws {
        try await WorkerHarness.with { h in
            try await h.enrol("m1")  // sealed with key A (the harness key)
            let ringAB = try CredentialSealer(keys: [Self.keyA, Self.keyB])
            let worker = OutboxWorker(configuration: h.configuration(), database: h.db.configuration, sealer: ringAB, logger: WorkerHarness.silent)
            let group = ServiceGroup(configuration: .init(services: [worker], logger: WorkerHarness.silent))
            let running = Task { try await group.run() }
            var ids: [Int64] = []
            func insert(_ n: Int, _ label: String) async throws {
                for i in 0..<n {
                    ids.append(try await h.insert("transmit", order: "\(label)-\(i)", payload: SamplePayloads.transmit(orderID: "\(label)-\(i)", amountCents: 1000, declined: false)))
                }
            }
            do {
                try await insert(5, "before")
                try await h.waitUntilSettled()
                let ops = h.db.session("ops")
                let ringBA = try CredentialSealer(keys: [Self.keyB, Self.keyA])
                let rotation = Task { try await MerchantStore(session: ops, actor: "ops").rotateCredentials(sealer: ringBA) }
                try await insert(5, "during")
                let rotated = try await rotation.value
                await ops.close()
                #expect(rotated.count == 2 && rotated.allSatisfy { $0.result == "resealed" })
                try await insert(5, "after")
                try await h.waitUntilSettled()
            } catch {
                await group.triggerGracefulShutdown()
                _ = try? await running.value
                throw error
            }
            await group.triggerGracefulShutdown()
            try await running.value
            let states = try await h.session.query("SELECT state, last_error FROM flexcharge.outbox WHERE id = ANY($1)", [ids]).rows
            #expect(states.count == 15)
            let errors = try states.map { try $0.decode("last_error", as: String?.self) ?? "" }
            #expect(try states.allSatisfy { try $0.decode("state", as: String.self) == "succeeded" }, "\(errors)")
        }
    }
}
