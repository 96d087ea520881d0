"""Capture, shared by the ASGI and the Django middleware: framework-neutral, on bytes and
header lists.

* :mod:`.exchange`: the capture rules and limits, trace ids, bounded body tees, the
  per-request :class:`~feedback_asgi.capture.exchange.ExchangeCapture`, identity from the
  scope and trusted headers, what a response may carry (answers, expose headers);
* :mod:`.redaction`: secrets out of headers, bodies and URLs; :mod:`.sse`: the incremental
  event-stream parser; :mod:`.writer`: the bounded queue to the exchange store.
"""
