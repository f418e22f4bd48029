import ArgumentParser
import Foundation
import NIOCore
import NIOPosix

/// `flexcharge-outbox`: the operator's tool and the worker process.
@main
struct FlexChargeOutbox: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "flexcharge-outbox",
        abstract: "Deliver a payment gateway's outbox events to FlexCharge, and operate the outbox.",
        discussion: """
            The gateway inserts payment events into the PostgreSQL table flexcharge.outbox inside its \
            own transactions. Workers (`flexcharge-outbox worker`) claim them, call FlexCharge and \
            record the outcome. Every command connects with --database-url, else DATABASE_URL, \
            else libpq's PGHOST/PGPORT/PGUSER/PGPASSWORD/PGDATABASE variables.

            First steps:
              export DATABASE_URL=postgresql://user:pass@127.0.0.1:5432/gateway
              flexcharge-outbox migrate            # create or upgrade the flexcharge schema
              flexcharge-outbox migrate --status   # what is applied, what is pending
            """,
        subcommands: [MigrateCommand.self, WorkerCommand.self, StatusCommand.self, EventsCommand.self, RetryCommand.self, SkipCommand.self, PauseCommand.self, ResumeCommand.self, PausesCommand.self, ReplaySkippedCommand.self, ReportCommand.self, ReconcileCommand.self, MerchantCommand.self, SampleEventsCommand.self, PruneCommand.self, BenchSQLCommand.self, ServeCommand.self, ConsoleCommand.self]
    )

    /// Runs the command; failures print one line on stderr (no stack trace) and exit non-zero:
    /// 2 for bad input, 1 for everything else.
    ///
    /// NIO's event loops become Swift Concurrency's global executor first, jobs run as the generic
    /// executor (``EventLoopGlobalExecutor``): every FlexCharge call is I/O on an event loop, and without
    /// this each call's continuation hops to the cooperative pool and back (measured: most of the worker's
    /// scheduling cost). Nothing here blocks a global-executor thread: PostgreSQL calls run on each
    /// session's own thread.
    static func main() async {
        if !EventLoopGlobalExecutor.install() {
            NIOSingletons.unsafeTryInstallSingletonPosixEventLoopGroupAsConcurrencyGlobalExecutor()
        }
        do {
            var command = try parseAsRoot()
            if var asyncCommand = command as? any AsyncParsableCommand {
                try await asyncCommand.run()
            } else {
                try command.run()
            }
        } catch let failure as CLIFailure {
            FileHandle.standardError.write(Data("flexcharge-outbox: \(failure.message)\n".utf8))
            Foundation.exit(failure.exitCode)
        } catch {
            // --help and --version print and exit 0; any other parse error is bad input: one line, status 2.
            guard exitCode(for: error) != .success, !(error is ExitCode) else { exit(withError: error) }
            let message = FlexChargeOutbox.message(for: error).split(separator: "\n").first.map(String.init) ?? "invalid arguments"
            FileHandle.standardError.write(Data("flexcharge-outbox: \(message) (see --help)\n".utf8))
            Foundation.exit(2)
        }
    }
}
