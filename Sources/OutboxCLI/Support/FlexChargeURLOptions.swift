import ArgumentParser
import FlexChargeAPI

/// `--sandbox-url` and `--production-url`, shared by every command that calls FlexCharge.
struct FlexChargeURLOptions: ParsableArguments {
    @Option(help: "Base URL of FlexCharge's sandbox.")
    var sandboxUrl = FlexChargeEnvironment.sandbox.baseURL

    @Option(help: "Base URL of FlexCharge's production API.")
    var productionUrl = FlexChargeEnvironment.production.baseURL

    /// Both environments with the URLs given.
    var environments: [FlexChargeEnvironment.Name: FlexChargeEnvironment] {
        [
            .sandbox: FlexChargeEnvironment(name: .sandbox, baseURL: sandboxUrl),
            .production: FlexChargeEnvironment(name: .production, baseURL: productionUrl),
        ]
    }
}
