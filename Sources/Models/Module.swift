// Models module: see Package.swift for the module graph.
