import FlexChargeAPI
import Foundation
import LibPQ
import Logging

/// A card vaulted at FlexCharge: the gateway writes `token` into its evaluate event as
/// `paymentMethod.cardNumber` with `"token": true`.
public struct TokenizedCard: Sendable, Codable, Equatable {
    public var token: String
    /// `sandbox` or `production`: where the merchant's channel sends this order.
    public var environment: String
    public var lastFour: String
}

/// Why a card could not be tokenized. Never carries card data or secrets.
public struct TokenizeError: Error, Sendable, CustomStringConvertible {
    public enum Kind: String, Sendable {
        case unknownMerchant, channelOff, notConfigured, invalidRequest, refused, unavailable
    }

    public let kind: Kind
    public let description: String

    public init(_ kind: Kind, _ description: String) {
        self.kind = kind
        self.description = description
    }
}

/// Tokenizes card data with the merchant's FlexCharge tokenization key, picked from its settings:
/// the channel switch (per site) gives the environment, `merchant_credentials` the MID and the
/// sealed key. The card is passed straight to FlexCharge: nothing of it is stored or logged.
///
/// ```swift
/// let tokenizer = CardTokenizer(session: session, sealer: sealer, clients: ["sandbox": client])
/// let card = CardToTokenize(firstName: "Joe", lastName: "Jones", number: pan, month: "03", year: "2030")
/// let vaulted = try await tokenizer.tokenize(card, merchantID: "shoes-r-us", channel: "cit", origin: "website",
///                                            site: "https://shoes.example")
/// // INSERT ... payload.paymentMethod = {"cardNumber": vaulted.token, "token": true, ...}
/// ```
public struct CardTokenizer: Sendable {
    let session: PGSession
    let sealer: CredentialSealer
    let clients: [String: FlexChargeClient]
    let logger: Logger

    /// `clients` by environment name (`sandbox`, `production`).
    public init(session: PGSession, sealer: CredentialSealer, clients: [String: FlexChargeClient],
                logger: Logger = Logger(label: "flexcharge.tokenize")) {
        self.session = session
        self.sealer = sealer
        self.clients = clients
        self.logger = logger
    }

    /// `isTest`: the card is for a test-environment order (an event with `is_test`): tokenized with
    /// the merchant's sandbox key whatever its switches, as the event will be routed
    /// (`flexcharge.route`, migrations/0014).
    public func tokenize(
        _ card: CardToTokenize, merchantID: String, channel: String, origin: String?, site: String?, isTest: Bool = false
    ) async throws(TokenizeError) -> TokenizedCard {
        guard channel == "cit" || channel == "mit" else { throw TokenizeError(.invalidRequest, "channel must be cit or mit") }
        if channel == "cit", !["website", "call_center"].contains(origin ?? "") {
            throw TokenizeError(.invalidRequest, "origin must be website or call_center for a cit order")
        }
        let row: PGRow?
        do {
            row = try await session.query(
                """
                SELECT m.merchant_id IS NOT NULL AS known,
                       flexcharge.route($1, $2, $3, $4, $5) AS environment
                  FROM (SELECT 1) one LEFT JOIN flexcharge.merchants m ON m.merchant_id = $1
                """, [merchantID, site, channel, channel == "mit" ? nil : origin, isTest]).first
        } catch {
            logger.error("tokenize: database unavailable", metadata: ["error": "\(error)"])
            throw TokenizeError(.unavailable, "the database is unavailable")
        }
        guard let row, (try? row.decode("known", as: Bool.self)) == true else {
            throw TokenizeError(.unknownMerchant, "unknown merchant \(merchantID)")
        }
        let environment = (try? row.decode("environment", as: String.self)) ?? "off"
        guard environment != "off" else {
            throw TokenizeError(.channelOff, "FlexCharge is off for this merchant's \(channel) channel")
        }
        // The tokenization key only: the app key and secret are neither read nor opened here.
        let credentials: MerchantCredentials
        do {
            guard let stored = try await SealedCredentials.load(.tokenization, merchantID: merchantID, environment: environment,
                                                                on: session).first,
                  case .sealed = stored.tokenizationKey.content
            else {
                throw TokenizeError(.notConfigured, "merchant \(merchantID) has no \(environment) tokenization key")
            }
            credentials = try sealer.tokenizationCredentials(stored)
        } catch let error as TokenizeError {
            throw error
        } catch let error as CredentialError {
            throw TokenizeError(.notConfigured, error.description)
        } catch {
            throw TokenizeError(.unavailable, "the database is unavailable")
        }
        guard let client = clients[environment] else {
            throw TokenizeError(.notConfigured, "no FlexCharge URL is configured for \(environment)")
        }
        do {
            let answer = try await client.tokenize(card: card, credentials: credentials)
            guard let token = answer.body.token, !token.isEmpty else {
                throw TokenizeError(.refused, "FlexCharge returned no token")
            }
            logger.info("card tokenized", metadata: ["merchant_id": "\(merchantID)", "environment": "\(environment)"])
            return TokenizedCard(token: token, environment: environment,
                                 lastFour: answer.body.transaction?.payment_method?.last_four_digits ?? String(card.number.suffix(4)))
        } catch let error as TokenizeError {
            throw error
        } catch let error as FlexChargeError {
            // FlexCharge's own message may quote what it was sent: only the status and the field names leave here.
            logger.warning("tokenize refused", metadata: [
                "merchant_id": "\(merchantID)", "status": "\(error.httpStatus.map(String.init) ?? "-")",
                "class": "\(error.failureClass.rawValue)",
            ])
            let fields = error.fieldErrors.keys.sorted().joined(separator: ", ")
            if error.failureClass == .permanent {
                throw TokenizeError(.refused, "FlexCharge refused the card data (HTTP \(error.httpStatus.map(String.init) ?? "?"))"
                                    + (fields.isEmpty ? "" : "; fields: \(fields)"))
            }
            throw TokenizeError(.unavailable, "FlexCharge is unavailable (\(error.failureClass.rawValue)); try again")
        } catch {
            throw TokenizeError(.unavailable, "the call to FlexCharge did not finish; try again")
        }
    }
}
