"""Engines keep payload values out of error messages (and so out of logs)."""

from __future__ import annotations

import pytest
from sqlalchemy import text
from sqlalchemy.engine import Engine
from sqlalchemy.exc import DBAPIError

from tests.support import new_id


def test_a_failing_statement_names_no_value_bound_to_it(engine: Engine) -> None:
    secret = new_id("what-a-contact-wrote")
    with pytest.raises(DBAPIError) as caught, engine.connect() as connection:
        connection.execute(text("SELECT :value FROM no_such_table"), {"value": secret})
    assert "no_such_table" in str(caught.value)
    assert secret not in str(caught.value)
