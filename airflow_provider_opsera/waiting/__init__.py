"""Waiting on Opsera runs: what a status means, how a wait rides out faults, how it ends, and re-attaching after a crash."""
