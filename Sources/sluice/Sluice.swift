import ArgumentParser
@main struct SluiceCommand: AsyncParsableCommand { func run() async throws {} }
