"""Research probes of the embedded suite: one-off diagnostics whose findings are recorded in docs/science/findings.md.

Run one from the repository root, e.g. `python -m probes.cues outputs/science`; each module's docstring says what
it measures. They are not product benchmarks (those are in bench/)."""
