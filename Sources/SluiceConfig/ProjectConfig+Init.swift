import SluiceCore

// Public initialisers so pipelines can be built in Swift code as well as in `sluice.yaml`.

extension ProjectConfig {
    public init(baseDirectory: String = ".", state: String = ".sluice/state.db", pipelines: [PipelineConfig]) {
        self.init(file: "(code)", baseDirectory: baseDirectory, state: state, pipelines: pipelines, masker: SecretMasker())
    }
}

extension PipelineConfig {
    public init(name: String, source: SourceConfig, sink: SinkConfig, schema: SchemaConfig = SchemaConfig(),
                transforms: [TransformConfig] = [], onError: OnErrorConfig = OnErrorConfig(), dependsOn: [String] = []) {
        self.init(name: name, dependsOn: dependsOn, schedule: nil, source: source, schema: schema, transforms: transforms,
                  onError: onError, sink: sink, retry: RetryConfig(), batchRows: 16_384, batchBytes: 4 << 20)
    }
}

extension FilesSourceConfig {
    public init(path: String, format: FileFormat, incremental: IncrementalMode = .new_files) {
        self.path = path
        self.format = format
        self.incremental = incremental
    }
}

extension SQLiteSinkConfig {
    public init(path: String, table: String, mode: WriteMode = .append) {
        self.path = path
        self.table = table
        self.mode = mode
    }
}

extension FilesSinkConfig {
    public init(path: String, format: OutputFormat = .jsonl, compression: OutputCompression = .none) {
        self.path = path
        self.format = format
        self.compression = compression
    }
}

extension SchemaConfig {
    public init(columns: [Field], evolution: Evolution = .evolve) {
        self.init()
        declared = Schema(columns)
        self.evolution = evolution
    }
}
