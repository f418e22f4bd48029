import Foundation
import Synchronization

/// The sandbox clock: real time moved forward by every ``advance(by:)``. Lock-free, so requests can read it
/// without taking the state lock.
final class SandboxClock: Sendable {
    private let offsetNanoseconds = Atomic<Int64>(0)

    /// Real time plus the offset.
    func now() -> Date {
        Date().addingTimeInterval(Double(offsetNanoseconds.load(ordering: .relaxed)) / 1e9)
    }

    /// Moves the clock forward.
    func advance(by duration: Duration) {
        let nanoseconds = duration.components.seconds * 1_000_000_000 + duration.components.attoseconds / 1_000_000_000
        offsetNanoseconds.add(nanoseconds, ordering: .relaxed)
    }

    /// Back to real time.
    func reset() { offsetNanoseconds.store(0, ordering: .relaxed) }
}
