#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import NIOCore
import NIOPosix

/// Makes NIO's event loops (`MultiThreadedEventLoopGroup.singleton`) Swift Concurrency's global executor,
/// running each job as the runtime's *generic* executor.
///
/// Every FlexCharge call is I/O on an event loop; with Swift's own pool each call's continuation would
/// hop to a pool thread and back. NIO offers the same take-over
/// (`NIOSingletons.unsafeTryInstallSingletonPosixEventLoopGroupAsConcurrencyGlobalExecutor()`), but it runs
/// each job with its event loop as the job's serial executor, and the runtime allows no executor switch
/// inside a job run on a serial executor other than the generic one (`swift_job_run`): each `await` of a
/// nonisolated async function ends with a hop back to the generic executor, and from an event loop that
/// hop was a full enqueue and a later turn of the loop. Measured with `scripts/callgrind-worker`: 25 such
/// hops per transmit, about a quarter of the worker's instructions. A job run as the generic executor
/// (what Swift's own global executor does) continues at once after such a hop, as on Swift's pool.
///
/// Jobs still go to the event loop of the calling thread when it is one of the group's (`any()` is sticky),
/// else to the next loop. Delayed jobs (`Task.sleep`) keep the runtime's own timer.
enum EventLoopGlobalExecutor {
    private typealias EnqueueGlobalHook = @convention(thin) (UnownedJob, @convention(thin) (UnownedJob) -> Void) -> Void

    /// Installs the hook. Call once, from `main`, before any task runs on the global executor. Returns
    /// false (and installs nothing) when the runtime has no hook to set or another one is set already.
    @discardableResult
    static func install() -> Bool {
        // The generic executor is `SerialExecutorRef::generic()`: identity and implementation both zero. The
        // standard library does not expose it, so it is built from its two words, which the layout check keeps honest.
        guard MemoryLayout<UnownedSerialExecutor>.size == 2 * MemoryLayout<UInt>.size,
              let hookAddress = dlsym(dlopen(nil, RTLD_NOW), "swift_task_enqueueGlobal_hook"),
              hookAddress.load(as: UnsafeRawPointer?.self) == nil
        else { return false }
        return withUnsafeTemporaryAllocation(of: EnqueueGlobalHook.self, capacity: 1) { hook in
            hook.baseAddress!.initialize(to: { job, _ in
                MultiThreadedEventLoopGroup.singleton.any().execute {
                    job.runSynchronously(on: unsafeBitCast((UInt(0), UInt(0)), to: UnownedSerialExecutor.self))
                }
            })
            // A thin function is one code pointer: that is what the runtime's hook variable holds.
            let function = UnsafeRawPointer(hook.baseAddress!).load(as: UnsafeRawPointer.self)
            hookAddress.storeBytes(of: function, as: UnsafeRawPointer.self)
            return true
        }
    }
}
