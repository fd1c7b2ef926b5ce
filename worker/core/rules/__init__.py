"""Audience rules: a rule's text is parsed once into closures, then matched fast. Pure: no I/O.

User text is parsed with `ast` (parser) and walked against an allow-list into closures
(compiler); it is never evaluated. What values mean to a rule is in `values`, and the tests
specialised on a literal's type in `compare`. `compile_rule` is the one entry point.
"""

from __future__ import annotations

from worker.core.rules.compiler import Rule, compile_rule

__all__ = ["Rule", "compile_rule"]
