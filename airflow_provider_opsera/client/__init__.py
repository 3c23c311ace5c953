"""The Opsera client's facts: endpoints and scopes, statuses, the connection, the token, input checks.

Import-free, so the emulator and the DAG processor can load its modules alone.
"""
