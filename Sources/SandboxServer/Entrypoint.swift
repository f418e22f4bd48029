import ArgumentParser
import NIOCore
import NIOPosix

/// Process entry point: makes NIO's event loops Swift Concurrency's global executor, then runs the command.
///
/// Every sandbox request is a task that reads from and writes to a NIO channel. With the default executor each
/// request hops between the event loop thread and the cooperative pool several times; with the event loops as the
/// global executor the handler runs on the loop that owns its connection. The sandbox never blocks a thread (its
/// state sits behind a short `Mutex`), so this is safe here; it is the same switch Vapor's templates make.
@main
enum Entrypoint {
    static func main() async {
        NIOSingletons.unsafeTryInstallSingletonPosixEventLoopGroupAsConcurrencyGlobalExecutor()
        await FlexChargeSandboxCommand.main()
    }
}
