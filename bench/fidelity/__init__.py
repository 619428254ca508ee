"""The fidelity suite's bench: ``python -m bench.fidelity.run`` (the suite itself is
`vidchat.apps.fidelity`)."""
