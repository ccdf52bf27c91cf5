// Harness module: see Package.swift for the module graph.
