"""The rule text parsed with `ast`, and positions in it: ast's byte offsets as 1-based columns.

Pure: no I/O. The text is parsed, never evaluated; what the parsed tree may hold is the
compiler's allow-list (rules/compiler.py).
"""

from __future__ import annotations

import ast
import re
import warnings

from worker.errors import RuleError

# Deeper rules are surely mistakes, and the bound keeps evaluation far from the recursion limit.
_MAX_DEPTH = 50
_NEWLINE = re.compile(r"\r\n|\r|\n")
_UNPARSABLE = re.compile("[\x00\ud800-\udfff]")  # NUL and lone surrogates
# a `quoted name` (closed on its line, or not), or a string literal to step over whole
_QUOTED_OR_STRING = re.compile(
    r"`(?P<name>[^`\r\n]*)(?P<close>`)?"
    r"|[rRbBuUfF]{0,2}(\"\"\"(?:\\.|[^\\])*?\"\"\"|'''(?:\\.|[^\\])*?'''"
    r"|\"(?:\\.|[^\\\"\r\n])*\"|'(?:\\.|[^\\'\r\n])*')",
    re.DOTALL,
)


class Source:
    """The rule text, parsed, with ast's byte offsets mapped back to 1-based character columns.

    A name in backticks (`first-name`) may hold any character but a backtick, '.' or a line
    break: each one is replaced, before ast parses the text, by an identifier of the same length
    (so that columns stay right), and `name()` gives the attribute name back.
    """

    def __init__(self, text: str) -> None:
        self.text = text
        body = text.lstrip()  # leading spaces would be an IndentationError for ast
        self.lead = len(text) - len(body)
        self.quoted: dict[str, str] = {}
        self.body = self.replace_quoted(body)
        self.line_starts = [0, *(m.end() for m in _NEWLINE.finditer(self.body))]

    def name(self, identifier: str) -> str:
        """The attribute name an identifier of the parsed text stands for."""
        return self.quoted.get(identifier, identifier)

    def replace_quoted(self, body: str) -> str:
        mark = "Q_"
        while mark in body:  # a stand-in can never be a name the rule spells itself
            mark += "_"
        out: list[str] = []
        at = 0
        for match in _QUOTED_OR_STRING.finditer(body):
            if match.group("name") is None:
                continue  # a string literal: a backtick inside it is just a character
            name, start = match.group("name"), match.start()
            column = self.lead + start + 1
            if match.group("close") is None:
                raise RuleError(
                    "unclosed ` (a quoted name ends on its line)", rule=self.text, column=column
                )
            if not name or "." in name:
                problem = "is empty" if not name else "has a '.' (quote each part: a.`b-c`)"
                raise RuleError(f"a quoted name {problem}", rule=self.text, column=column)
            stand_in = f"{mark}{len(self.quoted)}".ljust(match.end() - start, "_")
            self.quoted[stand_in] = name
            out += [body[at:start], stand_in]
            at = match.end()
        return "".join([*out, body[at:]])

    def parse(self) -> ast.expr:
        if not self.body.strip():
            raise RuleError("empty rule", rule=self.text, column=1)
        if bad := _UNPARSABLE.search(self.body):  # the parser rejects these without a position
            column = self.lead + bad.start() + 1
            raise RuleError("invalid character", rule=self.text, column=column)
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("error")  # "\d" and the like: an error, whatever the host
                tree = ast.parse(self.body, mode="eval")
        except SyntaxError as exc:
            raise RuleError(exc.msg, rule=self.text, column=self.syntax_column(exc)) from None
        except (RecursionError, MemoryError):
            raise RuleError("rule is nested too deeply", rule=self.text, column=1) from None
        self.check_depth(tree.body)
        return tree.body

    def syntax_column(self, exc: SyntaxError) -> int:
        if not exc.offset or exc.offset < 1:  # Python gives no offset when the rule ends early
            return len(self.text.rstrip()) + 1
        return self.column_of_char(exc.lineno or 1, exc.offset - 1)

    def check_depth(self, root: ast.expr) -> None:
        pending = [(root, 1)]
        while pending:
            node, depth = pending.pop()
            if depth > _MAX_DEPTH:
                raise self.error(node, "rule is nested too deeply")
            kids = (k for k in ast.iter_child_nodes(node) if isinstance(k, ast.expr))
            pending.extend((kid, depth + 1) for kid in kids)

    def column_of_char(self, lineno: int, offset: int) -> int:
        line = min(max(lineno, 1), len(self.line_starts)) - 1
        return self.lead + self.line_starts[line] + max(offset, 0) + 1

    def error(self, node: ast.expr | ast.keyword, message: str) -> RuleError:
        start = self.line_starts[node.lineno - 1]
        line = self.body[start:].encode()
        chars = len(line[: node.col_offset].decode(errors="ignore"))  # ast counts UTF-8 bytes
        return RuleError(message, rule=self.text, column=self.column_of_char(node.lineno, chars))
