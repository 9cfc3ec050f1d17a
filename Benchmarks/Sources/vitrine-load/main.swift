// vitrine-load: the project's HTTP/1.1 load generator (see ../shared/CONTRACT.md, "Benchmark target").
// One event loop, many keep-alive connections; closed loop by default, open loop with --rate.
import Foundation
import NIOCore
import NIOPosix

let options: Options
do {
    options = try Options(CommandLine.arguments)
} catch let error as OptionError {
    if let message = error.message { FileHandle.standardError.write(Data("vitrine-load: \(message)\n".utf8)) }
    FileHandle.standardError.write(Data((Options.usage + "\n").utf8))
    exit(error.message == nil ? 0 : 2)
}

let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
let loop = group.next()
let report: String
do {
    report = try loop.flatSubmit {
        let run = LoadRun(options: options, loop: loop)
        return run.start().assumeIsolated().map { options.json ? Report(run: run).json : Report(run: run).table }.nonisolated()
    }.wait()
} catch {
    FileHandle.standardError.write(Data("vitrine-load: \(error)\n".utf8))
    exit(1)
}
print(report)
try? group.syncShutdownGracefully()
