import Hummingbird
import Logging
import NIOCore

/// Request context that keeps the connection's channel, so faults can reset or close it.
struct SandboxRequestContext: RequestContext {
    var coreContext: CoreRequestContextStorage
    let channel: any Channel

    init(source: ApplicationRequestContextSource) {
        coreContext = .init(source: source)
        channel = source.channel
    }
}
