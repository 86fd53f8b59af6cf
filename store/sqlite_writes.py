"""SQLite's bulk writes, bound by hand: the rows of a batch as plain tuples to the driver.

SQLAlchemy builds each row's parameters in Python (`construct_params`, then each column's bind
processor through two layers of TypeDecorator), about 15 µs a row of `decisions`: on SQLite,
where the database itself takes about 10 µs to store that row, this was the larger half of a
close's write and the part that holds the single write lock. Here the statement text is written
once per batch, each column's bind processor (the same one SQLAlchemy would call, so the stored
text is identical: `UTCDateTime` as naive UTC `YYYY-MM-DD HH:MM:SS.ffffff`, booleans as 0/1) is
called once per distinct value of the batch, and the driver binds the tuples in C.

PostgreSQL does not come here: it gets the whole batch as one JSON parameter (store/db.py
`rows_param`).
"""

from __future__ import annotations

from collections.abc import Collection, Iterator, Mapping, Sequence
from itertools import chain
from typing import Any

from sqlalchemy import Column, Table
from sqlalchemy.engine import Connection, Dialect, Row

MAX_VARIABLES = 32766
"""SQLite's limit on the parameters of one statement (since 3.32; the driver here has 3.40)."""


def insert_rows(
    connection: Connection,
    table: Table,
    rows: Sequence[Mapping[str, Any]],
    *,
    key: Sequence[str],
    on_conflict: str,
    returning: Sequence[Column[Any]] = (),
) -> list[Row[Any]]:
    """`store.db.bulk_insert` on SQLite (same arguments and result). Rows are given as dicts
    with the same keys; `returning` columns must be read as the driver gives them (text or
    numbers: a column with a result processor, like a datetime, is refused)."""
    names = list(rows[0])
    quote = connection.dialect.identifier_preparer.quote
    head = f"INSERT INTO {quote(table.name)} ({', '.join(quote(n) for n in names)}) VALUES "
    updated = [n for n in names if n not in key]
    conflict = f" ON CONFLICT ({', '.join(quote(k) for k in key)}) DO " + (
        "UPDATE SET " + ", ".join(f"{quote(n)} = excluded.{quote(n)}" for n in updated)
        if on_conflict == "update" and updated
        else "NOTHING"
    )
    values = bound_rows(connection.dialect, table, names, rows)
    marks = "(" + ", ".join("?" * len(names)) + ")"
    if not returning:
        # One prepared statement, stepped once per row by the driver (executemany).
        connection.exec_driver_sql(head + marks + conflict, values)
        return []
    for column in returning:
        if column.type.dialect_impl(connection.dialect).result_processor(connection.dialect, None):
            # TypeError, not ValueError: a caller's mistake, never a row fault to set aside.
            raise TypeError(f"insert_rows cannot return {column.name}: it needs converting")
    tail = conflict + " RETURNING " + ", ".join(quote(c.name) for c in returning)
    returned: list[Row[Any]] = []
    for start, size in pages(len(values), max(1, MAX_VARIABLES // len(names))):
        flat = tuple(chain.from_iterable(values[start : start + size]))
        result = connection.exec_driver_sql(head + ", ".join([marks] * size) + tail, flat)
        returned.extend(result.all())
    return returned


def pages(count: int, most: int) -> Iterator[tuple[int, int]]:
    """(start, size) of the multi-row statements `count` rows go in, in order: sizes that are
    powers of two (the largest at most `most`), largest first, so 2,000 rows are pages of
    1,024, 512, 256, 128, 64 and 16.

    The driver keeps each statement text it prepared (per connection, up to 128), and a
    prepared multi-row VALUES of n rows holds memory in proportion to n: a text per row count
    left every pool connection holding prepared statements for hundreds of batch sizes (a
    sweep's growing batches of up to 2,000 closes: +40-50 MB per worker process over 200,000
    closes). Powers of two bound it to a dozen texts per shape of rows, at the price of one
    statement per set bit of `count`."""
    largest = 1 << (most.bit_length() - 1)
    start = 0
    while start < count:
        size = largest
        while size > count - start:
            size >>= 1
        yield start, size
        start += size


def update_by_keys(
    connection: Connection,
    table: Table,
    values: Mapping[str, Any],
    key: Sequence[str],
    keys: Collection[tuple[Any, ...]],
) -> None:
    """Set the same `values` on every row whose `key` columns equal one of `keys`."""
    if not keys:
        return
    quote = connection.dialect.identifier_preparer.quote
    names = list(values)
    (constants,) = bound_rows(connection.dialect, table, names, [values])
    bound_keys = bound_rows(
        connection.dialect, table, key, [dict(zip(key, k, strict=True)) for k in sorted(keys)]
    )
    statement = (
        f"UPDATE {quote(table.name)} SET {', '.join(f'{quote(n)} = ?' for n in names)} "
        f"WHERE {' AND '.join(f'{quote(k)} = ?' for k in key)}"
    )
    connection.exec_driver_sql(statement, [(*constants, *k) for k in bound_keys])


def bound_rows(
    dialect: Dialect, table: Table, names: Sequence[str], rows: Sequence[Mapping[str, Any]]
) -> list[tuple[Any, ...]]:
    """Each row's values of `names` as the driver must get them (each column's bind processor
    applied, once per distinct value: a batch's rows share their times)."""
    converting: list[tuple[int, Any, dict[Any, Any]]] = []
    for i, name in enumerate(names):
        if (bind := _processor(dialect, table.c[name])) is not None:
            converting.append((i, bind, {}))
    if not converting:
        return [tuple(row[name] for name in names) for row in rows]
    bound: list[tuple[Any, ...]] = []
    for row in rows:
        values = [row[name] for name in names]
        for i, bind, seen in converting:
            value = values[i]
            if value is None:
                continue  # NULL as it is: no processor of ours makes anything else of it
            try:
                values[i] = seen[value]
            except KeyError:
                values[i] = seen[value] = bind(value)
            except TypeError:  # unhashable: converted every time
                values[i] = bind(value)
        bound.append(tuple(values))
    return bound


def _processor(dialect: Dialect, column: Column[Any]) -> Any:
    # The dialect's own version of the type (for UTCDateTime, one whose inner type is SQLite's
    # DATETIME, which writes the text): the generic type has no bind processor at all.
    return column.type.dialect_impl(dialect).bind_processor(dialect)
