import CLibPQ

/// The rows of one statement, copied out of libpq's memory (so it is `Sendable` and nothing of
/// libpq escapes the connection's thread). Values are in PostgreSQL's text format.
public struct PGResult: Sendable {
    /// Column names, in order.
    public let columns: [String]
    /// The rows, each with one text value (or `nil` for NULL) per column.
    public let rows: [PGRow]
    /// The number of rows the command touched (INSERT/UPDATE/DELETE), or 0.
    let affectedRows: Int
    /// Column name → position, shared with every row.
    private let index: PGRow.ColumnIndex

    init(copying result: OpaquePointer) {
        let columnCount = Int(PQnfields(result))
        let rowCount = Int(PQntuples(result))
        let names = (0..<columnCount).map { String(cString: PQfname(result, Int32($0))) }
        let index = PGRow.ColumnIndex(names: names)
        var rows: [PGRow] = []
        rows.reserveCapacity(rowCount)
        for r in 0..<rowCount {
            var values: [String?] = []
            values.reserveCapacity(columnCount)
            for c in 0..<columnCount {
                if PQgetisnull(result, Int32(r), Int32(c)) == 1 {
                    values.append(nil)
                } else {
                    values.append(String(cString: PQgetvalue(result, Int32(r), Int32(c))))
                }
            }
            rows.append(PGRow(index: index, values: values))
        }
        self.columns = names
        self.index = index
        self.rows = rows
        self.affectedRows = Int(String(cString: PQcmdTuples(result))) ?? 0
    }

    /// The only row, or `nil` when there is none.
    public var first: PGRow? { rows.first }

    /// The position (0-based) of the column named `column`, to decode many rows by position: a
    /// lookup by name hashes the name, for every column of every row.
    public func position(of column: String) throws(PGError) -> Int { try index.position(of: column) }

    /// The position of the column named `column`, or `nil` when the result has none.
    public func positionIfPresent(of column: String) -> Int? { index.positions[column] }
}

/// A result's columns by name: where each one is (0-based), to decode rows by position.
public protocol PGColumnPositions {
    /// The position of the column named `column`; throws when the result has none.
    func position(of column: String) throws(PGError) -> Int
    /// The position of the column named `column`, or `nil` when the result has none.
    func positionIfPresent(of column: String) -> Int?
}

extension PGResult: PGColumnPositions {}
extension PGRow: PGColumnPositions {}

/// One row of a ``PGResult``. Decode a column with ``decode(_:as:)``.
///
/// The decoding methods are inlinable so that a caller's `decode("id", as: Int64.self)` is specialized for its
/// type in the caller's module: unspecialized, every column cost a generic metadata lookup of `T` (and of
/// `Optional<T>`) and calls through witness tables (measured: about 1.8 k instructions per column, a tenth of
/// the worker's instructions per event).
public struct PGRow: Sendable {
    /// Column name → position, shared by all rows of one result.
    @usableFromInline
    final class ColumnIndex: Sendable {
        @usableFromInline let names: [String]
        @usableFromInline let positions: [String: Int]
        init(names: [String]) {
            self.names = names
            var positions: [String: Int] = [:]
            for (i, name) in names.enumerated() where positions[name] == nil { positions[name] = i }
            self.positions = positions
        }

        func position(of column: String) throws(PGError) -> Int {
            guard let position = positions[column] else { throw PGRow.noColumn(column) }
            return position
        }
    }

    @usableFromInline let index: ColumnIndex
    /// The raw text values, `nil` for NULL.
    public let values: [String?]

    /// The column names, in order.
    public var columnNames: [String] { index.names }

    /// True when the result has a column named `column`.
    @inlinable
    public func hasColumn(_ column: String) -> Bool { index.positions[column] != nil }

    /// The position of the column named `column` (see ``PGResult/position(of:)``).
    public func position(of column: String) throws(PGError) -> Int { try index.position(of: column) }

    /// The position of the column named `column`, or `nil` when the result has none.
    public func positionIfPresent(of column: String) -> Int? { index.positions[column] }

    /// Decodes the named column. A NULL decodes only into an `Optional`.
    @inlinable
    public func decode<T: PGDecodable>(_ column: String, as type: T.Type = T.self) throws(PGError) -> T {
        guard let position = index.positions[column] else { throw Self.noColumn(column) }
        guard let value = T.decode(pgText: values[position]) else { throw undecodable(position, as: type) }
        return value
    }

    /// Decodes the column at `position` (0-based).
    @inlinable
    public func decode<T: PGDecodable>(_ position: Int, as type: T.Type = T.self) throws(PGError) -> T {
        guard let value = T.decode(pgText: values[position]) else { throw undecodable(position, as: type) }
        return value
    }

    @usableFromInline
    static func noColumn(_ column: String) -> PGError {
        PGError(.decoding, "the result has no column \"\(column)\"")
    }

    @usableFromInline
    func undecodable<T>(_ position: Int, as type: T.Type) -> PGError {
        let what = values[position] == nil ? "is NULL" : "cannot be read as \(T.self)"
        return PGError(.decoding, "column \"\(index.names[position])\" \(what)")
    }
}
