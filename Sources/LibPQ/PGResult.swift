import CLibPQ

/// The rows of one statement. Values are in PostgreSQL's text format, read where libpq put them: a value
/// becomes a Swift value only when a column is decoded (an integer, a time or a `bytea` straight from
/// its bytes, without a String in between), and the libpq result is freed with the last row that
/// refers to it. libpq documents a result as read-only once made, safe to pass between threads, and
/// independent of its connection, so rows are `Sendable` and nothing of the connection escapes.
///
/// Copying every value into a String first cost about 10 k instructions per claimed event (26 values,
/// `scripts/callgrind-worker`), most of them for values parsed again right after.
public struct PGResult: Sendable {
    /// Column names, in order.
    public let columns: [String]
    /// The rows, each with one text value (or `nil` for NULL) per column.
    public let rows: [PGRow]
    /// The number of rows the command touched (INSERT/UPDATE/DELETE), or 0.
    let affectedRows: Int
    /// Column name → position, shared with every row.
    private let index: PGRow.ColumnIndex

    /// Takes `result` over (it is freed with the last row that reads from it).
    init(owning result: OpaquePointer) {
        let storage = PGResultStorage(result)
        let columnCount = Int(PQnfields(result))
        let rowCount = Int(PQntuples(result))
        let names = (0..<columnCount).map { String(cString: PQfname(result, Int32($0))) }
        let index = PGRow.ColumnIndex(names: names)
        self.columns = names
        self.index = index
        self.rows = (0..<rowCount).map { PGRow(storage: storage, index: index, row: Int32($0)) }
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

    @usableFromInline let storage: PGResultStorage
    @usableFromInline let index: ColumnIndex
    @usableFromInline let row: Int32

    init(storage: PGResultStorage, index: ColumnIndex, row: Int32) {
        self.storage = storage
        self.index = index
        self.row = row
    }

    /// The raw text values, `nil` for NULL.
    public var values: [String?] {
        (0..<index.names.count).map { String.decode(pgBytes: storage.value(row: row, column: Int32($0))) }
    }

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
        return try decode(position, as: type)
    }

    /// Decodes the column at `position` (0-based).
    @inlinable
    public func decode<T: PGDecodable>(_ position: Int, as type: T.Type = T.self) throws(PGError) -> T {
        precondition(position >= 0 && position < index.names.count, "column position out of range")
        // The bytes live in the libpq result, which this row keeps alive for the call.
        let decoded = withExtendedLifetime(storage) { T.decode(pgBytes: storage.value(row: row, column: Int32(position))) }
        guard let value = decoded else { throw undecodable(position, as: type) }
        return value
    }

    @usableFromInline
    static func noColumn(_ column: String) -> PGError {
        PGError(.decoding, "the result has no column \"\(column)\"")
    }

    @usableFromInline
    func undecodable<T>(_ position: Int, as type: T.Type) -> PGError {
        let what = storage.value(row: row, column: Int32(position)) == nil ? "is NULL" : "cannot be read as \(T.self)"
        return PGError(.decoding, "column \"\(index.names[position])\" \(what)")
    }
}

/// A libpq result, read-only, freed when the last row reading from it goes.
@usableFromInline
final class PGResultStorage: @unchecked Sendable {
    // @unchecked: libpq never changes a result after making it, and documents it as safe to read from any thread.
    private let result: OpaquePointer

    init(_ result: OpaquePointer) { self.result = result }

    deinit { PQclear(result) }

    /// The bytes of a value (its text form, without the terminating NUL), `nil` for NULL. Valid while
    /// this storage lives.
    @usableFromInline
    func value(row: Int32, column: Int32) -> UnsafeBufferPointer<UInt8>? {
        if PQgetisnull(result, row, column) == 1 { return nil }
        guard let start = PQgetvalue(result, row, column) else { return nil }
        return UnsafeBufferPointer(
            start: UnsafeRawPointer(start).assumingMemoryBound(to: UInt8.self), count: Int(PQgetlength(result, row, column)))
    }
}
