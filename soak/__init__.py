"""The chaos soak: many pipeline runs through a production-shaped Airflow while its processes are
killed and frozen at random and the Opsera emulator injects faults; afterwards, invariants are
checked from the emulator's run journal and Airflow's metadata database.

Run it with ``make soak`` (``SOAK_MINUTES``, ``SOAK_SEED``) or ``python -m soak``; SOAK.md
explains what it does and what it found.
"""
