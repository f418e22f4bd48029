/// The sandbox's log of received requests: an append-only list kept in fixed-size chunks, so that appending
/// under the state lock never copies the whole log when it grows (a flat array of a million entries would).
struct RequestLog: Sendable {
    private static let chunkSize = 4096
    private var chunks: [[ReceivedRequest]] = []

    mutating func append(_ request: ReceivedRequest) {
        if chunks.isEmpty || chunks[chunks.count - 1].count == Self.chunkSize {
            chunks.append([])
            chunks[chunks.count - 1].reserveCapacity(Self.chunkSize)
        }
        chunks[chunks.count - 1].append(request)
    }

    /// Every entry, oldest first.
    var all: [ReceivedRequest] { Array(chunks.joined()) }
}
