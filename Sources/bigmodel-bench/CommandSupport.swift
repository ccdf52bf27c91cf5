import ArgumentParser
import Foundation
import OSLayer
import Reports
import TensorEngine

/// Runs a command body, turning every `ReportableError` into one line on stderr and its documented exit
/// status (README, "Exit statuses"). Errors of other kinds are I/O failures as far as the user can tell.
func reportingErrors<T>(_ body: () throws -> T) throws -> T {
    do {
        return try body()
    } catch let error as any ReportableError {
        printError(error.description)
        throw ExitCode(ExitStatus(error.category).rawValue)
    } catch let error as ExitCode {
        throw error
    } catch {
        printError(FoundationErrorText.line(error))
        throw ExitCode(ExitStatus(FoundationErrorText.category(error)).rawValue)
    }
}

/// One line on stderr, prefixed with the tool's name.
func printError(_ message: String) {
    let line = "bigmodel-bench: error: \(MessageText.oneLine(message))\n"
    FileHandle.standardError.write(Data(line.utf8))
}

func printWarning(_ message: String) {
    FileHandle.standardError.write(Data("bigmodel-bench: warning: \(MessageText.oneLine(message))\n".utf8))
}

/// Progress lines go to stderr so stdout stays machine-readable.
func printProgress(_ message: String) {
    FileHandle.standardError.write(Data("\(message)\n".utf8))
}

/// A `--dtype NAME` value: torch-style names (`bfloat16`, `float16`, `float32`, `float64`, aliases `half`, `bf16` …).
struct DTypeArgument: ExpressibleByArgument, Sendable {
    let dtype: DType

    init?(argument: String) {
        guard let dtype = DType(torchName: argument) ?? DType(safetensorsName: argument) else { return nil }
        self.dtype = dtype
    }

    static var defaultCompletionKind: CompletionKind { .list(["float16", "bfloat16", "float32", "float64"]) }
}

extension DTypeArgument {
    /// The dtype as a cast target; an integer or exotic type is a usage error (exit 64).
    func castTarget(option: String = "--dtype") throws -> DType {
        guard dtype.isConvertible else {
            throw UsageError(
                "\(option) \(dtype.torchName) is not a floating dtype the engine converts to; use one of \(DType.convertibleTorchNames)"
            )
        }
        return dtype
    }
}

/// True when stderr is a terminal (progress redraws in place) rather than a log (plain lines).
var stderrIsTerminal: Bool { Terminal.isTerminal(2) }
