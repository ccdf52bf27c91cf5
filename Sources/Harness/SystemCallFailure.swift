import Probes
import TensorEngine

/// Probes stays free of TensorEngine; a system call that failed is an I/O failure to the user.
extension SystemCallError: ReportableError {
    package var category: FailureCategory { .io }
}
