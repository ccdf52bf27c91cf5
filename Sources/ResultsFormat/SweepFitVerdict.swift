import Foundation
import TensorEngine

extension SweepFitting {
    /// The fit's verdict and its line: "2.03 copies (claim: 1 ± 0.05) + 310 MiB; held out …; linear …".
    static func verdict(_ fit: SweepFit) -> (SweepFit.Verdict, String) {
        var parts = [SweepFitting.costSentence(fit)]
        var failed = false
        if let holdout = fit.holdout {
            parts.append(holdoutSentence(holdout))
            failed = failed || !holdout.passed
        }
        if let linear = fit.linear, let residual = fit.maxResidualBytes, let allowed = fit.residualToleranceBytes {
            let scale = fit.maxResidualScale.map { " at scale \(Self.scaleText($0))" } ?? ""
            parts.append(
                linear
                    ? "linear: largest residual \(signed(residual))\(scale), \(ByteSize.binary(allowed)) allowed"
                    : "not a line: residual \(signed(residual))\(scale) exceeds the \(ByteSize.binary(allowed)) allowed"
            )
            failed = failed || !linear
        }
        if let claim = fit.claim, !claim.passed { failed = true }
        guard fit.figure.isJudged(for: fit.strategy) else { return (.notJudged, parts.joined(separator: "; ")) }
        return (failed ? .fail : .pass, parts.joined(separator: "; "))
    }

    /// "2.03 copies (claim: 1 ± 0.05) + 310 MiB".
    package static func costSentence(_ fit: SweepFit) -> String {
        guard let slope = fit.slope, let intercept = fit.interceptBytes else { return fit.verdictDetail }
        var text = "\(copies(slope)) cop\(abs(slope - 1) < 0.005 ? "y" : "ies")"
        if let claim = fit.claim {
            text +=
                " (claim: \(copies(claim.copies)) \(claim.bothWays ? "±" : "+") \(copies(claim.toleranceCopies))\(claim.passed ? "" : ", failed"))"
        }
        return text + " \(intercept < 0 ? "−" : "+") \(ByteSize.binary(abs(intercept)))"
    }

    static func holdoutSentence(_ holdout: SweepFit.Holdout) -> String {
        let error = holdout.predictionErrorBytes.map { " (± \(ByteSize.binary($0)) standard error)" } ?? ""
        return
            "held out scale \(scaleText(holdout.scale)): predicted \(ByteSize.binary(holdout.predictedBytes))\(error), measured \(ByteSize.binary(holdout.measuredBytes)), "
            + (holdout.passed ? "within" : "outside") + " \(ByteSize.binary(holdout.toleranceBytes))"
    }

    /// Copies to two decimals, trailing zeros dropped: 2, 1.5, 2.03.
    package static func copies(_ value: Double) -> String { ByteSize.trimmed(value, maxDigits: 2) }

    /// A scale to four decimals, trailing zeros dropped: 0.065, 1.
    package static func scaleText(_ scale: Double) -> String { ByteSize.trimmed(scale, maxDigits: 4) }

    static func signed(_ bytes: Int) -> String { (bytes < 0 ? "−" : "+") + ByteSize.binary(abs(bytes)) }
}
