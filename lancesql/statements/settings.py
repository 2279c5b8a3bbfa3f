"""``SET lancesql.<name> = value``, ``RESET lancesql.<name>`` and ``SHOW lancesql``.

Settings without the ``lancesql.`` prefix (``SET threads = 2``) belong to the engine
and pass through to it.
"""

from __future__ import annotations

import pyarrow as pa
from sqlglot import exp

from lancesql.context import Result, StatementContext
from lancesql.errors import ProgrammingError
from lancesql.query import evaluate
from lancesql.statements.base import command_tokens, statement

PREFIX = "lancesql"


@statement(exp.Set)
def set_setting(ctx: StatementContext, tree: exp.Expression) -> Result | None:
    """``SET lancesql.name = value`` (also ``TO``); other SETs go to the engine."""
    items = tree.expressions
    ours = [i for i in items if isinstance(i.this, exp.EQ) and i.this.this.table == PREFIX]
    if not ours:
        return None
    if len(ours) != len(items):
        raise ProgrammingError("set lancesql settings and engine settings in separate SET statements")
    for item in ours:
        target, value = item.this.this, item.this.expression
        if isinstance(value, (exp.Column, exp.Var)) and not isinstance(value, exp.Placeholder):
            raw = value.name  # SET lancesql.clip_device = cpu
        else:
            raw = evaluate(ctx, value)
        ctx.settings.set(target.name, raw)
    return Result.done()


@statement(exp.Command)
def reset_or_show(ctx: StatementContext, tree: exp.Expression) -> Result | None:
    """``RESET lancesql.name`` and ``SHOW lancesql`` (every setting, value and meaning)."""
    text = command_tokens(tree)  # type: ignore[arg-type]
    words = text.split()
    if len(words) == 2 and words[0].upper() == "RESET" and words[1].lower().startswith(PREFIX + "."):
        ctx.settings.reset(words[1][len(PREFIX) + 1 :])
        return Result.done()
    if len(words) == 2 and words[0].upper() == "SHOW" and words[1].lower() == PREFIX:
        rows = ctx.settings.items()
        return Result.of(
            pa.table(
                {
                    "name": [f"{PREFIX}.{n}" for n, _, _ in rows],
                    "value": [None if v is None else str(v) for _, v, _ in rows],
                    "description": [d for _, _, d in rows],
                }
            )
        )
    return None
