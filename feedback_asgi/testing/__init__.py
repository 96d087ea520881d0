"""Helpers for the tests of apps and stores that use feedback-asgi.

:mod:`feedback_asgi.testing.conformance` holds ``StoreConformanceSuite``, the test suite
every feedback store passes; subclass it to check a store of your own.
"""
