"""Spoken arithmetic, evaluated safely: words -> symbols -> ``ast`` -> a whitelisted walk.

Nothing is ever passed to ``eval``: only number literals, + - * / // % ** and unary
signs are accepted, the expression length is capped and every intermediate result and
exponent is bounded, so "9 ** 9 ** 9" or "__import__('os')" cannot cost anything.
"""

from __future__ import annotations

import ast
import math
import operator
import re
from collections.abc import Callable

MAX_EXPRESSION_CHARS = 200
MAX_MAGNITUDE = 10**100
MAX_EXPONENT = 1000

_UNITS = {
    word: value
    for value, word in enumerate(
        [
            "zero",
            "one",
            "two",
            "three",
            "four",
            "five",
            "six",
            "seven",
            "eight",
            "nine",
            "ten",
            "eleven",
            "twelve",
            "thirteen",
            "fourteen",
            "fifteen",
            "sixteen",
            "seventeen",
            "eighteen",
            "nineteen",
        ]
    )
}
_TENS = {
    word: 10 * (index + 2)
    for index, word in enumerate(
        ["twenty", "thirty", "forty", "fifty", "sixty", "seventy", "eighty", "ninety"]
    )
}
_SCALES = {"thousand": 10**3, "million": 10**6, "billion": 10**9}

# Longest phrases first, so "divided by" wins over a bare "by" and so on.
_OPERATOR_WORDS = [
    (r"(?:raised )?to the power of|raised to", "**"),
    (r"squared", "** 2"),
    (r"cubed", "** 3"),
    (r"multiplied by|times", "*"),
    (r"divided by|over", "/"),
    (r"plus|added to", "+"),
    (r"minus|take away", "-"),
    (r"modulo|mod", "%"),
    (r"open (?:bracket|parenthesis)", "("),
    (r"close (?:bracket|parenthesis)", ")"),
]
_SYMBOLS = {"×": "*", "÷": "/", "−": "-", "^": "**"}
_SPOKEN = [
    (" ** ", " to the power of "),
    (" // ", " divided without remainder by "),
    (" * ", " times "),
    (" / ", " divided by "),
    (" % ", " modulo "),
    (" + ", " plus "),
    (" - ", " minus "),
]
_EXPRESSION = re.compile(r"[-+*/%().\d\s]+")

_BINARY: dict[type[ast.operator], Callable[[float, float], float]] = {
    ast.Add: operator.add,
    ast.Sub: operator.sub,
    ast.Mult: operator.mul,
    ast.Div: operator.truediv,
    ast.FloorDiv: operator.floordiv,
    ast.Mod: operator.mod,
    ast.Pow: operator.pow,
}
_UNARY: dict[type[ast.unaryop], Callable[[float], float]] = {
    ast.UAdd: operator.pos,
    ast.USub: operator.neg,
}


class UnreasonableNumberError(ValueError):
    """The expression is arithmetic but cannot be answered (too big, not real...)."""


def find_expression(text: str) -> str | None:
    """The arithmetic expression in a question, in symbols, or None if there is none."""
    spoken = _symbols_from_words(text.lower())
    best = max(_EXPRESSION.findall(spoken), key=lambda run: len(run.strip()), default="")
    best = " ".join(best.strip().rstrip(".").split())
    has_operator = re.search(r"\d\s*[-+*/%]|[-+(]\s*\d", best)
    if not best or not has_operator or len(best) > MAX_EXPRESSION_CHARS:
        return None
    return best


def evaluate(expression: str) -> int | float:
    """Value of a symbol expression; SyntaxError if it is not plain arithmetic,
    ZeroDivisionError, or UnreasonableNumberError when the result would be unreasonable."""
    tree = ast.parse(expression, mode="eval")
    return _eval(tree.body)


def spoken(expression: str) -> str:
    """The expression as it reads aloud: "(3 + 4) times 2"."""
    text = ast.unparse(ast.parse(expression, mode="eval"))
    for symbol, word in _SPOKEN:
        text = text.replace(symbol, word)
    return text


def format_number(value: int | float) -> str:
    if isinstance(value, float) and value.is_integer() and abs(value) < 1e15:
        value = int(value)
    if isinstance(value, int):
        return str(value)
    return f"{value:.10g}"


def _symbols_from_words(text: str) -> str:
    text = re.sub(r"(?<=\d),(?=\d{3})", "", text)  # 1,000 -> 1000
    text = re.sub(r"(?<=[a-z])-(?=[a-z])", " ", text)  # twenty-one -> twenty one
    for symbol, replacement in _SYMBOLS.items():
        text = text.replace(symbol, f" {replacement} ")
    text = re.sub(r"(?<=\d)\s*x\s*(?=\d)", " * ", text)  # 3 x 4
    text = _numbers_from_words(text)
    for words, symbol in _OPERATOR_WORDS:
        text = re.sub(rf"\b(?:{words})\b", f" {symbol} ", text)
    return text


def _numbers_from_words(text: str) -> str:
    """Replace runs of number words ("one hundred and five") by digits ("105")."""
    out: list[str] = []
    run: list[str] = []
    tokens = re.split(r"(\s+)", text)
    words = [t for t in tokens if t and not t.isspace()]
    for index, word in enumerate(words):
        following = words[index + 1] if index + 1 < len(words) else ""
        if _is_number_word(word) or (word == "and" and run and _is_number_word(following)):
            run.append(word)
            continue
        if run:
            out.append(str(_words_value(run)))
            run = []
        out.append(word)
    if run:
        out.append(str(_words_value(run)))
    return " ".join(out)


def _is_number_word(word: str) -> bool:
    return word in _UNITS or word in _TENS or word == "hundred" or word in _SCALES


def _words_value(words: list[str]) -> int:
    total, group = 0, 0
    for word in words:
        if word in _UNITS:
            group += _UNITS[word]
        elif word in _TENS:
            group += _TENS[word]
        elif word == "hundred":
            group = (group or 1) * 100
        elif word in _SCALES:
            total += (group or 1) * _SCALES[word]
            group = 0
    return total + group


def _eval(node: ast.AST) -> int | float:
    if isinstance(node, ast.Constant) and type(node.value) in (int, float):
        return _bounded(node.value)
    if isinstance(node, ast.UnaryOp) and type(node.op) in _UNARY:
        return _UNARY[type(node.op)](_eval(node.operand))
    if isinstance(node, ast.BinOp) and type(node.op) in _BINARY:
        left, right = _eval(node.left), _eval(node.right)
        if isinstance(node.op, ast.Pow):
            _check_power(left, right)
        try:
            result = _BINARY[type(node.op)](left, right)
        except OverflowError as exc:
            raise UnreasonableNumberError("that number is too big for me") from exc
        if isinstance(result, complex):
            raise UnreasonableNumberError("that is not a real number")
        return _bounded(result)
    raise SyntaxError(f"not plain arithmetic: {type(node).__name__}")


def _check_power(base: float, exponent: float) -> None:
    # Refuse before computing: 10 ** 10 ** 10 must not even be attempted.
    if abs(exponent) > MAX_EXPONENT:
        raise UnreasonableNumberError("that exponent is too big for me")
    if abs(base) > 1 and exponent > 0 and exponent * math.log10(abs(base)) > 100:
        raise UnreasonableNumberError("that number is too big for me")


def _bounded(value: int | float) -> int | float:
    if isinstance(value, float) and not math.isfinite(value):
        raise UnreasonableNumberError("that number is too big for me")
    if abs(value) > MAX_MAGNITUDE:
        raise UnreasonableNumberError("that number is too big for me")
    return value
