"""Feedback itself, above capture and storage: the :mod:`.processors` that validate each
kind, the :mod:`.hooks` (observers and wrappers), the :mod:`.collector` and
:mod:`.service` of the seed API, and the one-vote rules and Idempotency-Key ids
(:mod:`.votes`)."""
