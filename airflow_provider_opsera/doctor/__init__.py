"""``opsera-doctor``: checks the facts this provider infers about Opsera's API against your tenant.

Read calls only; prints field names and types, never a token or a record's values
(unless ``--show-values``, and then secret-looking values stay masked).
"""
