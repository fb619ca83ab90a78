"""Peer scripts: what a user would write instead of the Luigi graph, for the benchmark."""
