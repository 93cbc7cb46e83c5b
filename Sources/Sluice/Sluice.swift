@_exported import SluiceConfig
@_exported import SluiceConnectors
@_exported import SluiceCore
@_exported import SluiceFormats
@_exported import SluiceRuntime

/// The version printed by `sluice --version` and written into outputs that record their producer.
public let sluiceVersion = "0.1.0"
