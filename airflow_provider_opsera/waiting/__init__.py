"""Waiting on Opsera runs: the run lifecycle, what a status means, how a wait rides out faults, and how it ends."""
