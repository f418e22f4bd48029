import java.nio.file.Files;
import java.nio.file.Path;
import java.sql.Connection;
import java.sql.DriverManager;
import java.sql.PreparedStatement;
import java.sql.ResultSet;
import java.sql.SQLException;
import java.sql.Statement;
import java.util.Set;
import org.postgresql.PGConnection;

/**
 * A gateway writing a declined payment and its FlexCharge evaluate in one transaction, then waiting for
 * the outcome (JDBC with the PostgreSQL driver, pgjdbc).
 *
 * <pre>
 *   javac -cp /usr/share/java/postgresql.jar -d out GatewayExample.java
 *   JDBC_URL='jdbc:postgresql://db:5432/gateway?user=gateway_app&amp;password=...' \
 *       java -cp out:/usr/share/java/postgresql.jar GatewayExample MERCHANT ORDER [AMOUNT_CENTS]
 * </pre>
 *
 * Prints one JSON line: {"event_id", "inserted", "state", "decision", "order_session_key", "last_error"}.
 * Exits 0 when the evaluate reached an outcome, 1 when none came within WAIT_SECONDS (default 30).
 * Run it twice with the same order: the second run inserts nothing (dedupe_key) and reports the same event.
 */
public final class GatewayExample {
    /** An outcome: the evaluate no longer waits for a worker (CHALLENGE and SUBMITTED arrive as awaiting_outcome). */
    private static final Set<String> WAITING = Set.of("pending", "running");

    record Recorded(long eventId, boolean inserted) {}

    record Outcome(String state, String decision, String orderSessionKey, String lastError) {}

    public static void main(String[] args) throws Exception {
        String merchantId = args[0], orderId = args[1];
        int amountCents = args.length > 2 ? Integer.parseInt(args[2]) : 1500;
        // The FlexCharge /evaluate body the gateway builds from its declined payment: no credentials and no
        // card number (a /v1/tokenize token). orderId, isMIT, siteUrl and mid are added from the columns.
        String payload = Files.readString(Path.of(System.getProperty("payload", "../declined-payment.json")));
        try (Connection conn = DriverManager.getConnection(System.getenv("JDBC_URL"))) {
            try (Statement statement = conn.createStatement()) {
                statement.execute("""
                    CREATE TABLE IF NOT EXISTS payments (
                        merchant_id text NOT NULL, order_id text NOT NULL, amount_cents integer NOT NULL,
                        status text NOT NULL, created_at timestamptz NOT NULL DEFAULT now(),
                        PRIMARY KEY (merchant_id, order_id))""");
                // LISTEN before the insert commits, so the outcome's notification cannot come too early.
                statement.execute("LISTEN flexcharge_event_done");
            }
            Recorded recorded = recordDeclinedPayment(conn, merchantId, orderId, amountCents, payload);
            String wait = System.getenv().getOrDefault("WAIT_SECONDS", "30");
            Outcome outcome = waitForOutcome(conn, recorded.eventId(), (long) (Double.parseDouble(wait) * 1000));
            System.out.printf("{\"event_id\": %d, \"inserted\": %b, \"state\": %s, \"decision\": %s, \"order_session_key\": %s, \"last_error\": %s}%n",
                recorded.eventId(), recorded.inserted(), json(outcome.state()), json(outcome.decision()),
                json(outcome.orderSessionKey()), json(outcome.lastError()));
            System.exit(WAITING.contains(outcome.state()) ? 1 : 0);
        }
    }

    /**
     * The payment row and its outbox event, committed together or not at all. Both inserts are idempotent,
     * so a gateway that lost the answer to COMMIT simply runs this again.
     */
    static Recorded recordDeclinedPayment(Connection conn, String merchantId, String orderId, int amountCents, String payload)
            throws SQLException {
        String dedupeKey = orderId + "/evaluate";
        conn.setAutoCommit(false);
        try {
            try (PreparedStatement payment = conn.prepareStatement("""
                    INSERT INTO payments (merchant_id, order_id, amount_cents, status) VALUES (?, ?, ?, 'declined')
                    ON CONFLICT (merchant_id, order_id) DO NOTHING""")) {
                payment.setString(1, merchantId);
                payment.setString(2, orderId);
                payment.setInt(3, amountCents);
                payment.executeUpdate();
            }
            // The payment's own transaction id and amount go into the body with jsonb_set.
            try (PreparedStatement event = conn.prepareStatement("""
                    INSERT INTO flexcharge.outbox (kind, merchant_id, order_id, channel, origin, site_url, payload, dedupe_key)
                    VALUES ('evaluate', ?, ?, 'cit', 'website', 'https://shoes.example',
                            jsonb_set(jsonb_set(?::jsonb, '{transaction,id}', to_jsonb(?::text)),
                                      '{transaction,amount}', to_jsonb(?::integer)),
                            ?)
                    ON CONFLICT (merchant_id, dedupe_key) WHERE dedupe_key IS NOT NULL DO NOTHING
                    RETURNING id""")) {
                event.setString(1, merchantId);
                event.setString(2, orderId);
                event.setString(3, payload);
                event.setString(4, "psp-" + orderId);
                event.setInt(5, amountCents);
                event.setString(6, dedupeKey);
                try (ResultSet rows = event.executeQuery()) {
                    if (rows.next()) {
                        long id = rows.getLong(1);
                        conn.commit();
                        return new Recorded(id, true);
                    }
                }
            }
            // Inserted by an earlier run: the dedupe key finds it.
            try (PreparedStatement earlier = conn.prepareStatement(
                    "SELECT id FROM flexcharge.outbox WHERE merchant_id = ? AND dedupe_key = ?")) {
                earlier.setString(1, merchantId);
                earlier.setString(2, dedupeKey);
                try (ResultSet rows = earlier.executeQuery()) {
                    rows.next();
                    long id = rows.getLong(1);
                    conn.commit();
                    return new Recorded(id, false);
                }
            }
        } catch (SQLException error) {
            conn.rollback();
            throw error;
        } finally {
            conn.setAutoCommit(true);
        }
    }

    /**
     * Reads the event from flexcharge.order_events until it has an outcome. LISTEN (issued before the insert)
     * wakes the loop at once; the query is the truth, so a missed notification costs at most one poll interval.
     */
    static Outcome waitForOutcome(Connection conn, long eventId, long millis) throws SQLException {
        PGConnection listener = conn.unwrap(PGConnection.class);
        long deadline = System.currentTimeMillis() + millis;
        try (PreparedStatement read = conn.prepareStatement("""
                SELECT state, decision, order_session_key, last_error FROM flexcharge.order_events WHERE id = ?""")) {
            read.setLong(1, eventId);
            while (true) {
                Outcome outcome;
                try (ResultSet row = read.executeQuery()) {
                    row.next();
                    outcome = new Outcome(row.getString(1), row.getString(2), row.getString(3), row.getString(4));
                }
                long left = deadline - System.currentTimeMillis();
                if (!WAITING.contains(outcome.state()) || left <= 0) {
                    return outcome;
                }
                // Wait for a notification on this connection, or poll again after 5 s.
                listener.getNotifications((int) Math.min(left, 5000));
            }
        }
    }

    private static String json(String value) {
        if (value == null) {
            return "null";
        }
        StringBuilder quoted = new StringBuilder("\"");
        for (char c : value.toCharArray()) {
            switch (c) {
                case '"' -> quoted.append("\\\"");
                case '\\' -> quoted.append("\\\\");
                default -> {
                    if (c < 0x20) {
                        quoted.append(String.format("\\u%04x", (int) c));
                    } else {
                        quoted.append(c);
                    }
                }
            }
        }
        return quoted.append('"').toString();
    }
}
