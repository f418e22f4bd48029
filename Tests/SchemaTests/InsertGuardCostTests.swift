import Foundation
import LibPQ
import Testing
import TestSupport

/// migrations/0028_insert_guard_cost.sql replaced two regular-expression prefilters by cheaper
/// tests, and moved the worker columns' three CHECK constraints to a BEFORE UPDATE trigger. These
/// tests show, in PostgreSQL, that none of it lets through what the old form caught: the PAN quick test matches every text the old candidate
/// pattern matches (every Unicode digit and separator, and generated texts), the credential quick
/// test answers exactly as the old case-insensitive prefix test, and the worker columns' rules are
/// refused as the constraints refused them.
@Suite struct InsertGuardCostTests {
    /// Every character the old digit class or separator class holds, alone and as an escape pair,
    /// makes a 14-digit run the quick pattern sees (each of the 1 114 111 code points is tried
    /// against the old classes first).
    @Test func theQuickPANTestSeesEveryDigitAndSeparatorOfTheOldPattern() async throws {
        try await TestDatabase.with { db in
            let session = db.session()
            defer { Task { await session.close() } }
            let row = try await session.query(
                """
                WITH cp AS (SELECT chr(c) AS ch FROM generate_series(1, 1114111) AS c WHERE c NOT BETWEEN 55296 AND 57343),
                     digits AS (SELECT ch FROM cp WHERE ch ~ ('^' || flexcharge.pan_digit_class() || '$')),
                     separators AS (SELECT ch FROM cp WHERE ch ~ ('^(?:' || flexcharge.pan_separator() || ')$')
                                    UNION ALL SELECT '\\' || l FROM unnest(ARRAY['t', 'n', 'r', 'f', 'b']) AS l)
                SELECT (SELECT count(*) FROM digits) AS digits,
                       (SELECT count(*) FROM digits WHERE repeat(ch, 14) !~ flexcharge.pan_quick_pattern()) AS digits_missed,
                       (SELECT count(*) FROM separators) AS separators,
                       (SELECT count(*) FROM separators
                         WHERE '1' || ch || repeat('2' || ch, 13) !~ flexcharge.pan_quick_pattern()
                            OR '1' || ch || ch || ch || repeat('2' || ch || ch || ch, 13) !~ flexcharge.pan_quick_pattern()) AS separators_missed
                """).first!
            #expect(try row.decode("digits", as: Int.self) == 660)   // 66 blocks of ten (unicode_digit_zeros)
            #expect(try row.decode("digits_missed", as: Int.self) == 0)
            #expect(try row.decode("separators", as: Int.self) > 40)
            #expect(try row.decode("separators_missed", as: Int.self) == 0)
        }
    }

    /// 30 000 generated texts of digits (ASCII and other blocks), separators, JSON escapes, letters,
    /// quotes, '+' and ':': every one the old candidate pattern matches, the quick pattern matches too.
    @Test func theQuickPANTestLetsNoCandidateOfTheOldPatternThrough() async throws {
        try await TestDatabase.with { db in
            let session = db.session()
            defer { Task { await session.close() } }
            let row = try await session.query(
                """
                WITH alphabet AS (
                         SELECT ARRAY['0', '1', '4', '5', '9', '3', '7', chr(1632 + 4), chr(65296 + 1), chr(2406 + 7), chr(120782 + 3),
                                      chr(1776 + 5)] AS d,
                                ARRAY[' ', '-', '.', '/', '_', '\\', chr(160), chr(183), chr(8203), chr(8211), chr(12288),
                                      chr(65293), '\\t', '\\n', '\\r', 'a', 'T', 'x', '"', ':', ',', '+', 'é', chr(1488), chr(19968)] AS o),
                     texts AS (
                         SELECT n, string_agg(CASE WHEN random() < 0.75 THEN d[1 + floor(random() * cardinality(d))::int]
                                                   ELSE o[1 + floor(random() * cardinality(o))::int] END, '') AS t
                           FROM alphabet, generate_series(1, 30000) AS n, generate_series(1, 40) AS i
                          WHERE i <= 14 + n % 27
                          GROUP BY n)
                SELECT count(*) FILTER (WHERE t ~ flexcharge.pan_candidate_pattern()) AS old_matches,
                       count(*) FILTER (WHERE t ~ flexcharge.pan_candidate_pattern() AND t !~ flexcharge.pan_quick_pattern()) AS missed,
                       count(*) FILTER (WHERE t !~ flexcharge.pan_quick_pattern()) AS quick_no
                  FROM texts
                """).first!
            let oldMatches = try row.decode("old_matches", as: Int.self)
            #expect(oldMatches > 1_000, "too few candidates to mean anything: \(oldMatches)")
            #expect(try row.decode("missed", as: Int.self) == 0)
            #expect(try row.decode("quick_no", as: Int.self) > 1_000)   // and it still says no to many texts
        }
    }

    /// The credential quick test (strpos over the text with its ASCII letters lowered) gives exactly
    /// the answer of 0022's case-insensitive prefix pattern, for every credential key start in random
    /// letter case and for near misses with non-ASCII look-alikes (Turkish dotted and dotless i,
    /// the long s, the Kelvin sign, full-width letters).
    @Test func theCredentialQuickTestIsTheOldCaseInsensitivePrefixTest() async throws {
        try await TestDatabase.with { db in
            let session = db.session()
            defer { Task { await session.close() } }
            let row = try await session.query(
                """
                WITH words AS (
                         SELECT ARRAY['app', 'api', 'client', 'access', 'refresh', 'bearer', 'tokeniz', 'webhook', 'subscriber', 'pass',
                                      'ap', 'cli', 'acces', 'bear', 'token', 'web', 'sub', 'pas', 'amount', 'payer'] AS w,
                                ARRAY[chr(304), chr(305), chr(383), chr(8490), chr(65345), chr(65360), 'I', 'S'] AS odd),
                     picked AS (
                         SELECT n, w[1 + floor(random() * cardinality(w))::int] AS word, odd,
                                CASE WHEN random() < 0.8 THEN '"' ELSE (ARRAY['''', ' ', '`', '{'])[1 + floor(random() * 4)::int] END AS quote
                           FROM words, generate_series(1, 20000) AS n),
                     cased AS (
                         SELECT n, quote, odd, string_agg(CASE WHEN random() < 0.5 THEN upper(ch) ELSE ch END, '' ORDER BY i) AS word
                           FROM picked, unnest(string_to_array(word, NULL)) WITH ORDINALITY AS c(ch, i)
                          GROUP BY n, quote, odd),
                     texts AS (
                         SELECT n, '{"a": 1, ' || quote
                                || CASE WHEN random() < 0.3
                                        THEN overlay(word PLACING odd[1 + floor(random() * cardinality(odd))::int]
                                                     FROM 1 + floor(random() * length(word))::int FOR 1)
                                        ELSE word END
                                || 'Key": "x"}' AS t
                           FROM cased)
                SELECT count(*) FILTER (WHERE t ~* '"(?:app|api|client|access|refresh|bearer|tokeniz|webhook|subscriber|pass)') AS old_yes,
                       count(*) FILTER (WHERE (t ~* '"(?:app|api|client|access|refresh|bearer|tokeniz|webhook|subscriber|pass)')
                                              IS DISTINCT FROM flexcharge.credential_key_may_start(lower(t COLLATE "C"))) AS differ
                  FROM texts
                """).first!
            #expect(try row.decode("old_yes", as: Int.self) > 2_000)
            #expect(try row.decode("differ", as: Int.self) == 0)
        }
    }

    /// The worker columns' rules (0003's three CHECK constraints, a trigger since 0028): an UPDATE
    /// that breaks one is refused with SQLSTATE 23514 and the constraint's name, whoever runs it.
    @Test func anUpdateThatBreaksAWorkerColumnRuleIsRefusedNamingTheConstraint() async throws {
        try await TestDatabase.with { db in
            let session = db.session()
            defer { Task { await session.close() } }
            let id = try await insertEvent(on: session)
            let cases: [(String, String)] = [
                ("UPDATE flexcharge.outbox SET state = 'done' WHERE id = $1", "outbox_state_valid"),
                ("UPDATE flexcharge.outbox SET next_action = 'guess' WHERE id = $1", "outbox_next_action_valid"),
                ("UPDATE flexcharge.outbox SET state = 'running' WHERE id = $1", "outbox_running_has_lease"),
                ("UPDATE flexcharge.outbox SET state = 'running', lease_owner = 'w1' WHERE id = $1", "outbox_running_has_lease"),
                ("UPDATE flexcharge.outbox SET state = 'nonsense', next_action = 'guess' WHERE id = $1", "outbox_next_action_valid"),
            ]
            for (statement, constraint) in cases {
                let error = await #expect(throws: PGError.self, "\(statement)") { try await session.execute(statement, [id]) }
                #expect(error?.sqlState == "23514", "\(statement)")
                #expect(error?.constraint == constraint, "\(statement): \(error?.constraint ?? "-")")
                #expect(error?.message == "new row for relation \"outbox\" violates check constraint \"\(constraint)\"")
            }
            // NULL is refused by NOT NULL, as before; lawful updates pass.
            let nullError = await #expect(throws: PGError.self) {
                try await session.execute("UPDATE flexcharge.outbox SET state = NULL WHERE id = $1", [id])
            }
            #expect(nullError?.sqlState == "23502")
            try await session.execute(
                "UPDATE flexcharge.outbox SET state = 'running', lease_owner = 'w1', lease_expires_at = now() + interval '1 minute' WHERE id = $1", [id])
            try await session.execute("UPDATE flexcharge.outbox SET state = 'pending', next_action = 'lookup', lease_owner = NULL, lease_expires_at = NULL WHERE id = $1", [id])
            let state = try await session.query("SELECT state, next_action FROM flexcharge.outbox WHERE id = $1", [id]).first!
            #expect(try state.decode("state", as: String.self) == "pending")
            #expect(try state.decode("next_action", as: String.self) == "lookup")
        }
    }
}
