extension Duration {
    /// The duration in seconds, as a Double: the unit every figure this tool reports uses.
    package var inSeconds: Double {
        Double(components.seconds) + Double(components.attoseconds) / 1e18
    }
}
